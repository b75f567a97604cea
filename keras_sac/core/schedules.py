"""Learning-rate schedules written in YAML as small mappings (checked by `config.check_schedule`), built as
Keras `LearningRateSchedule`s.

    critic_learning_rate: {schedule: linear, end: 1.0e-5, steps: 300000}
    actor_learning_rate: {schedule: cosine, steps: 300000, warmup_steps: 5000}

A schedule is evaluated at its own optimizer's update count (Keras' `optimizer.iterations`, saved in every
checkpoint, so a resumed run continues the curve where it stopped). With `policy_delay: k` the actor's and
temperature's optimizers step once per k critic updates: their `steps` count those updates.

Keys: `schedule` (linear | cosine | exponential), `start` (default: `learning_rate`), `end` (linear and
cosine: the rate reached after `steps`, default 0 for cosine; exponential: no end), `steps` (linear and
cosine: updates from start to end, after the warm-up; exponential: updates per factor `decay_rate`),
`decay_rate` (exponential only), `warmup_steps` (default 0: updates rising linearly from 0 to `start`).
"""

from __future__ import annotations

from typing import Any, Mapping

import keras
import keras.ops as ops


def build_schedule(spec: float | Mapping[str, Any], default_start: float):
    """A constant (returned as is) or a checked schedule mapping -> a Keras `LearningRateSchedule`."""
    if not isinstance(spec, Mapping):
        return float(spec)
    start = spec.get("start", default_start)
    steps = spec["steps"]  # (train.py fills it in where a config left it out: config/sources.py)
    if spec["schedule"] == "linear":
        schedule = keras.optimizers.schedules.PolynomialDecay(start, steps, spec["end"], power=1.0)
    elif spec["schedule"] == "cosine":
        schedule = keras.optimizers.schedules.CosineDecay(start, steps, alpha=spec.get("end", 0.0) / start)
    else:
        schedule = keras.optimizers.schedules.ExponentialDecay(start, steps, spec["decay_rate"])
    if spec.get("warmup_steps", 0):
        schedule = LinearWarmup(schedule, spec["warmup_steps"], start)
    return schedule


@keras.saving.register_keras_serializable("keras_sac")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """0 -> `start` linearly over `warmup_steps` updates, then `schedule` from its own step 0."""

    def __init__(self, schedule, warmup_steps: int, start: float):
        self.schedule, self.warmup_steps, self.start = schedule, int(warmup_steps), float(start)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = self.start * (step + 1.0) / self.warmup_steps  # step 0 already moves the weights a little
        return ops.where(step < self.warmup_steps, warm, self.schedule(ops.maximum(step - self.warmup_steps, 0.0)))

    def get_config(self):
        schedule = keras.optimizers.schedules.serialize(self.schedule)
        return {"schedule": schedule, "warmup_steps": self.warmup_steps, "start": self.start}

    @classmethod
    def from_config(cls, config):
        schedule = keras.optimizers.schedules.deserialize(config["schedule"])
        return cls(schedule, config["warmup_steps"], config["start"])
