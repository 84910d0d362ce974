"""One PNG per run: accuracy vs median latency with the Pareto front marked, or, without
accuracy, a bar chart of median latency with its IQR. matplotlib with the Agg backend."""

from __future__ import annotations

import os
from pathlib import Path

from edgecnn.bench.report import BenchReport
from edgecnn.bench.stats import pareto_front


def plot_report(report: BenchReport, path: str | os.PathLike) -> Path:
    from edgecnn._lazy import require

    matplotlib = require("matplotlib", "bench", "plot benchmark results")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = [r for r in report.ok() if r.latency is not None]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    with_acc = [r for r in rows if r.top1 is not None]
    if with_acc:
        batch = min(r.batch for r in with_acc)  # accuracy does not depend on batch: one point each
        pts = [r for r in with_acc if r.batch == batch]
        xy = [(r.latency.p50, r.top1) for r in pts]
        front = set(pareto_front(xy))
        for i, (r, (x, y)) in enumerate(zip(pts, xy)):
            on = i in front
            ax.errorbar(x, y, xerr=[[r.latency.iqr / 2], [r.latency.iqr / 2]],
                        fmt="o" if on else "s", ms=8 if on else 6,
                        color="tab:red" if on else "tab:gray", capsize=3)
            # alternate above/below so neighbours with equal accuracy stay readable
            ax.annotate(r.target, (x, y), textcoords="offset points",
                        xytext=(6, 5 if i % 2 == 0 else -11), fontsize=8)
        fx = sorted((xy[i] for i in front), key=lambda p: p[0])
        ax.plot([p[0] for p in fx], [p[1] for p in fx], "--", color="tab:red",
                label="Pareto front (faster and at least as accurate)")
        ax.set_xlabel(f"p50 latency, ms (batch {batch}; bars: IQR)")
        ax.set_ylabel(f"top-1 accuracy, % ({report.data})")
        ax.set_xscale("log")
        from matplotlib.ticker import FormatStrFormatter

        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title(f"{report.model}: accuracy vs latency")
    elif rows:
        labels = [f"{r.target}\nb={r.batch}" for r in rows]
        p50 = [r.latency.p50 for r in rows]
        iqr = [r.latency.iqr / 2 for r in rows]
        bars = ax.bar(range(len(rows)), p50, yerr=iqr, capsize=3, color="tab:blue")
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in p50], fontsize=7, padding=2)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(labels, fontsize=8, rotation=30, ha="right")
        log = min(p50) > 0 and max(p50) / min(p50) > 20  # one slow target would flatten the rest
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(f"p50 latency, ms{' (log scale)' if log else ''} (bars: IQR)")
        ax.set_title(f"{report.model}: median latency per target")
    else:
        ax.text(0.5, 0.5, "no target ran", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    ax.grid(True, alpha=0.3)
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` atomically (a temporary name, then a rename) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path
