"""FP16: float16 weights and compute, float32 inputs and outputs (Casts at the boundaries).

Uses onnxruntime's own converter (``onnxruntime.transformers.float16``) with
``keep_io_types=True``; ops in its default block list stay float32, plus ``KEEP_FP32``
(numerically fragile reductions). Parity vs the fp32 model goes into the manifest.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from edgecnn._lazy import require
from edgecnn.errors import ExportError, ParityError

FP16_FILE = "model.fp16.onnx"
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


def export_fp16(ctx) -> "Artifact":  # noqa: F821
    from edgecnn.export.parity import (TOLERANCES, ParityTolerance, compare_outputs,
                                       random_inputs)
    from edgecnn.quantize.int8 import ort_session, run_model
    from edgecnn.quantize.pipeline import io_specs

    fp32 = Path(ctx.fp32_onnx)
    out = ctx.writer.path_for(FP16_FILE)
    kept = convert_fp16(fp32, out)
    n = max(2, ctx.options.parity_samples)
    x = np.concatenate(random_inputs([n], ctx.model.input_size, seed=ctx.options.seed))
    x = x.astype(np.float32)
    try:
        sess16 = ort_session(out, ctx.options.threads)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
        raise ExportError(f"ONNX Runtime cannot load {FP16_FILE}: {exc}") from exc
    parity = compare_outputs(run_model(ort_session(fp32, ctx.options.threads), x),
                             run_model(sess16, x))
    # gated on direction (cosine), not max |diff|: a deep net (resnet50) drifts a few % in
    # float16 on some logits without changing what it predicts; the full report is recorded
    bad = parity.failures(ParityTolerance(max_abs_rel=math.inf,
                                          min_cosine=TOLERANCES["fp16"].min_cosine))
    if bad:
        raise ParityError(
            f"{FP16_FILE} disagrees with model.onnx: {'; '.join(bad)} over {len(x)} random inputs "
            f"(max |fp32 logit| {parity.ref_max_abs:.3g}); values outside float16's range "
            f"(6e-8 .. 65504) overflow or vanish: use fp32 or INT8 for this model")
    ctx.log(f"fp16: {parity.summary()}")
    inputs, outputs = io_specs(ctx, fp32)
    return ctx.writer.add_artifact(
        FP16_FILE, backend="onnxruntime", precision="fp16", inputs=inputs, outputs=outputs,
        details={"parity": parity.to_dict(), "kept_fp32_ops": kept, "io_types": "float32",
                 "source": fp32.name})
