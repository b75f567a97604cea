"""Gymnasium glue: making envs with clear errors, checking spaces, mapping actions to env bounds."""

from __future__ import annotations

import difflib
import importlib
import json
import os
import warnings

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import find_highest_version, get_env_id, parse_env_id

from keras_sac.config.values import check_pixels
from keras_sac.core.spaces import EnvSpec, ObsError, obs_spec
from keras_sac.envs import goal
from keras_sac.envs.remote import RemoteEnv, is_mujoco_env, renders_with_mujoco
from keras_sac.extras import require

PIXELS = "pixels (observing an env through its frames)"  # what needs the [pixels] extra
_in_env_worker = False  # True inside an env child process (make_worker_env): render in-process there


class EnvError(ValueError):
    """An env id or space keras_sac cannot work with; the message says why and what would work."""


def resolve_env_id(env_id: str) -> tuple[str, list[str]]:
    """The exact registered id that `env_id` names, and one-line notes for the user.

    An unversioned id ("HalfCheetah") becomes its latest version ("HalfCheetah-v5"), as gym.make would
    pick, so that config lookup, run folder and metadata all use the same id; an old version is kept but
    noted. "module:EnvId" imports `module` first (where a custom env registers itself) and keeps the
    prefix, so the id can be made again in a new process.
    """
    if not isinstance(env_id, str) or not env_id.strip():
        raise EnvError(f"env must be a Gymnasium env or a registered env id string, got {env_id!r}")
    goal.register()  # keras_sac's own ids (keras_sac/PointGoal-v0)
    module, _, name = env_id.strip().rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise EnvError(
                f"cannot import module '{module}' of env '{env_id}' ({exc}): make it importable "
                f"(e.g. add its folder to PYTHONPATH) or register the env in your own script"
            ) from None
    try:
        namespace, base, version = parse_env_id(name)
    except gym.error.Error as exc:
        raise EnvError(f"'{name}' is not a Gymnasium env id ({exc})") from None
    latest = find_highest_version(namespace, base)
    notes = []
    if version is None and latest is not None:
        resolved = get_env_id(namespace, base, latest)
        notes.append(f"env '{name}' is {resolved} (its latest version)")
    else:
        resolved = name
        if version is not None and latest is not None and latest > version:
            notes.append(f"{name} is an old version; the latest is {get_env_id(namespace, base, latest)}")
    return (f"{module}:{resolved}" if module else resolved), notes


def make_env(env_id: str, pixels: dict | None = None, **kwargs) -> gym.Env:
    """`gym.make(env_id, **kwargs)`, with an unknown id answered by the closest registered names.

    Pass a resolved id (`resolve_env_id`): Gymnasium's own version notices are left out here, since the
    command-line tools print ours once. `pixels` (SACConfig's, see `pixel_env`): observe the env through
    its rendered frames instead of its own observations.
    """
    if not isinstance(env_id, str) or not env_id:
        raise EnvError(f"env must be a Gymnasium env or a registered env id string, got {env_id!r}")
    goal.register()
    _route_mujoco_warnings()
    if pixels is not None:
        if not _in_env_worker and renders_with_mujoco(env_id):  # never in a process with TensorFlow
            require("pixels", PIXELS)  # here, not in the child (pixel_env checks every other path)
            return make_remote_env(env_id, pixels, kwargs)
        kwargs = {**kwargs, "render_mode": "rgb_array"}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*(is out of date|instead of the unversioned environment)")
            env = gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as exc:
        raise EnvError(f"env '{env_id}' needs a package that is not installed: {exc}") from None
    except gym.error.Error as exc:
        close = difflib.get_close_matches(env_id, list(gym.registry.keys()), n=3, cutoff=0.75)
        hint = (
            f"did you mean {', '.join(repr(c) for c in close)}?"
            if close
            else "see gymnasium.pprint_registry() for the registered ids"
        )
        raise EnvError(f"unknown env id '{env_id}' ({type(exc).__name__}): {hint}") from None
    except TypeError as exc:  # an env_kwargs key the env's constructor does not take
        if pixels is not None and "argument 'render_mode'" in str(exc):
            raise EnvError(
                f"env '{env_id}' does not render rgb_array frames (it takes no render_mode), so pixels "
                f"cannot observe it: leave pixels unset"
            ) from None
        raise EnvError(f"env '{env_id}' does not accept the keyword arguments {kwargs}: {exc}") from None
    return pixel_env(env, pixels) if pixels is not None else env


def make_worker_env(env_id: str, pixels: dict | None, kwargs: dict) -> gym.Env:
    """`make_env` as called in an env subprocess: renders in this process (which has no TensorFlow)."""
    global _in_env_worker
    _in_env_worker = True
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"  # offscreen; no display needed
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame (classic control) offscreen, no X or Wayland
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    with warnings.catch_warnings():  # the parent shows MuJoCo's model deprecations; one per child is noise
        warnings.filterwarnings("ignore", message="MuJoCo: .*deprecated")
        return make_env(env_id, pixels=pixels, **kwargs)


def make_remote_env(env_id: str, pixels: dict | None, kwargs: dict) -> RemoteEnv:
    """`make_env(env_id, pixels, **kwargs)` made and stepped in a TensorFlow-free child process."""
    return RemoteEnv(make_worker_env, env_id, pixels, kwargs)


def make_env_like(spec: EnvSpec) -> gym.Env:
    """A new env like the one `spec` describes (same id, keyword arguments and pixel wrapping)."""
    if spec.env_id is None:
        raise EnvError(
            "the env was not made from a registered id, so it cannot be made again: pass the env "
            "object itself (env=...)"
        )
    return make_env(spec.env_id, pixels=spec.pixels, **spec.env_kwargs)


def observes_pixels(env: gym.Env | gym.vector.VectorEnv) -> bool:
    """True if `env` already observes its frames (an AddRenderObservation inside)."""
    from gymnasium.wrappers import AddRenderObservation

    while isinstance(env, gym.Wrapper):
        if isinstance(env, AddRenderObservation):
            return True
        env = env.env
    return isinstance(env, RemoteEnv) and env.pixels is not None


def pixel_env(env: gym.Env, pixels: dict) -> gym.Env:
    """`env` observed through its rendered frames only, with Gymnasium's wrappers: AddRenderObservation
    (render_only), ResizeObservation, GrayscaleObservation (optional) and FrameStackObservation (k > 1).

    The env must render rgb_array frames. Classic-control envs render with pygame, which works headless
    (SDL's dummy video driver is selected unless one is set). MuJoCo envs render through OpenGL, never
    beside TensorFlow: `make_env` steps them in a subprocess (envs/remote.py), with MUJOCO_GL=egl when there
    is no display.
    """
    from gymnasium.wrappers import AddRenderObservation, FrameStackObservation, GrayscaleObservation, ResizeObservation

    require("pixels", PIXELS)
    pixels = check_pixels(pixels, EnvError)
    name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    if env.render_mode != "rgb_array":
        raise EnvError(
            f"pixels needs env '{name}' made with render_mode='rgb_array' (it has "
            f"{env.render_mode!r}); pass the env id instead and keras_sac makes it so"
        )
    cannot_render = EnvError(
        f"env '{name}' does not render rgb_array frames, so pixels cannot observe it: leave "
        f"pixels unset, or give the env a render() that returns an (H, W, 3) uint8 array"
    )
    if type(env.unwrapped).render is gym.Env.render:  # the base class's render, which only raises
        raise cannot_render
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders offscreen; no display needed
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Gymnasium's render-mode notes: the check below is ours
            env = AddRenderObservation(env, render_only=True)
        env = ResizeObservation(env, tuple(pixels["size"]))
    except (TypeError, AttributeError):  # a render() that returns None or something without a shape
        raise cannot_render from None
    if pixels["grayscale"]:
        env = GrayscaleObservation(env, keep_dim=pixels["frame_stack"] == 1)  # (H, W, 1), or stacked (k, H, W)
    if pixels["frame_stack"] > 1:
        env = FrameStackObservation(env, pixels["frame_stack"])
    return env


def _route_mujoco_warnings() -> None:
    """MuJoCo's C library prints its warnings to stderr each time a model is compiled (and writes
    MUJOCO_LOG.TXT into the working directory): the HalfCheetah XML's `settotalmass` deprecation came
    three times per run. Routed through Python's warnings instead, each is shown once per process."""
    try:
        import mujoco
    except ImportError:
        return
    if mujoco.get_mju_user_warning() is None:  # leave a handler the user installed alone
        shown: set[str] = set()  # Python's own once-per-location registry is reset by every catch_warnings

        def warn_once(message: str) -> None:
            if message not in shown:
                shown.add(message)
                warnings.warn(f"MuJoCo: {message}", stacklevel=2)

        mujoco.set_mju_user_warning(warn_once)


def env_spec(env: gym.Env | gym.vector.VectorEnv, image_channels: str = "auto", pixels: dict | None = None) -> EnvSpec:
    """Check that `env` suits SAC (Box, image or Dict observations; bounded Box actions) and describe it.

    A `gymnasium.vector.VectorEnv` is described by one of its envs (its single spaces). `pixels`: the
    wrapping `make_env` applied, recorded so the same env can be made again."""
    vector = isinstance(env, gym.vector.VectorEnv)
    name = env.spec.id if env.spec is not None else type(env if vector else env.unwrapped).__name__
    act = env.single_action_space if isinstance(env, gym.vector.VectorEnv) else env.action_space
    if not isinstance(act, gym.spaces.Box):
        raise EnvError(
            f"env '{name}' has a {type(act).__name__} action space; SAC needs continuous Box actions "
            f"(for discrete actions use a discrete-action method such as DQN)"
        )
    if not (np.all(np.isfinite(act.low)) and np.all(np.isfinite(act.high))):
        raise EnvError(
            f"env '{name}' has an unbounded Box action space (low={act.low}, high={act.high}); "
            f"SAC squashes actions into bounds: wrap it with gymnasium.wrappers.ClipAction "
            f"and finite bounds"
        )
    if len(act.shape) != 1:
        raise EnvError(f"env '{name}' has actions of shape {act.shape}; keras_sac needs a flat (n,) Box")
    try:
        space = env.single_observation_space if isinstance(env, gym.vector.VectorEnv) else env.observation_space
        obs = obs_spec(space, name, image_channels)
    except ObsError as exc:
        raise EnvError(str(exc)) from None
    return EnvSpec(
        env.spec.id if env.spec is not None else None,
        obs,
        tuple(float(x) for x in act.low),
        tuple(float(x) for x in act.high),
        _make_kwargs(env),
        pixels,
    )


def _make_kwargs(env: gym.Env | gym.vector.VectorEnv) -> dict:
    """The keyword arguments `env` was made with beyond its registered ones (JSON-able values only)."""
    spec = env.spec
    if spec is None:
        return {}
    registered = gym.registry.get(spec.id)
    defaults = registered.kwargs if registered is not None else {}
    out = {}
    for key, value in spec.kwargs.items():
        if key in defaults and defaults[key] == value:
            continue
        try:
            json.dumps(value)
        except TypeError:
            continue  # not reproducible from a file; the user passes env= when loading
        out[key] = value
    return out


def resolve_env(
    env: gym.Env | gym.vector.VectorEnv | str, pixels: dict | None = None
) -> gym.Env | gym.vector.VectorEnv:
    """Accept an env object or an id string (resolved as `resolve_env_id` does, notes as warnings); with
    `pixels`, the env observed through its rendered frames (`pixel_env`)."""
    if not isinstance(env, str):
        if (pixels is not None or observes_pixels(env)) and isinstance(env, gym.Env) and is_mujoco_env(env):
            raise EnvError(
                "MuJoCo frames cannot be rendered in a process that runs TensorFlow (Mesa's EGL and "
                "TensorFlow crash together): pass the env id with pixels set, and keras_sac renders it "
                "in a TensorFlow-free subprocess"
            )
        if pixels is not None and not isinstance(env, gym.vector.VectorEnv):
            return env if observes_pixels(env) else pixel_env(env, pixels)
        if pixels is not None:
            raise EnvError(
                "pixels wraps each env it makes: pass the env id with n_envs instead of a VectorEnv, "
                "or wrap the VectorEnv's envs yourself and leave pixels unset"
            )
        return env
    env_id, notes = resolve_env_id(env)
    for note in notes:
        warnings.warn(note, stacklevel=3)
    return make_env(env_id, pixels=pixels)


def check_same_spaces(expected: EnvSpec, got: EnvSpec, what: str) -> None:
    """Refuse an env whose observations or action bounds differ from those `what` was trained on."""
    if (expected.obs, expected.action_low, expected.action_high) != (got.obs, got.action_low, got.action_high):
        raise EnvError(
            f"env {got.env_id or ''} does not match {what}: it was trained with observations "
            f"{expected.obs.describe()}, action bounds {list(expected.action_low)}..{list(expected.action_high)}; "
            f"this env has {got.obs.describe()}, bounds {list(got.action_low)}..{list(got.action_high)}"
        )
