"""quantization_report.json + a rich table: fp32 vs INT8 accuracy, agreement, size, latency."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

REPORT_FILE = "quantization_report.json"


@dataclass
class QuantReport:
    model: str
    method: str
    calibration: dict[str, Any]
    cache: str  # "computed" | "reused"
    size_bytes: dict[str, int]  # fp32 / int8
    agreement: float  # top-1 agreement INT8 vs fp32 on the calibration samples (fraction)
    parity: dict[str, Any]
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # precision -> batch -> ms
    accuracy: dict[str, Any] | None = None  # the budget result when --eval was given
    excluded_layers: list[str] = field(default_factory=list)
    qdq_violations: int = 0

    @property
    def size_ratio(self) -> float:
        return self.size_bytes["fp32"] / max(1, self.size_bytes["int8"])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size_ratio"] = round(self.size_ratio, 3)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def table(self):
        from rich.table import Table

        t = Table(title=f"{self.model}: INT8 ({self.method}) vs fp32")
        t.add_column("")
        t.add_column("fp32", justify="right")
        t.add_column("INT8", justify="right")
        if self.accuracy:
            m = self.accuracy["metric"]
            t.add_row(f"{m} on {self.accuracy['eval_spec']} (%)", f"{self.accuracy['fp32']:.2f}",
                      f"{self.accuracy['int8']:.2f} (drop {self.accuracy['drop']:.2f} pt)")
        t.add_row("top-1 agreement (calibration set)", "", f"{self.agreement:.2%}")
        t.add_row("size (KiB)", f"{self.size_bytes['fp32'] / 1024:.1f}",
                  f"{self.size_bytes['int8'] / 1024:.1f} ({self.size_ratio:.2f}x smaller)")
        for b in sorted({b for v in self.latency_ms.values() for b in v}, key=int):
            t.add_row(f"ORT latency batch {b} (ms, median)",
                      f"{self.latency_ms.get('fp32', {}).get(b, float('nan')):.3f}",
                      f"{self.latency_ms.get('int8', {}).get(b, float('nan')):.3f}")
        if self.excluded_layers:
            t.add_row("layers left in float", "", ", ".join(self.excluded_layers))
        return t

    def print(self, console=None) -> None:
        from rich.console import Console

        (console or Console(stderr=True)).print(self.table())


def median_latency_ms(sess, x: np.ndarray, runs: int = 20, warmup: int = 2,
                      budget_s: float = 0.3) -> float:
    """Median wall time of one run (a quick indication; benchmarks/ measures properly): up to
    ``runs`` runs, fewer (at least 5) once ``budget_s`` seconds are spent, so a big model at
    batch 8 does not hold the export up for seconds per graph."""
    name = sess.get_inputs()[0].name
    for _ in range(warmup):
        sess.run(None, {name: x})
    times: list[float] = []
    while len(times) < runs and (len(times) < 5 or sum(times) < budget_s):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def interleaved_latency_ms(sessions: dict, x: np.ndarray, rounds: int = 4, runs: int = 5,
                           settle: int = 5) -> dict:
    """Median wall time of one run per session, timed in interleaved rounds (the order rotated):
    a shared CPU's drift then hits every session alike. Each round first runs a session
    ``settle`` times untimed: right after another session ran, the first runs took 2-4x longer
    on a 2-core VM (the other session's thread pool still spinning), so only the ``runs`` after
    those count."""
    names = list(sessions)
    feeds = {k: {s.get_inputs()[0].name: x} for k, s in sessions.items()}
    times: dict = {k: [] for k in names}
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            s, feed = sessions[k], feeds[k]
            for _ in range(settle):
                s.run(None, feed)
            for _ in range(runs):
                t0 = time.perf_counter()
                s.run(None, feed)
                times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v) * 1e3) for k, v in times.items()}
