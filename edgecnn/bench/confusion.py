"""Confusion-matrix rendering: a rich table for the terminal and a PNG (matplotlib, Agg)."""

from __future__ import annotations

import os
from pathlib import Path


def short_label(name: str, width: int = 9) -> str:
    return name if len(name) <= width else name[: width - 1] + "."


def confusion_table(result, title: str | None = None):
    """A rich Table of the confusion matrix (rows true, columns predicted by class index)."""
    from rich.table import Table

    table = Table(title=title, pad_edge=False, box=None)
    table.add_column("true \\ pred", style="bold", no_wrap=True)
    for j in range(len(result.classes)):
        table.add_column(str(j), justify="right")
    table.add_column("acc %", justify="right")
    for i, c in enumerate(result.classes):
        row = [f"[bold green]{v}[/]" if i == j else (f"[red]{v}[/]" if v else "[dim]0[/]")
               for j, v in enumerate(result.confusion[i].tolist())]
        acc = result.per_class[i]
        table.add_row(f"{i} {short_label(c, 12)}", *row, "-" if acc != acc else f"{acc:.1f}")
    return table


def save_confusion_png(result, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write the row-normalised confusion matrix with counts as a PNG; returns the path."""
    from edgecnn._lazy import require

    matplotlib = require("matplotlib", "bench", "plot the confusion matrix")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    cm = result.confusion
    totals = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)
    k = len(result.classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * k, 0.8 + 0.7 * k), dpi=110)
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(k), result.classes, rotation=45, ha="right")
    ax.set_yticks(range(k), result.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"top-1 {result.top1:.2f}% on {result.spec} (n={result.n})")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path
