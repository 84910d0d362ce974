"""Device profiles: targets/*.toml, one per device, validated with clear errors.

``--target`` takes a backend name (onnx, tflite, tensorrt), a profile name, or a path to the
user's own profile file. Profile names are searched in the folders of ``$EDGECNN_TARGETS``
(the user's own, ``os.pathsep``-separated) first, then in the shipped ``targets/`` folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn import catalog
from edgecnn.errors import ProfileError, UnknownTargetError

from edgecnn._toml import tomllib
from edgecnn.resources import shipped_dir

PROFILE_DIR = shipped_dir("targets")  # the shipped profiles
USER_PROFILES_ENV = "EDGECNN_TARGETS"  # the user's own profile folders, searched first
PRECISIONS = catalog.PRECISIONS

_FIELDS = {
    "name": str, "description": str, "backend": str, "precision": str, "threads": int,
    "layout": str, "trt_version_min": str, "trt_version_max": str, "compute_capability": str,
    "jetpack": str, "workspace_mb": int, "batch_min": int, "batch_opt": int, "batch_max": int,
    "builder_optimization_level": int, "dla_cores": int, "notes": str,
}
_REQUIRED = ("name", "backend", "precision")


@dataclass
class TargetProfile:
    name: str
    backend: str  # onnxruntime | tflite | tensorrt
    precision: str = "fp32"
    description: str = ""
    threads: int | None = None
    layout: str | None = None
    trt_version_min: str | None = None
    trt_version_max: str | None = None
    compute_capability: str | None = None
    jetpack: str | None = None
    workspace_mb: int | None = None
    batch_min: int = 1
    batch_opt: int = 1
    batch_max: int = 32
    builder_optimization_level: int = 3
    dla_cores: int = 0
    notes: str = ""
    file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_device(self) -> bool:
        return self.file is not None


def _validate(data: dict[str, Any], where: str) -> TargetProfile:
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: a profile must be a TOML table")
    unknown = set(data) - set(_FIELDS)
    if unknown:
        raise ProfileError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_FIELDS)}")
    for key in _REQUIRED:
        if key not in data:
            raise ProfileError(f"{where}: missing required key '{key}'")
    for key, value in data.items():
        want = _FIELDS[key]
        if not isinstance(value, want) or isinstance(value, bool):
            raise ProfileError(f"{where}: '{key}' must be a {want.__name__}, "
                               f"got {type(value).__name__} {value!r}")
    try:
        data["backend"] = catalog.canonical(data["backend"])
    except UnknownTargetError as exc:
        raise ProfileError(f"{where}: {exc}") from None
    if data["precision"] not in PRECISIONS:
        raise ProfileError(f"{where}: precision must be one of {PRECISIONS}, got {data['precision']!r}")
    if "layout" in data and data["layout"] not in ("NCHW", "NHWC"):
        raise ProfileError(f"{where}: layout must be NCHW or NHWC")
    if data.get("threads", 1) < 1 or data.get("workspace_mb", 1) < 1:
        raise ProfileError(f"{where}: threads and workspace_mb must be positive")
    b = (data.get("batch_min", 1), data.get("batch_opt", 1), data.get("batch_max", 32))
    if not (1 <= b[0] <= b[1] <= b[2]):
        raise ProfileError(f"{where}: needs 1 <= batch_min <= batch_opt <= batch_max, got {b}")
    for key in ("trt_version_min", "trt_version_max"):
        if key in data:
            parts = data[key].split(".")
            if not all(p.isdigit() for p in parts) or len(parts) > 3:
                raise ProfileError(f"{where}: {key} must look like '10.3', got {data[key]!r}")
    return TargetProfile(**data)


def load_profile_file(path: str | os.PathLike) -> TargetProfile:
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise UnknownTargetError(f"profile file {p} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{p}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ProfileError(f"{p}: cannot read: {exc.strerror}") from None
    prof = _validate(data, str(p))
    prof.file = str(p)
    return prof


def profile_dirs() -> list[Path]:
    """The user's folders ($EDGECNN_TARGETS) in their order, then the shipped one."""
    user = [Path(p).expanduser() for p in os.environ.get(USER_PROFILES_ENV, "").split(os.pathsep)
            if p.strip()]
    for folder in user:
        if not folder.is_dir():
            raise ProfileError(f"{USER_PROFILES_ENV} names {folder}, which is not a folder; "
                               f"point it at a folder of profile .toml files")
    return user + [PROFILE_DIR]


def _profile_files() -> dict[str, Path]:
    """Profile name -> file; a user's profile hides a shipped one of the same name."""
    found: dict[str, Path] = {}
    for folder in profile_dirs():
        for p in sorted(folder.glob("*.toml")):
            found.setdefault(p.stem, p)
    return found


def list_profiles(folder: Path | None = None) -> list[TargetProfile]:
    """Every profile of ``folder``, or of all profile folders (a user's first)."""
    files = sorted(folder.glob("*.toml")) if folder is not None else _profile_files().values()
    return [load_profile_file(p) for p in files]


def resolve_target(target: str) -> TargetProfile:
    """A backend name, a profile name from targets/, or a path to a .toml profile."""
    if catalog.is_backend_name(target):
        entry = catalog.entry(target)
        return TargetProfile(name=entry.name, backend=entry.name, precision="fp32",
                             description=f"generic {entry.name}", layout=entry.default_layout)
    if target.endswith(".toml") or os.sep in target:
        return load_profile_file(target)
    files = _profile_files()
    if target in files:
        return load_profile_file(files[target])
    import difflib

    names = catalog.backend_names() + list(files)
    close = difflib.get_close_matches(target, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownTargetError(f"unknown target {target!r}{hint} (a backend: onnx, tflite, tensorrt; "
                             f"or a profile: see 'edgecnn targets'; or a path to a .toml file)")
