"""Confusion-matrix rendering: a rich table for the terminal and a PNG (matplotlib, Agg).

A model of many classes (ImageNet's 1,000) shows only the classes that occur in the data or
the predictions, at most MAX_SHOWN of them.
"""

from __future__ import annotations

import os
from pathlib import Path

MAX_SHOWN = 30


def shown_classes(result, limit: int = MAX_SHOWN) -> list[int]:
    """Class indices to draw: all of them up to ``limit``, else those that occur as true or
    predicted class (the ``limit`` most frequent true classes when more occur)."""
    import numpy as np

    cm = result.confusion
    if len(result.classes) <= limit:
        return list(range(len(result.classes)))
    seen = np.flatnonzero(cm.sum(axis=1) + cm.sum(axis=0))
    if len(seen) > limit:
        seen = np.sort(seen[np.argsort(-cm.sum(axis=1)[seen], kind="stable")[:limit]])
    return seen.tolist()


def short_label(name: str, width: int = 9) -> str:
    return name if len(name) <= width else name[: width - 1] + "."


def confusion_table(result, title: str | None = None):
    """A rich Table of the confusion matrix (rows true, columns predicted by class index)."""
    from rich.table import Table

    shown = shown_classes(result)
    if len(shown) < len(result.classes):
        title = f"{title or 'confusion matrix'} ({len(shown)} of {len(result.classes)} classes)"
    table = Table(title=title, pad_edge=False, box=None)
    table.add_column("true \\ pred", style="bold", no_wrap=True)
    for j in shown:
        table.add_column(str(j), justify="right")
    table.add_column("acc %", justify="right")
    for i in shown:
        row = [f"[bold green]{v}[/]" if i == j else (f"[red]{v}[/]" if v else "[dim]0[/]")
               for j, v in ((j, int(result.confusion[i, j])) for j in shown)]
        acc = result.per_class[i]
        table.add_row(f"{i} {short_label(result.classes[i], 12)}", *row,
                      "-" if acc != acc else f"{acc:.1f}")
    return table


def save_confusion_png(result, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write the row-normalised confusion matrix with counts as a PNG; returns the path."""
    from edgecnn._lazy import require

    matplotlib = require("matplotlib", "bench", "plot the confusion matrix")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    shown = shown_classes(result)
    totals = result.confusion.sum(axis=1, keepdims=True)[shown]
    cm = result.confusion[np.ix_(shown, shown)]
    norm = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)
    names = [result.classes[i] for i in shown]
    k = len(shown)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * k, 0.8 + 0.7 * k), dpi=110)
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
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
