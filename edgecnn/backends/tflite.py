"""TFLite / LiteRT backend: the PyTorch module -> model.{fp32,fp16,int8}.tflite with litert-torch.

litert-torch converts the ``nn.Module`` itself (torch.export -> MLIR -> flatbuffer), without
TensorFlow, so this backend does not read model.onnx.

- fp32: ``litert_torch.convert``.
- fp16: the fp32 flatbuffer with its weights cast to float16 by ai-edge-quantizer's
  FLOAT_CASTING recipe (half the size; kernels dequantize weights or run fp16 where the CPU can).
- int8: full-integer static quantisation through litert-torch's PT2E quantizer (per-channel
  symmetric int8 weights, per-tensor int8 activations), calibrated on the same calibration set
  as the ONNX INT8 path (``edgecnn.quantize.calibration``). The activation observer is
  ``minmax`` or ``histogram``; with ``--eval`` data both are measured and the better one kept.
  Over ``--max-accuracy-drop``, layers are ranked by simulated INT8 sensitivity in PyTorch
  (``edgecnn.quantize.torch_sensitivity``) and the fewest most-sensitive ones are left in
  float, found by doubling then bisecting over real conversions (at most half the layers).

I/O of int8 models: litert-torch 0.10 folds the boundary quantize/dequantize into the graph's
input and output tensors (its ConvertToTFLConfig has no I/O-type switch), so a full-integer
model takes int8 input and gives int8 output (float output when the classifier is left in
float) whatever ``int8_io`` says; ``int8_io`` is recorded, and the TensorSpecs carry dtype,
scale and zero point, from which the edgecnn runtime quantises and dequantises.

Mobile runtimes want NHWC, so by default the module is wrapped with an NHWC->NCHW permute and
the .tflite input is NHWC (``layout="NCHW"`` keeps NCHW). Every artifact is run through the
edgecnn runtime at export: parity against PyTorch and, with ``--eval``, top-1 against fp32.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgecnn._lazy import require
from edgecnn.backends.registry import Backend, ExportContext, register_backend
from edgecnn.backends.tflite_convert import (OBSERVERS, calm_logging, cast_fp16, convert_float,
                                             convert_int8, peak_rss)
from edgecnn.bundle import package_versions
from edgecnn.errors import CalibrationError, ExportError, first_line
from edgecnn.manifest import LAYOUTS, Artifact, QuantParams, TensorSpec
from edgecnn.options import ExportOptions

# --calib-method (shared with the ONNX INT8 path) -> the PT2E activation observer
CALIB_METHOD_OBSERVER = {"minmax": "minmax", "entropy": "histogram", "percentile": "histogram"}


def resolve_layout(options: ExportOptions, profile) -> str:
    layout = (options.layout or getattr(profile, "layout", None) or "NHWC").upper()
    if layout not in LAYOUTS:
        raise ExportError(f"layout {options.layout or profile.layout!r} is not supported by the "
                          f"tflite target; choose one of {list(LAYOUTS)} (NHWC is what mobile "
                          f"runtimes expect)")
    return layout


@register_backend
class TFLiteBackend(Backend):
    name = "tflite"

    def check(self, options: ExportOptions, profile) -> None:
        precision = self.resolve_precision(options, profile)
        resolve_layout(options, profile)
        options.quantize.check("tflite int8", require_calib=precision == "int8")
        if options.int8_io and precision != "int8":
            raise ExportError("int8_io applies to int8 exports only; drop it or use "
                              "--precision int8")

    def export(self, ctx: ExportContext) -> list[Artifact]:
        calm_logging()
        require("litert_torch", "tflite", "convert models to TFLite")
        layout = resolve_layout(ctx.options, ctx.profile)
        file = self.entry.artifact_file(ctx.precision)
        path = ctx.writer.path_for(file)
        t0 = time.perf_counter()
        with peak_rss() as mem:
            if ctx.precision == "int8":
                details = _export_int8(ctx, layout, path)
            else:
                details = {}
                fp32 = ctx.staged(self.entry.artifact_file("fp32"))
                if (ctx.precision == "fp16" and fp32 is not None
                        and fp32.details.get("layout") == layout):
                    # the fp32 flatbuffer this export made: cast it instead of converting again
                    cast_fp16(ctx.writer.read_path(fp32.file), path)
                    details["fp16_from"] = fp32.file
                else:
                    convert_float(ctx.model.module, ctx.model.input_size, layout, path)
                    if ctx.precision == "fp16":
                        cast_fp16(path, path)
                if ctx.precision == "fp16":
                    details["fp16"] = "weights stored as float16 (ai-edge-quantizer FLOAT_CASTING)"
        details.update(conversion_seconds=round(time.perf_counter() - t0, 3),
                       conversion_peak_rss_mb=mem.peak_mb, layout=layout,
                       converter=package_versions("litert-torch", "ai-edge-litert",
                                                   "litert-converter", "ai-edge-quantizer"))
        inputs, outputs, batch = tensor_specs(path, layout)
        details["tflite_batch"] = batch  # traced batch; the runtime resizes or loops over it
        artifact = ctx.writer.add_artifact(file, "tflite", ctx.precision, inputs, outputs, details)
        _check_artifact(ctx, artifact, path)  # adds details["parity"] to the manifest entry
        ctx.log(f"tflite {ctx.precision}: {file} ({artifact.size_bytes / 1e6:.2f} MB, "
                f"{details['conversion_seconds']:.1f} s) parity {artifact.details['parity']['summary']}")
        return [artifact]


# -- INT8 with observer choice and the accuracy budget --------------------------------------

@dataclass
class _Trial:
    observer: str
    float_layers: tuple[str, ...]
    top1: float | None = None
    parity_cosine: float | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"observer": self.observer, "float_layers": list(self.float_layers),
                "top1": None if self.top1 is None else round(self.top1, 4),
                "parity_cosine": self.parity_cosine, "seconds": round(self.seconds, 2)}


@dataclass
class _Eval:
    dataset: Any
    fp32_top1: float
    trials: list[_Trial] = field(default_factory=list)


def _export_int8(ctx: ExportContext, layout: str, path: Path) -> dict[str, Any]:
    from edgecnn.backends.shared_steps import calibration_set

    opts, model = ctx.options, ctx.model
    calib = calibration_set(ctx)  # the same samples as the ONNX INT8 graphs; own observers
    ctx.log(f"tflite int8: calibrating on {calib.count} samples from {calib.spec}")
    ev = _fp32_eval(ctx) if opts.eval else None
    scratch = path.with_name(path.name + ".trial")

    def trial(observer: str, float_layers: tuple[str, ...]) -> _Trial:
        t = _Trial(observer, float_layers)
        t0 = time.perf_counter()
        convert_int8(model.module, model.input_size, layout, calib.data, scratch, observer,
                     float_layers)
        if ev is not None:
            t.top1 = _tflite_eval(ctx, scratch, layout, ev.dataset)
        else:  # no labels: agreement with fp32 on the calibration inputs
            t.parity_cosine = _calib_cosine(ctx, scratch, layout, calib.data)
        t.seconds = time.perf_counter() - t0
        if ev is not None:
            ev.trials.append(t)
        scratch.replace(path.with_name(f"{path.name}.{observer}.{len(float_layers)}"))
        return t

    # observer: measured on labelled data when given, else the one --calib-method names
    if ev is not None:
        trials = [trial(o, ()) for o in OBSERVERS]
        best = max(trials, key=lambda t: t.top1)
        choice = f"measured: top-1 {', '.join(f'{t.observer} {t.top1:.2f}' for t in trials)}"
    else:
        best = trial(CALIB_METHOD_OBSERVER[opts.calib_method.lower()], ())
        choice = f"from calib_method={opts.calib_method} (no --eval data to measure)"

    budget = opts.max_accuracy_drop
    ranking: dict[str, float] = {}
    if ev is not None and budget is not None and ev.fp32_top1 - best.top1 > budget:
        best, ranking = _search_float_layers(ctx, calib.data, ev, best, budget, trial)
    chosen = path.with_name(f"{path.name}.{best.observer}.{len(best.float_layers)}")
    chosen.replace(path)
    for leftover in path.parent.glob(path.name + ".*"):
        leftover.unlink()

    details: dict[str, Any] = {
        "quantization": "full-integer static (PT2E): int8 per-channel symmetric weights, "
                        "int8 per-tensor activations",
        "observer": best.observer, "observer_choice": choice,
        "float_layers": list(best.float_layers),
        "sensitivity": {k: float(f"{v:.4g}") for k, v in list(ranking.items())[:10]},
        "calibration": calib.describe(),
        "int8_io_requested": bool(opts.int8_io),
    }
    if ev is not None:
        drop = ev.fp32_top1 - best.top1
        details["accuracy"] = {"spec": opts.eval, "n": len(ev.dataset),
                               "fp32_top1": round(ev.fp32_top1, 4), "top1": round(best.top1, 4),
                               "top1_drop": round(drop, 4), "max_accuracy_drop": budget,
                               "trials": [t.to_dict() for t in ev.trials]}
        if budget is not None and drop > budget:
            raise CalibrationError(
                f"tflite int8 loses {drop:.2f} points of top-1 on {opts.eval} "
                f"({best.top1:.2f} vs fp32 {ev.fp32_top1:.2f}), over the budget of {budget}, even "
                f"with {len(best.float_layers)} layer(s) left in float "
                f"({', '.join(best.float_layers) or 'none'}); raise --max-accuracy-drop, calibrate "
                f"on more representative data, or ship fp16")
    return details


def _search_float_layers(ctx: ExportContext, calib: np.ndarray, ev: _Eval, best: _Trial,
                         budget: float, trial: Callable[[str, tuple[str, ...]], _Trial]):
    """Leave the fewest most-sensitive layers in float that bring top-1 within ``budget``.

    Layers are ranked by simulated INT8 sensitivity in PyTorch (seconds), then the search
    converts only the prefixes it needs (each a full conversion): double, then bisect, at most
    half of the layers. Returns the best trial (over budget when none met it) and the ranking.
    """
    from edgecnn.progress import progress_bar
    from edgecnn.quantize.budget import fewest_passing, float_layer_limit, sensitivity_samples
    from edgecnn.quantize.torch_sensitivity import layer_sensitivity, quantizable_layers

    module = ctx.model.module
    sample = calib[:sensitivity_samples(ctx.model.input_size)]
    with progress_bar(True, "layer sensitivity", len(quantizable_layers(module))) as advance:
        sens = layer_sensitivity(module, sample, advance)
    ranking = dict(sorted(sens.items(), key=lambda kv: -kv[1]))
    order = list(ranking)
    limit = float_layer_limit(len(order))
    ctx.log(f"tflite int8: top-1 drop {ev.fp32_top1 - best.top1:.2f} pt is over the budget of "
            f"{budget:g}; most sensitive layers: {', '.join(order[:3])}")
    tried: dict[int, _Trial] = {}

    def passes(k: int) -> bool:
        t = tried[k] = trial(best.observer, tuple(order[:k]))
        ctx.log(f"tflite int8: {k} most sensitive layer(s) in float -> top-1 {t.top1:.2f} "
                f"(fp32 {ev.fp32_top1:.2f})")
        return ev.fp32_top1 - t.top1 <= budget

    k = fewest_passing(limit, passes)
    chosen = tried[k] if k is not None else max([best, *tried.values()], key=lambda t: t.top1)
    return chosen, ranking


def _fp32_eval(ctx: ExportContext) -> _Eval:
    from edgecnn.data.accuracy import evaluate
    from edgecnn.data.datasets import load_dataset
    from edgecnn.export.parity import torch_outputs

    dataset = load_dataset(ctx.options.eval)
    res = evaluate(lambda x: torch_outputs(ctx.model.module, [x]), dataset, ctx.model.preprocess,
                   progress=False)
    return _Eval(dataset, res.top1)


def _session(ctx: ExportContext, path: Path, layout: str):
    from edgecnn.runtime.litert import LiteRTSession

    inputs, outputs, _ = tensor_specs(path, layout)
    art = Artifact(file=path.name if path.suffix == ".tflite" else "model.tflite", sha256="0" * 64,
                   backend="tflite", precision=ctx.precision, inputs=inputs, outputs=outputs)
    return LiteRTSession(ctx.writer.manifest, art, str(path), threads=ctx.options.threads)


def _tflite_eval(ctx: ExportContext, path: Path, layout: str, dataset) -> float:
    from edgecnn.data.accuracy import evaluate

    with _session(ctx, path, layout) as s:
        return evaluate(s.run, dataset, ctx.model.preprocess, progress=False).top1


def _calib_cosine(ctx: ExportContext, path: Path, layout: str, data: np.ndarray) -> float:
    from edgecnn.export.parity import compare_outputs

    x = data[: max(1, ctx.options.parity_samples)]
    with _session(ctx, path, layout) as s:
        return compare_outputs(_calib_reference(ctx, x), s.run(x)).cosine


def _calib_reference(ctx: ExportContext, x: np.ndarray) -> np.ndarray:
    """PyTorch's logits on the first ``len(x)`` calibration samples (once per export)."""
    from edgecnn.backends.shared_steps import torch_reference

    return torch_reference(ctx.shared, ctx.model.module, f"calibration {len(x)}", [x])


# -- manifest specs and the export-time check ---------------------------------------------

def tensor_specs(path: Path, layout: str) -> tuple[list[TensorSpec], list[TensorSpec], int]:
    """TensorSpecs read from the flatbuffer itself (dtype and quantisation as converted)."""
    from edgecnn.runtime.litert import interpreter_class

    interp = interpreter_class()(model_path=str(path))
    ins, outs = interp.get_input_details(), interp.get_output_details()

    def spec(d: dict, image: bool) -> TensorSpec:
        shape = [int(s) for s in d["shape"]]
        batch = shape[0]
        shape[0] = -1  # any batch: the runtime resizes the input or loops over the batch
        dtype = np.dtype(d["dtype"]).name
        scale, zero = d["quantization"]
        quant = QuantParams(float(scale), int(zero)) if dtype in ("int8", "uint8") and scale else None
        return TensorSpec(name=d["name"], shape=shape, dtype=dtype,
                          layout=layout if image else None, quant=quant), batch

    in_specs = [spec(d, True) for d in ins]
    out_specs = [spec(d, False) for d in outs]
    return [s for s, _ in in_specs], [s for s, _ in out_specs], in_specs[0][1]


def _check_artifact(ctx: ExportContext, artifact: Artifact, path: Path) -> None:
    """Run the artifact through the edgecnn runtime: parity vs PyTorch, stored in details."""
    from edgecnn.export.parity import TOLERANCES, compare_outputs, parity_batches, random_inputs
    from edgecnn.runtime.litert import LiteRTSession

    opts = ctx.options
    if ctx.precision == "int8":  # random normal inputs saturate calibrated int8 ranges
        from edgecnn.backends.shared_steps import calibration_set

        calib = calibration_set(ctx)
        sizes = [min(max(1, opts.parity_samples), calib.count)]
        batches = [calib.data[: sizes[0]]]
        source = f"first {sizes[0]} calibration samples"
        ref = _calib_reference(ctx, batches[0])
    else:  # the inputs (and so PyTorch's outputs) model.onnx's parity used
        from edgecnn.backends.shared_steps import random_input_set, torch_reference

        sizes = parity_batches(opts.parity_samples)
        batches = random_inputs(sizes, ctx.model.input_size, opts.seed)
        source = "seeded standard-normal inputs"
        ref = torch_reference(ctx.shared, ctx.model.module, random_input_set(sizes, opts.seed),
                              batches)
    with LiteRTSession(ctx.writer.manifest, artifact, str(path), threads=opts.threads) as s:
        try:
            got = np.concatenate([s.run(b) for b in batches])
        except Exception as exc:
            raise ExportError(f"{artifact.file} was written but does not run in LiteRT: "
                              f"{first_line(exc)}") from exc
    report = compare_outputs(ref, got, batch_sizes=sizes)
    artifact.details["parity"] = dict(report.to_dict(), inputs=source, summary=report.summary())
    tol = TOLERANCES[ctx.precision]
    if ctx.precision == "int8":
        # int8 is gated by the accuracy budget on labelled data; parity is reported only
        artifact.details["parity"]["passed"] = report.passed(tol)
        if not report.passed(tol):
            ctx.log(f"warning: tflite int8 parity outside {tol}: {report.summary()}")
    else:
        report.check(tol, artifact.file)  # ParityError outside the tolerance
        artifact.details["parity"]["tolerance"] = report.tolerance
