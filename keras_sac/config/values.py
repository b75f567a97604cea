"""Settings whose value is a small mapping — a learning-rate schedule, the pixels wrapping — checked key by key,
and ConfigError. Used by config.py's coercion and by envs.py (pixels) without anything else of the config."""

from __future__ import annotations

from typing import Any, Mapping


class ConfigError(ValueError):
    """A config key or value is wrong; the message names it and says what would be accepted."""


SCHEDULES = ("linear", "cosine", "exponential")
_KEYS = {
    "linear": {"start", "end", "steps", "warmup_steps"},
    "cosine": {"start", "end", "steps", "warmup_steps"},
    "exponential": {"start", "steps", "decay_rate", "warmup_steps"},
}
# linear and cosine schedules may leave `steps` out: train.py then fills in the updates of the whole run
# (`sources.fill_schedule_steps`), as SB3's schedules run over the whole training.
_REQUIRED = {"linear": {"end"}, "cosine": set(), "exponential": {"steps", "decay_rate"}}


def check_schedule(name: str, spec: Mapping[str, Any], error: type[Exception] | None = None) -> dict:
    """Validate a schedule mapping; returns it with numbers coerced. Raises `error` with one line naming the fix."""
    error = error or ConfigError
    spec = dict(spec)
    kind = spec.pop("schedule", None)
    example = f"{name}: {{schedule: linear, end: 1.0e-5, steps: 100000}}"
    if kind not in SCHEDULES:
        raise error(f"{name} schedule must name 'schedule: {' | '.join(SCHEDULES)}', got {kind!r} (e.g. {example})")
    unknown = set(spec) - _KEYS[kind]
    if unknown:
        raise error(f"{name}: unknown key(s) {sorted(unknown)} for a {kind} schedule; it takes {sorted(_KEYS[kind])}")
    missing = _REQUIRED[kind] - set(spec)
    if missing:
        raise error(f"{name}: a {kind} schedule needs {sorted(missing)} (e.g. {example})")
    out: dict[str, Any] = {"schedule": kind}
    for key, value in spec.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise error(f"{name}: {key} must be a number, got {value!r}") from None
        if key in ("steps", "warmup_steps"):
            if not number.is_integer() or number < (1 if key == "steps" else 0):
                raise error(f"{name}: {key} must be an integer >= {1 if key == 'steps' else 0}, got {value!r}")
            number = int(number)
        elif not (number >= 0 and number != float("inf")) or (key in ("start", "decay_rate") and number == 0):
            raise error(f"{name}: {key} must be a finite number > 0{' or 0' if key == 'end' else ''}, got {value!r}")
        out[key] = number
    return out


PIXEL_KEYS = {
    "size": "[height, width] (or one number) of the frames, e.g. [64, 64]",
    "grayscale": "true: one channel per frame",
    "frame_stack": "frames per observation, e.g. 3",
}


def check_pixels(pixels, error: type[Exception] | None = None) -> dict:
    """Validate a `pixels` mapping; returns it complete ({size: [h, w], grayscale, frame_stack})."""
    error = error or ConfigError
    if pixels is True or (isinstance(pixels, str) and pixels.strip().lower() in ("true", "yes")):
        pixels = {}  # `pixels: true`: the defaults
    if not isinstance(pixels, dict):
        raise error(
            f"pixels must be a mapping such as {{size: [64, 64], grayscale: true, frame_stack: 3}}, got {pixels!r}"
        )
    unknown = set(pixels) - set(PIXEL_KEYS)
    if unknown:
        raise error(f"pixels: unknown key(s) {sorted(unknown)}; it takes {sorted(PIXEL_KEYS)}")
    size = pixels.get("size", [64, 64])
    size = [size, size] if isinstance(size, (int, float)) and not isinstance(size, bool) else size
    if not (
        isinstance(size, (list, tuple))
        and len(size) == 2
        and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and float(x).is_integer() and x >= 16 for x in size
        )
    ):
        raise error(f"pixels: size must be [height, width] of integers >= 16 (or one integer), got {size!r}")
    grayscale = pixels.get("grayscale", True)
    if not isinstance(grayscale, bool):
        raise error(f"pixels: grayscale must be true or false, got {grayscale!r}")
    stack = pixels.get("frame_stack", 3)
    if isinstance(stack, bool) or not isinstance(stack, (int, float)) or not float(stack).is_integer() or stack < 1:
        raise error(f"pixels: frame_stack must be an integer >= 1, got {stack!r}")
    return {"size": [int(size[0]), int(size[1])], "grayscale": grayscale, "frame_stack": int(stack)}
