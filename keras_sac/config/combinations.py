"""Settings that are fine alone but not together: each combination refused in one line naming the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keras_sac.config.values import ConfigError

if TYPE_CHECKING:
    from keras_sac.config.settings import SACConfig

QUANTILE_SETTINGS = ("n_quantiles", "top_quantiles_to_drop_per_net")


def check_combinations(c: SACConfig) -> None:
    """Settings that are fine alone but not together: one line each, naming the fix."""
    if c.target_backup == "redq" and not 1 <= c.redq_subset <= c.n_critics:
        raise ConfigError(
            f"redq_subset ({c.redq_subset}) must be between 1 and n_critics ({c.n_critics}); REDQ's "
            f"paper uses n_critics: 10, redq_subset: 2"
        )
    if c.actor_gradient == "reinforce" and c.num_actor_samples < 2:
        raise ConfigError(
            "actor_gradient: reinforce needs num_actor_samples >= 2 (its baseline is the mean of the "
            "other samples' scores); e.g. num_actor_samples: 4"
        )
    if c.use_sde and (c.actor_gradient != "reparametrize" or c.num_actor_samples > 1):
        raise ConfigError(
            "use_sde draws one noise matrix per update, shared by the whole minibatch: it needs "
            "actor_gradient: reparametrize and num_actor_samples: 1"
        )
    if c.batch_renorm_after_activation and not (c.critic_batch_renorm or c.actor_batch_renorm):
        raise ConfigError(
            "batch_renorm_after_activation places batch renorm layers: set critic_batch_renorm and/or "
            "actor_batch_renorm too, or leave it out"
        )
    if c.critic_batch_renorm and c.target_update != "none":
        raise ConfigError(
            "critic_batch_renorm scores (s, a) and (s', a') jointly in the online critics (CrossQ) and "
            "has no target critics: set target_update: none"
        )
    # rows one env's ring needs to hold a transition: compact storage keeps its next_obs in the row after,
    # and a stack of k frames stored once per row reads the k - 1 rows before it too
    rows = (c.pixels or {}).get("frame_stack", 1) + 1 if c.optimize_memory_usage else 1
    if c.buffer_size < c.n_envs * rows:
        raise ConfigError(
            f"buffer_size ({c.buffer_size}) is split between the n_envs ({c.n_envs}) envs, and each needs at "
            f"least {rows} row(s) to hold one transition: raise buffer_size"
        )
    if c.replay_buffer == "her" and (c.optimize_memory_usage or c.n_steps > 1):
        raise ConfigError(
            "replay_buffer: her relabels plain one-step transitions: set optimize_memory_usage: false and n_steps: 1"
        )
    check_network_combinations(c)
    if c.target_update == "none" and c.target_backup == "redq":
        raise ConfigError(
            "target_backup: redq draws its subset from target critics; with target_update: none use "
            "target_backup: min or mean"
        )


def check_network_combinations(c: SACConfig) -> None:
    defaults = type(c).__dataclass_fields__
    if c.critic_type == "quantile":
        if c.top_quantiles_to_drop_per_net >= c.n_quantiles:
            raise ConfigError(
                f"top_quantiles_to_drop_per_net ({c.top_quantiles_to_drop_per_net}) must be smaller than "
                f"n_quantiles ({c.n_quantiles}), or no target quantile is left; TQC's paper uses 2 of 25"
            )
        if c.target_backup != "min":
            raise ConfigError(
                f"target_backup: {c.target_backup} combines scalar critics; quantile critics back up "
                f"their truncated mixture (top_quantiles_to_drop_per_net): leave target_backup out"
            )
    else:
        changed = [k for k in QUANTILE_SETTINGS if getattr(c, k) != defaults[k].default]
        if changed:
            raise ConfigError(
                f"{', '.join(changed)} apply to quantile critics: set critic_type: quantile or leave them out"
            )
    if c.architecture == "simba":
        mlp_only = [
            k
            for k in ("critic_layer_norm", "critic_dropout", "critic_batch_renorm", "actor_batch_renorm", "init")
            if getattr(c, k) != defaults[k].default
        ]
        if mlp_only:
            raise ConfigError(
                f"{', '.join(mlp_only)} shape an mlp torso; SimBa's blocks have their own LayerNorms "
                f"and init: leave them out with architecture: simba"
            )
        for name in ("net_arch", "actor_arch", "critic_arch"):
            arch = getattr(c, name)
            if arch is not None and len(set(arch)) > 1:
                raise ConfigError(
                    f"{name} {list(arch)}: SimBa's blocks share one width (the list's length is the "
                    f"number of blocks), e.g. {name}: {[arch[0]] * len(arch)}"
                )
    if c.reset_interval is not None:
        if c.reset_interval % c.gradient_steps:
            raise ConfigError(
                f"reset_interval ({c.reset_interval}) must be a multiple of gradient_steps "
                f"({c.gradient_steps}): resets happen between training phases"
            )
        scheduled = [k for k in ("actor_learning_rate", "critic_learning_rate") if isinstance(getattr(c, k), dict)]
        if scheduled:
            raise ConfigError(
                f"reset_interval restarts the optimizers, and the schedule of {', '.join(scheduled)} "
                f"counts their steps: use a constant learning rate with resets"
            )
