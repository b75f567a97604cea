"""The update metrics of training phases: as Python floats, and averaged over the phases between two log rows
(as SB3 averages its logged values over gradient steps)."""

from __future__ import annotations

import numpy as np


def metric_values(metrics: dict) -> dict[str, float]:
    """An update's metrics as Python floats; the per-critic mean Q becomes one key per critic, numbered from 1
    (`train/mean_q_1`, ...)."""
    out = {}
    for key, value in metrics.items():
        value = np.asarray(value)
        if key == "train/mean_q_per_critic":
            out.update({f"train/mean_q_{i + 1}": float(q) for i, q in enumerate(value)})
        else:
            out[key] = float(value)
    return out


class UpdateMetrics:
    """The update metrics of the training phases since the last `clear()`, averaged when read (as SB3 averages
    its logged values over gradient steps). Adding keeps the phase's tensors (a list append, no conversion on
    the training path); reading converts them once. Past `cap` phases the list is folded into its mean.

    Inactive until a metrics logger asks for it (`active = True`): reading costs ~7 tensor conversions per
    phase, which a `learn()` that logs nothing should not pay.
    """

    def __init__(self, cap: int = 4096):
        self.cap, self.active = cap, False
        self._phases: list[dict] = []  # each phase's metrics: tensors, or an earlier fold's float arrays
        self._weights: list[int] = []  # phases each entry stands for

    def add(self, metrics: dict) -> None:
        if not self.active:
            return
        self._phases.append(metrics)
        self._weights.append(1)
        if len(self._phases) >= self.cap:
            self.restore(self.state())

    def __len__(self) -> int:
        return sum(self._weights)

    def _means(self) -> dict[str, np.ndarray]:
        weights = np.asarray(self._weights, np.float64)
        return {
            # (.numpy() per tensor, then one array: 3x faster than np.asarray on each tensor)
            key: np.tensordot(weights, np.array([_numpy(p[key]) for p in self._phases], np.float64), 1) / weights.sum()
            for key in (self._phases[0] if self._phases else {})
        }

    def mean(self) -> dict[str, float]:
        """metric_values of the phases' weighted mean ({} if none was added since the last clear)."""
        return metric_values(self._means())

    def clear(self) -> None:
        self._phases, self._weights = [], []

    def state(self) -> dict:
        """{"phases": n, "mean": {key: float or list}} (JSON) for a checkpoint: a resumed run's next row
        averages the same updates as the uninterrupted run's."""
        return {"phases": len(self), "mean": {k: v.tolist() for k, v in self._means().items()}}

    def restore(self, state: dict) -> None:
        self.clear()
        if state["phases"]:
            self._phases = [{k: np.asarray(v, np.float64) for k, v in state["mean"].items()}]
            self._weights = [int(state["phases"])]


def _numpy(value):
    return value.numpy() if hasattr(value, "numpy") else value
