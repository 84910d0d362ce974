"""Latency statistics: percentiles, robust spread, settling and regression tests. numpy only.

Every figure a report shows comes from :class:`LatencyStats`; the spread next to a
median is the IQR (p75 - p25) and the MAD (median absolute deviation, unscaled), both
robust to the odd slow iteration that a mean/std would smear over the whole run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

PERCENTILES = (50, 90, 95, 99)
# IQR / 1.349 and MAD * 1.4826 estimate sigma for normal data; used to combine spreads.
IQR_TO_SIGMA = 1.0 / 1.349
MAD_TO_SIGMA = 1.4826


@dataclass
class LatencyStats:
    """Summary of one target's timed iterations, in milliseconds."""

    n: int
    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    iqr: float
    mad: float

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> "LatencyStats":
        x = np.asarray(samples_ms, dtype=np.float64)
        if x.ndim != 1 or x.size == 0:
            raise ValueError("latency statistics need at least one sample")
        if not np.all(np.isfinite(x)) or np.any(x < 0):
            raise ValueError("latency samples must be finite and non-negative")
        p25, p50, p75, p90, p95, p99 = np.percentile(x, [25, 50, 75, 90, 95, 99])
        return cls(
            n=int(x.size), mean=float(x.mean()),
            std=float(x.std(ddof=1)) if x.size > 1 else 0.0,
            min=float(x.min()), p50=float(p50), p90=float(p90), p95=float(p95),
            p99=float(p99), max=float(x.max()), iqr=float(p75 - p25),
            mad=float(np.median(np.abs(x - p50))),
        )

    @property
    def sigma(self) -> float:
        """A robust estimate of the run's standard deviation (the larger of IQR and MAD based)."""
        return max(self.iqr * IQR_TO_SIGMA, self.mad * MAD_TO_SIGMA)

    def throughput(self, batch: int) -> float:
        """Images per second at this batch size (batch / mean latency)."""
        return batch * 1000.0 / self.mean if self.mean > 0 else float("inf")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LatencyStats":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def rolling_median_settled(samples_ms: Sequence[float], window: int = 10,
                           rel_tol: float = 0.02) -> bool:
    """True when the median of the last ``window`` samples moved from the median of the
    ``window`` before it by no more than ``rel_tol`` of it, or by no more than the noise
    (the standard error of a median of ``window`` samples, from the IQR): the warm-up trend
    is gone. On a noisy machine a pure relative test would never settle."""
    if window < 1:
        raise ValueError("window must be >= 1")
    if len(samples_ms) < 2 * window:
        return False
    x = np.asarray(samples_ms[-2 * window:], dtype=np.float64)
    prev, last = float(np.median(x[:window])), float(np.median(x[window:]))
    q25, q75 = np.percentile(x, [25, 75])
    noise = 1.2533 * (q75 - q25) * IQR_TO_SIGMA / np.sqrt(window)
    return abs(last - prev) <= max(rel_tol * abs(prev), noise)


@dataclass
class Change:
    """How a target's p50 moved between two runs."""

    old_p50: float
    new_p50: float
    delta_ms: float
    delta_pct: float
    threshold_ms: float  # k * combined spread
    verdict: str  # "regression" | "improvement" | "same"

    def to_dict(self) -> dict:
        return asdict(self)


def compare_latency(old: LatencyStats, new: LatencyStats, k: float = 3.0,
                    min_rel: float = 0.05) -> Change:
    """Flag a regression when the new median exceeds the old by more than ``k`` times the
    runs' combined robust spread AND by more than ``min_rel`` (5%) of the old median.

    The spread test keeps noisy targets from raising false alarms; the relative floor keeps
    very stable targets from flagging changes nobody cares about.
    """
    combined = float(np.hypot(old.sigma, new.sigma))
    delta = new.p50 - old.p50
    pct = delta / old.p50 if old.p50 > 0 else float("inf")
    threshold = k * combined
    if delta > threshold and pct > min_rel:
        verdict = "regression"
    elif -delta > threshold and -pct > min_rel:
        verdict = "improvement"
    else:
        verdict = "same"
    return Change(old_p50=old.p50, new_p50=new.p50, delta_ms=delta, delta_pct=100.0 * pct,
                  threshold_ms=threshold, verdict=verdict)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (latency, accuracy) no other point beats on both axes
    (lower latency AND higher-or-equal accuracy, one of them strictly). Sorted by latency."""
    idx = []
    for i, (lat_i, acc_i) in enumerate(points):
        dominated = any(
            (lat_j <= lat_i and acc_j >= acc_i) and (lat_j < lat_i or acc_j > acc_i)
            for j, (lat_j, acc_j) in enumerate(points) if j != i)
        if not dominated:
            idx.append(i)
    return sorted(idx, key=lambda i: points[i][0])
