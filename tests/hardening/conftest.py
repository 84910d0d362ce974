"""Fixtures for the hardening tests: one real tiny bundle per session (lenet5, 1x32x32).

The bundle is exported once with the real pipeline (ONNX, plus TFLite where LiteRT works);
tests copy it before damaging anything.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _hardening_lib import TRAINED_LENET5

HERE = Path(__file__).parent
ENGINE_META = HERE.parent / "fixtures" / "tensorrt" / "engine_desktop.json"


def _litert_ok() -> bool:
    try:
        from edgecnn.runtime.litert import litert_provider

        return litert_provider() is not None
    except Exception:  # noqa: BLE001 - any failure means: no LiteRT here
        return False


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """lenet5 bundle with model.onnx and, where LiteRT export works, model.fp32.tflite."""
    from edgecnn.options import ExportOptions
    from edgecnn.pipeline import export

    out = tmp_path_factory.mktemp("hardening") / "lenet5"
    target = "tflite" if _litert_ok() else "onnx"
    try:
        export("lenet5", ExportOptions(target=target, out=out, parity_samples=2), log=None)
    except Exception:  # noqa: BLE001 - the TFLite converter is not ours to test here
        if target == "onnx":
            raise
        export("lenet5", ExportOptions(target="onnx", out=out, parity_samples=2), log=None)
    return out


@pytest.fixture(scope="session")
def engine_bundle(tiny_bundle, tmp_path_factory) -> Path:
    """A bundle holding a TensorRT artifact with recorded engine metadata.

    No TensorRT here, so the .engine bytes are opaque; what can be checked is everything
    the runtime does before TensorRT sees the file (names, size, sha256, metadata).
    """
    from edgecnn.bundle import Bundle, BundleWriter

    out = tmp_path_factory.mktemp("hardening_trt") / "lenet5"
    src = Bundle.open(tiny_bundle)
    onnx = src.find("onnxruntime", "fp32")
    meta = json.loads(ENGINE_META.read_text())
    with BundleWriter(out, src.manifest, keep_existing=False) as w:
        shutil.copyfile(tiny_bundle / "model.onnx", w.path_for("model.onnx"))
        w.add_artifact("model.onnx", "onnxruntime", "fp32", onnx.inputs, onnx.outputs)
        # bytes shaped like a serialized engine: a header then payload (content is opaque to us)
        w.path_for("model.fp16.engine").write_bytes(b"ftrt" + bytes(range(256)) * 64)
        w.add_artifact("model.fp16.engine", "tensorrt", "fp16", onnx.inputs, onnx.outputs,
                       details={"engine": meta})
    return out


@pytest.fixture(scope="session")
def full_bundle(tmp_path_factory) -> Path:
    """Trained lenet5 with every file kind a CPU machine writes: model.onnx, both int8 ONNX
    graphs and their calibration cache, the TensorRT-prepared int8 graph and build_plan.json,
    and, where LiteRT works, model.fp32.tflite and model.int8.tflite (four exports into one
    bundle, 64 calibration images from fashion-mnist:train)."""
    from edgecnn.options import ExportOptions
    from edgecnn.pipeline import export

    out = tmp_path_factory.mktemp("hardening_full") / "lenet5"
    steps = [("onnx", "int8"), ("tensorrt", "int8")]
    if _litert_ok():
        steps += [("tflite", "fp32"), ("tflite", "int8")]
    for target, precision in steps:
        export(str(TRAINED_LENET5), ExportOptions(
            target=target, precision=precision, out=out, parity_samples=2, threads=1,
            calib="fashion-mnist:train" if precision == "int8" else None, calib_samples=64),
            log=None)
    return out
