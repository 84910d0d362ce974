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

import dataclasses
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
from edgecnn.memory import release_memory
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


def _weight_bits(ctx: ExportContext, out: Path, ranges, eight_scheme, seven_scheme, q_sess,
                 ref_sess, sample: np.ndarray, ref_out: np.ndarray):
    """8- or 7-bit weights for the CPU graph at ``out`` (built with 8): (scheme, session,
    parity on ``sample``, how it was chosen).

    x86 without VNNI sums u8 x s8 products in int16 (``vpmaddubsw``), which 8-bit weights can
    saturate; there both are built and judged on every calibration sample (top-1 agreement,
    then cosine vs model.onnx: a fraction of a point of top-1 hides in 64 samples), and the
    more faithful one is kept. A CPU with VNNI/AMX (or not x86) cannot saturate: 8 bits, no
    trial. Either way the build CPU is recorded, so a graph chosen on a VNNI CPU warns when it
    runs on one without (runtime.ort)."""
    from edgecnn.backends.shared_steps import calibration_set
    from edgecnn.export.parity import compare_outputs
    from edgecnn.platform_info import cpu_flags, cpu_model, int16_saturation_risk
    from edgecnn.quantize.int8 import quantize_onnx
    from edgecnn.runtime.ort import inference_session, run_batched

    threads = ctx.options.threads
    choice = {"cpu": cpu_model() or "", "flags": cpu_flags(), "tried_7bit": False}
    if not int16_saturation_risk():
        choice["why"] = "this CPU sums u8 x s8 in int32 (VNNI/AMX or not x86): 8 bits"
        return (eight_scheme, q_sess, compare_outputs(ref_out, run_batched(q_sess, sample)),
                choice)
    data = calibration_set(ctx).data
    full_ref = ctx.shared.get("model.onnx reference", ("calibration", len(data)),
                              lambda: run_batched(ref_sess, data))
    eight_out = run_batched(q_sess, data)
    alt = out.with_name(out.name + ".7bit")
    quantize_onnx(ctx.fp32_onnx, alt, ranges, scheme=seven_scheme)
    seven_out = run_batched(inference_session(alt, threads), data)
    eight = compare_outputs(full_ref, eight_out)
    seven = compare_outputs(full_ref, seven_out)
    choice.update(tried_7bit=True, samples=len(data),
                  top1_agreement={"8": eight.top1_agreement, "7": seven.top1_agreement},
                  cosine={"8": eight.cosine, "7": seven.cosine})
    n = len(sample)
    if (seven.top1_agreement, seven.cosine) > (eight.top1_agreement, eight.cosine):
        os.replace(alt, out)
        choice["why"] = "x86 without VNNI: 7 bits ran more faithfully here"
        return (seven_scheme, inference_session(out, threads),
                compare_outputs(ref_out, seven_out[:n]), choice)
    alt.unlink()
    choice["why"] = "x86 without VNNI: 8 bits ran at least as faithfully here"
    return eight_scheme, q_sess, compare_outputs(ref_out, eight_out[:n]), choice


# the CPU graph's first passing shape is kept when it runs at least this much faster than
# model.onnx at batch 1; else the shapes that quantize less (and the TensorRT shape) are timed
# too and the fastest one that passes the parity gate is kept: a vit_tiny_16 ran 1.16x fp32 with
# its first passing shape and 1.57x with the TensorRT one on a Zen 5 EPYC (VNNI); an
# efficientnet_b0 0.71x with the full shape (cpu_int8_families-*.json)
SPEED_SEARCH_BELOW = 1.3
SWITCH_GAIN = 1.05  # another shape replaces the first passing one only when this much faster
# below this model.onnx latency the per-call cost dominates and shapes time alike within the
# noise: no search, so a small net's export stays byte-for-byte repeatable (a lenet5 at 32x32
# runs about 0.05 ms; timed, its kept shape changed from one export to the next)
SEARCH_MIN_MS = 1.0


def _fastest_shape(ctx: ExportContext, out: Path, ranges, sch, q_sess, parity, reference,
                   others, ref_sess, data: np.ndarray, sample: np.ndarray, ref_out: np.ndarray):
    """(scheme, session, parity, reference, record) of the CPU graph at ``out`` after a speed
    check at batch 1 against model.onnx; see :data:`SPEED_SEARCH_BELOW`. Latencies come from
    interleaved rounds (one shape after another was too noisy on a shared CPU to rank shapes).
    The record names every shape timed, its latency (or why it was not) and model.onnx's."""
    from edgecnn.export.parity import compare_outputs
    from edgecnn.quantize.int8 import TENSORRT_QDQ, quantize_onnx
    from edgecnn.quantize.report import interleaved_latency_ms
    from edgecnn.runtime.ort import fixed_batch, inference_session, run_batched

    threads = ctx.options.threads
    batch = fixed_batch(ref_sess) or 1  # a model exported with a fixed batch runs only that
    x = data[np.arange(batch) % len(data)]
    ms = interleaved_latency_ms({"fp32": ref_sess, sch.name: q_sess}, x)
    fp32_ms = ms.pop("fp32")
    record = {"batch": batch, "fp32_ms": round(fp32_ms, 4), "threshold": SPEED_SEARCH_BELOW,
              "shapes": {sch.name: round(ms[sch.name], 4)}, "kept": sch.name}
    candidates = [*others, dataclasses.replace(TENSORRT_QDQ, reduce_range=sch.reduce_range)]
    too_fast = fp32_ms < SEARCH_MIN_MS
    if too_fast:
        record["searched"] = f"no: model.onnx runs under {SEARCH_MIN_MS} ms, too fast to rank"
    if too_fast or fp32_ms / ms[sch.name] >= SPEED_SEARCH_BELOW or not candidates:
        return sch, q_sess, parity, reference, record
    ctx.log(f"{out.name}: {sch.name} runs {fp32_ms / ms[sch.name]:.2f}x model.onnx here; timing "
            f"the shapes that quantize less")
    passing = {sch.name: (sch, out, q_sess, parity, reference)}
    for cand in candidates:
        path = out.with_name(f"{out.name}.{cand.name}")
        quantize_onnx(ctx.fp32_onnx, path, ranges, scheme=cand)
        sess = inference_session(path, threads)
        p = compare_outputs(ref_out, run_batched(sess, sample))
        bad, ref = _cpu_gate(ctx, p, ranges, sample, ref_out)
        if bad:
            record["shapes"][cand.name] = "fails the parity gate"
            del sess
            path.unlink()
        else:
            passing[cand.name] = (cand, path, sess, p, ref)
    ms = interleaved_latency_ms({"fp32": ref_sess, **{k: v[2] for k, v in passing.items()}}, x)
    fp32_ms = ms.pop("fp32")
    record["fp32_ms"] = round(fp32_ms, 4)
    record["shapes"].update({k: round(v, 4) for k, v in ms.items()})
    best = min(ms, key=ms.get)
    if ms[best] * SWITCH_GAIN > ms[sch.name]:  # not clearly faster: keep the first shape
        best = sch.name
    sch, path, q_sess, parity, reference = passing.pop(best)
    for _, other, *_ in passing.values():
        if other != out:
            other.unlink()
    if path != out:
        os.replace(path, out)
        q_sess = inference_session(out, threads)
    record["kept"] = sch.name
    tried = ", ".join(f"{k} {v}" if isinstance(v, str) else f"{k} {fp32_ms / v:.2f}x"
                      for k, v in record["shapes"].items())
    ctx.log(f"{out.name}: kept {sch.name} ({sch.describe()}), {fp32_ms / ms[best]:.2f}x "
            f"model.onnx at batch {batch} (timed: {tried})")
    return sch, q_sess, parity, reference, record

def _export_int8(ctx: ExportContext, variant: str) -> Artifact:
    from edgecnn.export.parity import compare_outputs
    from edgecnn.quantize.budget import enforce_budget, load_eval
    from edgecnn.quantize.cache import cache_name
    from edgecnn.quantize.int8 import CPU_LADDER, SCHEMES, quantize_onnx
    from edgecnn.quantize.qdq_check import check_qdq
    from edgecnn.quantize.report import QuantReport, median_latency_ms
    from edgecnn.runtime.ort import fixed_batch, inference_session, run_batched

    release_memory()  # the other graph's sessions, before this one's
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
    weights = None
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
        if i == 0 and len(ladder) > 1 and ladder[1].reduce_range:
            # the same shape with 7-bit weights: tried right away where this CPU may saturate
            # 8-bit ones, else not a rung of its own (it could only be less faithful)
            seven = ladder.pop(1)
            sch, q_sess, parity, weights = _weight_bits(ctx, out, ranges, sch, seven, q_sess,
                                                        ref_sess, sample, ref_out)
            # the rungs below quantize less, with the weight bits chosen here
            ladder[1:] = [dataclasses.replace(r, reduce_range=sch.reduce_range)
                          for r in ladder[1:]]
        else:
            parity = compare_outputs(ref_out, run_batched(q_sess, sample))
        if variant == "tensorrt" or budget is not None:
            break
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
    speed = None
    if variant == "cpu" and budget is None:
        sch, q_sess, parity, reference, speed = _fastest_shape(
            ctx, out, ranges, sch, q_sess, parity, reference, ladder[i + 1:], ref_sess,
            calib.data, sample, ref_out)
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
        x = calib.data[np.arange(b) % len(calib.data)]  # (np.resize would copy them all)
        # the shape check timed both at its batch already (interleaved: the better figures)
        timed = speed is not None and speed["batch"] == b
        latency["fp32"][str(b)] = ctx.shared.get(  # model.onnx's once for both graphs
            "model.onnx latency", b, lambda: speed["fp32_ms"] if timed
            else round(median_latency_ms(ref_sess, x), 4))
        latency["int8"][str(b)] = (speed["shapes"][scheme.name] if timed
                                   else round(median_latency_ms(q_sess, x), 4))
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
    if variant == "cpu":
        details["weight_bits"] = 7 if scheme.reduce_range else 8
        if speed is not None:
            details["shape_speed"] = speed
        if weights is not None:
            details["weight_bits_choice"] = weights
    inputs, outputs = _io_specs(ctx)
    return ctx.writer.add_artifact(file, backend="onnxruntime", precision="int8",
                                   inputs=inputs, outputs=outputs, details=details)
