"""The CPU INT8 graph on the trained Fashion-MNIST lenet5: the real export pipeline, real
calibration images, the real test images; both graphs pass their gates and the CPU graph keeps
top-1 (the full 10,000-image figure is in benchmarks/results/cpu_int8_accuracy.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]
FMNIST = Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
WEIGHTS = REPO / "weights" / "lenet5_fmnist.pt"

pytestmark = [pytest.mark.data,
              pytest.mark.skipif(not FMNIST.is_file(), reason="Fashion-MNIST not installed"),
              pytest.mark.skipif(not WEIGHTS.is_file(), reason="no trained lenet5 weights")]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    from edgecnn.options import ExportOptions
    from edgecnn.pipeline import export

    out = tmp_path_factory.mktemp("fm") / "lenet5"
    res = export(str(WEIGHTS), ExportOptions(target="x86-cpu", precision="int8",
                                             calib="fashion-mnist:train", calib_samples=256,
                                             out=out, threads=2), log=None)
    assert [a.file for a in res.artifacts] == ["model.onnx", "model.int8.cpu.onnx",
                                               "model.int8.onnx"]
    return out


def test_x86_cpu_profile_gets_the_cpu_graph_with_its_gates(bundle):
    import edgecnn.runtime as rt

    m = json.loads((bundle / "manifest.json").read_text())
    arts = {a["file"]: a for a in m["artifacts"]}
    cpu, trt = arts["model.int8.cpu.onnx"]["details"], arts["model.int8.onnx"]["details"]
    assert cpu["shaped_for"] == "cpu" and trt["shaped_for"] == "tensorrt"
    assert cpu["calibration"] == trt["calibration"]  # one calibration set
    p = cpu["parity"]
    assert p["passed"] and p["gated"] == "parity"
    assert p["cosine"] >= 0.99 and p["top1_agreement"] >= 0.95  # far inside the gate
    with rt.load(bundle, backend="onnxruntime", precision="int8") as s:
        assert s.artifact.file == "model.int8.cpu.onnx"


def test_cpu_graph_top1_on_fashion_mnist_test(bundle):
    from edgecnn.bench.accuracy import evaluate, load_predictor
    from edgecnn.data.datasets import load_dataset

    ds = load_dataset("fashion-mnist:test").subset(2000, seed=0)
    res = {}
    for spec in ("fp32", "int8", "int8-trt"):
        p = load_predictor(str(bundle), backend="onnxruntime", precision=spec, threads=2)
        try:
            res[spec] = evaluate(p.predict_fn, ds, p.preprocess, batch_size=500, description=spec)
        finally:
            p.close()
    assert res["fp32"].top1 > 85.0
    assert res["fp32"].top1 - res["int8"].top1 <= 0.5  # 0.3 pt on all 10,000 is benchmarked
    assert res["int8"].agreement(res["fp32"]) >= 98.5
    assert res["fp32"].top1 - res["int8-trt"].top1 <= 0.5
