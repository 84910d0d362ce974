"""What a lab node advertises to Ray: a custom resource per device profile (capacity 1, so one
measurement at a time per board), a build resource where torch and the export extras are
installed, and labels for the profile, CPU flags and installed backends. Ray-free."""

from __future__ import annotations

import re

from edgecnn.fleet import FleetError

RESOURCE_PREFIX = "edgecnn/"
BUILD_RESOURCE = "edgecnn/build"  # a node that can export and prepare bundles (torch + onnx)
LABEL_PREFIX = "edgecnn.io/"
BUILD_MODULES = ("torch", "onnx", "onnxscript")
# CPU flags worth a label: what int8 and fp32 speed hang on (x86 flags, Arm features)
CPU_LABEL_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8",
                   "asimddp", "i8mm", "asimdhp", "sve", "sve2")
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")


def device_resource(profile: str) -> str:
    """The Ray resource of a device profile: ``edgecnn/jetson-orin-nano``."""
    return RESOURCE_PREFIX + profile


def profile_of(resource: str) -> str | None:
    """The device profile a resource name stands for (None: not a device resource)."""
    if not resource.startswith(RESOURCE_PREFIX) or resource == BUILD_RESOURCE:
        return None
    return resource[len(RESOURCE_PREFIX):]


def device_profile(name: str):
    """The device profile ``name`` (targets/*.toml or a .toml path); a backend name is refused."""
    from edgecnn.targets import resolve_target

    profile = resolve_target(name)
    if not profile.is_device:
        raise FleetError(f"{name!r} is a backend, not a device profile; pass a profile from "
                         f"'edgecnn targets' (e.g. raspberry-pi-5) or a .toml file")
    if not _LABEL_VALUE.fullmatch(profile.name):
        raise FleetError(f"device profile name {profile.name!r} cannot be a Ray label: use "
                         f"letters, digits, '-', '_' and '.' (63 characters at most)")
    return profile


def installed_backends() -> list[str]:
    """Backends whose runtime library is importable here (what ``edgecnn doctor`` shows)."""
    from edgecnn import catalog
    from edgecnn._lazy import available

    return [name for name, entry in catalog.BACKENDS.items() if available(entry.runtime.module)]


def can_build() -> bool:
    """torch and the export extras are installed: this node can export bundles."""
    from edgecnn._lazy import available

    return all(available(m) for m in BUILD_MODULES)


def label_value(items: list[str]) -> str:
    """A list as one Ray label value ('avx2.fma'; 'none' when empty): values allow no commas."""
    value = ".".join(items) or "none"
    return value if _LABEL_VALUE.fullmatch(value) else "invalid"


def node_resources(profile: str, build: bool) -> dict[str, float]:
    out = {device_resource(profile): 1.0}
    if build:
        out[BUILD_RESOURCE] = 1.0
    return out


def node_labels(profile: str) -> dict[str, str]:
    """Labels for ``ray start --labels``: profile, CPU flags and installed backends."""
    from edgecnn.platform_info import cpu_flags

    return {LABEL_PREFIX + "profile": profile,
            LABEL_PREFIX + "cpu-flags": label_value(cpu_flags(keep=CPU_LABEL_FLAGS)),
            LABEL_PREFIX + "backends": label_value(installed_backends())}
