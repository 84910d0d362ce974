"""FP16: float16 weights and compute, float32 inputs and outputs (Casts at the boundaries).

Uses onnxruntime's own converter (``onnxruntime.transformers.float16``) with
``keep_io_types=True``; ops in its default block list stay float32, plus ``KEEP_FP32``
(numerically fragile reductions). Path in, path out: the backend writes the bundle.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from edgecnn._lazy import require
from edgecnn.errors import ExportError

# Softmax / LayerNorm / ReduceMean accumulate in the type they run in; float16 sums over
# long rows (ViT attention, global pooling) lose more than the rest of the graph together.
KEEP_FP32 = ("Softmax", "LayerNormalization", "ReduceMean", "GlobalAveragePool")


def convert_fp16(fp32_path: str | os.PathLike, out_path: str | os.PathLike,
                 keep_fp32: Sequence[str] = KEEP_FP32) -> list[str]:
    """Write the fp16 model; returns the op types kept in float32."""
    onnx = require("onnx", "quantize", "convert to FP16")
    f16 = require("onnxruntime.transformers.float16", "quantize", "convert to FP16")
    model = onnx.load(os.fspath(fp32_path))
    block = sorted(set(f16.DEFAULT_OP_BLOCK_LIST) | set(keep_fp32))
    try:
        m16 = f16.convert_float_to_float16(model, keep_io_types=True, op_block_list=block,
                                           disable_shape_infer=False)
    except Exception as exc:  # the converter raises plain Exceptions
        raise ExportError(f"FP16 conversion of {Path(fp32_path).name} failed: {exc}") from exc
    out = Path(out_path)
    if out.exists():
        out.unlink()  # may be a hard link into the previous bundle
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(m16, os.fspath(tmp))
    os.replace(tmp, out)
    present = {n.op_type for n in model.graph.node}
    return [op for op in block if op in present]
