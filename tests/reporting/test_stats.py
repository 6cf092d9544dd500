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
