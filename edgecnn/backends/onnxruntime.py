"""The ONNX Runtime backend: the .onnx files run as they are.

fp32 is the staged model.onnx (nothing more to build). fp16 and int8 are made here from the
transforms in :mod:`edgecnn.quantize` (path in, path out) and written into the bundle:

- fp16: ``convert_fp16`` -> parity vs model.onnx (gated on cosine) -> artifact;
- int8: calibration set -> ranges (cached in the bundle) -> Q/DQ graph -> accuracy budget
  (``--max-accuracy-drop``) -> TensorRT's Q/DQ rule check -> parity, latency and
  quantization_report.json -> artifact.

The TensorRT backend builds its engines from these graphs through :func:`ensure_onnx`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from edgecnn import catalog
from edgecnn.backends.registry import Backend, ExportContext, register_backend
from edgecnn.errors import ExportError, MissingDependencyError, ParityError
from edgecnn.manifest import Artifact
from edgecnn.options import ExportOptions

PARITY_SAMPLES = 64  # calibration inputs the int8 graph is compared on


@register_backend
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def check(self, options: ExportOptions, profile) -> None:
        from edgecnn._lazy import available

        precision = self.resolve_precision(options, profile)
        if not available("onnxruntime"):
            raise MissingDependencyError("onnxruntime is needed to check ONNX exports; install it "
                                         "with: pip install 'edgecnn[ort]'")
        if precision == "int8":
            options.quantize.check()

    def export(self, ctx: ExportContext) -> list[Artifact]:
        return [ensure_onnx(ctx, ctx.precision)]


def ensure_onnx(ctx: ExportContext, precision: str) -> Artifact:
    """The ONNX artifact of ``precision`` in the bundle being written: the one this export
    already staged, else made now (and added to ``ctx.artifacts``)."""
    file = catalog.artifact_file("onnxruntime", precision)
    staged = ctx.staged(file)
    if staged is not None:
        return staged
    if precision == "fp32":
        raise ExportError("model.onnx must be staged before any other artifact")
    artifact = _export_fp16(ctx) if precision == "fp16" else _export_int8(ctx)
    ctx.artifacts.append(artifact)
    return artifact


def _io_specs(ctx: ExportContext):
    """Inputs/outputs of the staged model.onnx artifact (read from the graph if not staged)."""
    from edgecnn.export.onnx import graph_io_specs

    fp32 = ctx.staged(catalog.artifact_file("onnxruntime", "fp32"))
    return (fp32.inputs, fp32.outputs) if fp32 is not None else graph_io_specs(ctx.fp32_onnx)


# -- fp16 -------------------------------------------------------------------------------------
def _export_fp16(ctx: ExportContext) -> Artifact:
    from edgecnn.export.parity import TOLERANCES, ParityTolerance, compare_outputs, random_inputs
    from edgecnn.quantize.fp16 import convert_fp16
    from edgecnn.runtime.ort import inference_session, run_batched

    file = catalog.artifact_file("onnxruntime", "fp16")
    fp32 = Path(ctx.fp32_onnx)
    out = ctx.writer.path_for(file)
    kept = convert_fp16(fp32, out)
    n = max(2, ctx.options.parity_samples)
    x = np.concatenate(random_inputs([n], ctx.model.input_size, seed=ctx.options.seed))
    x = x.astype(np.float32)
    try:
        sess16 = inference_session(out, ctx.options.threads)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
        raise ExportError(f"ONNX Runtime cannot load {file}: {exc}") from exc
    parity = compare_outputs(run_batched(inference_session(fp32, ctx.options.threads), x),
                             run_batched(sess16, x))
    # gated on direction (cosine), not max |diff|: a deep net (resnet50) drifts a few % in
    # float16 on some logits without changing what it predicts; the full report is recorded
    bad = parity.failures(ParityTolerance(max_abs_rel=math.inf,
                                          min_cosine=TOLERANCES["fp16"].min_cosine))
    if bad:
        raise ParityError(
            f"{file} disagrees with model.onnx: {'; '.join(bad)} over {len(x)} random inputs "
            f"(max |fp32 logit| {parity.ref_max_abs:.3g}); values outside float16's range "
            f"(6e-8 .. 65504) overflow or vanish: use fp32 or INT8 for this model")
    ctx.log(f"fp16: {parity.summary()}")
    inputs, outputs = _io_specs(ctx)
    return ctx.writer.add_artifact(
        file, backend="onnxruntime", precision="fp16", inputs=inputs, outputs=outputs,
        details={"parity": parity.to_dict(), "kept_fp32_ops": kept, "io_types": "float32",
                 "source": fp32.name})


# -- int8 -------------------------------------------------------------------------------------
def _export_int8(ctx: ExportContext) -> Artifact:
    from edgecnn.export.parity import compare_outputs
    from edgecnn.quantize.budget import enforce_budget, load_eval
    from edgecnn.quantize.cache import cache_name, cached_ranges
    from edgecnn.quantize.calibration import load_calibration
    from edgecnn.quantize.int8 import TENSORRT_QDQ, quantize_onnx
    from edgecnn.quantize.qdq_check import check_qdq
    from edgecnn.quantize.ranges import check_method
    from edgecnn.quantize.report import REPORT_FILE, QuantReport, median_latency_ms
    from edgecnn.runtime.ort import fixed_batch, inference_session, run_batched

    q, log, threads = ctx.options.quantize, ctx.log, ctx.options.threads
    q.check()
    method = check_method(q.calib_method)
    file = catalog.artifact_file("onnxruntime", "int8")
    calib = load_calibration(q.calib, ctx.model.preprocess, ctx.model.input_size,
                             samples=q.calib_samples, seed=q.seed)
    log(f"calibration set: {calib.count} samples from {calib.spec} (sha256 {calib.sha256[:12]})")
    fp32 = Path(ctx.fp32_onnx)
    ranges, cache_state = cached_ranges(
        fp32, calib, method, ctx.model.preprocess, ctx.writer.read_path(cache_name(method)),
        lambda: ctx.writer.path_for(cache_name(method)), threads=threads, log=log)

    out = ctx.writer.path_for(file)
    quantize_onnx(fp32, out, ranges, scheme=TENSORRT_QDQ)
    budget = None
    if q.max_accuracy_drop is not None:
        ev = load_eval(q.eval, ctx.model.preprocess, ctx.model.input_size)
        budget = enforce_budget(fp32, out, ranges, ev, q.max_accuracy_drop, log=log)
        if budget.excluded:
            log(f"budget met: {len(budget.excluded)} layers left in float "
                f"({', '.join(budget.excluded)}), drop {budget.drop:.2f} pt")

    violations = check_qdq(out)
    if violations:
        raise ExportError(f"{file} breaks {len(violations)} TensorRT Q/DQ rules, e.g. "
                          f"{violations[0]}; please report the model")

    ref_sess, q_sess = inference_session(fp32, threads), inference_session(out, threads)
    sample = calib.data[:PARITY_SAMPLES]
    parity = compare_outputs(run_batched(ref_sess, sample), run_batched(q_sess, sample))
    latency: dict[str, dict[str, float]] = {"fp32": {}, "int8": {}}
    fixed = fixed_batch(ref_sess)
    for b in ((fixed,) if fixed else (1, 8)):
        x = np.ascontiguousarray(np.resize(calib.data, (b, *calib.data.shape[1:])))
        latency["fp32"][str(b)] = round(median_latency_ms(ref_sess, x), 4)
        latency["int8"][str(b)] = round(median_latency_ms(q_sess, x), 4)
    report = QuantReport(
        model=ctx.model.name, method=method, calibration=calib.describe(), cache=cache_state,
        size_bytes={"fp32": fp32.stat().st_size, "int8": out.stat().st_size},
        agreement=parity.top1_agreement, parity=parity.to_dict(), latency_ms=latency,
        accuracy=budget.to_dict() if budget else None,
        excluded_layers=budget.excluded if budget else [], qdq_violations=0)
    ctx.writer.write_text(REPORT_FILE, report.to_json())
    try:
        report.print()
    except Exception:  # noqa: BLE001 - a console problem must not fail the export
        pass

    details = {
        "method": method, "calibration": calib.describe(), "calibration_cache": cache_name(method),
        "cache": cache_state, "quantization": TENSORRT_QDQ.to_dict(), "parity": parity.to_dict(),
        "excluded_layers": budget.excluded if budget else [],
        "accuracy_drop": budget.drop if budget else None,
        "max_accuracy_drop": q.max_accuracy_drop,
        "accuracy": ({k: getattr(budget, k) for k in ("metric", "fp32", "int8", "drop_plain",
                                                      "eval_spec", "eval_samples")}
                     if budget else None),
        "qdq_check": "passed", "report": REPORT_FILE, "source": fp32.name,
    }
    inputs, outputs = _io_specs(ctx)
    return ctx.writer.add_artifact(file, backend="onnxruntime", precision="int8",
                                   inputs=inputs, outputs=outputs, details=details)
