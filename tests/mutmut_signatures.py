"""Hooks for mutation runs only (tests/conftest.py imports them when mutmut is loaded).

mutmut runs a mutant's tests with `-x` in the order of a set; `pytest_collection_modifyitems` puts the fastest
first (durations from mutmut's own stats run), so a killed mutant costs its cheapest failing test, not a tour of
the slow ones. The verdict is the same in any order: the suite passes in random order (docs/testing.md).

mutmut wraps every function it mutates in a trampoline whose own signature is `(*args, **kwargs)` (it sets
`__wrapped__`, which `inspect.signature` follows and `inspect.getfullargspec` does not). Keras reads a Layer's
or Model's `__init__` with `getfullargspec` when the class is instantiated, and fails on the trampoline
(IndexError in keras/src/ops/operation.py). Before each test this gives every trampoline in keras_sac's classes
its original's signature, so Keras sees the real arguments; the mutants themselves are untouched.
"""

from __future__ import annotations

import inspect
import json
import math
import sys
from pathlib import Path

_done: set[int] = set()


def _give_signatures() -> None:
    for name, module in list(sys.modules.items()):
        if not name.startswith("keras_sac") or id(module) in _done:
            continue
        _done.add(id(module))
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != name:
                continue
            for attribute in vars(cls).values():
                wrapped = getattr(attribute, "__wrapped__", None)
                if inspect.isfunction(attribute) and wrapped is not None and "__signature__" not in vars(attribute):
                    attribute.__signature__ = inspect.signature(wrapped)


def pytest_collection_finish(session) -> None:
    _give_signatures()


def pytest_runtest_setup(item) -> None:
    _give_signatures()  # modules first imported by an earlier test


def pytest_collection_modifyitems(session, config, items) -> None:
    stats = Path("mutmut-stats.json")  # mutmut runs the tests from its mutants/ folder, where this is
    if not stats.is_file():
        return
    durations = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: durations.get(item.nodeid, math.inf))
