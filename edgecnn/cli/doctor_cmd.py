"""``edgecnn doctor``: which libraries and devices this machine has (imports nothing heavy)."""

from __future__ import annotations

import click

from edgecnn.cli.main import handle_errors
from edgecnn.cli.native_logs import quiet_libraries


def package_versions() -> dict[str, str | None]:
    """Python, then every library edgecnn records (edgecnn.catalog.packages()); None if absent.
    Read from package metadata (edgecnn.platform_info.package_versions), never imported."""
    import platform

    from edgecnn.catalog import packages
    from edgecnn.platform_info import package_versions as installed

    found = installed()
    return {"python": platform.python_version(), **{shown: found.get(shown) for shown, _ in packages()}}


def litert_runtime() -> str | None:
    """Which TFLite interpreter edgecnn.runtime would use, and through which API."""
    from edgecnn.runtime.litert import compiled_model_available, litert_provider

    provider = litert_provider()
    if provider and provider.startswith("ai_edge_litert") and compiled_model_available():
        return "ai_edge_litert (CompiledModel API, XNNPACK)"
    return f"{provider} (Interpreter API)" if provider else None


def cuda_check(machine) -> dict:
    """cuda-python, driver and TensorRT CUDA majors, and what to install when they disagree."""
    import dataclasses

    from edgecnn.tensorrt.cuda_compat import check, probe_stack

    try:
        stack = probe_stack(machine)
    except Exception as exc:  # noqa: BLE001 - a doctor must not crash
        return {"error": f"{type(exc).__name__}: {exc}", "problems": []}
    return {**dataclasses.asdict(stack), "problems": check(stack)}


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of a table.")
@handle_errors
@quiet_libraries
def doctor(as_json: bool) -> None:
    """Versions of Python, edgecnn and every backend library; the platform (GPU, CUDA, Jetson)."""
    import json

    from edgecnn.platform_info import probe

    versions = package_versions()
    try:
        machine = probe()
        platform_info = machine.to_dict()
    except Exception as exc:  # probe() promises not to raise; a doctor must not crash anyway
        machine, platform_info = None, {"error": f"{type(exc).__name__}: {exc}"}
    platform_info = dict(platform_info, litert_runtime=litert_runtime())
    cuda = cuda_check(machine)
    if as_json:
        click.echo(json.dumps({"packages": versions, "platform": platform_info, "cuda_check": cuda},
                              indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="edgecnn doctor")
    table.add_column("package")
    table.add_column("version")
    for name, v in versions.items():
        table.add_row(name, v or "[dim]not installed[/dim]")
    con = Console()
    con.print(table)
    ptable = Table(title="platform")
    ptable.add_column("item")
    ptable.add_column("value")
    for k, v in platform_info.items():
        ptable.add_row(str(k), "-" if v in (None, [], {}, "") else str(v))
    con.print(ptable)
    for problem in cuda["problems"]:
        con.print(f"[red]CUDA mismatch:[/red] {problem}", highlight=False)
