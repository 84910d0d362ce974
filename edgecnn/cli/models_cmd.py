"""``edgecnn models``: the zoo as a table (name, family, input, params, MACs).

Counting builds each model on the meta device (no memory, no init), and the counts are
cached per model source file, so the command costs little more than importing torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import click

from edgecnn.cli.main import handle_errors
from edgecnn.cli.native_logs import quiet_libraries


@click.command("models")
@click.option("--no-cache", is_flag=True, help="Recount parameters and MACs instead of using the cache.")
@handle_errors
@quiet_libraries
def models(no_cache: bool) -> None:
    """List the model zoo with parameter and MAC counts at the reference input size."""
    from rich.console import Console
    from rich.table import Table

    rows = zoo_summary(use_cache=not no_cache)
    table = Table(title="edgecnn model zoo (MACs per image at the reference input)")
    for col, just in (("name", "left"), ("family", "left"), ("input", "left"),
                      ("classes", "right"), ("params", "right"), ("MACs", "right")):
        table.add_column(col, justify=just)
    for r in rows:
        table.add_row(r.name, r.family, "x".join(map(str, r.input_size)), str(r.num_classes),
                      _human(r.params), _human(r.macs) if r.macs is not None else "?")
    Console().print(table)


def _human(n: int) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


@dataclass
class ZooRow:
    name: str
    family: str
    input_size: list[int]
    num_classes: int
    params: int
    macs: int | None


def cache_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "edgecnn" / "zoo_counts.json"


def _cache_key(info) -> str:
    import inspect

    from edgecnn import __version__

    try:
        src = Path(inspect.getsourcefile(info.factory) or "")
        stamp = f"{src.stat().st_mtime_ns}:{src.stat().st_size}"
    except (OSError, TypeError):
        stamp = "?"
    return f"{__version__}|{info.name}|{info.input_size}|{info.num_classes}|{stamp}"


def zoo_summary(use_cache: bool = True) -> list[ZooRow]:
    """One row per zoo model; counts on the meta device, cached by model source file."""
    from edgecnn.models import list_models

    path = cache_path()
    cache: dict = {}
    if use_cache:
        try:
            cache = json.loads(path.read_text())
        except (OSError, ValueError):
            cache = {}
    rows, changed = [], False
    for info in list_models():
        key = _cache_key(info)
        hit = cache.get(key)
        if not isinstance(hit, dict):
            hit = _count(info)
            cache[key] = hit
            changed = True
        rows.append(ZooRow(info.name, info.family, list(info.input_size), info.num_classes,
                           int(hit["params"]), hit.get("macs")))
    if changed:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(cache, indent=1))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only home only costs speed
    return rows


def _count(info) -> dict:
    import torch

    from edgecnn.models import create_model
    from edgecnn.models.profile import count_macs, count_params

    with torch.device("meta"):
        module = create_model(info.name)
    macs = None
    try:
        macs = count_macs(module, info.input_size)
    except Exception:  # a model whose forward needs real data on meta: leave MACs unknown
        macs = None
    return {"params": count_params(module), "macs": macs}
