"""What machine is this? CPU, OS, NVIDIA GPUs, CUDA, TensorRT, Jetson (Tegra) release.

The one home of machine facts: the nv_tegra_release parser, the L4T -> JetPack table
(``edgecnn/jetpack.json``), the cpuinfo reader and the installed-library versions that
``doctor``, manifests and bench reports record (:func:`package_versions`, over
``edgecnn.catalog.packages()``).

Torch-free, standard library only (plus edgecnn.catalog), and :func:`probe` never raises:
every probe that fails leaves its field empty and a line in ``PlatformInfo.notes``. The
runtime compares an engine's metadata with this before it deserialises the engine
(edgecnn.runtime.trt_engine_info).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

NV_TEGRA_RELEASE = "etc/nv_tegra_release"
DEVICE_TREE_MODEL = "proc/device-tree/model"
NVIDIA_SMI_QUERY = ["nvidia-smi", "--query-gpu=name,compute_cap,driver_version,memory.total",
                    "--format=csv,noheader"]
_JETPACK_DATA = Path(__file__).resolve().parent / "jetpack.json"


@dataclass
class GpuInfo:
    name: str
    compute_capability: str | None = None  # "8.9"
    driver_version: str | None = None
    memory_total_mb: int | None = None


@dataclass
class TegraInfo:
    """A Jetson: /etc/nv_tegra_release and /proc/device-tree/model."""

    model: str  # device-tree model string, e.g. "NVIDIA Jetson AGX Orin Developer Kit"
    module: str | None  # "Jetson AGX Orin"
    l4t: str | None  # "36.4.3"
    jetpack: str | None  # "6.2"
    jetpack_tensorrt: str | None  # TensorRT that JetPack release ships, e.g. "10.3.0"
    compute_capability: str | None  # the module's integrated GPU
    dla_cores: int = 0
    board: str | None = None
    jetpack_cuda: str | None = None  # CUDA that JetPack release ships, e.g. "12.6" (None: unknown)


@dataclass
class PlatformInfo:
    os: str
    machine: str
    python: str
    cpu_model: str | None = None
    cpu_flags: list[str] = field(default_factory=list)  # the int8-relevant ones (INT8_CPU_FLAGS)
    cpu_count: int | None = None
    gpus: list[GpuInfo] = field(default_factory=list)
    cuda_driver: str | None = None  # from nvidia-smi
    cuda_runtime: str | None = None  # from cuda-python, e.g. "12.6"
    tensorrt: str | None = None
    tegra: TegraInfo | None = None
    notes: list[str] = field(default_factory=list)  # probes that failed, and why

    @property
    def gpu(self) -> GpuInfo | None:
        """Device 0, the one sessions and builds use."""
        return self.gpus[0] if self.gpus else None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


# -- parsers (pure; tests feed them recorded files) -----------------------------------------

_TEGRA_RE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)", re.I)


def parse_nv_tegra_release(text: str) -> tuple[str | None, str | None]:
    """'# R36 (release), REVISION: 4.3, GCID: ..., BOARD: generic, ...' -> ('36.4.3', 'generic')."""
    m = _TEGRA_RE.search(text or "")
    if not m:
        return None, None
    board = re.search(r"BOARD:\s*([^,\s]+)", text)
    return f"{m.group(1)}.{m.group(2)}", board.group(1) if board else None


@lru_cache(maxsize=1)
def _jetpack_table() -> dict[str, Any]:
    return json.loads(_JETPACK_DATA.read_text(encoding="utf-8"))


def jetpack_release(l4t: str | None) -> dict[str, Any] | None:
    """The jetpack.json row of an L4T release (jetpack, tensorrt, cuda, sources); the longest
    listed prefix wins ('36.4.3' before '36.4'). None when no row covers it."""
    if not l4t:
        return None
    rows = {rel["l4t"]: rel for rel in _jetpack_table()["releases"]}
    parts = l4t.strip().split(".")
    for n in range(len(parts), 1, -1):
        rel = rows.get(".".join(parts[:n]))
        if rel:
            return rel
    return None


def l4t_to_jetpack(l4t: str | None) -> tuple[str | None, str | None]:
    """(JetPack, the TensorRT it ships) of an L4T release; the longest listed prefix wins:
    '36.4.3' -> ('6.2', '10.3.0'), '36.4.0' -> ('6.1', '10.3.0'); an unlisted 36.x -> ('6.x', None)."""
    rel = jetpack_release(l4t)
    if rel:
        return rel["jetpack"], rel.get("tensorrt")
    if not l4t:
        return None, None
    jp_major = _jetpack_table()["l4t_major_to_jetpack_major"].get(l4t.strip().split(".")[0])
    return (f"{jp_major}.x", None) if jp_major else (None, None)


def module_from_model(model: str | None) -> dict[str, Any] | None:
    """Device-tree model string -> the module row of jetpack.json (first match wins)."""
    if not model:
        return None
    for row in _jetpack_table()["modules"]:
        if row["match"].lower() in model.lower():
            return row
    return None


def parse_tegra(nv_tegra_release: str | None, dt_model: str | None) -> TegraInfo | None:
    if not nv_tegra_release and not (dt_model and "jetson" in dt_model.lower()):
        return None
    l4t, board = parse_nv_tegra_release(nv_tegra_release or "")
    jetpack, jp_trt = l4t_to_jetpack(l4t)
    model = (dt_model or "").strip("\x00 \n")
    row = module_from_model(model) or {}
    return TegraInfo(model=model, module=row.get("module"), l4t=l4t, jetpack=jetpack,
                     jetpack_tensorrt=jp_trt, compute_capability=row.get("compute_capability"),
                     dla_cores=int(row.get("dla_cores", 0)), board=board,
                     jetpack_cuda=(jetpack_release(l4t) or {}).get("cuda"))


def parse_nvidia_smi(text: str) -> list[GpuInfo]:
    """Lines of 'name, compute_cap, driver_version, memory.total' (memory like '81559 MiB')."""
    gpus = []
    for line in (text or "").splitlines():
        cols = [c.strip() for c in line.split(",")]
        if len(cols) < 4 or not cols[0]:
            continue
        mem = re.match(r"(\d+)", cols[3])
        cc = cols[1] if re.fullmatch(r"\d+\.\d+", cols[1]) else None
        gpus.append(GpuInfo(name=cols[0], compute_capability=cc,
                            driver_version=cols[2] or None,
                            memory_total_mb=int(mem.group(1)) if mem else None))
    return gpus


def parse_cpuinfo(text: str) -> str | None:
    """The CPU's name in /proc/cpuinfo ('model name', else 'Hardware', 'Processor', 'cpu model')."""
    for key in ("model name", "Hardware", "Processor", "cpu model"):
        for line in (text or "").splitlines():
            k, _, v = line.partition(":")
            if k.strip() == key and v.strip():
                return v.strip()
    return None


def cpu_model(root: str | os.PathLike = "/") -> str | None:
    """This machine's CPU name: /proc/cpuinfo, else ``platform.processor()``; None if neither says."""
    return parse_cpuinfo(_read(Path(root), "proc/cpuinfo") or "") or platform.processor() or None


# what int8 (and fp16) speed hangs on: x86 'flags', then Arm 'Features' (asimddp: SDOT/UDOT int8
# dot products; i8mm: int8 matrix multiply; asimdhp: fp16 arithmetic; XNNPACK uses all three)
INT8_CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8",
                  "asimddp", "i8mm", "asimdhp", "sve", "sve2")


def cpu_flags(root: str | os.PathLike = "/", keep: tuple[str, ...] = INT8_CPU_FLAGS) -> list[str]:
    """The flags of ``keep`` this CPU has (the first 'flags' line of /proc/cpuinfo, or 'Features'
    on Arm), in ``keep``'s order; [] where /proc/cpuinfo is missing."""
    for line in (_read(Path(root), "proc/cpuinfo") or "").splitlines():
        k, _, v = line.partition(":")
        if k.strip() in ("flags", "Features"):
            have = set(v.split())
            return [f for f in keep if f in have]
    return []


INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # u8 x s8 sums straight into int32


def int16_saturation_risk(root: str | os.PathLike = "/") -> bool:
    """True where ONNX Runtime's u8 x s8 kernels sum pairs of products in int16 (x86 with AVX2
    but no VNNI/AMX: ``vpmaddubsw`` saturates, so 8-bit weights can lose accuracy there and
    7-bit ones cannot); False on x86 with VNNI/AMX and on other architectures. An x86 CPU
    whose flags cannot be read counts as at risk."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64", "i686", "i386", "x86"):
        return False
    return not any(f in cpu_flags(root) for f in INT8_DOT_FLAGS)


def cpu_facts() -> dict[str, Any]:
    """CPU name, int8-relevant flags and core count: what every speed figure must name."""
    return {"cpu": cpu_model() or "", "flags": cpu_flags(), "cores": os.cpu_count()}


def is_tegra(root: str | os.PathLike = "/") -> bool:
    """A Jetson: /etc/nv_tegra_release exists or the device-tree model names a Jetson or Tegra."""
    r = Path(root)
    model = (_read(r, DEVICE_TREE_MODEL) or "").lower()
    return (r / NV_TEGRA_RELEASE).is_file() or "jetson" in model or "tegra" in model


def has_nvidia_gpu(root: str | os.PathLike = "/") -> bool:
    """An NVIDIA GPU the driver exposes (desktop /dev/nvidia0, or a Jetson's integrated GPU);
    EDGECNN_ASSUME_GPU=1 says so for tests of GPU-only control flow."""
    r = Path(root)
    if (r / "dev/nvidia0").exists() or (r / "dev/nvhost-gpu").exists():
        return True
    if (r / NV_TEGRA_RELEASE).is_file():
        return True
    return bool(os.environ.get("EDGECNN_ASSUME_GPU"))


def package_versions() -> dict[str, str]:
    """Installed version of every library edgecnn records (``edgecnn.catalog.packages()``), by
    shown name: the first of its distributions that is installed ('onnxruntime' is
    onnxruntime-gpu's version where only that is installed). Absent libraries are left out.
    Reads package metadata only; never imports the packages."""
    import importlib.metadata as md

    from edgecnn.catalog import packages

    out: dict[str, str] = {}
    for shown, dists in packages():
        for dist in dists:
            try:
                out[shown] = md.version(dist)
                break
            except md.PackageNotFoundError:
                continue
    return out


# -- probes ----------------------------------------------------------------------------------

def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_bytes().decode("utf-8", "replace")
    except OSError:
        return None


def _nvidia_smi(notes: list[str]) -> list[GpuInfo]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(NVIDIA_SMI_QUERY, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError) as exc:
        notes.append(f"nvidia-smi failed: {exc}")
        return []
    if out.returncode != 0:
        notes.append(f"nvidia-smi exited {out.returncode}: {out.stderr.strip()[:200]}")
        return []
    return parse_nvidia_smi(out.stdout)


def _cuda_python(notes: list[str]) -> tuple[str | None, list[GpuInfo]]:
    """CUDA runtime version and devices through cuda-python, when it is installed."""
    import importlib
    import importlib.util

    cudart = None
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            if importlib.util.find_spec(name.rsplit(".", 1)[0]) is None:
                continue
            cudart = importlib.import_module(name)
            break
        except Exception:  # noqa: BLE001 - a broken install must not break probe()
            continue
    if cudart is None:
        return None, []
    try:
        err, ver = cudart.cudaRuntimeGetVersion()
        runtime = f"{ver // 1000}.{(ver % 1000) // 10}" if int(err) == 0 else None
        err, count = cudart.cudaGetDeviceCount()
        gpus = []
        for i in range(count if int(err) == 0 else 0):
            err, prop = cudart.cudaGetDeviceProperties(i)
            if int(err) == 0:
                name = prop.name.decode() if isinstance(prop.name, bytes) else str(prop.name)
                gpus.append(GpuInfo(name=name.strip("\x00 "), compute_capability=f"{prop.major}.{prop.minor}",
                                    memory_total_mb=int(prop.totalGlobalMem) // (1 << 20)))
        return runtime, gpus
    except Exception as exc:  # noqa: BLE001
        notes.append(f"cuda-python probe failed: {exc}")
        return None, []


def _tensorrt_version(notes: list[str]) -> str | None:
    import importlib.metadata as md

    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-libs", "tensorrt_cu12_libs"):
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            continue
        except Exception as exc:  # noqa: BLE001
            notes.append(f"metadata for {dist}: {exc}")
    import importlib.util

    try:  # JetPack installs TensorRT as a system package without pip metadata
        if importlib.util.find_spec("tensorrt") is not None:
            import tensorrt  # noqa: PLC0415

            return str(getattr(tensorrt, "__version__", "")) or None
    except Exception as exc:  # noqa: BLE001
        notes.append(f"import tensorrt failed: {exc}")
    return None


def probe(root: str | os.PathLike = "/", *, run_tools: bool = True) -> PlatformInfo:
    """Describe this machine. ``root`` reads /proc and /etc from another folder (recorded
    fixtures); ``run_tools=False`` skips nvidia-smi, cuda-python and TensorRT. Never raises."""
    notes: list[str] = []
    r = Path(root)
    try:
        info = PlatformInfo(os=f"{platform.system()} {platform.release()}".strip(),
                            machine=platform.machine(), python=platform.python_version())
    except Exception as exc:  # noqa: BLE001
        return PlatformInfo(os="unknown", machine="unknown", python="unknown", notes=[str(exc)])
    try:
        info.cpu_model = cpu_model(r)
        info.cpu_flags = cpu_flags(r)
        info.cpu_count = os.cpu_count()
        info.tegra = parse_tegra(_read(r, NV_TEGRA_RELEASE), _read(r, DEVICE_TREE_MODEL))
        if run_tools:
            smi = _nvidia_smi(notes)
            info.cuda_runtime, cuda_gpus = _cuda_python(notes)
            info.gpus = smi or cuda_gpus
            if smi:
                info.cuda_driver = smi[0].driver_version
                for g, c in zip(smi, cuda_gpus):  # older nvidia-smi lacks compute_cap
                    g.compute_capability = g.compute_capability or c.compute_capability
            info.tensorrt = _tensorrt_version(notes)
        if info.tegra and not info.gpus and info.tegra.module:
            # Jetson's integrated GPU: nvidia-smi may be missing; the module table knows it
            info.gpus = [GpuInfo(name=f"{info.tegra.module} (integrated)",
                                 compute_capability=info.tegra.compute_capability)]
    except Exception as exc:  # noqa: BLE001 - probe() must never raise
        notes.append(f"probe failed: {type(exc).__name__}: {exc}")
    info.notes = notes
    return info
