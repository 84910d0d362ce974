"""litert-torch conversion of a PyTorch module to .tflite (fp32, fp16 weights, int8 PT2E), and
converter errors turned into one line that names the layer and op.

Path in, path out: :mod:`edgecnn.backends.tflite` decides what to convert (observer choice,
layers left in float, the accuracy budget) and writes the bundle.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from edgecnn._lazy import require
from edgecnn.errors import CalibrationError, ExportError, first_line

OBSERVERS = ("minmax", "histogram")


def _nhwc(module, layout: str):
    """Wrap ``module`` so the converted graph takes ``layout``; the permute is folded into the
    first op by the converter (TFLite convolutions are NHWC natively)."""
    import torch

    if layout == "NCHW":
        return module

    class NHWCInput(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x.permute(0, 3, 1, 2))

    return NHWCInput(module).eval()


def _sample(input_size, layout: str, batch: int = 1):
    import torch

    c, h, w = input_size
    shape = (batch, h, w, c) if layout == "NHWC" else (batch, c, h, w)
    return torch.zeros(shape, dtype=torch.float32)


def convert_float(module, input_size, layout: str, path: Path) -> None:
    """fp32 .tflite of ``module`` at batch 1 (litert-torch 0.10 cannot lower a dynamic batch
    through flatten/reshape; the runtime resizes or loops instead)."""
    litert_torch = require("litert_torch", "tflite", "convert models to TFLite")
    wrapped = _nhwc(module.eval(), layout)
    example = _sample(input_size, layout)
    try:
        with _quiet():
            edge = litert_torch.convert(wrapped, (example,))
            edge.export(str(path))
    except Exception as exc:  # torch.export / lowering / MLIR errors have many types
        raise conversion_error(exc, wrapped, example, "fp32") from exc


def cast_fp16(src: Path, dst: Path) -> None:
    aeq = require("ai_edge_quantizer", "tflite", "make fp16 TFLite models")
    from ai_edge_quantizer import algorithm_manager, qtyping

    qt = aeq.Quantizer(bytearray(Path(src).read_bytes()))
    qt.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                              num_bits=16,
                              algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
    try:
        result = qt.quantize(enable_progress_report=False)
    except Exception as exc:
        raise ExportError(f"fp16 weight casting of the TFLite model failed: {first_line(exc)}") from exc
    Path(dst).write_bytes(bytes(result.quantized_model))


def _quantizer(observer: str, float_layers: tuple[str, ...]):
    """litert-torch's PT2E quantizer that leaves ``float_layers`` (module paths) in float.

    ``PT2EQuantizer.set_module_name(name, None)`` asserts ("not supported yet") and its name
    filter expects the old ``L__self___a_b`` stack keys, so skipping is done with a filter on
    the module paths that torch.export records in ``nn_module_stack``.
    """
    require("litert_torch", "tflite", "quantize TFLite models")
    import dataclasses as dc

    from litert_torch.quantize import pt2e_quantizer as pq
    from torchao.quantization.pt2e.observer import MinMaxObserver

    config = pq.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
    if observer == "minmax":  # the library default is HistogramObserver
        act = dc.replace(config.input_activation,
                         observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2 ** -12))
        config = dc.replace(config, input_activation=act, output_activation=act)
    elif observer != "histogram":
        raise CalibrationError(f"observer {observer!r} is unknown; choose one of {list(OBSERVERS)}")

    class Quantizer(pq.PT2EQuantizer):
        def _annotate_for_static_quantization_config(self, model):
            def keep(node) -> bool:
                paths = [v[0] for v in node.meta.get("nn_module_stack", {}).values()]
                return not any(p == s or p.startswith(s + ".") for p in paths for s in float_layers)
            self._annotate_all_static_patterns(model, self.global_config, keep)
            return model

    return Quantizer().set_global(config)


def convert_int8(module, input_size, layout: str, calib: np.ndarray, path: Path,
                 observer: str = "minmax", float_layers: tuple[str, ...] = (),
                 batch_size: int = 32) -> None:
    """Full-integer .tflite: PT2E prepare -> calibrate on ``calib`` (NCHW) -> convert."""
    import torch
    litert_torch = require("litert_torch", "tflite", "quantize TFLite models")
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    wrapped = _nhwc(module.eval(), layout)
    full = [f"model.{n}" if layout == "NHWC" else n for n in float_layers]
    quantizer = _quantizer(observer, tuple(full))
    try:
        # a dynamic batch for calibration only, so calibration runs in batches
        batch = torch.export.Dim("batch", min=1, max=4096)
        graph = torch.export.export(wrapped, (_sample(input_size, layout, 2),),
                                    dynamic_shapes=({0: batch},)).module()
    except Exception:  # a model that specialises the batch: calibrate one image at a time
        try:
            graph = torch.export.export(wrapped, (_sample(input_size, layout),)).module()
        except Exception as exc:
            raise conversion_error(exc, wrapped, _sample(input_size, layout), "int8") from exc
        batch_size = 1
    try:
        prepared = prepare_pt2e(graph, quantizer)
        with torch.no_grad():
            for start in range(0, len(calib), batch_size):
                # channels-last in memory either way: PyTorch's CPU convolutions ran resnet18's
                # calibration 1.3-1.7x faster than from NCHW-contiguous batches
                x = torch.from_numpy(np.ascontiguousarray(
                    calib[start:start + batch_size].transpose(0, 2, 3, 1)))
                prepared(x if layout == "NHWC" else x.permute(0, 3, 1, 2))
        converted = move_exported_model_to_eval(convert_pt2e(prepared, fold_quantize=False))
        with _quiet():
            edge = litert_torch.convert(converted, (_sample(input_size, layout),),
                                        quant_config=QuantConfig(pt2e_quantizer=quantizer))
            edge.export(str(path))
    except Exception as exc:
        raise conversion_error(exc, wrapped, _sample(input_size, layout), "int8") from exc


# -- errors ---------------------------------------------------------------------------------

def conversion_error(exc: BaseException, module, example, precision: str) -> ExportError:
    """An ExportError naming the op and the model part (module path) the converter stopped at.

    litert-torch reports the failing FX node ("While executing %_unique2 ... target=
    torch.ops.aten._unique2.default"); the node's ``nn_module_stack`` in a fresh torch.export
    of the same module names the layer it came from.
    """
    text = f"{type(exc).__name__}: {exc}"
    op = _offending_op(text)
    node = re.search(r"While executing %(\w+)", text)
    part = _module_of(module, example, node.group(1) if node else None, op)
    where = f" in layer '{part}'" if part else ""
    what = f" (op {op})" if op else ""
    return ExportError(
        f"litert-torch cannot convert the model to TFLite {precision}{where}{what}: "
        f"{first_line(exc)}; replace that layer with TFLite-supported ops, or export with "
        f"--target onnx")


def _offending_op(text: str) -> str | None:
    m = (re.search(r"target=torch\.ops\.([\w.]+)", text)
         or re.search(r"Lowering not found: ([\w.]+)", text)
         or re.search(r"failed to legalize operation '([\w.]+)'", text))
    return m.group(1) if m else None


def _module_of(module, example, node_name: str | None, op: str | None) -> str | None:
    """Module path of the FX node ``node_name`` (or the first node calling ``op``); best effort."""
    if node_name is None and op is None:
        return None
    try:
        import torch

        with _quiet():
            ep = torch.export.export(module, (example,))
            try:
                ep = ep.run_decompositions()
            except Exception:  # keep the undecomposed graph
                pass
        for n in ep.graph.nodes:
            if n.op != "call_function":
                continue
            if n.name == node_name or (op and str(n.target).endswith(op)):
                stack = n.meta.get("nn_module_stack") or {}
                if stack:
                    path = list(stack.values())[-1][0]
                    return path.removeprefix("model.") if path != "model" else None
    except Exception:  # the error message is still useful without the layer name
        return None
    return None



def calm_logging() -> None:
    """Keep the converter stack's import-time chatter (torchao kernels it cannot load on this
    CPU, TensorFlow-Lite C++ INFO lines) out of the user's terminal. Set before the first import;
    an explicit environment setting wins."""
    import logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GLOG_minloglevel", "2")
    logging.getLogger("torchao").setLevel(logging.ERROR)
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec.*")


class _EvalModeNotice(logging.Filter):
    """litert-torch warns 'Your model is converted in training mode' when the converted module's
    ``training`` flag is set; a PT2E-converted graph keeps that flag although
    ``move_exported_model_to_eval`` put its ops in eval mode, so the notice is wrong here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is converted in training mode" not in record.getMessage()


_EVAL_MODE_NOTICE = _EvalModeNotice()


class _quiet:
    """Silence litert-torch's rich progress lines and its wrong training-mode notice while
    converting (edgecnn logs its own)."""

    def __enter__(self):
        logging.getLogger().addFilter(_EVAL_MODE_NOTICE)
        try:
            from litert_torch import progress

            self._console, self._was = progress.console, progress.console.quiet
            self._console.quiet = True
        except (ImportError, AttributeError):
            self._console = None
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeFilter(_EVAL_MODE_NOTICE)
        if self._console is not None:
            self._console.quiet = self._was


class peak_rss:
    """Peak resident memory of this process while the block runs (ru_maxrss is a high-water
    mark for the whole process, so this is an upper bound when an earlier peak was higher)."""

    def __enter__(self):
        self.peak_mb: float | None = None
        return self

    def __exit__(self, *exc):
        try:
            import resource

            self.peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        except (ImportError, OSError):
            self.peak_mb = None
