"""Do cuda-python, the NVIDIA driver and TensorRT agree on the CUDA major version?

A pip TensorRT and cuda-python are each built for one CUDA major (12 or 13). The driver supports
every CUDA up to its own version (R525+: 12.x; R580+: 13.x). If cuda-python or TensorRT is newer
than the driver, every CUDA call fails with "driver insufficient"; if they differ from each other,
the runtime and TensorRT load two CUDA runtimes. ``edgecnn doctor`` runs :func:`check` on
:func:`probe_stack` and prints what to install. :func:`check` is pure (tests give it facts).

On a Jetson, TensorRT is JetPack's system package (JetPack 6: TensorRT 10.3 on CUDA 12.6; JetPack 7:
CUDA 13) and must not be pip-installed: ``edgecnn[jetson]`` (JetPack 6) and ``edgecnn[jetson-jp7]``
(JetPack 7) bring only the matching cuda-python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# pip distributions that carry a TensorRT build for one CUDA major
_TRT_DISTS = re.compile(r"^tensorrt[-_]cu(\d+)(?:[-_](?:bindings|libs))?$", re.IGNORECASE)
_JETPACK_CUDA = {"6": 12, "7": 13}  # JetPack major -> CUDA major (6.x: CUDA 12.6, 7.x: CUDA 13)
_CUDA_PYTHON = {12: "'cuda-python>=12.6,<13'", 13: "'cuda-python>=13,<14'"}


@dataclass
class CudaStack:
    """What is installed: versions as strings, None when absent or unknown."""

    cuda_python: str | None = None  # e.g. "12.9.4" (the cuda-python / cuda-bindings distribution)
    driver_cuda: str | None = None  # the newest CUDA the driver supports, e.g. "12.6"
    tensorrt: str | None = None  # e.g. "10.3.0.30"
    tensorrt_cuda: int | None = None  # the CUDA major TensorRT was built for
    tensorrt_dists: list[str] = field(default_factory=list)  # pip distributions of TensorRT
    jetpack: str | None = None  # "6.2" on a Jetson


def _major(version: str | None) -> int | None:
    m = re.match(r"\s*(\d+)", version or "")
    return int(m.group(1)) if m else None


def tensorrt_cuda_major(tensorrt_version: str | None, dists: list[str], jetpack: str | None) -> int | None:
    """TensorRT's CUDA major: from a '+cuda13.0' version tag, a tensorrt-cuNN distribution, or
    (system TensorRT on a Jetson) the JetPack release."""
    m = re.search(r"cuda(\d+)", tensorrt_version or "")
    if m:
        return int(m.group(1))
    majors = {int(m.group(1)) for d in dists if (m := _TRT_DISTS.match(d))}
    if len(majors) == 1:
        return majors.pop()
    if jetpack and not dists:
        return _JETPACK_CUDA.get(jetpack.split(".")[0])
    return None


def _fix_cuda_python(cuda: int, jetpack: str | None) -> str:
    if jetpack:
        extra = "jetson" if cuda == 12 else "jetson-jp7"
        return f"pip install 'edgecnn[{extra}]' (or {_CUDA_PYTHON.get(cuda, cuda)})"
    return f"pip install {_CUDA_PYTHON.get(cuda, f'cuda-python=={cuda}.*')}"


def check(stack: CudaStack) -> list[str]:
    """Problems, each one line that says what to install; [] when the stack is consistent."""
    problems = []
    driver, cp, trt = _major(stack.driver_cuda), _major(stack.cuda_python), stack.tensorrt_cuda
    if stack.jetpack and stack.tensorrt_dists:
        problems.append(f"a pip TensorRT ({', '.join(stack.tensorrt_dists)}) is installed on a Jetson "
                        f"and may shadow JetPack {stack.jetpack}'s: pip uninstall "
                        f"{' '.join(stack.tensorrt_dists)} (use the venv made with --system-site-packages)")
    if driver is not None and cp is not None and cp > driver:
        problems.append(f"cuda-python {stack.cuda_python} needs a CUDA {cp} driver, this driver supports "
                        f"CUDA {stack.driver_cuda}: {_fix_cuda_python(driver, stack.jetpack)}")
    if driver is not None and trt is not None and trt > driver:
        fix = (f"pip install 'tensorrt-cu{driver}' (or 'edgecnn[tensorrt]'), or update the driver "
               f"({'R580' if trt >= 13 else 'R525'} or newer)")
        problems.append(f"TensorRT {stack.tensorrt} is built for CUDA {trt}, this driver supports CUDA "
                        f"{stack.driver_cuda}: {fix}")
    if cp is not None and trt is not None and cp != trt and not (driver is not None and cp > driver):
        problems.append(f"cuda-python {stack.cuda_python} is for CUDA {cp}, TensorRT {stack.tensorrt} for "
                        f"CUDA {trt}: {_fix_cuda_python(trt, stack.jetpack)}")
    if stack.tensorrt and cp is None:
        problems.append(f"cuda-python is not installed, and edgecnn runs TensorRT engines through it: "
                        f"{_fix_cuda_python(trt or driver or 12, stack.jetpack)}")
    return problems


def driver_cuda_version() -> str | None:
    """The newest CUDA the installed driver supports (cudaDriverGetVersion), through cuda-python."""
    import importlib

    try:
        rt = importlib.import_module("cuda.bindings.runtime")
        err, ver = rt.cudaDriverGetVersion()
    except Exception:  # noqa: BLE001 - no cuda-python or no libcuda: unknown
        return None
    if int(err) != 0 or not ver:
        return None
    return f"{ver // 1000}.{(ver % 1000) // 10}"


def probe_stack(info=None) -> CudaStack:
    """The facts on this machine (package metadata, cuda-python, JetPack release); ``info`` is a
    :class:`edgecnn.platform_info.PlatformInfo` already probed. Never raises."""
    import importlib.metadata as md

    from edgecnn.platform_info import package_versions, probe

    dists = []
    for dist in md.distributions():
        name = (dist.metadata.get("Name") or "").lower()
        if name == "tensorrt" or _TRT_DISTS.match(name):
            dists.append(name)
    info = info if info is not None else probe(run_tools=True)
    versions = package_versions()
    jetpack = info.tegra.jetpack if info.tegra else None
    cuda_python = versions.get("cuda")
    for dist in ("cuda-python", "cuda-bindings"):
        try:
            cuda_python = md.version(dist)
            break
        except md.PackageNotFoundError:
            continue
    return CudaStack(cuda_python=cuda_python, driver_cuda=driver_cuda_version(), tensorrt=info.tensorrt,
                     tensorrt_cuda=tensorrt_cuda_major(info.tensorrt, sorted(set(dists)), jetpack),
                     tensorrt_dists=sorted(set(dists)), jetpack=jetpack)
