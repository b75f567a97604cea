"""Coercion of a setting's value to its field's declared type: Python keywords, YAML values and `--set`
strings all pass through `coerce`, so `--set buffer_size=1e6` and `buffer_size: 1000000` both give the int
1000000, while `--set batch_size=25.5` is refused with one line naming the key."""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Mapping

import yaml

from keras_sac.config.values import ConfigError, check_pixels, check_schedule


def coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert `value` (Python, YAML or command-line string) to the field's declared type, or raise."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
            return None
        if dict in inner:  # a learning rate (a number or a schedule mapping) or pixels, from YAML or --set
            if isinstance(value, str) and value.strip().startswith("{"):
                value = _yaml_value(name, value)
            if name == "pixels":
                return check_pixels(value)
            if isinstance(value, Mapping):
                return check_schedule(name, value)
        return coerce(name, value, inner[0])
    if typing.get_origin(annotation) is tuple:
        if isinstance(value, str):
            value = _yaml_value(name, value)
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


def _yaml_value(name: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name} is not valid YAML: {str(exc).splitlines()[0]}") from None


def _number(name: str, value: Any, what: str) -> float | int:
    if callable(value):  # an SB3-style schedule, progress_remaining -> value
        raise ConfigError(
            f"{name} must be {what}, got a callable: keras_sac's schedules are mappings such as "
            f"actor_learning_rate: {{schedule: linear, end: 1.0e-5, steps: 100000}}, not functions"
        )
    if isinstance(value, Mapping) and name == "learning_rate":
        raise ConfigError(
            "learning_rate must be a number: put a schedule on actor_learning_rate, "
            "critic_learning_rate or alpha_learning_rate (each starts from learning_rate)"
        )
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
