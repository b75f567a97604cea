"""The machinery of a settings dataclass: `field` (a default, a one-line doc and a range rule) and `validate`
(coerce each value to its declared type, then check its rule), shared by `SACConfig` and `RunConfig`."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Callable

from keras_sac.config.coercion import coerce
from keras_sac.config.values import ConfigError


def positive(x: float) -> bool:
    return x > 0


def non_negative(x: float) -> bool:
    return x >= 0


def unit_open_closed(x: float) -> bool:  # (0, 1]
    return 0 < x <= 1


def one_of(choices: tuple[str, ...]) -> dict:
    return check(lambda v: v in choices, " or ".join(repr(c) for c in choices))


def lr_ok(value) -> bool:
    return isinstance(value, dict) or value > 0


def arch_ok(t) -> bool:
    return len(t) > 0 and all(w > 0 for w in t)


def threads_ok(value) -> bool:
    if value in ("auto", "tensorflow"):
        return True
    parts = str(value).split(",")
    return len(parts) == 2 and all(p.strip().isdigit() and int(p) >= 1 for p in parts)


def check(rule: Callable[[Any], bool], expected: str) -> dict:
    return {"rule": rule, "expected": expected}


def validate(config) -> None:
    """Coerce every field to its declared type (frozen: stored once, here) and check its range."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = coerce(f.name, getattr(config, f.name), hints[f.name])
        object.__setattr__(config, f.name, value)
        rule = f.metadata.get("rule")
        if value is not None and rule is not None and not rule(value):
            raise ConfigError(f"{f.name} = {value!r} is out of range: expected {f.metadata['expected']}")


def field(default, doc: str, check: dict | None = None):
    metadata = {"doc": doc, **(check or {})}
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults")
    return dataclasses.field(default=default, metadata=metadata)
