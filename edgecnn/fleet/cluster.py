"""Connect to a lab's Ray cluster quietly and see which devices it has.

Ray's own logs stay out of edgecnn's output: the driver does not forward worker output
(``log_to_driver=False``) and Ray's Python logger is set to errors only; the CLI's
``quiet_libraries`` catches what Ray's C++ core writes to the terminal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from edgecnn.fleet import FleetError
from edgecnn.fleet.resources import BUILD_RESOURCE, LABEL_PREFIX, device_resource, profile_of


def require_ray():
    from edgecnn._lazy import require

    return require("ray", "fleet", "run a device lab")


def connect(address: str = "auto"):
    """``ray.init`` on the lab at ``address`` ('auto': the cluster started on this machine)."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR,
                 configure_logging=True, namespace="edgecnn")
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise FleetError(f"cannot reach a Ray cluster at {address!r} ({first(exc)}); start the "
                         f"head with 'edgecnn node start --head --profile PROFILE' or pass "
                         f"--cluster HEAD:6379") from None
    logging.getLogger("ray").setLevel(logging.ERROR)
    return ray


def first(exc: BaseException) -> str:
    from edgecnn.errors import first_line

    return first_line(exc, 160)


@dataclass
class LabNode:
    node_id: str
    host: str
    devices: list[str] = field(default_factory=list)
    build: bool = False
    labels: dict[str, str] = field(default_factory=dict)


def lab_nodes() -> list[LabNode]:
    """The alive nodes, with the device profiles and build resource each advertises."""
    ray = require_ray()
    out = []
    for n in ray.nodes():
        if not n.get("Alive"):
            continue
        res = n.get("Resources") or {}
        out.append(LabNode(n["NodeID"], n.get("NodeManagerHostname") or n.get("NodeManagerAddress"),
                           sorted(p for p in map(profile_of, res) if p), BUILD_RESOURCE in res,
                           {k[len(LABEL_PREFIX):]: v for k, v in (n.get("Labels") or {}).items()
                            if k.startswith(LABEL_PREFIX)}))
    return out


def device_nodes() -> dict[str, list[str]]:
    """device profile -> ids of the alive nodes that advertise it."""
    out: dict[str, list[str]] = {}
    for node in lab_nodes():
        for d in node.devices:
            out.setdefault(d, []).append(node.node_id)
    return out


def check_devices(devices: list[str]) -> dict[str, list[str]]:
    """Every device has a node now, or a clear error (a missing one would wait forever)."""
    have = device_nodes()
    missing = [d for d in devices if d not in have]
    if missing:
        present = ", ".join(sorted(have)) or "none"
        raise FleetError(f"no node in the cluster advertises {device_resource(missing[0])} "
                         f"(devices present: {present}); on the board run 'edgecnn node start "
                         f"--profile {missing[0]} --address HEAD:6379', or drop it from --devices")
    return have
