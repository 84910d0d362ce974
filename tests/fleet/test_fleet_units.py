"""The lab's pieces that need no cluster: the ``ray start`` line a node runs, the lab options'
usage errors, and a bundle packed for the object store and unpacked and verified on a device.
Cost: about 2 s (the TinyNet bundle is the session's shared one)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgecnn.cli.main import cli
from edgecnn.errors import ChecksumError


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_node_start_prints_the_ray_start_line_it_runs():
    res = run("node", "start", "--profile", "raspberry-pi-5", "--address", "10.0.0.2:6379",
              "--no-build", "--dry-run")
    assert res.exit_code == 0, res.output
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("ray start --address=10.0.0.2:6379 ")
    resources = json.loads(line.split("--resources=")[1].split()[0].strip("'"))
    assert resources == {"edgecnn/raspberry-pi-5": 1.0}
    labels = line.split("--labels=")[1].strip("'")
    assert "edgecnn.io/profile=raspberry-pi-5" in labels and "edgecnn.io/backends=" in labels
    head = run("node", "start", "--profile", "x86-cpu", "--head", "--build", "--dry-run")
    assert head.exit_code == 0 and "--head --port=6379" in head.output
    assert '"edgecnn/build":1.0' in head.output


@pytest.mark.parametrize("args, code, text", [
    (("node", "start", "--profile", "onnx", "--head", "--dry-run"), 1, "not a device profile"),
    (("node", "start", "--profile", "x86-cpu", "--dry-run"), 1, "either --address"),
    (("node", "start", "--profile", "no-such-board", "--head", "--dry-run"), 1, "no-such-board"),
    (("bench", "resnet8", "--devices", "x86-cpu"), 2, "need --cluster"),
    (("bench", "resnet8", "--cluster", "auto"), 2, "needs --devices"),
    (("bench", "--cluster", "auto", "--devices", "x86-cpu"), 2, "MODEL or BUNDLE"),
    (("bench", "m", "--cluster", "auto", "--devices", "x86-cpu", "--compare", "3"), 2, "'latest'"),
    (("eval", "resnet8", "--devices", "x86-cpu"), 2, "need --cluster"),
    (("eval", "resnet8", "--cluster", "auto"), 2, "needs --devices"),
    (("eval", "b", "--cluster", "auto", "--devices", "x86-cpu,raspberry-pi-5"), 2, "one profile"),
    (("eval", "b", "--cluster", "auto", "--devices", "x86-cpu", "--shards", "0"), 2, "--shards"),
    (("eval", "resnet8", "--cluster", "auto", "--devices", "x86-cpu"), 1, "is not a bundle"),
    (("eval", "resnet8", "--cluster", "auto", "--devices", "no-such-board"), 1, "no-such-board"),
])
def test_bad_lab_arguments_are_one_line_errors(args, code, text):
    res = run(*args)
    assert res.exit_code == code and text in res.output, res.output
    assert "Traceback" not in res.output


def test_a_packed_bundle_unpacks_verified_and_damage_is_refused(tiny_bundle, tmp_path,
                                                                monkeypatch):
    from edgecnn.fleet.shipping import CACHE_ENV, ShippedBundle, pack_bundle, unpack_bundle

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    shipped = pack_bundle(tiny_bundle)
    assert shipped.size == sum(p.stat().st_size for p in tiny_bundle.iterdir() if p.is_file()) \
        - (tiny_bundle / "manifest.json").stat().st_size + len(shipped.files["manifest.json"])
    local = unpack_bundle(shipped)
    assert (local / "model.onnx").read_bytes() == (tiny_bundle / "model.onnx").read_bytes()
    assert unpack_bundle(shipped) == local  # cached by digest
    bad = dict(shipped.files)
    bad["model.onnx"] = bad["model.onnx"][:-1] + bytes([bad["model.onnx"][-1] ^ 1])
    with pytest.raises(ChecksumError, match="model.onnx"):
        unpack_bundle(ShippedBundle(shipped.digest, bad), suffix=".damaged")
    with pytest.raises(ChecksumError, match="digest"):
        unpack_bundle(ShippedBundle("0" * 64, shipped.files))
    assert not any(p.name.startswith(".unpack-") for p in (tmp_path / "cache").iterdir())


def test_tensorrt_engines_are_never_shipped(tiny_bundle, tmp_path, monkeypatch):
    """An engine belongs to the GPU and TensorRT that built it: the device builds its own."""
    from edgecnn.bundle import Bundle, BundleWriter
    from edgecnn.fleet.shipping import CACHE_ENV, pack_bundle, unpack_bundle

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    bundle = Bundle.open(tiny_bundle)
    onnx = bundle.manifest.find("onnxruntime", "fp32")
    with BundleWriter(tiny_bundle, bundle.manifest, keep_existing=True) as w:
        w.path_for("model.fp16.engine").write_bytes(b"engine bytes of another GPU")
        w.path_for("trt_timing.cache").write_bytes(b"timing cache")
        w.add_artifact("model.fp16.engine", "tensorrt", "fp16", onnx.inputs, onnx.outputs,
                       {"timing_cache": "trt_timing.cache"})
    shipped = pack_bundle(tiny_bundle)
    assert "model.fp16.engine" not in shipped.files and "trt_timing.cache" not in shipped.files
    local = Bundle.open(unpack_bundle(shipped))
    assert [a.backend for a in local.manifest.artifacts] == ["onnxruntime"]
    assert "model.fp16.engine" in {p.name for p in tiny_bundle.iterdir()}  # the source is intact


def test_a_lab_bench_of_a_model_with_setup_flags_measures_its_bundle(tiny_bundle):
    """``bench MODEL --preset ... --cluster``: the setup travels to the build node (pickled by
    Ray) for the export; each device then plans the built bundle, whose manifest fixes it."""
    import pickle

    from edgecnn.bench.plan import BenchOptions
    from edgecnn.cli.model_options import build_setup
    from edgecnn.fleet.lab import device_cells, device_plan

    setup = build_setup(resize="20", crop="16", mean="0.5", std="0.25", model_arg=("w=4",))
    opts = BenchOptions(targets="onnx:fp32", warmup=1, iterations=3, setup=setup)
    assert pickle.loads(pickle.dumps(opts)).setup == setup
    plan = device_plan(tiny_bundle, opts, "x86-cpu")
    [cell] = device_cells(plan, opts, "x86-cpu", None)
    assert json.loads(cell.job_json)["preprocess"] == plan.preprocess and plan.skipped == {}
