"""The bench runner on a hand-made ONNX bundle (real onnxruntime, real worker processes),
argument checks that fail before any work, and the ``edgecnn bench`` command."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.bench.runner import BenchOptions, plan_bench, run_bench, save_outputs
from edgecnn.bundle import BundleWriter
from edgecnn.errors import DataError, InputError, UnknownTargetError
from edgecnn.manifest import Manifest, Preprocess, TensorSpec

C, H, W, K = 1, 8, 8, 10


def _onnx_model(path, seed=0):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((C * H * W, K)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(K).astype(np.float32), "B")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "W", "B"], ["logits"])],
        "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", C, H, W])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", K])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return w, b


PRE = Preprocess(size=[H, W], channels=1, mean=[0.0], std=[1.0], scale=1 / 255,
                 channel_order="L")


@pytest.fixture
def bundle(tmp_path):
    """model.onnx (fp32) plus the same graph registered as the CPU 'int8' graph to have two
    targets."""
    out = tmp_path / "bundle"
    manifest = Manifest(model="tiny", preprocess=PRE, labels=[f"c{i}" for i in range(K)],
                        source={"kind": "factory", "model": "tiny", "weights": "none.pt"})
    ins = [TensorSpec("input", [-1, C, H, W], layout="NCHW")]
    outs = [TensorSpec("logits", [-1, K])]
    with BundleWriter(out, manifest) as w:
        _onnx_model(w.path_for("model.onnx"))
        shutil.copy(w.read_path("model.onnx"), w.path_for("model.int8.cpu.onnx"))
        w.add_artifact("model.onnx", "onnxruntime", "fp32", ins, outs)
        w.add_artifact("model.int8.cpu.onnx", "onnxruntime", "int8", ins, outs,
                       details={"shaped_for": "cpu"})
    return out


def _data(tmp_path, bundle, rgb=False, classes=K, n=40):
    """Images with labels = the tiny model's own argmax (so fp32 top-1 is exactly 100%)."""
    import edgecnn.runtime as rt

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, H, W) + ((3,) if rgb else ()), dtype=np.uint8)
    with rt.load(bundle) as s:
        from edgecnn.data.preprocess import normalize_uint8

        labels = s.run(normalize_uint8(images if not rgb else images[..., 0], PRE)).argmax(1)
    path = tmp_path / ("rgb.npz" if rgb else f"gray{classes}.npz")
    np.savez(path, images=images, labels=labels.astype(np.int64),
             classes=np.array([f"c{i}" for i in range(classes)]))
    return str(path)


FAST = dict(warmup=2, iterations=5, plot=False, save=False)


def test_bundle_rows_latency_memory_accuracy(tmp_path, bundle):
    data = _data(tmp_path, bundle)
    opts = BenchOptions(targets="onnx:fp32,onnx:int8,onnx:fp16,tensorrt:fp16", batch="1,3",
                        threads=1, data=data, **FAST)
    rep = run_bench(str(bundle), opts, progress=False)
    rows = {(r.target, r.batch): r for r in rep.results}
    assert len(rows) == 8
    for b in (1, 3):
        r = rows[("onnx:fp32", b)]
        assert r.status == "ok", r.reason
        assert r.latency.n == 5 and r.latency.min > 0 and r.load_ms > 0 and r.first_ms > 0
        assert r.peak_rss_mb > 10 and r.rss_delta_mb is not None
        assert r.throughput == pytest.approx(b * 1000 / r.latency.mean)
        assert r.artifact_bytes > 0 and r.threads == 1
    fp32, int8 = rows[("onnx:fp32", 1)], rows[("onnx:int8", 1)]
    assert fp32.top1 == 100.0 and fp32.eval_n == 40
    assert int8.top1 == 100.0 and int8.top1_drop == 0.0 and int8.agreement == 100.0
    assert rows[("onnx:fp32", 3)].top1 == 100.0  # measured once per target, shown on each row
    assert rep.reference == "onnx:fp32" and rep.reference_top1 == 100.0
    assert rows[("onnx:fp16", 1)].status == "skipped"
    assert "edgecnn export" in rows[("onnx:fp16", 1)].reason
    assert rows[("tensorrt:fp16", 1)].status == "skipped"
    assert rep.machine["threads"] == 1 and rep.machine["cpu_model"]


def test_rounds_interleave_and_pool(bundle):
    from edgecnn.bench.runner import _make_jobs

    opts = BenchOptions(targets="onnx:fp32,onnx:int8", rounds=3, isolate=False, **FAST)
    plan = plan_bench(str(bundle), opts)
    jobs = _make_jobs(plan, opts, plan.targets, None, power=False)
    order = [(r, j.target) for r, j in jobs]
    assert order == [(0, "onnx:fp32"), (0, "onnx:int8"), (1, "onnx:int8"), (1, "onnx:fp32"),
                     (2, "onnx:fp32"), (2, "onnx:int8")]
    rep = run_bench(str(bundle), opts, progress=False)
    for r in rep.results:
        assert r.rounds == 3 and r.latency.n == 15 and len(r.round_p50s) == 3


@pytest.mark.tflite
def test_a_failing_target_does_not_stop_the_others(tmp_path, bundle):
    pytest.importorskip("ai_edge_litert")
    manifest_path = bundle / "manifest.json"
    from edgecnn.bundle import Bundle

    m = Bundle.open(bundle).manifest
    with BundleWriter(bundle, m) as w:
        w.path_for("model.fp32.tflite").write_bytes(b"\x00" * 64)  # not a flatbuffer
        w.add_artifact("model.fp32.tflite", "tflite", "fp32",
                       [TensorSpec("input", [1, H, W, C], layout="NHWC")],
                       [TensorSpec("logits", [1, K])])
    assert manifest_path.is_file()
    rep = run_bench(str(bundle), BenchOptions(targets="tflite:fp32,onnx:fp32", **FAST),
                    progress=False)
    rows = {r.target: r for r in rep.results}
    assert rows["tflite:fp32"].status == "failed"
    assert "TFLite" in rows["tflite:fp32"].reason or "tflite" in rows["tflite:fp32"].reason
    assert rows["onnx:fp32"].status == "ok"


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(targets="onnx:fp32,tensorflow"), UnknownTargetError, "unknown bench target"),
    (dict(targets="onnx:int4"), UnknownTargetError, "no precision 'int4'"),
    (dict(targets="torch:int8"), UnknownTargetError, "no precision"),
    (dict(batch="0"), InputError, "impossible"),
    (dict(batch="1,x"), InputError, "positive integers"),
    (dict(threads=0), InputError, "--threads"),
    (dict(rounds=0), InputError, "--rounds"),
    (dict(targets="tensorrt:int8", profile="jetson-orin-nano", batch="16"), InputError,
     "above the TensorRT profile's maximum of 8"),
    (dict(profile="jetson-orin-nanoo"), UnknownTargetError, "did you mean"),
])
def test_bad_arguments_fail_before_any_work(bundle, kwargs, error, match):
    before = sorted(p.name for p in bundle.iterdir())
    with pytest.raises(error, match=match):
        plan_bench(str(bundle), BenchOptions(**{**FAST, **kwargs}))
    assert sorted(p.name for p in bundle.iterdir()) == before


def test_data_that_does_not_fit_the_model(tmp_path, bundle):
    rgb = _data(tmp_path, bundle, rgb=True)
    with pytest.raises(DataError, match=r"RGB \(3 channels\) but tiny takes grayscale"):
        plan_bench(str(bundle), BenchOptions(targets="onnx:fp32", data=rgb, **FAST))
    five = _data(tmp_path, bundle, classes=5)
    np.savez(five, **{**dict(np.load(five)), "labels": np.zeros(40, dtype=np.int64)})
    with pytest.raises(DataError, match="5 classes but tiny has 10 outputs"):
        plan_bench(str(bundle), BenchOptions(targets="onnx:fp32", data=five, **FAST))
    with pytest.raises(DataError, match="not found"):
        plan_bench(str(bundle), BenchOptions(targets="onnx:fp32", data="nowhere/", **FAST))


def test_outputs_and_history(tmp_path, bundle):
    opts = BenchOptions(targets="onnx:fp32", isolate=False, warmup=1, iterations=3,
                        report_dir=str(tmp_path / "rep"), db=str(tmp_path / "h.db"))
    rep = run_bench(str(bundle), opts, progress=False)
    paths = save_outputs(rep, opts)
    assert rep.run_id == 1
    for kind in ("json", "csv", "md", "png", "db"):
        assert paths[kind].is_file() and paths[kind].stat().st_size > 0
    assert '"run_id": 1' in paths["json"].read_text()


def test_cli_runs_compares_and_reports_errors(tmp_path, bundle):
    from edgecnn.cli.main import cli

    runner = CliRunner()
    db = str(tmp_path / "h.db")
    args = ["bench", str(bundle), "--targets", "onnx:fp32", "--warmup", "1", "--iterations", "3",
            "--no-isolate", "--no-plot", "--db", db]
    r1 = runner.invoke(cli, args + ["--report-dir", str(tmp_path / "r1")])
    assert r1.exit_code == 0, r1.output
    assert "onnx:fp32" in r1.output
    r2 = runner.invoke(cli, args + ["--report-dir", str(tmp_path / "r2"), "--compare", "latest"])
    assert r2.exit_code == 0, r2.output
    assert "run 2 vs run 1" in r2.output
    r3 = runner.invoke(cli, ["bench", "--compare", "2", "--db", db])
    assert r3.exit_code == 0 and "run 2 vs run 1" in r3.output
    bad = runner.invoke(cli, ["bench", str(bundle), "--targets", "onnx:fp33", "--db", db])
    assert bad.exit_code == 1
    assert "no precision 'fp33'" in bad.output
    empty = runner.invoke(cli, ["bench", "--compare", "latest", "--db", str(tmp_path / "e.db")])
    assert empty.exit_code == 1 and "empty" in empty.output
    nothing = runner.invoke(cli, ["bench"])
    assert nothing.exit_code == 2 and "--compare" in nothing.output
    warm = runner.invoke(cli, ["bench", str(bundle), "--warmup", "soon"])
    assert warm.exit_code == 2 and "'auto'" in warm.output


def test_bench_modules_do_not_import_torch():
    code = ("import sys, edgecnn.bench.runner, edgecnn.bench.report, edgecnn.bench.plot, "
            "edgecnn.bench.history, edgecnn.bench.jetson, edgecnn.bench.latency, "
            "edgecnn.bench.plan, edgecnn.bench.build, edgecnn.bench.measure, "
            "edgecnn.bench.outputs, edgecnn.bench.accuracy, edgecnn.cli.bench_cmd; "
            "bad = [m for m in ('torch', 'onnx', 'tensorflow', 'matplotlib') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
@pytest.mark.data
def test_model_end_to_end_builds_and_compares_with_torch(tmp_path):
    """A zoo model: bench builds model.onnx through the export pipeline, runs the torch target
    (seeded like the exported model) and scores both on Fashion-MNIST."""
    pytest.importorskip("torch")
    from edgecnn.data.fashion_mnist import dataset_dir

    if not (dataset_dir() / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed (make dataset)")
    opts = BenchOptions(targets="torch,onnx:fp32", input_size="1x28x28", threads=1,
                        data="fashion-mnist:test", data_limit=200, out=str(tmp_path / "b"),
                        **FAST)
    rep = run_bench("lenet5", opts, progress=False)
    rows = {r.target: r for r in rep.results}
    assert rows["torch"].status == "ok" and rows["onnx:fp32"].status == "ok", rep.results
    assert (tmp_path / "b" / "model.onnx").is_file()
    assert rep.reference == "torch"
    assert rows["onnx:fp32"].agreement >= 99.0  # same random init in both processes
    assert abs(rows["onnx:fp32"].top1_drop) <= 1.0


def test_a_damaged_artifact_fails_only_its_target(bundle):
    data = bytearray((bundle / "model.int8.cpu.onnx").read_bytes())
    data[-1] ^= 0xFF  # same size, different bytes: the checksum no longer matches
    (bundle / "model.int8.cpu.onnx").write_bytes(bytes(data))
    rep = run_bench(str(bundle), BenchOptions(targets="onnx:int8,onnx:fp32", isolate=False,
                                              **FAST), progress=False)
    rows = {r.target: r for r in rep.results}
    assert rows["onnx:int8"].status == "failed" and "checksum" in rows["onnx:int8"].reason
    assert rows["onnx:fp32"].status == "ok"


def test_fixed_batch_artifact_skips_other_batches(tmp_path):
    out = tmp_path / "fixed"
    manifest = Manifest(model="tiny", preprocess=PRE, labels=[f"c{i}" for i in range(K)])
    with BundleWriter(out, manifest) as w:
        _onnx_model(w.path_for("model.onnx"))
        w.add_artifact("model.onnx", "onnxruntime", "fp32",
                       [TensorSpec("input", [1, C, H, W], layout="NCHW")],
                       [TensorSpec("logits", [1, K])])
    rep = run_bench(str(out), BenchOptions(targets="onnx:fp32", batch="2,1", isolate=False,
                                           **FAST), progress=False)
    rows = {r.batch: r for r in rep.results}
    assert rows[1].status == "ok" and rows[1].latency.n == 5
    assert rows[2].status == "skipped" and "fixed batch of 1" in rows[2].reason
