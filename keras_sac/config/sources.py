"""Where a run's config comes from: YAML files (configs/<env>.yaml, --config), --set pairs and flags, merged
lowest precedence first and validated (config.py) before anything runs; and the env's gym.make keywords, from an
`env_kwargs:` mapping in those files or --set, then --env-kwargs, merged key by key in the same order."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping

import yaml

from keras_sac.config.settings import (
    ConfigError,
    RunConfig,
    SACConfig,
    _unknown_key,
    draw_seed,
    make_sac_config,
    to_dict,
)

CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"  # the shipped configs/<env>.yaml and presets/


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


def read_yaml(path: str | Path) -> dict:
    """Read a flat `key: value` YAML config file; a missing or malformed file raises ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    text = path.read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {yaml_error(exc, text)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must be a mapping of key: value lines")
    return data


def yaml_error(exc: yaml.YAMLError, text: str) -> str:
    """A YAML error as one line: what went wrong, where (line and column, 1-based) and that line's text."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return problem
    lines = text.splitlines()
    # a scanner error often points just past the line at fault (the next key's start): show the last non-empty
    # line at or before the mark
    row = min(mark.line, len(lines) - 1)
    while row > 0 and (not lines[row].strip() or (mark.column == 0 and row == mark.line)):
        row -= 1
    where = f"line {row + 1}" + (f", column {mark.column + 1}" if row == mark.line else "")
    hint = " (a setting is 'key: value', with a space after the colon)" if ":" not in lines[row] else ""
    return f"{problem} at {where}: {lines[row].strip()!r}{hint}"


def parse_overrides(pairs: list[str]) -> dict:
    """`["gamma=0.98", "net_arch=[64, 64]"]` -> `{"gamma": "0.98", "net_arch": "[64, 64]"}` (coerced later)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


@dataclasses.dataclass(frozen=True)
class ResolvedConfig:
    """A training run's merged, validated config (see `resolve_config`)."""

    env_id: str  # resolved (envs.resolve_env_id), "module:EnvId" for an env registered by a module
    sac: dict  # SACConfig keyword arguments (validated)
    run: RunConfig
    sources: tuple[str, ...]  # where values came from, lowest precedence first
    env_kwargs: dict = dataclasses.field(default_factory=dict)  # gym.make keyword arguments


RATES = {"actor_learning_rate": "actor", "critic_learning_rate": "critic", "alpha_learning_rate": "alpha"}


def fill_schedule_steps(sac: SACConfig, total_timesteps: int) -> SACConfig:
    """A linear or cosine schedule without `steps` runs over the whole run: its optimizer's updates in
    `total_timesteps` env steps (after learning_starts and its warm-up; the actor's and temperature's
    optimizers step once per policy_delay critic updates). Written into the config, so a resumed run keeps
    the same curve."""
    phases = math.ceil(max(total_timesteps - sac.learning_starts, 0) / (sac.train_freq * sac.n_envs))
    updates = {"critic": phases * sac.gradient_steps}
    updates["actor"] = updates["alpha"] = max(1, updates["critic"] // sac.policy_delay)
    filled: dict[str, Any] = {}
    for name, optimizer in RATES.items():
        spec = getattr(sac, name)
        if isinstance(spec, dict) and "steps" not in spec:
            filled[name] = {**spec, "steps": max(1, updates[optimizer] - spec.get("warmup_steps", 0))}
    return dataclasses.replace(sac, **filled) if filled else sac


def resolve_config(
    env_id: str,
    configs_dir: Path,
    config_file: str | None = None,
    overrides: dict | None = None,
    env_kwargs: dict | None = None,
    **explicit,
) -> ResolvedConfig:
    """Merge, lowest precedence first: dataclass defaults, `configs_dir/<env_id>.yaml` (if present),
    `config_file`, `overrides` (from --set) and `explicit` keyword values that are not None.
    `env_id` is a resolved id; a "module:" prefix is not part of the config file's name.
    """
    values, sources = {}, ["defaults"]
    make_kwargs: dict[str, Any] = {}
    env_file = configs_dir / f"{env_id.rpartition(':')[2]}.yaml"
    if env_file.is_file():
        values.update(take_env_kwargs(read_yaml(env_file), make_kwargs, f"config file {str(env_file)!r}"))
        sources.append(str(env_file))
    if config_file is not None:
        values.update(take_env_kwargs(read_yaml(config_file), make_kwargs, f"config file {config_file!r}"))
        sources.append(config_file)
    if overrides:
        values.update(take_env_kwargs(overrides, make_kwargs, "--set env_kwargs"))
        sources.append("--set")
    make_kwargs.update(env_kwargs or {})
    given = {k: v for k, v in explicit.items() if v is not None}
    if given:
        values.update(given)
        sources.append("flags")
    sac, run_values = split_known(values)
    sac_config, run = make_sac_config(**sac), RunConfig(**run_values)  # validate both now, before any run
    sac_config = fill_schedule_steps(sac_config, run.total_timesteps)
    if sac_config.seed is None:  # draw it here, so the run folder records it before training starts
        sac_config = dataclasses.replace(sac_config, seed=draw_seed())
    if sac_config.learning_starts >= run.total_timesteps:
        raise ConfigError(
            f"learning_starts ({sac_config.learning_starts}) >= total_timesteps "
            f"({run.total_timesteps}): the agent would never train; lower learning_starts"
        )
    return ResolvedConfig(env_id, to_dict(sac_config), run, tuple(sources), make_kwargs)


def take_env_kwargs(values: Mapping[str, Any], into: dict, source: str) -> dict:
    """`values` without its `env_kwargs` entry, which is merged into `into` key by key (a preset's
    `env_kwargs: {include_cfrc_ext_in_observation: false}`; through --set, as YAML text). Not a mapping: ConfigError."""
    values = dict(values)
    given = values.pop("env_kwargs", None)
    if isinstance(given, str):  # --set env_kwargs={...}
        given = parse_env_kwargs(given, source)
    if given is not None:
        if not isinstance(given, dict) or not all(isinstance(k, str) for k in given):
            raise ConfigError(
                f"{source}: env_kwargs must be a mapping of gym.make keywords, e.g. "
                f"'env_kwargs: {{ctrl_cost_weight: 0.2}}', got {given!r}"
            )
        into.update(given)
    return values


def parse_env_kwargs(text: str | None, source: str = "--env-kwargs") -> dict:
    """`--env-kwargs '{ctrl_cost_weight: 0.2}'` (a YAML/JSON mapping) -> dict; anything else is refused."""
    if not text:
        return {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{source} must be a mapping such as '{{\"ctrl_cost_weight\": 0.2}}', got {text!r}")
    return value
