"""``edgecnn node start``: a thin wrapper over ``ray start``.

It adds what a lab node advertises (:mod:`edgecnn.fleet.resources`) to Ray's own command line
and runs it; the same line is printed so a board can also join with plain ``ray start``.
Ray has no authentication: a lab cluster belongs on a private network (docs/fleet.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from edgecnn.fleet import FleetError
from edgecnn.fleet.resources import can_build, device_profile, node_labels, node_resources


@dataclass
class NodeOptions:
    profile: str
    address: str | None = None  # HEAD:6379 to join; None with head=True starts the head
    head: bool = False
    port: int = 6379
    node_ip_address: str | None = None  # the address other nodes reach this one at
    build: bool | None = None  # advertise edgecnn/build; default: when torch + onnx are here
    num_cpus: int | None = None
    block: bool = False  # stay in the foreground (for systemd units)


def ray_executable() -> str:
    """The ``ray`` script of this Python environment (the one edgecnn runs in)."""
    here = Path(sys.executable).parent / "ray"
    found = str(here) if here.is_file() else shutil.which("ray")
    if not found:
        raise FleetError("the 'ray' command is not installed here; install the lab extra: "
                         "pip install 'edgecnn[fleet]'")
    return found


def ray_start_command(options: NodeOptions, ray: str = "ray") -> list[str]:
    """The ``ray start`` argument list for ``options`` (checked: a real device profile, an
    address or --head, not both)."""
    if options.head == bool(options.address):
        raise FleetError("give either --address HEAD:6379 (join a lab) or --head (start one)")
    profile = device_profile(options.profile)
    build = can_build() if options.build is None else options.build
    cmd = [ray, "start"]
    cmd += ["--head", f"--port={options.port}"] if options.head else [f"--address={options.address}"]
    if options.node_ip_address:
        cmd.append(f"--node-ip-address={options.node_ip_address}")
    if options.num_cpus is not None:
        cmd.append(f"--num-cpus={options.num_cpus}")
    cmd.append("--resources=" + json.dumps(node_resources(profile.name, build),
                                           separators=(",", ":")))
    cmd.append("--labels=" + ",".join(f"{k}={v}" for k, v in node_labels(profile.name).items()))
    if options.block:
        cmd.append("--block")
    return cmd


def start_node(options: NodeOptions, dry_run: bool = False, log=print) -> int:
    """Print and run the ``ray start`` line; returns its exit status."""
    cmd = ray_start_command(options, ray_executable() if not dry_run else "ray")
    log(" ".join(_quote(c) for c in cmd))
    if dry_run:
        return 0
    return subprocess.call(cmd)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)
