"""The INT8 step of an export: calibration set -> cached ranges -> Q/DQ model -> budget ->
TensorRT rule check -> parity and report -> manifest artifact."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgecnn.errors import CalibrationError, ExportError
from edgecnn.quantize.int8 import (INT8_FILE, PARITY_SAMPLES, ort_session,
                                   fixed_batch, quantize_onnx, quantize_options,
                                   run_model)
from edgecnn.quantize.ranges import check_method, collect_ranges

CALIB_BATCH = 32
CALIB_BATCH_ELEMENTS = 1 << 20  # input elements per calibration batch: every intermediate
# tensor of the batch is held at once, so 224x224 models calibrate 6 images at a time


def calib_batch_size(input_size_chw) -> int:
    c, h, w = input_size_chw
    return max(1, min(CALIB_BATCH, CALIB_BATCH_ELEMENTS // max(1, c * h * w)))


def io_specs(ctx, onnx_path: Path):
    """Inputs/outputs of the fp32 artifact when staged, else read from the graph."""
    for a in ctx.writer.manifest.artifacts:
        if a.file == "model.onnx":
            return a.inputs, a.outputs
    return graph_io_specs(onnx_path)


def graph_io_specs(onnx_path: Path):
    from edgecnn._lazy import require
    from edgecnn.manifest import TensorSpec

    onnx = require("onnx", "quantize", "read an ONNX model")
    g = onnx.load(os.fspath(onnx_path), load_external_data=False).graph

    def spec(vi, image: bool):
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
        return TensorSpec(name=vi.name, shape=dims, dtype="float32",
                          layout="NCHW" if image and len(dims) == 4 else None)

    return [spec(v, True) for v in g.input], [spec(v, False) for v in g.output]


def run_int8(ctx):
    from edgecnn.bundle import sha256_file
    from edgecnn.export.parity import compare_outputs
    from edgecnn.quantize.budget import enforce_budget, load_eval
    from edgecnn.quantize.cache import CacheKey, cache_name, load_cached, save_cache
    from edgecnn.quantize.calibration import load_calibration
    from edgecnn.quantize.qdq_check import check_qdq
    from edgecnn.quantize.report import REPORT_FILE, QuantReport, median_latency_ms

    opts, log = ctx.options, ctx.log
    method = check_method(opts.calib_method)
    if not opts.calib:
        raise CalibrationError("INT8 needs calibration data: pass --calib with an image folder, "
                               "fashion-mnist:train, a .npy/.npz file or calibration/<recipe>.toml")
    if opts.max_accuracy_drop is not None and not opts.eval:
        raise CalibrationError("--max-accuracy-drop needs --eval with labelled held-out data "
                               "(e.g. fashion-mnist:val)")
    calib = load_calibration(opts.calib, ctx.model.preprocess, ctx.model.input_size,
                             samples=opts.calib_samples, seed=opts.seed)
    log(f"calibration set: {calib.count} samples from {calib.spec} (sha256 {calib.sha256[:12]})")
    fp32 = Path(ctx.fp32_onnx)
    key = CacheKey.make(sha256_file(fp32), calib.sha256, method, ctx.model.preprocess)
    ranges = load_cached(ctx.writer.read_path(cache_name(method)), key)
    if ranges is not None:
        cache_state = "reused"
        log(f"reusing cached calibration {cache_name(method)} ({method}, {len(ranges.amax)} tensors, "
            f"calibration set {calib.sha256[:12]})")
    else:
        cache_state = "computed"
        bs = calib_batch_size(ctx.model.input_size)
        ranges = collect_ranges(fp32, list(calib.batches(bs)), method,
                                threads=opts.threads)
        cache_path = ctx.writer.path_for(cache_name(method))
        save_cache(cache_path, key, ranges, {"calibration": calib.describe()})
        log(f"calibrated {len(ranges.amax)} activations ({method}); ranges in {cache_path.name}")

    out = ctx.writer.path_for(INT8_FILE)
    quantize_onnx(fp32, out, ranges)
    budget = None
    if opts.max_accuracy_drop is not None:
        ev = load_eval(opts.eval, ctx.model.preprocess, ctx.model.input_size)
        budget = enforce_budget(fp32, out, ranges, ev, opts.max_accuracy_drop, log=log)
        if budget.excluded:
            log(f"budget met: {len(budget.excluded)} layers left in float "
                f"({', '.join(budget.excluded)}), drop {budget.drop:.2f} pt")

    violations = check_qdq(out)
    if violations:
        raise ExportError(f"{INT8_FILE} breaks {len(violations)} TensorRT Q/DQ rules, e.g. "
                          f"{violations[0]}; please report the model")

    ref_sess, q_sess = ort_session(fp32, opts.threads), ort_session(out, opts.threads)
    sample = calib.data[:PARITY_SAMPLES]
    parity = compare_outputs(run_model(ref_sess, sample), run_model(q_sess, sample))
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
        "cache": cache_state, "quantization": quantize_options(), "parity": parity.to_dict(),
        "excluded_layers": budget.excluded if budget else [],
        "accuracy_drop": budget.drop if budget else None,
        "max_accuracy_drop": opts.max_accuracy_drop,
        "accuracy": ({k: getattr(budget, k) for k in ("metric", "fp32", "int8", "drop_plain",
                                                      "eval_spec", "eval_samples")}
                     if budget else None),
        "qdq_check": "passed", "report": REPORT_FILE, "source": fp32.name,
    }
    inputs, outputs = io_specs(ctx, fp32)
    return ctx.writer.add_artifact(INT8_FILE, backend="onnxruntime", precision="int8",
                                   inputs=inputs, outputs=outputs, details=details)
