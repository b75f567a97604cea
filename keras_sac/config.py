"""Hyperparameters: one validated dataclass for the agent, one for a training run.

Field names follow Stable-Baselines3 where the concept is the same, so a config moves over unchanged.
Values arrive from Python keywords, YAML files (`configs/*.yaml`) or `--set key=value` strings; all three
go through `coerce`, so `--set buffer_size=1e6` and `buffer_size: 1000000` both give the int 1000000,
while `--set batch_size=25.5` or an unknown key is refused with one line naming the key and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml


PRECISIONS = ("float32", "mixed_bfloat16")


class ConfigError(ValueError):
    """A config key or value is wrong; the message names it and says what would be accepted."""


def _positive(x: float) -> bool:
    return x > 0


def _non_negative(x: float) -> bool:
    return x >= 0


def _unit_open_closed(x: float) -> bool:  # (0, 1]
    return 0 < x <= 1


def _check(rule: Callable[[Any], bool], expected: str) -> dict:
    return {"rule": rule, "expected": expected}


def _field(default, doc: str, check: dict | None = None):
    metadata = {"doc": doc, **(check or {})}
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults")
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters (Haarnoja et al. 2018, arXiv 1812.05905); defaults are Stable-Baselines3's."""

    learning_rate: float = _field(3e-4, "Adam step size for actor, critics and log-alpha.",
                                  _check(_positive, "a number > 0"))
    buffer_size: int = _field(1_000_000, "Replay buffer capacity in rows, one transition each (with "
                                         "optimize_memory_usage, plus one row per episode end); a ring: the "
                                         "oldest is overwritten.",
                              _check(_positive, "an integer >= 1"))
    learning_starts: int = _field(100, "Env steps of uniform random actions before the first gradient step.",
                                  _check(_non_negative, "an integer >= 0"))
    batch_size: int = _field(256, "Transitions per minibatch.", _check(_positive, "an integer >= 1"))
    tau: float = _field(0.005, "Polyak coefficient: target <- tau * online + (1 - tau) * target.",
                        _check(_unit_open_closed, "a number in (0, 1]"))
    gamma: float = _field(0.99, "Discount factor.", _check(_unit_open_closed, "a number in (0, 1]"))
    train_freq: int = _field(1, "Env steps between training phases.", _check(_positive, "an integer >= 1"))
    gradient_steps: int = _field(1, "Gradient steps per training phase.", _check(_positive, "an integer >= 1"))
    target_update_interval: int = _field(1, "Gradient steps between Polyak updates of the target critics.",
                                         _check(_positive, "an integer >= 1"))
    target_entropy: float | None = _field(None, "Entropy the temperature aims for; None means -|A| (the paper's "
                                                "heuristic, SB3's 'auto').")
    init_alpha: float = _field(1.0, "Initial temperature alpha (SB3's ent_coef 'auto_<x>' start value).",
                               _check(_positive, "a number > 0"))
    learn_alpha: bool = _field(True, "Learn alpha by gradient descent on log-alpha; False keeps init_alpha fixed.")
    net_arch: tuple[int, ...] = _field((256, 256), "Hidden layer widths, shared by actor and each critic.",
                                       _check(lambda t: len(t) > 0 and all(w > 0 for w in t),
                                              "a non-empty list of positive integers, e.g. [256, 256]"))
    n_critics: int = _field(2, "Number of Q networks; the TD target and the actor use their minimum.",
                            _check(lambda n: n >= 1, "an integer >= 1"))
    log_std_bounds: tuple[float, ...] = _field(
        (-5.0, 2.0),
        "Range of the policy's pre-tanh log-std, reached smoothly through tanh. The floor (std >= e^-5) keeps "
        "log-probs from growing without bound as the policy sharpens, which would drive alpha's loss; the "
        "ceiling (std <= e^2) is already wide enough that tanh piles the samples at +-1.",
        _check(lambda t: len(t) == 2 and t[0] < t[1], "two numbers [low, high] with low < high"))
    precision: str = _field(
        "float32",
        "Network arithmetic. 'mixed_bfloat16' runs the matmuls in bfloat16 (weights, Adam state, losses and "
        "actions stay float32): faster on CPUs with bf16 instructions (AVX512_BF16, AMX); see "
        "docs/benchmarks.md for its speed and learning parity before using it.",
        _check(lambda p: p in PRECISIONS, "'float32' or 'mixed_bfloat16'"))
    optimize_memory_usage: bool = _field(
        False, "Store each observation once in the replay buffer (a transition's next_obs is the next row's obs), "
               "about 40% fewer bytes per HalfCheetah transition; episode ends cost one extra row each.")
    seed: int | None = _field(None, "Seed for network init, action sampling, replay sampling and the env.")

    def __post_init__(self):
        _validate(self)
        if self.batch_size > self.buffer_size:
            raise ConfigError(f"batch_size ({self.batch_size}) is larger than buffer_size ({self.buffer_size}); "
                              f"lower batch_size or raise buffer_size")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Settings of one `train.py` run (the agent's own are in `SACConfig`)."""

    total_timesteps: int = _field(1_000_000, "Env steps to train for.", _check(_positive, "an integer >= 1"))
    eval_freq: int = _field(10_000, "Env steps between deterministic evaluations (0 disables them).",
                            _check(_non_negative, "an integer >= 0"))
    n_eval_episodes: int = _field(10, "Episodes per evaluation.", _check(_positive, "an integer >= 1"))
    log_interval: int = _field(1_000, "Env steps between rows of metrics.csv and TensorBoard points.",
                               _check(_positive, "an integer >= 1"))
    checkpoint_freq: int = _field(50_000, "Env steps between checkpoints of the whole agent, replay buffer "
                                          "included (0: only at the end and on SIGINT/SIGTERM).",
                                  _check(_non_negative, "an integer >= 0"))
    deterministic: bool = _field(False, "TensorFlow op determinism (tf.config.experimental.enable_op_determinism):"
                                        " with the same seed, a run killed and resumed ends with the same weights "
                                        "as the run uninterrupted.")

    def __post_init__(self):
        _validate(self)


def draw_seed() -> int:
    """A fresh non-negative 31-bit seed from the OS entropy pool."""
    import numpy as np

    return int(np.random.SeedSequence().generate_state(1)[0] >> 1)


def _validate(config) -> None:
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = coerce(f.name, getattr(config, f.name), hints[f.name])
        object.__setattr__(config, f.name, value)  # frozen: store the coerced value once, here
        rule = f.metadata.get("rule")
        if value is not None and rule is not None and not rule(value):
            raise ConfigError(f"{f.name} = {value!r} is out of range: expected {f.metadata['expected']}")


def coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert `value` (Python, YAML or command-line string) to the field's declared type, or raise."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
            return None
        return coerce(name, value, inner[0])
    if typing.get_origin(annotation) is tuple:
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list such as [256, 256], got {value!r}")
        return tuple(coerce(name, v, args[0]) for v in value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.strip().lower() in ("true", "yes", "1")
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    if annotation is int:
        number = _number(name, value, "an integer")
        if not float(number).is_integer():
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return int(number)
    if annotation is float:
        number = float(_number(name, value, "a number"))
        if not math.isfinite(number):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
        return number
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value.strip()
    raise TypeError(f"no coercion for {annotation}")  # a new field type needs a branch above


def _number(name: str, value: Any, what: str) -> float | int:
    if callable(value):  # an SB3-style schedule, progress_remaining -> value
        raise ConfigError(f"{name} must be {what}, got a callable: keras_sac has no learning-rate schedules yet "
                          f"(SB3's schedules are functions); give the constant value")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{name} must be {what}, got {value!r}")
    if isinstance(value, str):
        for parse in (int, float):  # "1_000" -> 1000, "1e6" -> 1000000.0, "nan" -> nan (refused later)
            try:
                return parse(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{name} must be {what}, got {value!r}")
    return value


# Stable-Baselines3 SAC arguments whose keras_sac equivalent has another name or form.
SB3_EQUIVALENTS = {
    "ent_coef": "SB3's ent_coef is split in two here: 'auto' is the default (learn_alpha: true), 'auto_0.1' is "
                "init_alpha: 0.1, a number 0.2 is learn_alpha: false with init_alpha: 0.2",
    "policy_kwargs": "set the network with net_arch: [256, 256] (the actor and each critic) and n_critics",
    "policy": "KerasSAC takes no policy argument: its MLP tanh-Gaussian policy is SB3's MlpPolicy",
    "tensorboard_log": "train.py writes TensorBoard files into each run folder's tb/ (tensorboard --logdir runs)",
    "verbose": "train.py prints evaluations and a progress bar; the Python API takes learn(progress_bar=True)",
    "device": "TensorFlow places ops itself (CPU here); set CUDA_VISIBLE_DEVICES=-1 to keep it off a GPU",
    "use_sde": "gSDE exploration is not available yet; SAC here explores with its tanh-Gaussian policy",
    "action_noise": "SAC explores through its stochastic policy; keras_sac has no added action noise",
    "ent_coef_lr": "the temperature uses learning_rate, as in SB3",
}


def _unknown_key(key: str, known: list[str]) -> ConfigError:
    if key in SB3_EQUIVALENTS:
        return ConfigError(f"unknown config key '{key}': {SB3_EQUIVALENTS[key]}")
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(known))}"
    return ConfigError(f"unknown config key '{key}': {hint}")


def split_known(values: Mapping[str, Any]) -> tuple[dict, dict]:
    """Split a flat mapping into (SACConfig kwargs, RunConfig kwargs); an unknown key raises ConfigError."""
    sac_keys = [f.name for f in dataclasses.fields(SACConfig)]
    run_keys = [f.name for f in dataclasses.fields(RunConfig)]
    sac, run = {}, {}
    for key, value in values.items():
        if key in sac_keys:
            sac[key] = value
        elif key in run_keys:
            run[key] = value
        else:
            raise _unknown_key(key, sac_keys + run_keys)
    return sac, run


def make_sac_config(**values) -> SACConfig:
    """`SACConfig(**values)`, with an unknown key answered by a close-name suggestion."""
    known = [f.name for f in dataclasses.fields(SACConfig)]
    for key in values:
        if key not in known:
            raise _unknown_key(key, known)
    return SACConfig(**values)


def read_yaml(path: str | Path) -> dict:
    """Read a flat `key: value` YAML config file; a missing or malformed file raises ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must be a mapping of key: value lines")
    return data


def parse_overrides(pairs: list[str]) -> dict:
    """`["gamma=0.98", "net_arch=[64, 64]"]` -> `{"gamma": "0.98", "net_arch": "[64, 64]"}` (coerced later)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def to_dict(config) -> dict:
    """A config as plain YAML/JSON-friendly values (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


@dataclasses.dataclass(frozen=True)
class ResolvedConfig:
    """A training run's merged, validated config (see `resolve_config`)."""

    env_id: str  # resolved (envs.resolve_env_id), "module:EnvId" for an env registered by a module
    sac: dict  # SACConfig keyword arguments (validated)
    run: RunConfig
    sources: tuple[str, ...]  # where values came from, lowest precedence first
    env_kwargs: dict = dataclasses.field(default_factory=dict)  # gym.make keyword arguments


def resolve_config(env_id: str, configs_dir: Path, config_file: str | None = None,
                   overrides: dict | None = None, env_kwargs: dict | None = None, **explicit) -> ResolvedConfig:
    """Merge, lowest precedence first: dataclass defaults, `configs_dir/<env_id>.yaml` (if present),
    `config_file`, `overrides` (from --set) and `explicit` keyword values that are not None.
    `env_id` is a resolved id; a "module:" prefix is not part of the config file's name.
    """
    values, sources = {}, ["defaults"]
    env_file = configs_dir / f"{env_id.rpartition(':')[2]}.yaml"
    if env_file.is_file():
        values.update(read_yaml(env_file))
        sources.append(str(env_file))
    if config_file is not None:
        values.update(read_yaml(config_file))
        sources.append(config_file)
    if overrides:
        values.update(overrides)
        sources.append("--set")
    given = {k: v for k, v in explicit.items() if v is not None}
    if given:
        values.update(given)
        sources.append("flags")
    sac, run_values = split_known(values)
    sac_config, run = make_sac_config(**sac), RunConfig(**run_values)  # validate both now, before any run
    if sac_config.seed is None:  # draw it here, so the run folder records it before training starts
        sac_config = dataclasses.replace(sac_config, seed=draw_seed())
    if sac_config.learning_starts >= run.total_timesteps:
        raise ConfigError(f"learning_starts ({sac_config.learning_starts}) >= total_timesteps "
                          f"({run.total_timesteps}): the agent would never train; lower learning_starts")
    return ResolvedConfig(env_id, to_dict(sac_config), run, tuple(sources), dict(env_kwargs or {}))


def parse_env_kwargs(text: str | None) -> dict:
    """`--env-kwargs '{ctrl_cost_weight: 0.2}'` (a YAML/JSON mapping) -> dict; anything else is refused."""
    if not text:
        return {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--env-kwargs is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"--env-kwargs must be a mapping such as '{{\"ctrl_cost_weight\": 0.2}}', got {text!r}")
    return value
