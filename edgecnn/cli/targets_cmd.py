"""``edgecnn targets``: the device profiles in targets/*.toml."""

from __future__ import annotations

import click

from edgecnn.cli.main import handle_errors
from edgecnn.cli.native_logs import quiet_libraries


@click.command("targets")
@handle_errors
@quiet_libraries
def targets() -> None:
    """List device profiles usable as --target (plus the plain backends onnx, tflite, tensorrt)."""
    from rich.table import Table

    from edgecnn import catalog
    from edgecnn.targets import list_profiles
    from edgecnn.terminal import console, print_table

    table = Table(title="edgecnn targets (--target NAME, or a path to your own .toml)")
    # backend:precision in one column, as bench names targets, leaves room for the description
    for col in ("name", "target", "threads", "TensorRT", "batch", "description"):
        table.add_column(col, no_wrap=col != "description")
    for p in list_profiles():
        trt = ""
        if p.trt_version_min or p.trt_version_max:
            lo, hi = p.trt_version_min or "", p.trt_version_max or ""
            trt = lo if lo == hi else f"{lo}..{hi}"
        batch = f"{p.batch_min},{p.batch_opt},{p.batch_max}" if p.backend == "tensorrt" else ""
        table.add_row(p.name, f"{catalog.BACKENDS[p.backend].short}:{p.precision}",
                      str(p.threads or ""), trt, batch, p.description)
    for name in ("onnx", "tflite", "tensorrt"):
        table.add_row(name, f"{name}:fp32", "", "", "", f"generic {name} backend")
    print_table(console(), table)
