"""`RunConfig`: the settings of one train.py run (the agent's own are `SACConfig`'s)."""

from __future__ import annotations

import dataclasses

from keras_sac.config.fields import check, field, non_negative, positive, validate


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Settings of one `train.py` run (the agent's own are in `SACConfig`)."""

    total_timesteps: int = field(1_000_000, "Env steps to train for.", check(positive, "an integer >= 1"))
    eval_freq: int = field(
        10_000,
        "Env steps between deterministic evaluations (0 disables them).",
        check(non_negative, "an integer >= 0"),
    )
    n_eval_episodes: int = field(10, "Episodes per evaluation.", check(positive, "an integer >= 1"))
    log_interval: int = field(
        1_000, "Env steps between rows of metrics.csv and TensorBoard points.", check(positive, "an integer >= 1")
    )
    checkpoint_freq: int = field(
        50_000,
        "Env steps between checkpoints of the whole agent, replay buffer "
        "included (0: only at the end and on SIGINT/SIGTERM).",
        check(non_negative, "an integer >= 0"),
    )
    video_freq: int = field(
        0,
        "Env steps between recorded evaluation episodes, one mp4 each in the run's videos/ folder (0: none).",
        check(non_negative, "an integer >= 0"),
    )
    keep_best_policy: bool = field(
        True,
        "Export the policy to the run's best_policy/ at each evaluation that beats every earlier one (that "
        "evaluation's step and return in best_policy.json), beside the last step's policy/.",
    )
    deterministic: bool = field(
        False,
        "TensorFlow op determinism (tf.config.experimental.enable_op_determinism):"
        " with the same seed, a run killed and resumed ends with the same weights "
        "as the run uninterrupted.",
    )

    def __post_init__(self):
        validate(self)
