"""Aggregate statistics of runs across seeds with rliable (Agarwal et al., "Deep RL at the Edge of the Statistical
Precipice", NeurIPS 2021): the interquartile mean (IQM) with its stratified-bootstrap confidence interval, and the
probability of improvement between two configs. Used by the sweep report and the results tables."""

from __future__ import annotations

import numpy as np

from keras_sac.extras import require

REPS = 2000  # bootstrap resamples (rliable's default is 50,000; 2,000 gives CIs stable to ~1% here in a second)
CI = 0.95


def _estimates(scores: dict, func, seed: int):
    """rliable's interval estimates, reproducible: each config's resamples come from numpy's global RNG seeded with
    `seed` for it alone, and the caller's global RNG state is restored after. rliable 1.2's bootstraps draw their
    indices with `np.random.choice` and ignore the `random_state` they accept, so without this a CI changed from one
    build to the next (and with one stream for all configs, a config's CI would hang on the configs before it)."""
    require("sweep", "IQMs and bootstrap CIs", ("rliable",))
    from rliable import library as rly

    point, ci = {}, {}
    state = np.random.get_state()
    try:
        for key, value in scores.items():
            np.random.seed(seed)
            p, c = rly.get_interval_estimates({key: value}, func, reps=REPS, confidence_interval_size=CI)
            point.update(p)
            ci.update(c)
    finally:
        np.random.set_state(state)
    return point, ci


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
