"""Optional imports that fail with a message naming the extra to install.

Modelled on Polygraphy's ``mod.lazy_import``: nothing heavy is imported at module
import time; call :func:`require` inside the function that needs the library.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from edgecnn.errors import MissingDependencyError

# module -> the pip extra that provides it
EXTRAS = {
    "torch": "export",
    "onnx": "export",
    "onnxscript": "export",
    "onnxruntime": "ort",
    "litert_torch": "tflite",
    "ai_edge_litert": "litert",
    "tensorrt": "tensorrt",
    "cuda": "tensorrt",
    "matplotlib": "bench",
}


def require(module: str, extra: str | None = None, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise MissingDependencyError naming the pip extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = extra or EXTRAS.get(top, top)
        what = f" to {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"{top} is needed{what} but could not be imported ({exc}); "
            f"install it with: pip install 'edgecnn[{extra}]'"
        ) from exc


def available(module: str) -> bool:
    """True when ``module`` can be imported (without importing it twice)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
