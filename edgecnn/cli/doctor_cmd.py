"""``edgecnn doctor``: which libraries and devices this machine has (imports nothing heavy)."""

from __future__ import annotations

import click

from edgecnn.cli.main import handle_errors

# (shown name, distribution names to try) - read from package metadata, never imported
PACKAGES = (
    ("edgecnn", ("edgecnn",)),
    ("numpy", ("numpy",)),
    ("torch", ("torch",)),
    ("onnx", ("onnx",)),
    ("onnxscript", ("onnxscript",)),
    ("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
    ("litert-torch", ("litert-torch",)),
    ("ai-edge-litert", ("ai-edge-litert",)),
    ("tensorrt", ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt_lean")),
    ("cuda-python", ("cuda-python", "cuda-bindings")),
)


def package_versions() -> dict[str, str | None]:
    import importlib.metadata as md
    import platform

    out: dict[str, str | None] = {"python": platform.python_version()}
    for shown, dists in PACKAGES:
        out[shown] = None
        for dist in dists:
            try:
                out[shown] = md.version(dist)
                break
            except md.PackageNotFoundError:
                continue
    return out


def litert_runtime() -> str | None:
    """Which TFLite interpreter edgecnn.runtime would use, and through which API."""
    from edgecnn.runtime.litert import compiled_model_available, litert_provider

    provider = litert_provider()
    if provider and provider.startswith("ai_edge_litert") and compiled_model_available():
        return "ai_edge_litert (CompiledModel API, XNNPACK)"
    return f"{provider} (Interpreter API)" if provider else None


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of a table.")
@handle_errors
def doctor(as_json: bool) -> None:
    """Versions of Python, edgecnn and every backend library; the platform (GPU, CUDA, Jetson)."""
    import importlib.util
    import json

    versions = package_versions()
    platform_info = None
    if importlib.util.find_spec("edgecnn.platform_info") is not None:
        from edgecnn.platform_info import probe

        try:
            platform_info = probe().to_dict()
        except Exception as exc:  # probe() promises not to raise; a doctor must not crash anyway
            platform_info = {"error": f"{type(exc).__name__}: {exc}"}
    platform_info = dict(platform_info or {}, litert_runtime=litert_runtime())
    if as_json:
        click.echo(json.dumps({"packages": versions, "platform": platform_info}, indent=2))
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
    if platform_info is not None:
        ptable = Table(title="platform")
        ptable.add_column("item")
        ptable.add_column("value")
        for k, v in platform_info.items():
            ptable.add_row(str(k), "-" if v in (None, [], {}, "") else str(v))
        con.print(ptable)
