"""Build-time backends: a plain dict filled by @register_backend.

A backend turns the fp32 ONNX export (always made first) or the PyTorch module into artifacts in
the bundle. Its facts (names, precisions, file names, libraries) live in the catalogue
(:mod:`edgecnn.catalog`); adding a backend is one catalogue entry plus one module here whose
class is decorated with ``@register_backend``.

The orchestrator (:mod:`edgecnn.pipeline`) calls, in order:
  1. ``backend.check(options, profile)`` for every argument check, before any work;
  2. ``backend.export(ctx)`` inside an open BundleWriter, after model.onnx is staged.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from edgecnn import catalog
from edgecnn.backends.shared_steps import SharedSteps
from edgecnn.errors import ExportError

if TYPE_CHECKING:  # pragma: no cover
    from edgecnn.bundle import BundleWriter
    from edgecnn.manifest import Artifact
    from edgecnn.models.loading import LoadedModel
    from edgecnn.options import ExportOptions
    from edgecnn.targets import TargetProfile


@dataclass
class ExportContext:
    model: "LoadedModel"
    options: "ExportOptions"
    profile: "TargetProfile"
    precision: str
    writer: "BundleWriter"
    fp32_onnx: Path  # staged model.onnx (always present when a backend runs)
    log: Callable[[str], None] = print
    # filled by the pipeline for later backends (e.g. TensorRT reuses model.int8.onnx)
    artifacts: list["Artifact"] = field(default_factory=list)
    # calibration set, reference outputs: computed once for every artifact of one export
    shared: SharedSteps = field(default_factory=SharedSteps)

    def staged(self, file: str) -> "Artifact | None":
        """The artifact already written into this bundle as ``file`` by this export."""
        return next((a for a in self.artifacts if a.file == file), None)


class Backend:
    """Base class of build-time backends; ``name`` is the catalogue key."""

    name: str = ""  # the artifact backend in the manifest: onnxruntime | tflite | tensorrt

    @property
    def entry(self) -> catalog.BackendEntry:
        return catalog.BACKENDS[self.name]

    @property
    def precisions(self) -> tuple[str, ...]:
        return self.entry.precisions

    def check(self, options: "ExportOptions", profile: "TargetProfile") -> None:
        """Raise a clear EdgeCNNError for bad arguments before any work starts."""

    def resolve_precision(self, options: "ExportOptions", profile: "TargetProfile | None") -> str:
        """--precision, else the profile's, else fp32; ExportError when this backend lacks it."""
        precision = options.precision or getattr(profile, "precision", None) or "fp32"
        if precision not in self.precisions:
            raise ExportError(f"{self.name} does not support precision {precision!r}; "
                              f"choose one of {', '.join(self.precisions)}")
        return precision

    def export(self, ctx: ExportContext) -> list["Artifact"]:  # pragma: no cover - abstract
        raise NotImplementedError


_BACKENDS: dict[str, Backend] = {}


def register_backend(cls: type[Backend]) -> type[Backend]:
    if cls.name not in catalog.BACKENDS:
        raise ValueError(f"backend {cls.name!r} has no entry in edgecnn.catalog.BACKENDS")
    _BACKENDS[cls.name] = cls()
    return cls


def get_backend(name: str) -> Backend:
    """The build-time backend of any of its names (imports its module on first use)."""
    entry = catalog.entry(name)  # UnknownTargetError with close matches
    if entry.name not in _BACKENDS:
        importlib.import_module(entry.export_module)
    return _BACKENDS[entry.name]
