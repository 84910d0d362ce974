"""What the runtime needs to open a TensorRT engine: the engine metadata, its check against this
machine, TensorRT version parsing, and the TensorRT / cuda-python imports. Stdlib only.

TensorRT engines are specific to the TensorRT version and the GPU (architecture) that built
them (TensorRT support matrix, "Engine Portability": not portable across versions unless built
version-compatible, not across GPU architectures unless built hardware-compatible; edgecnn does
neither). The engine's details record :class:`EngineMetadata`; the runtime compares it with
:func:`edgecnn.platform_info.probe` before it deserialises an engine and refuses a mismatch with
a message that says what to do.

The build room (``edgecnn.tensorrt``) writes this metadata and parses versions with the same
definitions: it imports them from here, and this module imports nothing of ``edgecnn.tensorrt``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from edgecnn.errors import BackendUnavailableError, BundleError, EngineMismatchError, ProfileError
from edgecnn.platform_info import PlatformInfo

DETAILS_KEY = "engine"  # Artifact.details[DETAILS_KEY] holds EngineMetadata.to_dict()

# -- TensorRT versions ----------------------------------------------------------------------

_VERSION_RE = re.compile(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?")


@dataclass(frozen=True, order=True)
class TrtVersion:
    major: int
    minor: int = 0
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> "TrtVersion":
        """'10.3', '10.3.0.30', '11' or '10.13.3.9+cuda13.0' -> TrtVersion."""
        m = _VERSION_RE.match(str(text))
        if not m:
            raise ProfileError(f"TensorRT version {text!r} is not a version like '10.3' or '11.0'")
        return cls(int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" if self.patch else f"{self.major}.{self.minor}"


# -- TensorRT and cuda-python, imported when used ---------------------------------------------

def import_tensorrt(purpose: str):
    """Import TensorRT or raise BackendUnavailableError saying where and how to install it."""
    import importlib

    try:
        return importlib.import_module("tensorrt")
    except ImportError as exc:
        raise BackendUnavailableError(
            f"TensorRT is not installed here ({exc}); {purpose} must happen on the device that runs "
            f"the engine: on a desktop GPU pip install 'edgecnn[tensorrt]' there (CUDA 13 driver: "
            f"'edgecnn[tensorrt-cu13]'); on a Jetson TensorRT comes with JetPack 6.1+: use a venv made "
            f"with --system-site-packages and pip install 'edgecnn[jetson]' (JetPack 7: "
            f"'edgecnn[jetson-jp7]')") from exc


def import_cudart(purpose: str):
    """cuda-python's runtime bindings (cuda.bindings.runtime; older releases: cuda.cudart)."""
    import importlib

    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise BackendUnavailableError(
        f"cuda-python is not installed here; {purpose} needs it on the device: pip install "
        f"'edgecnn[tensorrt]' (Jetson: 'edgecnn[jetson]'; 'edgecnn doctor' shows which CUDA fits)")


# -- engine metadata ------------------------------------------------------------------------

@dataclass
class EngineMetadata:
    tensorrt: str  # full version that built the engine, e.g. "10.3.0.30"
    gpu_name: str
    compute_capability: str  # "8.7"
    precision: str
    profiles: list[dict[str, list[int]]]  # per input: {"name", "min", "opt", "max"}
    source_onnx: str  # model.<prec>.trt.onnx
    source_onnx_sha256: str
    cuda_runtime: str | None = None
    cuda_driver: str | None = None
    tegra_module: str | None = None
    l4t: str | None = None
    jetpack: str | None = None
    dla_core: int | None = None
    strongly_typed: bool = True
    tf32: bool | None = None  # BuilderFlag.TF32 at build time (False for fp32 engines); None: not recorded
    dla_layers: int | None = None  # layers the engine inspector placed on the DLA (DLA builds)
    built: str = ""  # ISO 8601 UTC
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> "EngineMetadata":
        if not isinstance(d, dict):
            raise BundleError("engine metadata is missing from the manifest; rebuild the engine "
                              "with 'edgecnn build'")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                   and f.name not in d]
        if missing:
            raise BundleError(f"engine metadata lacks {missing}; rebuild the engine with 'edgecnn build'")
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def target(self) -> str:
        where = self.tegra_module or self.gpu_name
        jp = f", JetPack {self.jetpack}" if self.jetpack else ""
        return f"{where} (sm {self.compute_capability}), TensorRT {self.tensorrt}{jp}"


def _same_release(a: str, b: str) -> bool:
    """Same TensorRT release: major.minor.patch equal (the build number is ignored)."""
    try:
        return TrtVersion.parse(a) == TrtVersion.parse(b)
    except Exception:  # noqa: BLE001
        return a == b


def compare(meta: EngineMetadata, machine: PlatformInfo) -> tuple[list[str], list[str]]:
    """(mismatches that make the engine unusable, warnings) of ``meta`` against ``machine``."""
    errors: list[str] = []
    warnings: list[str] = []
    if machine.tensorrt is None:
        errors.append("TensorRT is not installed on this machine")
    elif not _same_release(meta.tensorrt, machine.tensorrt):
        errors.append(f"TensorRT {meta.tensorrt} built it, this machine has TensorRT {machine.tensorrt}")
    gpu = machine.gpu
    if gpu is None:
        errors.append("this machine has no NVIDIA GPU that nvidia-smi or cuda-python can see")
    else:
        if gpu.compute_capability is None:
            warnings.append(f"the compute capability of {gpu.name} is unknown; cannot confirm the "
                            f"engine's sm {meta.compute_capability}")
        elif gpu.compute_capability != meta.compute_capability:
            errors.append(f"it was built for compute capability {meta.compute_capability} "
                          f"({meta.gpu_name}), this GPU is {gpu.name} with {gpu.compute_capability}")
        if gpu.compute_capability == meta.compute_capability and gpu.name != meta.gpu_name:
            warnings.append(f"built on {meta.gpu_name}, running on {gpu.name} (same architecture: "
                            f"it loads, but tactics were timed on the other GPU)")
    tegra = machine.tegra
    if meta.l4t and tegra is None and gpu is not None:
        errors.append(f"it was built on a Jetson ({meta.tegra_module}, L4T {meta.l4t}), this is not one")
    elif meta.l4t is None and tegra is not None:
        errors.append(f"it was built on a desktop GPU ({meta.gpu_name}), this is a Jetson "
                      f"({tegra.module or tegra.model})")
    elif meta.l4t and tegra is not None:
        if (tegra.l4t or "").split(".")[:2] != meta.l4t.split(".")[:2]:
            errors.append(f"it was built on L4T {meta.l4t} (JetPack {meta.jetpack}), this Jetson runs "
                          f"L4T {tegra.l4t} (JetPack {tegra.jetpack})")
        if meta.tegra_module and tegra.module and meta.tegra_module != tegra.module:
            warnings.append(f"built on a {meta.tegra_module}, running on a {tegra.module}")
    if meta.dla_core is not None and tegra is not None and meta.dla_core >= max(tegra.dla_cores, 0) \
            and tegra.module is not None:
        errors.append(f"it runs on DLA core {meta.dla_core}, and {tegra.module} has "
                      f"{tegra.dla_cores} DLA core(s)")
    return errors, warnings


def check_engine_compatible(meta: EngineMetadata, machine: PlatformInfo, engine_file: str,
                            bundle: str) -> list[str]:
    """Raise EngineMismatchError on a mismatch; return the warnings otherwise."""
    errors, warnings = compare(meta, machine)
    if errors:
        raise EngineMismatchError(
            f"{engine_file} cannot run here: {'; '.join(errors)}. It was built for {meta.target}. "
            f"Engines are tied to the TensorRT version and GPU that built them: run "
            f"'edgecnn build {bundle} --precision {meta.precision}' on this machine")
    return warnings


__all__ = ["DETAILS_KEY", "EngineMetadata", "TrtVersion", "check_engine_compatible", "compare",
           "import_cudart", "import_tensorrt"]
