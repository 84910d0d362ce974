"""``edgecnn check BUNDLE [--target tensorrt] [--trt-version 10.3] [--precision P]``."""

from __future__ import annotations

import click

from edgecnn.cli.main import handle_errors
from edgecnn.cli.native_logs import quiet_libraries


@click.command()
@click.argument("bundle", type=click.Path())
@click.option("--target", default=None, help="tensorrt: preflight for TensorRT's ONNX parser. "
                                             "Without it: Q/DQ rules of the int8 ONNX only.")
@click.option("--trt-version", "trt_version", default=None,
              help="TensorRT version to check against, e.g. 10.3 or 11.0 (default: the build plan's range).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
@handle_errors
@quiet_libraries
def check(bundle, target, trt_version, precision, as_json):
    """Check a bundle's graphs on the CPU before touching a device."""
    import json

    from edgecnn.tensorrt.preflight import check_bundle

    reports = check_bundle(bundle, target=target, trt_version=trt_version, precision=precision)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in reports], indent=2))
    elif not reports:
        click.echo(f"{bundle}: nothing to check (no TensorRT-shaped int8 ONNX; use --target tensorrt for the TensorRT preflight)")
    for r in reports if not as_json else []:
        head = r.summary() if target else (f"int8 Q/DQ check: {len(r.errors)} error(s), "
                                           f"{len(r.warnings)} warning(s)\n" +
                                           "\n".join(f"  {i}" for i in r.issues))
        click.echo(head.rstrip())
    errors = sum(len(r.errors) for r in reports)
    if errors:
        raise click.ClickException(f"{errors} error(s) found; the engine would not build as it is")
