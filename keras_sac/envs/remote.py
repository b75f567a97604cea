"""Envs that render MuJoCo frames, stepped in a child process that never loads TensorFlow.

On a machine without a GPU, MuJoCo renders offscreen through Mesa's EGL (`MUJOCO_GL=egl`); a process that
also has TensorFlow 2.21 loaded crashes (a segfault whichever is loaded first: Mesa's llvmpipe and
TensorFlow clash). A child started from multiprocessing's `forkserver` imports Gymnasium, MuJoCo and
`keras_sac.envs.make` only — never the main script, never TensorFlow — and renders fine. So `make_env` hands
pixel observations of MuJoCo envs to `RemoteEnv`, a `gym.Env` whose reset and step run in such a child;
vector envs of them get one child per env (sync: RemoteEnvs stepped in turn; async: Gymnasium's own
subprocesses, which are forkserver children too). Nothing changes for the user but a process in `ps`.

Observations cross a pipe (a 64x64x3 uint8 frame stack is ~12 KB: ~0.1 ms against a few ms of rendering).
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import sys
import traceback
from typing import Callable

import gymnasium as gym

from keras_sac.envs.recording import FrameWriter, follow_agent


def env_creator(env_id: str):
    """What `env_id` is registered to make (usually its env class), found without making it; None for an
    unknown id (make_env reports it). A `module:EnvId` imports its module first, which registers the id."""
    module, _, name = env_id.rpartition(":")
    if module:
        importlib.import_module(module)
    try:
        entry = gym.spec(name).entry_point
        return gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
    except Exception:
        return None


def renders_with_mujoco(env_id: str) -> bool:
    """True if `env_id`'s env class is a Gymnasium MujocoEnv (found from its registration, without making it)."""
    creator = env_creator(env_id)
    return isinstance(creator, type) and _is_mujoco_class(creator)


def is_mujoco_env(env: gym.Env) -> bool:
    return _is_mujoco_class(type(env.unwrapped))


def _is_mujoco_class(cls: type) -> bool:
    return any(
        base.__module__.startswith("gymnasium.envs.mujoco") and base.__name__ == "MujocoEnv" for base in cls.__mro__
    )


@contextlib.contextmanager
def main_script_hidden():
    """Start subprocesses that do not re-run the main script.

    multiprocessing's forkserver and spawn children import the parent's `__main__` file first (to find
    functions defined there), which would start a second training run in a script without an
    `if __name__ == "__main__":` guard, and loads TensorFlow into every env process in any case. The env
    factories here are `gym.make` with an id, which needs nothing from `__main__`: while the processes
    start, `__main__` shows multiprocessing no file to import.
    """
    main = sys.modules["__main__"]
    saved = {name: getattr(main, name) for name in ("__file__", "__spec__") if hasattr(main, name)}
    try:
        main.__spec__ = None
        if hasattr(main, "__file__"):
            del main.__file__
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)


class RemoteEnv(gym.Env):
    """`make(env_id, pixels, kwargs)` called and its env stepped in a TensorFlow-free child process.

    `make` is a module-level function (the child imports it by name), in keras_sac `envs.make.make_worker_env`
    (`envs.make.make_remote_env` passes it)."""

    def __init__(
        self, make: Callable[[str, dict | None, dict], gym.Env], env_id: str, pixels: dict | None, kwargs: dict
    ):
        self.pixels = pixels
        ctx = multiprocessing.get_context("forkserver")
        self._conn, child_conn = ctx.Pipe()
        with main_script_hidden():
            self._process = ctx.Process(
                target=_serve,
                args=(child_conn, make, env_id, pixels, kwargs),
                daemon=True,
                name=f"keras_sac env {env_id}",
            )
            self._process.start()
        child_conn.close()
        self._closed = False
        try:
            self.observation_space, self.action_space, self.metadata, self.render_mode, self.spec = self._call()
        except BaseException:
            self.close()
            raise

    def _call(self, *message):
        if message:
            self._conn.send(message)
        try:
            ok, value = self._conn.recv()
        except EOFError:
            raise RuntimeError(
                f"the env process of {self._process.name!r} died (exit code {self._process.exitcode})"
            ) from None
        if not ok:
            raise value
        return value

    def reset(self, *, seed=None, options=None):
        return self._call("reset", seed, options)

    def step(self, action):
        return self._call("step", action)

    def render(self):
        return self._call("render")

    def start_recording(self, path: str, fps: float) -> None:
        """From the next reset or step on, the child renders every frame into the mp4 `path` (video.py)."""
        self._call("record", path, fps)

    def stop_recording(self) -> int:
        """Finish the current video (written atomically); returns its frame count (0 if none was open)."""
        return self._call("record_stop")

    def close(self):
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError, EOFError, BrokenPipeError):
            self._conn.send(("close",))
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
        self._conn.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()


def _serve(conn, make, env_id: str, pixels, kwargs) -> None:
    """The child: make the env, answer (reset | step | render | close) until closed or orphaned."""
    try:
        env = make(env_id, pixels, kwargs)
        conn.send((True, (env.observation_space, env.action_space, env.metadata, env.render_mode, env.spec)))
    except BaseException as exc:  # reported in the parent, with the env's own one-line message
        conn.send((False, _portable(exc)))
        return
    recorder = None  # a FrameWriter while recording
    try:
        while True:
            try:
                command, *args = conn.recv()
            except EOFError:  # the parent is gone
                break
            if command == "close":
                break
            try:
                if command == "reset":
                    result = env.reset(seed=args[0], options=args[1])
                elif command == "step":
                    result = env.step(args[0])
                elif command == "record":
                    if pixels is None:
                        follow_agent(env)
                    if recorder is not None:
                        recorder.close()
                    recorder, result = FrameWriter(args[0], args[1]), None
                elif command == "record_stop":
                    result, recorder = (recorder.close() if recorder is not None else 0), None
                else:
                    result = env.render()
                if recorder is not None and command in ("reset", "step"):
                    recorder.add(env.render())
                conn.send((True, result))
            except BaseException as exc:
                if recorder is not None and command != "record":
                    recorder.abandon()
                    recorder = None
                conn.send((False, _portable(exc)))
    finally:
        if recorder is not None:
            recorder.abandon()
        env.close()


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it pickles (keras_sac's and Gymnasium's errors do), else a RuntimeError with its traceback."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError("".join(traceback.format_exception_only(type(exc), exc)).strip())
