"""Build-time backends: a plain dict filled by @register_backend.

A backend turns the fp32 ONNX export (always made first) or the PyTorch module into
one artifact in the bundle. Adding a backend is one new file in this package plus its
name in ``BACKEND_MODULES`` below.

The pipeline (``edgecnn.export.pipeline``) calls, in order:
  1. ``backend.check(options, profile)`` for every argument check, before any work;
  2. ``backend.export(ctx)`` inside an open BundleWriter, after model.onnx is staged.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from edgecnn.errors import UnknownTargetError

if TYPE_CHECKING:  # pragma: no cover
    from edgecnn.bundle import BundleWriter
    from edgecnn.manifest import Artifact, Preprocess
    from edgecnn.targets import TargetProfile


@dataclass
class BatchProfile:
    """Dynamic-batch range an artifact must serve (TensorRT optimisation profile)."""

    min: int = 1
    opt: int = 1
    max: int = 32

    def __post_init__(self) -> None:
        if not (1 <= self.min <= self.opt <= self.max):
            from edgecnn.errors import ProfileError
            raise ProfileError(f"batch profile needs 1 <= min <= opt <= max, got "
                               f"min={self.min} opt={self.opt} max={self.max}")


@dataclass
class ExportOptions:
    """Everything ``edgecnn export`` accepts; the CLI and the Python API use these names."""

    target: str = "onnx"  # backend name (onnx | tflite | tensorrt) or a profile name/file
    precision: str | None = None  # fp32 | fp16 | int8; None = the profile's default
    out: Path | None = None  # bundle folder; default ./bundles/<model>
    weights: str | None = None  # state dict / checkpoint for a zoo model
    input_size: tuple[int, int, int] | None = None  # (C, H, W) where the model does not say
    num_classes: int | None = None
    # calibration / quantization (INT8)
    calib: str | None = None  # calibration spec: folder, fashion-mnist:train, file.npz, recipe.toml
    calib_samples: int = 512
    calib_method: str = "minmax"  # minmax | entropy | percentile
    max_accuracy_drop: float | None = None  # points of top-1
    eval: str | None = None  # held-out data spec for the accuracy budget
    # TFLite
    layout: str | None = None  # NHWC (tflite default) | NCHW
    int8_io: bool = False
    # TensorRT
    trt_version: str | None = None  # e.g. "10.3"; default from the profile
    batch: BatchProfile | None = None  # None: the target profile's, else BatchProfile()
    workspace_mb: int | None = None
    # parity
    parity_samples: int = 8
    seed: int = 0
    threads: int | None = None


@dataclass
class LoadedModel:
    """A PyTorch model ready to export plus what the bundle must say about it."""

    module: Any  # torch.nn.Module in eval mode
    name: str
    input_size: tuple[int, int, int]  # (C, H, W)
    preprocess: "Preprocess"
    labels: list[str]
    source: dict[str, Any] = field(default_factory=dict)  # zoo/weights/factory/pt2 + sha256


@dataclass
class ExportContext:
    model: LoadedModel
    options: ExportOptions
    profile: "TargetProfile"
    precision: str
    writer: "BundleWriter"
    fp32_onnx: Path  # staged model.onnx (always present when a backend runs)
    log: Callable[[str], None] = print
    # filled by the pipeline for later backends (e.g. TensorRT reuses model.int8.onnx)
    artifacts: list["Artifact"] = field(default_factory=list)


class Backend:
    """Base class of build-time backends."""

    name: str = ""  # the artifact backend in the manifest: onnxruntime | tflite | tensorrt
    aliases: tuple[str, ...] = ()  # --target names, e.g. ("onnx",)
    precisions: tuple[str, ...] = ("fp32",)

    def check(self, options: ExportOptions, profile: "TargetProfile") -> None:
        """Raise a clear EdgeCNNError for bad arguments before any work starts."""

    def resolve_precision(self, options: ExportOptions, profile: "TargetProfile | None") -> str:
        """--precision, else the profile's, else fp32; ExportError when this backend lacks it."""
        from edgecnn.errors import ExportError

        precision = options.precision or getattr(profile, "precision", None) or "fp32"
        if precision not in self.precisions:
            raise ExportError(f"{self.name} does not support precision {precision!r}; "
                              f"choose one of {', '.join(self.precisions)}")
        return precision

    def export(self, ctx: ExportContext) -> list["Artifact"]:  # pragma: no cover - abstract
        raise NotImplementedError


# backend name -> module that registers it (imported lazily: tensorrt/litert are heavy)
BACKEND_MODULES: dict[str, str] = {
    "onnxruntime": "edgecnn.backends.onnxruntime",
    "tflite": "edgecnn.backends.tflite",
    "tensorrt": "edgecnn.backends.tensorrt",
}
ALIASES = {"onnx": "onnxruntime", "ort": "onnxruntime", "onnxruntime": "onnxruntime",
           "tflite": "tflite", "litert": "tflite", "tensorrt": "tensorrt", "trt": "tensorrt"}

_BACKENDS: dict[str, Backend] = {}


def register_backend(cls: type[Backend]) -> type[Backend]:
    _BACKENDS[cls.name] = cls()
    return cls


def canonical_backend(name: str) -> str:
    try:
        return ALIASES[name.lower()]
    except KeyError:
        raise UnknownTargetError(f"unknown backend {name!r}; choose one of "
                                 f"{sorted(set(ALIASES))} or a device profile") from None


def get_backend(name: str) -> Backend:
    key = canonical_backend(name)
    if key not in _BACKENDS:
        importlib.import_module(BACKEND_MODULES[key])
    return _BACKENDS[key]
