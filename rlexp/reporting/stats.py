"""Aggregate scores with 95% bootstrap confidence intervals (Agarwal et al. 2021, "Deep RL
at the Edge of the Statistical Precipice": report the interquartile mean and intervals,
not a mean over a handful of seeds).

The resampling is scipy's (``scipy.stats.bootstrap``, percentile intervals); rlexp only
chooses the statistics. Across several tasks (Atari games) the bootstrap is stratified, as
rliable's: each task's runs are resampled on their own (``paired=False`` over one sample per
task), so every resample keeps each task's number of runs. scipy rather than rliable: the same method for one task's runs,
without rliable's pandas/statsmodels/arch/seaborn dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 2000


def iqm(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% of the scores (25% trimmed from each end)."""
    return stats.trim_mean(scores, 0.25, axis=axis)


def probability_of_improvement(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 for a random run of each: the Mann-Whitney U statistic over n*m."""
    x, y = np.moveaxis(np.asarray(x), axis, -1), np.moveaxis(np.asarray(y), axis, -1)
    greater = (x[..., :, None] > y[..., None, :]).mean(axis=(-2, -1))
    ties = (x[..., :, None] == y[..., None, :]).mean(axis=(-2, -1))
    return greater + 0.5 * ties


@dataclass
class Estimate:
    """A point estimate and its confidence interval (NaN where fewer than 2 runs)."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        if np.isnan(self.low):
            return f"{self.value:.2f}"
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


STATISTICS = {"mean": np.mean, "median": np.median, "iqm": iqm}


def estimate(scores, statistic: str, seed: int = 0) -> Estimate:
    """``statistic`` (mean, median or iqm) of the scores with a 95% bootstrap CI."""
    scores = np.asarray(scores, dtype=np.float64)
    fn = STATISTICS[statistic]
    value = float(fn(scores))
    if len(scores) < 2 or np.all(scores == scores[0]):
        spread = np.nan if len(scores) < 2 else value  # all equal: a degenerate (zero-width) interval
        return Estimate(value, spread, spread)
    result = stats.bootstrap((scores,), lambda s, axis: fn(s, axis=axis), confidence_level=CONFIDENCE,
                             n_resamples=RESAMPLES, method="percentile", random_state=np.random.default_rng(seed))
    return Estimate(value, float(result.confidence_interval.low), float(result.confidence_interval.high))


def improvement(x, y, seed: int = 0) -> Estimate:
    """Probability that a run of X scores higher than a run of Y, with a 95% bootstrap CI
    (X and Y resampled independently)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    value = float(probability_of_improvement(x, y))
    if len(x) < 2 or len(y) < 2:
        return Estimate(value, np.nan, np.nan)
    result = stats.bootstrap((x, y), probability_of_improvement, confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                             method="percentile", paired=False, random_state=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return Estimate(value, float(low), float(high))


def _pooled(fn):
    """A statistic of the scores of all tasks together, for scipy's bootstrap over one sample per task."""
    return lambda *samples, axis: fn(np.concatenate(samples, axis=axis), axis=axis)


def aggregate(scores_by_task, statistic: str, seed: int = 0) -> Estimate:
    """``statistic`` of the (normalized) scores of all runs on all tasks, with a 95% stratified
    bootstrap CI: runs are resampled within each task. A task with a single run stays fixed."""
    samples = [np.asarray(s, dtype=np.float64) for s in scores_by_task]
    fn = STATISTICS[statistic]
    value = float(fn(np.concatenate(samples)))
    varying = [s for s in samples if len(s) >= 2]
    if not varying or all(np.all(s == s[0]) for s in varying):
        spread = np.nan if not varying else value
        return Estimate(value, spread, spread)
    fixed = [s for s in samples if len(s) < 2]
    pooled = _pooled(fn)
    result = stats.bootstrap(tuple(varying), lambda *v, axis: pooled(*v, *(
        np.broadcast_to(f, v[0].shape[:-1] + f.shape) for f in fixed), axis=axis),
        confidence_level=CONFIDENCE, n_resamples=RESAMPLES, method="percentile", paired=False,
        random_state=np.random.default_rng(seed))
    return Estimate(value, float(result.confidence_interval.low), float(result.confidence_interval.high))


def aggregate_improvement(x_by_task, y_by_task, seed: int = 0) -> Estimate:
    """The average over tasks of P(a run of X > a run of Y) on that task (rliable's), with a 95%
    stratified bootstrap CI: X's and Y's runs resampled within each task."""
    pairs = [(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)) for x, y in zip(x_by_task, y_by_task)]
    value = float(np.mean([probability_of_improvement(x, y) for x, y in pairs]))
    if any(len(x) < 2 or len(y) < 2 for x, y in pairs):
        return Estimate(value, np.nan, np.nan)

    def average(*samples, axis):
        return np.mean([probability_of_improvement(x, y, axis=axis) for x, y in zip(samples[::2], samples[1::2])], axis=0)

    result = stats.bootstrap(tuple(a for pair in pairs for a in pair), average, confidence_level=CONFIDENCE,
                             n_resamples=RESAMPLES, method="percentile", paired=False,
                             random_state=np.random.default_rng(seed))
    return Estimate(value, float(result.confidence_interval.low), float(result.confidence_interval.high))


def curve_band(scores: np.ndarray, statistic: str = "mean", seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column (an eval step) of ``scores`` (runs, steps): the statistic and its CI band."""
    scores = np.asarray(scores, dtype=np.float64)
    values, lows, highs = [], [], []
    for column in scores.T:
        e = estimate(column[~np.isnan(column)], statistic, seed)
        values.append(e.value)
        lows.append(e.low)
        highs.append(e.high)
    return np.array(values), np.array(lows), np.array(highs)
