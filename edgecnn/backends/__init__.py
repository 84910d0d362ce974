"""Build-time backends (onnxruntime, tflite, tensorrt); see :mod:`edgecnn.backends.registry`."""

from edgecnn.backends.registry import Backend, ExportContext, get_backend, register_backend

__all__ = ["Backend", "BatchProfile", "ExportContext", "ExportOptions", "LoadedModel",
           "get_backend", "register_backend"]
