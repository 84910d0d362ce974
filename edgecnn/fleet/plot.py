"""One PNG for a lab run: median latency per target, grouped by device (bars: IQR)."""

from __future__ import annotations

import os
from pathlib import Path


def plot_lab(reports: dict, path: str | os.PathLike) -> Path:
    from edgecnn._lazy import require
    from edgecnn.bench.plot import save_figure

    matplotlib = require("matplotlib", "bench", "plot benchmark results")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = sorted({(r.target, r.batch) for rep in reports.values() for r in rep.ok()})
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(reports) * max(1, len(cells))), 4.5),
                           dpi=120)
    width = 0.8 / max(1, len(cells))
    for i, (target, batch) in enumerate(cells):
        xs, p50, iqr = [], [], []
        for k, rep in enumerate(reports.values()):
            row = next((r for r in rep.ok() if (r.target, r.batch) == (target, batch)), None)
            if row is not None and row.latency is not None:
                xs.append(k + (i - (len(cells) - 1) / 2) * width)
                p50.append(row.latency.p50)
                iqr.append(row.latency.iqr / 2)
        ax.bar(xs, p50, width, yerr=iqr, capsize=3, label=f"{target} b={batch}")
    ax.set_xticks(range(len(reports)))
    ax.set_xticklabels(list(reports), fontsize=9)
    ax.set_ylabel("p50 latency, ms (bars: IQR)")
    model = next(iter(reports.values())).model if reports else ""
    ax.set_title(f"{model}: median latency per device")
    if cells:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no cell ran", ha="center", va="center", transform=ax.transAxes)
    ax.grid(True, axis="y", alpha=0.3)
    return save_figure(fig, path)
