"""Aggregate statistics of runs across seeds with rliable (Agarwal et al., "Deep RL at the Edge of the Statistical
Precipice", NeurIPS 2021): the interquartile mean (IQM) with its stratified-bootstrap confidence interval, and the
probability of improvement between two configs. Used by the sweep report and the results tables."""

from __future__ import annotations

import warnings

import numpy as np

from keras_sac.extras import require

REPS = 2000  # bootstrap resamples (rliable's default is 50,000; 2,000 gives CIs stable to ~1% here in a second)
CI = 0.95


def _estimates(scores: dict, func, seed: int):
    """rliable's interval estimates, reproducible (a seeded RandomState; arch's notice about it is silenced)."""
    require("sweep", "IQMs and bootstrap CIs", ("rliable",))
    from rliable import library as rly

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="random_state is deprecated")
        return rly.get_interval_estimates(
            scores, func, reps=REPS, confidence_interval_size=CI, random_state=np.random.RandomState(seed)
        )


def interval(scores: dict[str, np.ndarray], seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """IQM and its stratified-bootstrap CI per config: {label: (iqm, low, high)}; scores are (runs, tasks)."""
    from rliable import metrics

    point, ci = _estimates(scores, lambda x: np.array([metrics.aggregate_iqm(x)]), seed)
    return {k: (float(point[k][0]), float(ci[k][0][0]), float(ci[k][1][0])) for k in scores}


def improvement(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """P(X > Y) (rliable's probability of improvement, ties count half) with its bootstrap CI."""
    from rliable import metrics

    point, ci = _estimates({"xy": (x, y)}, metrics.probability_of_improvement, seed)
    low, high = np.ravel(ci["xy"])
    return float(np.ravel(point["xy"])[0]), float(low), float(high)
