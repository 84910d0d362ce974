"""The ONNX Runtime backend: the .onnx files run as they are.

fp32 is the staged model.onnx (nothing more to build); fp16 and int8 are made by
:mod:`edgecnn.quantize` (model.fp16.onnx, model.int8.onnx with explicit Q/DQ).
"""

from __future__ import annotations

import importlib
import importlib.util

from edgecnn.backends.registry import Backend, ExportContext, register_backend

from edgecnn.options import ExportOptions
from edgecnn.errors import CalibrationError, ExportError, MissingDependencyError
from edgecnn.manifest import Artifact

# precision -> (module, function) that writes the artifact
_BUILDERS = {"fp16": ("edgecnn.quantize.fp16", "export_fp16"),
             "int8": ("edgecnn.quantize.int8", "export_int8")}


@register_backend
class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def check(self, options: ExportOptions, profile) -> None:
        from edgecnn._lazy import available

        precision = self.resolve_precision(options, profile)
        if not available("onnxruntime"):
            raise MissingDependencyError("onnxruntime is needed to check ONNX exports; install it "
                                         "with: pip install 'edgecnn[ort]'")
        if precision == "int8" and not options.calib:
            raise CalibrationError("int8 needs calibration images: pass --calib (an image folder, "
                                   "fashion-mnist:train, a .npz/.npy file or a calibration/*.toml "
                                   "recipe)")
        if precision == "int8" and options.calib_samples < 1:
            raise CalibrationError(f"--calib-samples must be >= 1, got {options.calib_samples}")
        if precision in _BUILDERS and importlib.util.find_spec(_BUILDERS[precision][0]) is None:
            raise ExportError(f"{precision} ONNX export is not available in this edgecnn "
                              f"({_BUILDERS[precision][0]} is missing)")

    def export(self, ctx: ExportContext) -> list[Artifact]:
        if ctx.precision == "fp32":
            return [a for a in ctx.artifacts if a.file == "model.onnx"]
        module, fn = _BUILDERS[ctx.precision]
        return [getattr(importlib.import_module(module), fn)(ctx)]
