"""Statistics behind every latency figure: percentiles, robust spread, settling, regressions."""

import numpy as np
import pytest

from edgecnn.bench.stats import (LatencyStats, compare_latency, pareto_front,
                                 rolling_median_settled)


def test_stats_match_numpy_on_known_samples():
    x = [1.0, 2.0, 3.0, 4.0, 100.0]
    s = LatencyStats.from_samples(x)
    assert s.n == 5
    assert s.min == 1.0 and s.max == 100.0
    assert s.mean == pytest.approx(22.0)
    assert s.std == pytest.approx(np.std(x, ddof=1))
    assert s.p50 == 3.0
    assert s.p90 == pytest.approx(np.percentile(x, 90))
    assert s.p99 == pytest.approx(np.percentile(x, 99))
    assert s.iqr == pytest.approx(4.0 - 2.0)  # the outlier does not move the IQR
    assert s.mad == pytest.approx(1.0)  # |x - 3| = 2,1,0,1,97 -> median 1


def test_percentiles_are_ordered_and_throughput_uses_mean():
    rng = np.random.default_rng(0)
    s = LatencyStats.from_samples(rng.gamma(4.0, 0.5, 1000))
    assert s.min <= s.p50 <= s.p90 <= s.p95 <= s.p99 <= s.max
    assert s.throughput(8) == pytest.approx(8 * 1000.0 / s.mean)


def test_single_sample_has_zero_spread():
    s = LatencyStats.from_samples([5.0])
    assert (s.std, s.iqr, s.mad, s.p99) == (0.0, 0.0, 0.0, 5.0)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [-1.0, 2.0], [[1.0, 2.0]]])
def test_bad_samples_are_refused(bad):
    with pytest.raises(ValueError):
        LatencyStats.from_samples(bad)


def test_dict_roundtrip():
    s = LatencyStats.from_samples([1.0, 2.0, 4.0])
    assert LatencyStats.from_dict(s.to_dict()) == s


def test_rolling_median_settles_only_when_stable():
    warming = [10.0, 8.0, 6.0, 5.0, 4.0, 3.5, 3.2, 3.1, 3.0, 3.0]
    assert not rolling_median_settled(warming, window=5)
    steady = warming + [3.0, 3.01, 2.99, 3.0, 3.02] * 2
    assert rolling_median_settled(steady, window=5, rel_tol=0.02)
    assert not rolling_median_settled(warming + [3.0] * 5, window=5, rel_tol=0.02)  # 3.1 -> 3.0
    assert not rolling_median_settled([1.0] * 9, window=5)  # needs two full windows


def _stats(center, spread, n=200, seed=0):
    rng = np.random.default_rng(seed)
    return LatencyStats.from_samples(center + spread * rng.standard_normal(n))


def test_regression_needs_both_spread_and_five_percent():
    old = _stats(10.0, 0.05)
    # +20%, far beyond the tiny spread -> regression
    assert compare_latency(old, _stats(12.0, 0.05, seed=1)).verdict == "regression"
    # +3%: beyond the spread but under the 5% floor -> same
    assert compare_latency(old, _stats(10.3, 0.05, seed=2)).verdict == "same"
    # +20% but both runs very noisy -> within k * combined spread -> same
    noisy_old, noisy_new = _stats(10.0, 3.0, seed=3), _stats(12.0, 3.0, seed=4)
    c = compare_latency(noisy_old, noisy_new, k=3.0)
    assert c.verdict == "same" and c.threshold_ms > c.delta_ms
    # faster by 20% with small spread -> improvement
    assert compare_latency(old, _stats(8.0, 0.05, seed=5)).verdict == "improvement"


def test_change_reports_deltas():
    old, new = LatencyStats.from_samples([10.0] * 5), LatencyStats.from_samples([11.0] * 5)
    c = compare_latency(old, new)
    assert c.delta_ms == pytest.approx(1.0)
    assert c.delta_pct == pytest.approx(10.0)
    assert c.threshold_ms == 0.0 and c.verdict == "regression"


def test_pareto_front():
    pts = [(10.0, 90.0), (5.0, 89.0), (2.0, 80.0), (6.0, 85.0), (12.0, 90.0), (1.0, 70.0)]
    # (6, 85) is beaten by (5, 89); (12, 90) by (10, 90)
    assert pareto_front(pts) == [5, 2, 1, 0]
    assert pareto_front([(1.0, 1.0), (1.0, 1.0)]) == [0, 1]  # ties dominate nothing


def test_noisy_but_flat_samples_settle_and_a_trend_does_not():
    rng = np.random.default_rng(0)
    flat = list(10.0 + rng.normal(0, 2.0, 40))  # 20% noise, no trend
    assert rolling_median_settled(flat, window=20, rel_tol=0.02)
    trend = list(np.linspace(30.0, 10.0, 40) + rng.normal(0, 0.1, 40))  # still warming up
    assert not rolling_median_settled(trend, window=20, rel_tol=0.02)
