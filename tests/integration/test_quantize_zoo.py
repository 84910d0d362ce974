"""Every zoo model quantizes to INT8 and FP16, passes the TensorRT Q/DQ rules and runs in
onnxruntime (at its small test size, random weights, random float32 calibration inputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from _zoo import random_zoo_model, zoo_params  # noqa: E402


@pytest.mark.parametrize("name", list(zoo_params()))
def test_zoo_model_int8_and_fp16(name, tmp_path: Path):
    from edgecnn.backends.onnxruntime import ensure_onnx
    from edgecnn.backends.registry import ExportContext
    from edgecnn.bundle import Bundle, BundleWriter
    from edgecnn.export.onnx import export_onnx
    from edgecnn.manifest import Manifest
    from edgecnn.options import ExportOptions
    from edgecnn.quantize.qdq_check import check_qdq
    from edgecnn.runtime.ort import inference_session as ort_session
    from edgecnn.runtime.ort import run_batched as run_model

    lm, (c, h, w) = random_zoo_model(name)
    module, pre = lm.module, lm.preprocess
    calib = tmp_path / "calib.npy"
    x = np.random.default_rng(0).standard_normal((16, c, h, w)).astype(np.float32)
    np.save(calib, x)
    out = tmp_path / "bundle"
    with BundleWriter(out, Manifest(model=name, preprocess=pre, labels=lm.labels)) as wr:
        fp32 = wr.path_for("model.onnx")
        export_onnx(module, (c, h, w), fp32)
        ctx = ExportContext(model=lm, options=ExportOptions(calib=str(calib), calib_samples=16,
                                                            calib_method="minmax", parity_samples=4),
                            profile=None, precision="int8", writer=wr, fp32_onnx=fp32,
                            log=lambda m: None)
        a8 = ensure_onnx(ctx, "int8")
        a16 = ensure_onnx(ctx, "fp16")
    b = Bundle.open(out)
    b.verify()
    q = out / "model.int8.onnx"
    assert check_qdq(q) == []
    assert a8.size_bytes < (out / "model.onnx").stat().st_size
    qm = onnx.load(str(q))
    assert sum(n.op_type == "QuantizeLinear" for n in qm.graph.node) >= 1
    ref = run_model(ort_session(out / "model.onnx"), x[:4])
    got8 = run_model(ort_session(q), x[:4])
    got16 = run_model(ort_session(out / "model.fp16.onnx"), x[:4])
    assert got8.shape == got16.shape == ref.shape == (4, 10)
    assert np.isfinite(got8).all() and np.isfinite(got16).all()
    # INT8 stays an approximation of the model, not noise (random weights, 16 random
    # calibration inputs: a loose bound; accuracy on real data is benchmarks/quantization.py)
    cos = (ref * got8).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got8, axis=1) + 1e-12)
    assert cos.min() > 0.5, f"INT8 cosine vs fp32 {cos.min():.3f}"
    assert a16.details["parity"]["cosine"] > 0.999
