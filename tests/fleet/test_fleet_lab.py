"""A device lab on a real Ray cluster: a head (the build node) and two worker nodes that
advertise two device profiles, all on loopback. resnet8 (trained weights) is built once on the
head through Ray, shipped through the object store and measured on both devices; then one
device's node is removed mid-run and ``--resume`` completes its cells on a new node.

Cost: about 1.5-2 minutes on 2 cores (node start-up is most of it).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.fleet
ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'edgecnn[fleet]')")

from edgecnn.bench.plan import BenchOptions  # noqa: E402
from edgecnn.cli.main import cli  # noqa: E402
from edgecnn.fleet import FleetError  # noqa: E402
from edgecnn.fleet.lab import LabOptions, run_lab, save_lab  # noqa: E402
from edgecnn.fleet.resources import BUILD_RESOURCE, node_labels, node_resources  # noqa: E402
from edgecnn.fleet.shipping import CACHE_ENV  # noqa: E402

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "resnet8_fmnist.pt"
LOOPBACK = "127.0.0.1"
DEVICES = ("x86-cpu", "raspberry-pi-5")
TARGETS = "onnx:fp32,onnx:fp16"
MB = 1024 * 1024


def _node_args(profile: str) -> dict:
    return dict(num_cpus=1, object_store_memory=80 * MB, node_ip_address=LOOPBACK,
                resources=node_resources(profile, build=False), labels=node_labels(profile))


class Lab:
    def __init__(self, tmp: Path):
        from ray.cluster_utils import Cluster

        self.tmp = tmp
        self.cluster = Cluster(initialize_head=True, head_node_args=dict(
            num_cpus=1, object_store_memory=100 * MB, node_ip_address=LOOPBACK,
            include_dashboard=False, resources={BUILD_RESOURCE: 1},
            _system_config={"health_check_period_ms": 500, "health_check_failure_threshold": 4}))
        self.nodes = {}
        for d in DEVICES:
            self.nodes[d] = self.cluster.add_node(**_node_args(d))

    def options(self, **kw) -> BenchOptions:
        base = dict(targets=TARGETS, batch="1", threads=1, warmup=2, iterations=30, plot=False,
                    db=str(self.tmp / "bench.db"), report_dir=str(self.tmp / "reports"),
                    timeout=120)
        base.update(kw)
        return BenchOptions(**base)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    os.environ[CACHE_ENV] = str(tmp / "device-cache")  # the nodes inherit it
    lab = Lab(tmp)
    try:
        yield lab
    finally:
        if ray.is_initialized():
            ray.shutdown()
        lab.cluster.shutdown()
        os.environ.pop(CACHE_ENV, None)


@pytest.fixture(scope="module")
def first_run(lab):
    """resnet8 built once on the head (through Ray), measured on both devices, saved."""
    events = []
    opts = lab.options(weights=str(WEIGHTS), out=str(lab.tmp / "resnet8"))
    result = run_lab("resnet8", opts, LabOptions(DEVICES, cluster=lab.cluster.address),
                     log=lambda m: None, progress=False,
                     on_event=lambda kind, cell, node: events.append((kind, str(cell))))
    paths = save_lab(result, opts)
    return result, paths, opts


def test_two_targets_on_two_devices_fill_the_history_by_device(lab, first_run):
    result, paths, opts = first_run
    assert (result.bundle / "manifest.json").is_file()  # built on the head, saved at --out
    assert result.shipped_bytes > 100_000
    for d in DEVICES:
        rows = result.reports[d].results
        assert [(r.target, r.status) for r in rows] == [("onnx:fp32", "ok"), ("onnx:fp16", "ok")], \
            [(r.target, r.reason) for r in rows]
        assert all(r.latency.p50 > 0 and r.rounds == 1 for r in rows)
        assert result.reports[d].machine["device"] == d
    con = sqlite3.connect(opts.db)
    runs = con.execute("SELECT id, device, lab FROM runs ORDER BY id").fetchall()
    assert sorted(r[1] for r in runs) == sorted(DEVICES)
    assert len({r[2] for r in runs}) == 1 and runs[0][2] == result.lab
    stored = con.execute("SELECT r.device, x.target, x.status FROM results x JOIN runs r "
                         "ON r.id = x.run_id").fetchall()
    assert sorted(stored) == sorted((d, t, "ok") for d in DEVICES for t in TARGETS.split(","))
    assert (Path(opts.report_dir) / "x86-cpu" / "bench.md").is_file()
    # one measurement at a time per device: no two cells overlap on one node
    spans: dict[str, list[tuple[float, float]]] = {}
    for run in result.runs:
        spans.setdefault(run.cell.device, []).append((run.outcome["start"], run.outcome["end"]))
    for d, s in spans.items():
        s.sort()
        assert len(s) == 2 and all(a[1] <= b[0] for a, b in zip(s, s[1:])), (d, s)


def test_a_device_without_a_node_is_an_error_not_a_wait(lab, first_run):
    result, _, opts = first_run
    t0 = time.monotonic()
    with pytest.raises(FleetError, match="no node in the cluster advertises "
                                         "edgecnn/jetson-orin-nano"):
        run_lab(str(result.bundle), opts, LabOptions("x86-cpu,jetson-orin-nano",
                                                     cluster=lab.cluster.address),
                log=lambda m: None, progress=False)
    assert time.monotonic() - t0 < 60


def test_a_hung_cell_times_out_and_ctrl_c_keeps_what_finished(lab, first_run):
    result, _, _ = first_run
    hung = run_lab(str(result.bundle), lab.options(timeout=1, duration=3.0, save=False),
                   LabOptions("x86-cpu", cluster=lab.cluster.address, retries=1),
                   log=lambda m: None, progress=False)
    assert [r.reason for r in hung.reports["x86-cpu"].results] == \
        ["timeout: no result after 1 s (the device hung) (after 1 retries)"] * 2

    opts = lab.options(db=str(lab.tmp / "interrupted.db"))
    submitted = []

    def ctrl_c_on_second_cell(kind, cell, node):
        if kind == "submitted":
            submitted.append(cell)
            if len(submitted) == 2:
                raise KeyboardInterrupt

    stopped = run_lab(str(result.bundle), opts, LabOptions("x86-cpu", cluster=lab.cluster.address),
                      log=lambda m: None, progress=False, on_event=ctrl_c_on_second_cell)
    save_lab(stopped, opts)
    assert stopped.interrupted
    rows = {r.target: r for r in stopped.reports["x86-cpu"].results}
    assert rows["onnx:fp32"].status == "ok"  # finished before Ctrl-C: kept
    assert rows["onnx:fp16"].status == "failed" and "interrupted" in rows["onnx:fp16"].reason
    con = sqlite3.connect(opts.db)
    assert con.execute("SELECT target, status FROM results ORDER BY target").fetchall() == \
        [("onnx:fp16", "failed"), ("onnx:fp32", "ok")]


def test_node_lost_mid_run_fails_its_cells_and_resume_completes_them(lab, first_run):
    result, _, _ = first_run
    opts = lab.options(iterations=100, duration=2.0, db=str(lab.tmp / "faults.db"))
    victim = "raspberry-pi-5"
    killed = []

    def kill_on_first_cell(kind, cell, node):
        if kind == "submitted" and cell.device == victim and not killed:
            time.sleep(2.0)  # let the measurement start
            lab.cluster.remove_node(lab.nodes[victim])
            killed.append(node)

    first = run_lab(str(result.bundle), opts,
                    LabOptions(DEVICES, cluster=lab.cluster.address, retries=1),
                    log=lambda m: None, progress=False, on_event=kill_on_first_cell)
    save_lab(first, opts)
    assert killed
    lost = first.reports[victim].results
    assert all(r.status == "failed" and "node lost" in r.reason for r in lost), \
        [(r.status, r.reason) for r in lost]
    assert all(r.status == "ok" for r in first.reports["x86-cpu"].results)

    lab.nodes[victim] = lab.cluster.add_node(**_node_args(victim))
    before = {r.target: r.latency.p50 for r in first.reports["x86-cpu"].results}
    res = CliRunner().invoke(cli, [
        "bench", str(result.bundle), "--cluster", lab.cluster.address, "--devices",
        ",".join(DEVICES), "--resume", "--targets", TARGETS, "--threads", "1", "--warmup", "2",
        "--iterations", "30", "--db", opts.db, "--report-dir", str(lab.tmp / "resumed"),
        "--no-plot", "--compare", "latest"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "2 cell(s) measured, 0 skipped, 0 failed, 2 kept" in res.output, res.output
    assert "device x86-cpu" in res.output and "device raspberry-pi-5" in res.output
    con = sqlite3.connect(opts.db)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2  # completed in place
    assert con.execute("SELECT count(*) FROM results WHERE status = 'ok'").fetchone()[0] == 4
    from edgecnn.bench.history import History

    with History(opts.db) as h:
        runs = h.latest_lab("resnet8", [1, 28, 28])
    assert {r.target: r.latency.p50 for r in runs["x86-cpu"].results} == before  # not re-measured
    assert all(r.status == "ok" for r in runs[victim].results)


FMNIST = Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")


def _two_x86_boards(lab) -> None:
    """A pool of two x86-cpu boards (the second node is started once per module)."""
    if not getattr(lab, "x86_pool", False):
        lab.cluster.add_node(**_node_args("x86-cpu"))
        lab.x86_pool = True


@pytest.mark.data
@pytest.mark.skipif(not FMNIST.is_file(), reason="Fashion-MNIST not installed "
                                                  "(apt-get install dataset-fashion-mnist)")
def test_eval_sharded_across_two_nodes_of_a_profile_equals_one_machine(lab, first_run):
    import numpy as np

    from edgecnn.bench.accuracy import evaluate, load_predictor
    from edgecnn.data.datasets import load_dataset
    from edgecnn.fleet.shard_eval import evaluate_on_lab

    result, _, _ = first_run
    _two_x86_boards(lab)
    merged = evaluate_on_lab(str(result.bundle), "fashion-mnist:test", "x86-cpu",
                             cluster=lab.cluster.address, data_limit=1500, shards=3)
    predictor = load_predictor(str(result.bundle))
    single = evaluate(predictor.predict_fn, load_dataset("fashion-mnist:test").subset(1500),
                      predictor.preprocess, progress=False)
    predictor.close()
    assert merged.n == single.n == 1500
    assert (merged.top1, merged.top5) == (single.top1, single.top5)
    assert np.array_equal(merged.confusion, single.confusion)
    assert np.array_equal(merged.predictions, single.predictions)
    assert np.allclose(merged.per_class, single.per_class, equal_nan=True, rtol=0, atol=0)


def test_eval_cli_on_the_lab_prints_what_one_machine_does(lab, first_run, tmp_path):
    """``edgecnn eval BUNDLE --cluster --devices x86-cpu``: 3 shards on the pool of two boards
    give the single-machine record exactly; a profile without a node is a one-line error."""
    import json

    import numpy as np

    result, _, _ = first_run
    _two_x86_boards(lab)
    rng = np.random.default_rng(7)  # noise at many brightness levels: varied predictions
    images = (rng.random((301, 28, 28)) * rng.random((301, 1, 1)) * 255).astype(np.uint8)
    np.savez(tmp_path / "photos.npz", images=images, labels=rng.integers(0, 10, 301))
    common = ["eval", str(result.bundle), "--data", str(tmp_path / "photos.npz"),
              "--samples", "250", "--batch-size", "32", "--no-progress"]

    def run(*args):
        return CliRunner().invoke(cli, common + list(args), catch_exceptions=False)

    on_lab = run("--cluster", lab.cluster.address, "--devices", "x86-cpu", "--shards", "3",
                 "--out", str(tmp_path / "lab"))
    assert on_lab.exit_code == 0, on_lab.output
    assert "top-1 %" in on_lab.output and "confusion matrix" in on_lab.output
    assert "3 shard(s) on 2 node(s) of x86-cpu, merged exactly" in on_lab.output, on_lab.output
    here = run("--out", str(tmp_path / "here"))
    assert here.exit_code == 0, here.output
    [lab_json] = (tmp_path / "lab").glob("*.json")
    [here_json] = (tmp_path / "here").glob("*.json")
    merged, single = json.loads(lab_json.read_text()), json.loads(here_json.read_text())
    assert merged.pop("lab") == {"cluster": lab.cluster.address, "device": "x86-cpu",
                                 "shards": 3, "nodes": 2}
    assert single["n"] == 250 and len({c for row in single["confusion"] for c in
                                       np.nonzero(row)[0]}) > 1  # more than one class predicted
    for key in ("top1", "top5", "n", "spec", "per_class", "confusion", "target", "name"):
        assert merged[key] == single[key], key
    assert lab_json.name == here_json.name

    t0 = time.monotonic()
    none = run("--cluster", lab.cluster.address, "--devices", "jetson-orin-nano",
               "--out", str(tmp_path / "none"))
    assert none.exit_code == 1 and "Traceback" not in none.output, none.output
    assert none.output.strip().splitlines()[-1].startswith(
        "Error: no node in the cluster advertises edgecnn/jetson-orin-nano"), none.output
    assert time.monotonic() - t0 < 60  # an error, not a wait for a node
