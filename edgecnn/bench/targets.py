"""What ``--targets`` names: 'torch', 'onnx:int8', 'onnx:int8-trt', 'tflite:fp32', 'tensorrt:fp16' ...

``BACKEND:PRECISION[-VARIANT]``: where a backend has two graphs of one precision the plain name
is the preferred one and the other carries its variant: ``onnx:int8`` is the CPU-shaped INT8
graph (model.int8.cpu.onnx, ONNX Runtime's integer kernels), ``onnx:int8-trt`` the
TensorRT-shaped one (model.int8.onnx; on a CPU only TensorRT's accuracy proxy).

The backend catalogue (:mod:`edgecnn.catalog`) says which precisions each backend has, which
bundle file holds the artifact and what the machine needs to run it; :func:`parse_targets` checks a list before any work starts
and :func:`unavailable_reason` says why a target cannot run here (so it is skipped, not failed).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from edgecnn import catalog
from edgecnn.errors import UnknownTargetError

# the PyTorch reference: not a backend (it runs no artifact), so bench names it here
TORCH = "torch"
TORCH_ALIASES = ("torch", "pytorch", "eager")
TORCH_EXTRA = "export"
ALL_TARGETS = ("torch", "onnx:fp32", "onnx:fp16", "onnx:int8", "onnx:int8-trt", "tflite:fp32",
               "tflite:int8", "tensorrt:fp16", "tensorrt:int8")


def _backend_of(name: str) -> str | None:
    if name in TORCH_ALIASES:
        return TORCH
    return catalog.canonical(name) if catalog.is_backend_name(name) else None


@dataclass(frozen=True)
class BenchTarget:
    backend: str  # torch | onnxruntime | tflite | tensorrt
    precision: str  # fp32 | fp16 | int8
    variant: str = ""  # "cpu" | "tensorrt" where the precision has two graphs, else ""

    @property
    def name(self) -> str:
        return TORCH if self.is_torch else f"{catalog.BACKENDS[self.backend].short}:{self.spec}"

    @property
    def spec(self) -> str:
        """'int8' or 'int8-trt': the precision as runtime.load and Manifest.find take it."""
        if self.is_torch:
            return self.precision
        return catalog.BACKENDS[self.backend].precision_name(self.precision, self.variant)

    @property
    def title(self) -> str:
        """What the variant is, for tables and notes ('' when the precision has one graph)."""
        return catalog.VARIANT_TITLE.get(self.variant, "")

    def matches(self, artifact) -> bool:
        """``artifact`` (a manifest Artifact) is this target's."""
        return (artifact.backend == self.backend and artifact.precision == self.precision
                and artifact.variant == self.variant)

    @property
    def is_torch(self) -> bool:
        return self.backend == TORCH

    @property
    def export_target(self) -> str | None:
        """What ``edgecnn export --target`` takes to build this target (None for torch)."""
        return None if self.is_torch else catalog.BACKENDS[self.backend].short

    @property
    def artifact_file(self) -> str | None:
        """The bundle file the export pipeline writes for this target (None for torch)."""
        return None if self.is_torch else catalog.artifact_file(self.backend, self.precision,
                                                                self.variant)

    def __str__(self) -> str:
        return self.name


def parse_target(text: str) -> BenchTarget:
    raw = text.strip()
    name, _, precision = raw.lower().partition(":")
    backend = _backend_of(name)
    if backend is None:
        choices = sorted({*TORCH_ALIASES, *catalog.backend_names()}) + list(ALL_TARGETS)
        close = difflib.get_close_matches(raw.lower(), choices, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownTargetError(
            f"unknown bench target {raw!r}{hint} (use BACKEND[:PRECISION] with BACKEND one of "
            f"torch, onnx, tflite, tensorrt and PRECISION fp32, fp16 or int8 (onnx also "
            f"int8-trt, the TensorRT-shaped graph), e.g. --targets torch,onnx:fp32,onnx:int8)")
    precision, variant = catalog.split_precision(precision or "fp32")
    if backend == TORCH:
        if precision != "fp32" or variant is not None:
            raise UnknownTargetError(f"bench target {raw!r}: torch has no precision "
                                     f"{raw.partition(':')[2]!r} (it has fp32)")
        return BenchTarget(backend, precision)
    entry = catalog.BACKENDS[backend]
    if precision not in entry.precisions:
        raise UnknownTargetError(
            f"bench target {raw!r}: {entry.short} has no precision {precision!r} "
            f"(it has {', '.join(entry.precision_names())})")
    try:
        resolved = entry.resolve_variant(precision, variant)
    except UnknownTargetError:
        raise UnknownTargetError(
            f"bench target {raw!r}: {entry.short} has no precision {precision}-{variant} (it has "
            f"{', '.join(entry.precision_names())})") from None
    return BenchTarget(backend, precision, resolved)


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


def unavailable_reason(target: BenchTarget) -> str | None:
    """Why ``target`` cannot run on this machine, or None when it can."""
    from edgecnn._lazy import available
    from edgecnn.platform_info import has_nvidia_gpu

    if target.is_torch:
        lib, extra = "torch", TORCH_EXTRA
    else:
        entry = catalog.BACKENDS[target.backend]
        if entry.needs_gpu and not has_nvidia_gpu():
            return "no NVIDIA GPU on this machine (TensorRT engines run only on a GPU)"
        lib, extra = entry.runtime.module, entry.runtime.extra
    if not available(lib):
        return f"{lib} is not installed (pip install 'edgecnn[{extra}]')"
    return None
