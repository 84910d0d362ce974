"""The ONNX Runtime backend: the .onnx files run as they are.

fp32 is the staged model.onnx (nothing more to build). fp16 and int8 are made here from the
transforms in :mod:`edgecnn.quantize` (path in, path out) and written into the bundle:

- fp16: ``convert_fp16`` -> parity vs model.onnx (gated on cosine) -> artifact;
- int8: one calibration set -> one set of ranges (cached in the bundle, covering every tensor
  either graph quantizes) -> two Q/DQ graphs, each -> accuracy budget (``--max-accuracy-drop``)
  -> parity gate vs model.onnx -> latency and a quantization report -> artifact:

  * ``model.int8.cpu.onnx`` (variant "cpu", :data:`~edgecnn.quantize.int8.CPU_QDQ`): uint8
    asymmetric activations, int8 per-channel weights, int32 bias, Q/DQ around Add/pools too, so
    ONNX Runtime's CPU kernels run it in integer arithmetic. What ``--target onnx``, the
    x86-cpu profile, ``onnx:int8`` and ``runtime.load(precision="int8")`` get.
  * ``model.int8.onnx`` (variant "tensorrt", :data:`~edgecnn.quantize.int8.TENSORRT_QDQ`,
    unchanged; TensorRT's Q/DQ rules checked): what TensorRT builds from; on a CPU only an
    accuracy proxy (``onnx:int8-trt``).

  Each artifact records its variant in ``details["shaped_for"]``. ``--target onnx --precision
  int8`` writes both (the TensorRT one is skipped with a warning if it cannot be made);
  the TensorRT backend asks :func:`ensure_onnx` for the TensorRT one only.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from edgecnn import catalog
from edgecnn.backends.registry import Backend, ExportContext, register_backend
from edgecnn.errors import (EdgeCNNError, ExportError, MissingDependencyError, ParityError,
                            first_line)
from edgecnn.export.parity import TOLERANCES, ParityTolerance
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
        if ctx.precision != "int8":
            return [ensure_onnx(ctx, ctx.precision)]
        out = [ensure_onnx(ctx, "int8", "cpu")]
        try:  # the TensorRT-shaped graph from the same ranges: the accuracy proxy, optional here
            out.append(ensure_onnx(ctx, "int8", "tensorrt"))
        except EdgeCNNError as exc:
            ctx.log(f"warning: no TensorRT-shaped int8 graph ({first_line(exc)}); the CPU graph "
                    f"{out[0].file} is complete")
        return out


def ensure_onnx(ctx: ExportContext, precision: str, variant: str | None = None) -> Artifact:
    """The ONNX artifact of ``precision`` in the bundle being written: the one this export
    already staged, else made now (and added to ``ctx.artifacts``). For int8, ``variant``
    picks the graph: "tensorrt" (the default: what the TensorRT backend builds from,
    model.int8.onnx) or "cpu" (model.int8.cpu.onnx)."""
    entry = catalog.entry("onnxruntime")
    variant = entry.resolve_variant(precision, variant or entry.unlabelled.get(precision))
    file = catalog.artifact_file("onnxruntime", precision, variant)
    staged = ctx.staged(file)
    if staged is not None:
        return staged
    if precision == "fp32":
        raise ExportError("model.onnx must be staged before any other artifact")
    artifact = _export_fp16(ctx) if precision == "fp16" else _export_int8(ctx, variant)
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
# both graphs' parity gate vs model.onnx on the calibration samples: direction of the logits
# (cosine) and the predicted class (top-1 agreement); the accuracy budget is the finer gate
INT8_PARITY = ParityTolerance(max_abs_rel=math.inf, min_cosine=TOLERANCES["int8"].min_cosine,
                              min_top1=0.5)


def report_file(variant: str) -> str:
    """quantization_report.json (the TensorRT graph's, as before) or quantization_report.cpu.json."""
    from edgecnn.quantize.report import REPORT_FILE

    return REPORT_FILE if variant == "tensorrt" else REPORT_FILE.replace(".json", f".{variant}.json")


def _int8_inputs(ctx: ExportContext):
    """The calibration set and ranges both graphs share: loaded and calibrated once per export
    (:class:`~edgecnn.backends.shared_steps.SharedSteps`), read from the bundle's cache when it
    covers every tensor either graph quantizes."""
    from edgecnn.quantize.ranges import check_method

    q = ctx.options.quantize
    q.check()
    method = check_method(q.calib_method)
    return ctx.shared.get("ONNX int8 ranges", (method, q.calib, q.calib_samples, q.seed),
                          lambda: _calibrate(ctx, method))


def _calibrate(ctx: ExportContext, method: str):
    import onnx

    from edgecnn.backends.shared_steps import calibration_set
    from edgecnn.quantize.cache import cache_name, cached_ranges
    from edgecnn.quantize.int8 import SCHEMES
    from edgecnn.quantize.ranges import scheme_tensors

    log = ctx.log
    calib = calibration_set(ctx)
    log(f"calibration set: {calib.count} samples from {calib.spec} (sha256 {calib.sha256[:12]})")
    fp32 = Path(ctx.fp32_onnx)
    tensors = scheme_tensors(onnx.load(str(fp32), load_external_data=False),
                             [s.tensors for s in SCHEMES.values()])
    ranges, cache_state = cached_ranges(
        fp32, calib, method, ctx.model.preprocess, ctx.writer.read_path(cache_name(method)),
        lambda: ctx.writer.path_for(cache_name(method)), threads=ctx.options.threads, log=log,
        tensors=tensors)
    return method, calib, ranges, cache_state


def _cpu_gate(ctx: ExportContext, parity, ranges, sample: np.ndarray, ref_out: np.ndarray
              ) -> tuple[list[str], dict | None]:
    """The CPU graph's parity gate: (failures, reference). It passes with cosine >= 0.95 and
    top-1 agreement >= 0.5 vs model.onnx on the calibration samples; a model where even the
    TensorRT-shaped graph cannot reach that (random weights, fragile nets) passes when the CPU
    graph is as faithful as that graph, from the same ranges on the same samples (cosine within
    0.01, top-1 agreement within 0.05): the CPU graph never ships less faithful than the INT8
    graph edgecnn made before it. ``reference`` is that graph's figures when they were used."""
    bad = parity.failures(INT8_PARITY)
    if not bad:
        return [], None
    ref = ctx.shared.get("TensorRT-shaped graph parity", len(sample),
                         lambda: _trt_graph_parity(ctx, ranges, sample, ref_out))
    worse = []
    if not parity.cosine >= ref["cosine"] - 0.01:
        worse.append(f"cosine {parity.cosine:.4f} (the TensorRT-shaped graph: {ref['cosine']:.4f})")
    if not parity.top1_agreement >= ref["top1_agreement"] - 0.05:
        worse.append(f"top-1 agreement {parity.top1_agreement:.3f} (the TensorRT-shaped graph: "
                     f"{ref['top1_agreement']:.3f})")
    return (bad + worse if worse else []), ref


def _trt_graph_parity(ctx: ExportContext, ranges, sample: np.ndarray, ref_out: np.ndarray
                      ) -> dict:
    """The TensorRT-shaped graph's cosine and top-1 agreement vs model.onnx on ``sample``."""
    import tempfile

    from edgecnn.export.parity import compare_outputs
    from edgecnn.quantize.int8 import TENSORRT_QDQ, quantize_onnx
    from edgecnn.runtime.ort import inference_session, run_batched

    with tempfile.TemporaryDirectory(prefix="edgecnn-trt-ref-") as tmp:
        path = Path(tmp) / "trt.onnx"
        quantize_onnx(ctx.fp32_onnx, path, ranges, scheme=TENSORRT_QDQ)
        rep = compare_outputs(ref_out, run_batched(
            inference_session(path, ctx.options.threads), sample))
    return {"graph": "tensorrt", "cosine": rep.cosine, "top1_agreement": rep.top1_agreement}


def _export_int8(ctx: ExportContext, variant: str) -> Artifact:
    from edgecnn.export.parity import compare_outputs
    from edgecnn.quantize.budget import enforce_budget, load_eval
    from edgecnn.quantize.cache import cache_name
    from edgecnn.quantize.int8 import CPU_LADDER, SCHEMES, quantize_onnx
    from edgecnn.quantize.qdq_check import check_qdq
    from edgecnn.quantize.report import QuantReport, median_latency_ms
    from edgecnn.runtime.ort import fixed_batch, inference_session, run_batched

    q, log, threads = ctx.options.quantize, ctx.log, ctx.options.threads
    scheme = SCHEMES[variant]
    file = catalog.artifact_file("onnxruntime", "int8", variant)
    method, calib, ranges, cache_state = _int8_inputs(ctx)
    fp32 = Path(ctx.fp32_onnx)

    out = ctx.writer.path_for(file)
    ev = None
    if q.max_accuracy_drop is not None:
        ev = ctx.shared.get("evaluation set", q.eval, lambda: load_eval(
            q.eval, ctx.model.preprocess, ctx.model.input_size))
    ref_sess = inference_session(fp32, threads)
    sample = calib.data[:PARITY_SAMPLES]
    ref_out = ctx.shared.get("model.onnx reference", ("calibration", len(sample)),
                             lambda: run_batched(ref_sess, sample))
    # the CPU graph: the fastest shape first; where it fails the parity gate, shapes that
    # quantize less (the merges, then everything but Conv/Gemm/MatMul left in float). With an
    # accuracy budget the budget is the gate (it leaves layers in float instead).
    ladder = [scheme] if variant == "tensorrt" or ev is not None else list(CPU_LADDER)
    for i, sch in enumerate(ladder):
        quantize_onnx(fp32, out, ranges, scheme=sch)
        budget = None
        if ev is not None:
            log(f"accuracy budget on {file} ({variant} graph)")
            budget = enforce_budget(fp32, out, ranges, ev, q.max_accuracy_drop, log=log,
                                    scheme=sch)
            if budget.excluded:
                log(f"budget met: {len(budget.excluded)} layers left in float "
                    f"({', '.join(budget.excluded)}), drop {budget.drop:.2f} pt")
        q_sess = inference_session(out, threads)
        parity = compare_outputs(ref_out, run_batched(q_sess, sample))
        if variant == "tensorrt" or budget is not None:
            break
        if i == 0 and len(ladder) > 1 and ladder[1].reduce_range:
            # x86 without VNNI sums u8 x s8 products in int16, which 8-bit weights can saturate:
            # keep whichever of 8 and 7 bits this CPU runs more faithfully (VNNI keeps 8)
            # (judged on every calibration sample: a fraction of a point of top-1 hides in 64)
            alt = out.with_name(out.name + ".7bit")
            quantize_onnx(fp32, alt, ranges, scheme=ladder[1])
            alt_sess = inference_session(alt, threads)
            full_ref = ctx.shared.get("model.onnx reference", ("calibration", len(calib.data)),
                                      lambda: run_batched(ref_sess, calib.data))
            eight = compare_outputs(full_ref, run_batched(q_sess, calib.data))
            seven_p = compare_outputs(full_ref, run_batched(alt_sess, calib.data))
            seven = ladder.pop(1)
            if (seven_p.top1_agreement, seven_p.cosine) > (eight.top1_agreement, eight.cosine):
                os.replace(alt, out)
                sch, q_sess = seven, inference_session(out, threads)
                parity = compare_outputs(ref_out, run_batched(q_sess, sample))
            else:
                alt.unlink()
        bad, reference = _cpu_gate(ctx, parity, ranges, sample, ref_out)
        if not bad:
            break
        if i + 1 == len(ladder):
            raise ParityError(
                f"{file} ({variant} int8 graph) disagrees with model.onnx: {'; '.join(bad)} over "
                f"{parity.samples} calibration samples, even with {sch.name} ("
                f"{sch.describe()}); try --calib-method entropy or percentile, more "
                f"--calib-samples, or --max-accuracy-drop with --eval to leave sensitive "
                f"layers in float")
        log(f"{file}: {sch.name} ({sch.describe()}) fails the parity gate ({'; '.join(bad)}); "
            f"trying {ladder[i + 1].name} ({ladder[i + 1].describe()})")
    scheme = sch

    qdq_state = "not applicable (CPU graph)"
    if variant == "tensorrt":
        violations = check_qdq(out)
        if violations:
            raise ExportError(f"{file} breaks {len(violations)} TensorRT Q/DQ rules, e.g. "
                              f"{violations[0]}; please report the model")
        qdq_state = "passed"

    gate = INT8_PARITY
    passed = parity.passed(gate)
    parity.tolerance = {"max_abs_rel": None, "min_cosine": gate.min_cosine,
                        "min_top1": gate.min_top1}
    parity_details = dict(parity.to_dict(), passed=passed,
                          gated=("accuracy budget" if budget is not None
                                 else "no (reported)" if variant == "tensorrt" else "parity"))
    if variant != "tensorrt" and budget is None:
        parity_details["passed"] = True
        if reference is not None:  # passed as faithful as the TensorRT-shaped graph
            parity_details["reference"] = reference
            parity_details["gated"] = "parity vs the TensorRT-shaped graph"
    latency: dict[str, dict[str, float]] = {"fp32": {}, "int8": {}}
    fixed = fixed_batch(ref_sess)
    for b in ((fixed,) if fixed else (1, 8)):
        x = np.ascontiguousarray(np.resize(calib.data, (b, *calib.data.shape[1:])))
        latency["fp32"][str(b)] = ctx.shared.get(  # model.onnx's once for both graphs
            "model.onnx latency", b, lambda: round(median_latency_ms(ref_sess, x), 4))
        latency["int8"][str(b)] = round(median_latency_ms(q_sess, x), 4)
    report = QuantReport(
        model=f"{ctx.model.name} {file}", method=method, calibration=calib.describe(),
        cache=cache_state,
        size_bytes={"fp32": fp32.stat().st_size, "int8": out.stat().st_size},
        agreement=parity.top1_agreement, parity=parity.to_dict(), latency_ms=latency,
        accuracy=budget.to_dict() if budget else None,
        excluded_layers=budget.excluded if budget else [], qdq_violations=0)
    rep_file = report_file(variant)
    ctx.writer.write_text(rep_file, report.to_json())
    try:
        report.print()
    except Exception:  # noqa: BLE001 - a console problem must not fail the export
        pass

    details = {
        "shaped_for": variant, "scheme": scheme.name,
        "method": method, "calibration": calib.describe(), "calibration_cache": cache_name(method),
        "cache": cache_state, "quantization": scheme.to_dict(), "parity": parity_details,
        "excluded_layers": budget.excluded if budget else [],
        "accuracy_drop": budget.drop if budget else None,
        "max_accuracy_drop": q.max_accuracy_drop,
        "accuracy": ({k: getattr(budget, k) for k in ("metric", "fp32", "int8", "drop_plain",
                                                      "eval_spec", "eval_samples")}
                     if budget else None),
        "qdq_check": qdq_state, "report": rep_file, "source": fp32.name,
    }
    inputs, outputs = _io_specs(ctx)
    return ctx.writer.add_artifact(file, backend="onnxruntime", precision="int8",
                                   inputs=inputs, outputs=outputs, details=details)
