"""Fixtures for the hardening tests: one real tiny bundle per session (lenet5, 1x32x32).

The bundle is exported once with the real pipeline (ONNX, plus TFLite where LiteRT works);
tests copy it before damaging anything.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

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
