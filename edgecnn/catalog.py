"""The backend catalogue: every fact about a backend, in one table. Standard library only.

One :class:`BackendEntry` per backend says what the manifest calls it, what the user may type
for it, which precisions it has, which bundle file holds each artifact, which build-time module
exports it, which runtime session runs it and which libraries (import names and pip
distributions) it needs. Manifest validation, the export registry, ``--target`` and bench target
parsing, the runtime loader, ``doctor`` and the versions recorded in manifests and bench reports
all read this table; adding a backend is one entry here plus its export module.

Artifact files are keyed by (precision, variant). The variant says what an artifact is shaped
for when a backend has two graphs of one precision: ONNX Runtime's int8 has a "cpu" graph (for
ONNX Runtime's integer CPU kernels) and a "tensorrt" graph (TensorRT's Q/DQ rules; on a CPU only
an accuracy proxy). Every other (backend, precision) has one artifact, variant "". An artifact
records its variant in ``details["shaped_for"]`` (older runtimes keep reading it); one without
(a bundle from before the CPU graph existed) is the ``unlabelled`` variant of its precision.
In names the first variant of a precision is plain ("onnx:int8", "onnxruntime:int8") and the
others carry a suffix ("onnx:int8-trt").

This module sits at the bottom of the import graph (beside manifest.py): the device runtime
reads it, so it imports nothing of edgecnn but ``errors``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from edgecnn.errors import UnknownTargetError

PRECISIONS = ("fp32", "fp16", "int8")
# variant <-> the short suffix names use ("int8-trt"); either is accepted after the dash
VARIANT_SUFFIX = {"cpu": "cpu", "tensorrt": "trt"}
VARIANT_TITLE = {"cpu": "CPU graph", "tensorrt": "TensorRT graph (accuracy proxy on a CPU)"}


@dataclass(frozen=True)
class Library:
    """A library a backend needs: its import name, the pip distributions that provide it (first
    is the one to install) and the edgecnn extra that installs it."""

    module: str
    distributions: tuple[str, ...]
    extra: str

    @property
    def shown(self) -> str:
        """The name reports and ``doctor`` show (the first distribution)."""
        return self.distributions[0]


@dataclass(frozen=True)
class BackendEntry:
    name: str  # the backend in manifest.json: onnxruntime | tflite | tensorrt
    short: str  # the name in bench targets and tables: onnx | tflite | tensorrt
    aliases: tuple[str, ...]  # what --target / --targets / --backend accept (name and short too)
    precisions: tuple[str, ...]
    files: dict[tuple[str, str], str]  # (precision, variant) -> bundle file name
    export_module: str  # build-time module whose Backend class registers this name
    session: str  # "module:Class" of the runtime session (imported only when used)
    runtime: Library  # what the device needs to run an artifact
    build: tuple[Library, ...] = ()  # what export needs beyond the core export extra
    needs_gpu: bool = False  # artifacts run only on an NVIDIA GPU
    prepared_files: tuple[str, ...] = ()  # plain bundle files (not artifacts) the export writes
    default_layout: str | None = None  # the input layout a generic --target gets
    # precision -> its variants, the preferred one first (what a plain name and a plain
    # runtime.load(precision=...) pick when the bundle has both); absent: one artifact, ""
    variants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # precision -> the variant of an artifact without details["shaped_for"] (older bundles) and
    # the file a blank variant names (what builders that predate variants read)
    unlabelled: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.name, self.short, *self.aliases)))

    def artifact_file(self, precision: str, variant: str = "") -> str:
        """The bundle file of (precision, variant); a blank variant of a precision with
        variants names the ``unlabelled`` one (model.int8.onnx: the TensorRT graph)."""
        if not variant and (precision, "") not in self.files:
            variant = self.unlabelled.get(precision, "")
        try:
            return self.files[(precision, variant)]
        except KeyError:
            what = f"{precision}" + (f" ({variant})" if variant else "")
            raise UnknownTargetError(f"{self.short} has no {what} artifact; it has "
                                     f"{', '.join(self.precision_names())}") from None

    def variants_of(self, precision: str) -> tuple[str, ...]:
        """The variants of ``precision``, preferred first; ("",) when it has one artifact."""
        return self.variants.get(precision, ("",))

    def preferred_variant(self, precision: str) -> str:
        return self.variants_of(precision)[0]

    def resolve_variant(self, precision: str, variant: str | None) -> str:
        """A user's variant ('trt', 'tensorrt', 'cpu', '' or None = the preferred one) -> the
        canonical variant; UnknownTargetError for one this precision lacks."""
        have = self.variants_of(precision)
        if not variant:
            return have[0]
        v = variant.lower()
        v = next((k for k, short in VARIANT_SUFFIX.items() if v in (k, short)), v)
        if v not in have:
            names = ", ".join(self.precision_name(precision, h) for h in have)
            raise UnknownTargetError(f"{self.short} has no {precision}-{variant} artifact "
                                     f"(its {precision} artifacts: {names})")
        return v

    def precision_name(self, precision: str, variant: str = "") -> str:
        """'int8' for the preferred variant (or a precision without variants), 'int8-trt' for
        another one."""
        if not variant or variant == self.preferred_variant(precision):
            return precision
        return f"{precision}-{VARIANT_SUFFIX.get(variant, variant)}"

    def precision_names(self) -> tuple[str, ...]:
        """Every 'precision[-variant]' this backend has: fp32, fp16, int8, int8-trt."""
        return tuple(self.precision_name(p, v) for p in self.precisions
                     for v in self.variants_of(p))

    @property
    def libraries(self) -> tuple[Library, ...]:
        return (self.runtime, *self.build)


_ORT = Library("onnxruntime", ("onnxruntime", "onnxruntime-gpu"), "ort")
_LITERT = Library("ai_edge_litert", ("ai-edge-litert",), "litert")
_LITERT_TORCH = Library("litert_torch", ("litert-torch",), "tflite")
_TENSORRT = Library("tensorrt", ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt_lean"),
                    "tensorrt")
_CUDA = Library("cuda", ("cuda-python", "cuda-bindings"), "tensorrt")

BACKENDS: dict[str, BackendEntry] = {e.name: e for e in (
    BackendEntry(
        name="onnxruntime", short="onnx", aliases=("ort",), precisions=PRECISIONS,
        files={("fp32", ""): "model.onnx", ("fp16", ""): "model.fp16.onnx",
               ("int8", "cpu"): "model.int8.cpu.onnx", ("int8", "tensorrt"): "model.int8.onnx"},
        export_module="edgecnn.backends.onnxruntime",
        session="edgecnn.runtime.ort:OrtSession", runtime=_ORT,
        variants={"int8": ("cpu", "tensorrt")}, unlabelled={"int8": "tensorrt"}),
    BackendEntry(
        name="tflite", short="tflite", aliases=("litert",), precisions=PRECISIONS,
        files={(p, ""): f"model.{p}.tflite" for p in PRECISIONS},
        export_module="edgecnn.backends.tflite",
        session="edgecnn.runtime.litert:LiteRTSession", runtime=_LITERT, build=(_LITERT_TORCH,),
        default_layout="NHWC"),
    BackendEntry(
        name="tensorrt", short="tensorrt", aliases=("trt",), precisions=PRECISIONS,
        files={(p, ""): f"model.{p}.engine" for p in PRECISIONS},
        export_module="edgecnn.backends.tensorrt",
        session="edgecnn.runtime.tensorrt:TensorRTSession", runtime=_TENSORRT, build=(_CUDA,),
        needs_gpu=True,
        prepared_files=("build_plan.json", *(f"model.{p}.trt.onnx" for p in PRECISIONS))),
)}

# Libraries beyond the backends' that manifests, bench reports and `doctor` record: (shown name,
# distributions to try). The backends' own libraries are appended from BACKENDS.
_CORE_PACKAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("edgecnn", ("edgecnn",)),
    ("numpy", ("numpy",)),
    ("torch", ("torch",)),
    ("onnx", ("onnx",)),
    ("onnxscript", ("onnxscript",)),
)
_REPORT_PACKAGES = (("matplotlib", ("matplotlib",)),)


def packages() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every library edgecnn records a version of: (shown name, distributions to try). Per
    backend: its converters (build libraries of another extra), its runtime library, then what
    the runtime library needs beside it."""
    out = dict(_CORE_PACKAGES)
    for entry in BACKENDS.values():
        converters = [lib for lib in entry.build if lib.extra != entry.runtime.extra]
        beside = [lib for lib in entry.build if lib.extra == entry.runtime.extra]
        for lib in (*converters, entry.runtime, *beside):
            out.setdefault(lib.shown, lib.distributions)
    out.update((k, v) for k, v in _REPORT_PACKAGES if k not in out)
    return tuple(out.items())


def _alias_table() -> dict[str, str]:
    return {n.lower(): e.name for e in BACKENDS.values() for n in e.names}


def backend_names() -> list[str]:
    """Every name a user may type for a backend, sorted."""
    return sorted(_alias_table())


def is_backend_name(text: str) -> bool:
    return text.lower() in _alias_table()


def canonical(name: str) -> str:
    """'onnx' / 'ort' / 'onnxruntime' -> 'onnxruntime'; UnknownTargetError with close matches."""
    try:
        return _alias_table()[name.lower()]
    except KeyError:
        close = difflib.get_close_matches(name.lower(), backend_names(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownTargetError(f"unknown backend {name!r}{hint} (choose one of "
                                 f"{', '.join(backend_names())} or a device profile)") from None


def entry(name: str) -> BackendEntry:
    """The catalogue entry of a backend by any of its names."""
    return BACKENDS[canonical(name)]


def artifact_file(backend: str, precision: str, variant: str = "") -> str:
    """The bundle file an export writes for (backend, precision, variant)."""
    return entry(backend).artifact_file(precision, variant)


def split_precision(text: str) -> tuple[str, str | None]:
    """'int8-trt' -> ('int8', 'trt'); 'int8' -> ('int8', None). Not validated here."""
    precision, dash, variant = text.partition("-")
    return precision, (variant if dash else None)


def register(new: BackendEntry) -> None:
    """Add a backend at run time (plug-ins and tests); its names must be new."""
    taken = set(_alias_table())
    clash = [n for n in new.names if n.lower() in taken]
    if clash:
        raise ValueError(f"backend names already taken: {clash}")
    BACKENDS[new.name] = new


def unregister(name: str) -> None:
    BACKENDS.pop(name, None)


__all__ = ["BACKENDS", "PRECISIONS", "VARIANT_SUFFIX", "VARIANT_TITLE", "BackendEntry", "Library",
           "artifact_file", "backend_names", "canonical", "entry", "is_backend_name", "packages",
           "register", "split_precision", "unregister"]
