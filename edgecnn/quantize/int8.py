"""INT8: an explicit-precision Q/DQ ONNX model that TensorRT (10.x, 11.x strongly typed)
and ONNX Runtime both run.

What TensorRT needs, and ONNX Runtime's ``quantize_static`` defaults do not give
(uint8 activations with non-zero zero points, int32 bias DequantizeLinear):
per-channel symmetric int8 weights, per-tensor symmetric int8 activations, every zero
point 0, bias left in float, Q/DQ only around Conv / Gemm / MatMul.

Activation ranges come from :mod:`edgecnn.quantize.ranges` (our own calibrators) and
reach ``quantize_static`` through its calibration-cache file, so ONNX Runtime's own
calibrators never run. Path in, path out: the backend (``edgecnn.backends.onnxruntime``)
writes the result into the bundle.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from edgecnn._lazy import require
from edgecnn.errors import ExportError, MissingDependencyError
from edgecnn.quantize.ranges import QUANT_OPS, ActivationRanges

@dataclass(frozen=True)
class QdqScheme:
    """How ``quantize_static`` shapes a Q/DQ graph; recorded in the manifest as ``to_dict()``."""

    name: str
    activation_type: str = "QInt8"
    weight_type: str = "QInt8"
    per_channel: bool = True
    op_types: tuple[str, ...] = QUANT_OPS
    activation_symmetric: bool = True
    weight_symmetric: bool = True
    quantize_bias: bool = False
    unquantized_outputs: tuple[str, ...] = QUANT_OPS  # ops whose outputs get no Q/DQ

    def extra_options(self) -> dict:
        return {"ActivationSymmetric": self.activation_symmetric,
                "WeightSymmetric": self.weight_symmetric, "QuantizeBias": self.quantize_bias,
                "OpTypesToExcludeOutputQuantization": list(self.unquantized_outputs)}

    def to_dict(self) -> dict:
        return {"quant_format": "QDQ", "per_channel": self.per_channel,
                "activation_type": self.activation_type, "weight_type": self.weight_type,
                "op_types_to_quantize": list(self.op_types), "extra_options": self.extra_options()}


# What TensorRT accepts (see the module doc).
TENSORRT_QDQ = QdqScheme("tensorrt")


def quantize_onnx(fp32_path: str | os.PathLike, out_path: str | os.PathLike,
                  ranges: ActivationRanges, nodes_to_exclude: Sequence[str] = (),
                  nodes_to_quantize: Sequence[str] = (), scheme: QdqScheme = TENSORRT_QDQ) -> None:
    """Write the Q/DQ model of ``fp32_path`` with ``ranges`` to ``out_path``."""
    require("onnx", "quantize", "quantize to INT8")
    q = require("onnxruntime.quantization", "quantize", "quantize to INT8")
    from onnxruntime.quantization.calibrate import (CalibrationMethod, TensorData, TensorsData,
                                                    save_tensors_data)

    if "calibration_cache_path" not in inspect.signature(q.quantize_static).parameters:
        raise MissingDependencyError(
            "this onnxruntime's quantize_static cannot take precomputed ranges "
            "(calibration_cache_path); install a newer one: pip install -U 'edgecnn[quantize]'")
    data = {}
    for name, amax in ranges.amax.items():
        a = np.float32(amax)
        data[name] = TensorData(lowest=np.array(-a, np.float32), highest=np.array(a, np.float32))
    logger = _quiet_ort_logging()
    with tempfile.TemporaryDirectory(prefix="edgecnn-int8-") as tmp:
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(TensorsData(CalibrationMethod.MinMax, data), cache)
        tmp_out = Path(tmp) / "model.int8.onnx"
        try:
            q.quantize_static(
                str(fp32_path), str(tmp_out), calibration_data_reader=None,
                quant_format=q.QuantFormat.QDQ, op_types_to_quantize=list(scheme.op_types),
                per_channel=scheme.per_channel, reduce_range=False,
                activation_type=getattr(q.QuantType, scheme.activation_type),
                weight_type=getattr(q.QuantType, scheme.weight_type),
                nodes_to_exclude=list(nodes_to_exclude),
                nodes_to_quantize=list(nodes_to_quantize),
                calibrate_method=CalibrationMethod.MinMax, calibration_cache_path=str(cache),
                extra_options=scheme.extra_options())
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ExportError(f"INT8 quantization of {Path(fp32_path).name} failed: {exc}") from exc
        finally:
            logger.setLevel(logger._edgecnn_level)  # type: ignore[attr-defined]
        os.replace(tmp_out, _fresh(Path(out_path)))


def _fresh(path: Path) -> Path:
    """Unlink ``path`` first: staging folders hold hard links to the previous bundle's files,
    and writing through one would change the old bundle in place."""
    if path.exists() or path.is_symlink():
        path.unlink()
    return path


def _quiet_ort_logging():
    import logging

    logger = logging.getLogger()
    logger._edgecnn_level = logger.level  # type: ignore[attr-defined]
    logger.setLevel(max(logger.level, logging.ERROR))  # "consider pre-processing" noise
    return logger


def quantizable_nodes(model_path: str | os.PathLike) -> list[str]:
    """Names of the Conv / Gemm / MatMul nodes (those the quantizer wraps in Q/DQ)."""
    onnx = require("onnx", "quantize", "quantize to INT8")
    m = onnx.load(os.fspath(model_path), load_external_data=False)
    missing = [n.op_type for n in m.graph.node if n.op_type in QUANT_OPS and not n.name]
    if missing:
        raise ExportError(f"{len(missing)} {'/'.join(sorted(set(missing)))} nodes have no name; "
                          f"INT8 layer exclusion needs named nodes (re-export with torch.onnx)")
    return [n.name for n in m.graph.node if n.op_type in QUANT_OPS]


__all__ = ["TENSORRT_QDQ", "QdqScheme", "quantizable_nodes", "quantize_onnx"]
