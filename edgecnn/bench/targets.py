"""What ``--targets`` names: 'torch', 'onnx:int8', 'tflite:fp32', 'tensorrt:fp16' ...

One table says which precisions each backend has, which bundle file holds the artifact and
what the machine needs to run it; :func:`parse_targets` checks a list before any work starts
and :func:`unavailable_reason` says why a target cannot run here (so it is skipped, not failed).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import UnknownTargetError

# backend -> precisions it can run
BACKEND_PRECISIONS = {
    "torch": ("fp32",),
    "onnxruntime": ("fp32", "fp16", "int8"),
    "tflite": ("fp32", "fp16", "int8"),
    "tensorrt": ("fp32", "fp16", "int8"),
}
# what the user types -> backend
BACKEND_ALIASES = {
    "torch": "torch", "pytorch": "torch", "eager": "torch",
    "onnx": "onnxruntime", "ort": "onnxruntime", "onnxruntime": "onnxruntime",
    "tflite": "tflite", "litert": "tflite",
    "tensorrt": "tensorrt", "trt": "tensorrt",
}
# backend -> the name the export pipeline's --target takes
EXPORT_TARGET = {"onnxruntime": "onnx", "tflite": "tflite", "tensorrt": "tensorrt"}
# backend -> the library the runtime needs (import name)
RUNTIME_LIBRARY = {"torch": "torch", "onnxruntime": "onnxruntime", "tflite": "ai_edge_litert",
                   "tensorrt": "tensorrt"}
SHORT = {"torch": "torch", "onnxruntime": "onnx", "tflite": "tflite", "tensorrt": "tensorrt"}
ALL_TARGETS = ("torch", "onnx:fp32", "onnx:fp16", "onnx:int8", "tflite:fp32", "tflite:int8",
               "tensorrt:fp16", "tensorrt:int8")


@dataclass(frozen=True)
class BenchTarget:
    backend: str  # torch | onnxruntime | tflite | tensorrt
    precision: str  # fp32 | fp16 | int8

    @property
    def name(self) -> str:
        return "torch" if self.backend == "torch" else f"{SHORT[self.backend]}:{self.precision}"

    @property
    def is_torch(self) -> bool:
        return self.backend == "torch"

    @property
    def artifact_file(self) -> str | None:
        """The bundle file the export pipeline writes for this target (None for torch)."""
        if self.backend == "onnxruntime":
            return "model.onnx" if self.precision == "fp32" else f"model.{self.precision}.onnx"
        if self.backend == "tflite":
            return f"model.{self.precision}.tflite"
        if self.backend == "tensorrt":
            return f"model.{self.precision}.engine"
        return None

    def __str__(self) -> str:
        return self.name


def parse_target(text: str) -> BenchTarget:
    raw = text.strip()
    name, _, precision = raw.lower().partition(":")
    backend = BACKEND_ALIASES.get(name)
    if backend is None:
        choices = sorted(set(BACKEND_ALIASES)) + list(ALL_TARGETS)
        close = difflib.get_close_matches(raw.lower(), choices, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownTargetError(
            f"unknown bench target {raw!r}{hint} (use BACKEND[:PRECISION] with BACKEND one of "
            f"torch, onnx, tflite, tensorrt and PRECISION fp32, fp16 or int8, e.g. "
            f"--targets torch,onnx:fp32,onnx:int8)")
    precision = precision or "fp32"
    allowed = BACKEND_PRECISIONS[backend]
    if precision not in allowed:
        raise UnknownTargetError(
            f"bench target {raw!r}: {SHORT[backend]} has no precision {precision!r} "
            f"(it has {', '.join(allowed)})")
    return BenchTarget(backend, precision)


def parse_targets(spec: str | list[str] | tuple[str, ...]) -> list[BenchTarget]:
    """'torch,onnx:int8' (or a list) -> targets in the given order, duplicates dropped."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    items = [s for s in (i.strip() for i in items) if s]
    if not items:
        raise UnknownTargetError("no bench targets given; e.g. --targets torch,onnx:fp32")
    out: list[BenchTarget] = []
    for item in items:
        t = parse_target(item)
        if t not in out:
            out.append(t)
    return out


def _find_spec(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def has_nvidia_gpu() -> bool:
    """An NVIDIA GPU the driver exposes (desktop /dev/nvidia0, or a Jetson's integrated GPU)."""
    if Path("/dev/nvidia0").exists() or Path("/dev/nvhost-gpu").exists():
        return True
    if Path("/etc/nv_tegra_release").is_file():
        return True
    return bool(os.environ.get("EDGECNN_ASSUME_GPU"))


def unavailable_reason(target: BenchTarget) -> str | None:
    """Why ``target`` cannot run on this machine, or None when it can."""
    lib = RUNTIME_LIBRARY[target.backend]
    if target.backend == "tensorrt" and not has_nvidia_gpu():
        return "no NVIDIA GPU on this machine (TensorRT engines run only on a GPU)"
    if not _find_spec(lib):
        extra = {"torch": "export", "onnxruntime": "ort", "tflite": "litert",
                 "tensorrt": "tensorrt"}[target.backend]
        return f"{lib} is not installed (pip install 'edgecnn[{extra}]')"
    if target.backend != "torch":
        from edgecnn.runtime import SESSION_CLASSES

        module = SESSION_CLASSES.get(target.backend, "").partition(":")[0]
        if not module or not _find_spec(module):
            return f"this edgecnn has no runtime for {target.backend} yet ({module} missing)"
    return None
