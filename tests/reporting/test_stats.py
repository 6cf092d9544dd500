import numpy as np
import pytest
from scipy import stats as scipy_stats

from rlexp.reporting.stats import estimate, improvement, iqm, probability_of_improvement


def test_iqm_by_hand():
    # 8 scores: trim 2 from each end, mean of the middle 4
    scores = np.array([100.0, 1, 2, 3, 4, 5, 6, -50])
    assert iqm(scores) == pytest.approx(np.mean([2, 3, 4, 5]))
    assert iqm(np.arange(4.0)) == pytest.approx(1.5)


def test_probability_of_improvement_by_hand():
    x, y = np.array([3.0, 5.0]), np.array([1.0, 3.0, 4.0])
    # pairs: 3>1, 3=3 (half), 3<4, 5>1, 5>3, 5>4 -> (4 + 0.5) / 6
    assert probability_of_improvement(x, y) == pytest.approx(4.5 / 6)
    assert probability_of_improvement(y, x) == pytest.approx(1.5 / 6)


def test_estimates_match_scipys_bootstrap():
    scores = np.array([480.0, 500, 500, 312, 455, 500, 401, 499, 500, 250])
    e = estimate(scores, "iqm", seed=3)
    reference = scipy_stats.bootstrap((scores,), lambda s, axis: scipy_stats.trim_mean(s, 0.25, axis=axis),
                                      n_resamples=2000, method="percentile", random_state=np.random.default_rng(3))
    assert e.value == pytest.approx(iqm(scores))
    assert (e.low, e.high) == pytest.approx(tuple(reference.confidence_interval))
    assert e.low <= e.value <= e.high
    m = estimate(scores, "mean")
    assert m.value == pytest.approx(scores.mean()) and m.low < m.value < m.high


def test_degenerate_inputs_are_stated_not_fatal():
    single = estimate([42.0], "mean")
    assert single.value == 42.0 and np.isnan(single.low) and str(single) == "42.00"
    same = estimate([500.0, 500.0, 500.0], "iqm")
    assert (same.value, same.low, same.high) == (500.0, 500.0, 500.0)


def test_improvement_interval_brackets_the_point_estimate():
    rng = np.random.default_rng(0)
    better, worse = rng.normal(1.0, 1.0, 10), rng.normal(0.0, 1.0, 10)
    e = improvement(better, worse)
    assert 0.5 < e.value <= 1.0 and e.low <= e.value <= e.high


def test_aggregate_resamples_within_each_task():
    from rlexp.reporting.stats import aggregate

    zeros, tens = np.zeros(3), np.array([9.5, 10.0, 10.0, 10.5, 11.0])
    e = aggregate([zeros, tens], "mean", seed=1)
    reference = scipy_stats.bootstrap((zeros, tens), lambda a, b, axis: np.concatenate([a, b], axis=axis).mean(axis=axis),
                                      paired=False, n_resamples=2000, method="percentile",
                                      random_state=np.random.default_rng(1))
    assert e.value == pytest.approx(np.concatenate([zeros, tens]).mean())
    assert (e.low, e.high) == pytest.approx(tuple(reference.confidence_interval))
    # stratified: every resample holds 3 runs of the first task and 5 of the second, so the
    # pooled mean stays within 5/8 of the second task's range (a pooled bootstrap would not)
    assert 5 / 8 * 9.5 <= e.low <= e.value <= e.high <= 5 / 8 * 11.0
    # a task with one run is kept as it is; one task alone is the plain bootstrap
    fixed = aggregate([tens, [20.0]], "median")
    assert fixed.value == pytest.approx(10.25) and fixed.low <= fixed.value <= fixed.high
    assert aggregate([tens], "iqm", seed=2).value == pytest.approx(estimate(tens, "iqm", seed=2).value)


def test_aggregate_improvement_averages_over_tasks():
    from rlexp.reporting.stats import aggregate_improvement

    x1, y1 = np.array([3.0, 5.0]), np.array([1.0, 3.0, 4.0])  # 4.5 / 6, as above
    x2, y2 = np.array([0.0, 0.0]), np.array([1.0, 2.0])  # 0
    e = aggregate_improvement([x1, x2], [y1, y2])
    assert e.value == pytest.approx((4.5 / 6 + 0.0) / 2)
    assert 0.0 <= e.low <= e.value <= e.high <= 0.5
