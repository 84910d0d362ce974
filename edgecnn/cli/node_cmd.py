"""``edgecnn node start|status``: a board joins a device lab (Ray) and says what it is.

``start`` is a thin wrapper over ``ray start``: it prints the exact ``ray start`` line it runs
(device resource, build resource, labels), so the same line works without edgecnn's CLI.
"""

from __future__ import annotations

import sys

import click

from edgecnn.cli.main import handle_errors
from edgecnn.cli.native_logs import quiet_libraries


@click.group("node")
def node() -> None:
    """Join a device lab on Ray, or list the lab's nodes (pip install 'edgecnn[fleet]').

    Ray has no authentication: keep the lab on a private network."""


@node.command("start")
@click.option("--profile", required=True,
              help="This board's device profile (edgecnn targets), e.g. raspberry-pi-5.")
@click.option("--address", default=None, metavar="HEAD:6379", help="Join the lab whose head is here.")
@click.option("--head", is_flag=True, help="Start the lab's head on this machine instead.")
@click.option("--port", type=click.IntRange(1, 65535), default=6379, show_default=True,
              help="The head's port (with --head).")
@click.option("--node-ip-address", "node_ip_address", default=None,
              help="The address other nodes reach this one at (e.g. its LAN address).")
@click.option("--build/--no-build", default=None,
              help="Advertise the build resource (default: when torch and the export extras "
                   "are installed).")
@click.option("--num-cpus", "num_cpus", type=click.IntRange(min=0), default=None,
              help="CPUs Ray may schedule here (measurements need none: they take the device).")
@click.option("--block", is_flag=True, help="Stay in the foreground (for a service unit).")
@click.option("--dry-run", "dry_run", is_flag=True, help="Print the ray start command only.")
@handle_errors
def start(profile, address, head, port, node_ip_address, build, num_cpus, block, dry_run):
    """Start Ray here advertising PROFILE (capacity 1: one measurement at a time)."""
    from edgecnn.fleet.node import NodeOptions, start_node

    rc = start_node(NodeOptions(profile, address, head, port, node_ip_address, build, num_cpus,
                                block), dry_run=dry_run, log=click.echo)
    if rc:
        sys.exit(rc)


@node.command("status")
@click.option("--cluster", default="auto", show_default=True, metavar="auto|HOST:PORT")
@handle_errors
@quiet_libraries
def status(cluster):
    """The lab's nodes: the devices each advertises, build nodes and labels."""
    from rich.console import Console
    from rich.table import Table

    from edgecnn.fleet.cluster import connect, lab_nodes

    ray = connect(cluster)
    try:
        nodes = lab_nodes()
    finally:
        ray.shutdown()
    table = Table(title=f"edgecnn lab at {cluster}")
    for h in ("node", "host", "devices", "build", "cpu flags", "backends"):
        table.add_column(h)
    for n in nodes:
        table.add_row(n.node_id[:8], n.host, ", ".join(n.devices) or "-",
                      "yes" if n.build else "-", n.labels.get("cpu-flags", "-"),
                      n.labels.get("backends", "-"))
    Console().print(table)
