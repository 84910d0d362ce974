"""``edgecnn info BUNDLE``: what a bundle holds (manifest summary)."""

from __future__ import annotations

import click

from edgecnn.cli.main import handle_errors
from edgecnn.cli.native_logs import quiet_libraries


@click.command("info")
@click.argument("bundle", type=click.Path(path_type=str))
@click.option("--verify", is_flag=True, help="Check every artifact's sha256 against the manifest.")
@click.option("--json", "as_json", is_flag=True, help="Print manifest.json as is.")
@handle_errors
@quiet_libraries
def info(bundle: str, verify: bool, as_json: bool) -> None:
    """Show the model, preprocessing, labels, tools and artifacts of BUNDLE."""
    from rich.markup import escape
    from rich.table import Table

    from edgecnn import catalog
    from edgecnn.bundle import Bundle
    from edgecnn.terminal import console, print_table

    b = Bundle.open(bundle)
    m = b.manifest
    if as_json:
        click.echo(m.to_json(), nl=False)
        return
    if verify:
        b.verify()  # ChecksumError / BundleError on the first bad file
    con = console()
    p = m.preprocess
    con.print(f"[bold]{escape(m.model)}[/bold]  bundle {escape(str(b.path))}", soft_wrap=True)
    con.print(f"source: {escape(_fmt_source(m.source))}", soft_wrap=True)
    con.print(f"input: {p.describe()}", markup=False, highlight=False, soft_wrap=True)
    shown = ", ".join(m.labels[:10]) + (f", ... ({m.num_classes} in all)" if m.num_classes > 10 else "")
    con.print(f"labels ({m.num_classes}): {shown}")
    con.print(f"created {m.created or '?'}; tools: "
              + ", ".join(f"{k} {v}" for k, v in m.tool_versions.items()))
    table = Table()  # every column but parity whole, so it fits 100 columns
    for col in ("file", "target", "size", "input", "sha256", "parity"):
        table.add_column(col, no_wrap=col != "parity")
    for a in m.artifacts:
        entry = catalog.BACKENDS.get(a.backend)
        layout = a.inputs[0].layout
        table.add_row(a.file, f"{entry.short if entry else a.backend}:{a.precision_name}",
                      human_size(a.size_bytes),
                      "x".join("N" if s == -1 else str(s) for s in a.inputs[0].shape)
                      + (f" {layout}" if layout and layout != "NCHW" else ""),
                      a.sha256[:8], parity_cell(a.details))
    print_table(con, table)
    if verify:
        con.print(f"checksums: all {len(m.artifacts)} artifacts match")


def _fmt_source(src: dict) -> str:
    keys = ("kind", "model", "weights", "file", "factory", "sha256")
    parts = [f"{k}={str(src[k])[:16] if k == 'sha256' else src[k]}" for k in keys if src.get(k)]
    return ", ".join(parts) or "?"


def human_size(n: int) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


def parity_cell(details: dict) -> str:
    """One short cell from an artifact's parity report (any backend)."""
    par = details.get("parity") if isinstance(details, dict) else None
    if not isinstance(par, dict):
        return "-"
    parts = []
    if isinstance(par.get("max_abs_diff"), (int, float)):
        parts.append(f"max|d| {par['max_abs_diff']:.1e}")
    if isinstance(par.get("cosine"), (int, float)):
        parts.append(f"cos {par['cosine']:.5f}")
    if isinstance(par.get("top1_agreement"), (int, float)):
        parts.append(f"top1 {par['top1_agreement']:.0%}")
    return ", ".join(parts) or "-"
