"""Names a user may type for our settings: Stable-Baselines3's arguments, abbreviations and CleanRL's names,
and the one-line answer to an unknown key (the closest settings, never the whole list)."""

from __future__ import annotations

import difflib

from keras_sac.config.values import ConfigError

# Stable-Baselines3 SAC arguments whose keras_sac equivalent has another name or form.
SB3_EQUIVALENTS = {
    "ent_coef": "SB3's ent_coef is split in two here: 'auto' is the default (learn_alpha: true), 'auto_0.1' is "
    "init_alpha: 0.1, a number 0.2 is learn_alpha: false with init_alpha: 0.2",
    "policy_kwargs": "set the networks with net_arch: [256, 256] (or actor_arch, critic_arch), activation, init "
    "and n_critics",
    "policy": "pass SB3's policy name first, as SB3 does: KerasSAC('MlpPolicy', env) (or leave it out: KerasSAC(env))",
    "verbose": "train.py prints evaluations and a progress bar; the Python API takes learn(progress_bar=True)",
    "device": "TensorFlow places ops itself (CPU here); set CUDA_VISIBLE_DEVICES=-1 to keep it off a GPU",
    "action_noise": "SAC explores through its stochastic policy; keras_sac has no added action noise",
    "ent_coef_lr": "the temperature's step size is alpha_learning_rate (default: learning_rate, as in SB3)",
}


# Abbreviations and other libraries' names (CleanRL's sac_continuous_action.py, SB3) for our settings.
ALIASES = {
    "lr": "learning_rate",
    "learning-rate": "learning_rate",
    "bs": "batch_size",
    "batch": "batch_size",
    "buffer": "buffer_size",
    "replay_size": "buffer_size",
    "discount": "gamma",
    "polyak": "tau",
    "policy_lr": "actor_learning_rate",
    "actor_lr": "actor_learning_rate",
    "q_lr": "critic_learning_rate",
    "critic_lr": "critic_learning_rate",
    "alpha_lr": "alpha_learning_rate",
    "policy_frequency": "policy_delay",
    "target_network_frequency": "target_update_interval",
    "autotune": "learn_alpha",
    "alpha": "init_alpha",
    "ent_coef_init": "init_alpha",
    "utd": "gradient_steps",
    "utd_ratio": "gradient_steps",
    "num_envs": "n_envs",
    "n_step": "n_steps",
    "steps": "total_timesteps",
    "timesteps": "total_timesteps",
    "eval_every": "eval_freq",
    "num_critics": "n_critics",
    "hidden_sizes": "net_arch",
    "layer_norm": "critic_layer_norm",
    "dropout": "critic_dropout",
}


def _unknown_key(key: str, known: list[str]) -> ConfigError:
    """One line: an SB3 argument's equivalent, an alias's name, or the few closest names (never all of them)."""
    if key in SB3_EQUIVALENTS:
        return ConfigError(f"unknown config key '{key}': {SB3_EQUIVALENTS[key]}")
    if ALIASES.get(key.lower()) in known:
        return ConfigError(f"unknown config key '{key}': did you mean '{ALIASES[key.lower()]}'?")
    ratio = {k: difflib.SequenceMatcher(None, key, k).ratio() for k in known}
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    close = [k for k in close if ratio[k] >= ratio[close[0]] - 0.1]  # the best, and those nearly as close
    if not close:  # a part of a name: 'quantiles' -> n_quantiles, top_quantiles_to_drop_per_net
        close = [k for k in known if key.lower() in k][:3]
    if close:
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?"
    else:
        hint = "see the settings tables in README.md (the fields of keras_sac.SACConfig and RunConfig)"
    return ConfigError(f"unknown config key '{key}': {hint}")
