"""``edgecnn build BUNDLE [--precision P] [--dla-core N]``: build the TensorRT engine on the device."""

from __future__ import annotations

import click

from edgecnn.cli.main import handle_errors
from edgecnn.cli.native_logs import quiet_libraries


@click.command()
@click.argument("bundle", type=click.Path())
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
              help="Which prepared plan to build (needed when the bundle holds several).")
@click.option("--dla-core", "dla_core", type=int, default=None,
              help="Build for this DLA core (Jetson AGX Orin / Orin NX; TensorRT 10.x, or 11.4.1+ "
                   "on JetPack 7.2.2+). The batch is fixed at the plan's opt batch.")
@handle_errors
@quiet_libraries
def build(bundle, precision, dla_core):
    """Build a strongly typed TensorRT engine from a bundle prepared with --target tensorrt."""
    from edgecnn.tensorrt.builder import build_bundle

    build_bundle(bundle, precision=precision, dla_core=dla_core, log=click.echo)
