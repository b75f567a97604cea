"""Videos of a policy's episodes, one mp4 each: `evaluate.py --video DIR`, `video_freq` in training.

The env is made (with render_mode='rgb_array') and stepped in a child process that never loads TensorFlow
(envs/remote.py; envs/recording.py writes the mp4 there): MuJoCo renders through Mesa's EGL there on a machine
without GPU or display, which it cannot beside TensorFlow. The child renders each frame after reset and step and
encodes the episode with imageio's ffmpeg plugin; the parent, where the policy runs, only sends actions. So any
policy the agent can train is recorded, with exactly the actions `predict` gives. This module imports no
TensorFlow."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import gymnasium as gym

from keras_sac.callbacks import Callback
from keras_sac.envs.make import make_remote_env
from keras_sac.envs.recording import VideoError
from keras_sac.envs.remote import env_creator
from keras_sac.evaluation import evaluate_policy
from keras_sac.extras import require

DEFAULT_FPS = 30


def check_video_dir(folder: str | Path) -> Path:
    """Create `folder` and check that files can be written into it; VideoError otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test"):
            pass
    except OSError as exc:
        raise VideoError(
            f"cannot write videos into '{folder}' ({exc.strerror or exc}): choose a writable folder"
        ) from None
    return folder


def check_renders(env_id: str) -> None:
    """Refuse, before any process starts, an env whose registration says it cannot render rgb_array, and
    videos without keras_sac[video] installed."""
    require("video", "videos (--video, video_freq)")
    modes = (getattr(env_creator(env_id), "metadata", None) or {}).get("render_modes")
    if modes is not None and "rgb_array" not in modes:
        raise VideoError(
            f"env '{env_id}' cannot render rgb_array frames (its render modes: {modes or 'none'}), so "
            f"no video can be made of it: leave out --video / video_freq"
        )


class RecordingEnv(gym.Wrapper):
    """An env whose every episode (from one reset to the next) becomes the mp4 `name(i)` in `folder`.

    Made from an env id, it lives in a TensorFlow-free child (see the module docstring).
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict,
        pixels: dict | None,
        folder: Path,
        name: Callable[[int], str] = lambda i: f"episode-{i}.mp4",
    ):
        check_renders(env_id)
        kwargs = dict(env_kwargs) if pixels is not None else {**env_kwargs, "render_mode": "rgb_array"}
        self.remote = make_remote_env(env_id, pixels, kwargs)  # the wrapped env, with its recording calls
        super().__init__(self.remote)
        self.folder, self.name, self.episodes = Path(folder), name, 0
        self.written: list[Path] = []
        self.fps = float((self.env.metadata or {}).get("render_fps") or DEFAULT_FPS)

    def reset(self, **kwargs):
        self.finish()
        path = self.folder / self.name(self.episodes)
        self.remote.start_recording(str(path), self.fps)
        self.episodes += 1
        self._path = path
        return self.env.reset(**kwargs)

    def finish(self) -> None:
        """Close the video being written (the episode so far)."""
        if self.remote.stop_recording():
            self.written.append(self._path)

    def close(self):
        try:
            self.finish()
        except Exception:  # the child is gone: nothing more to write
            pass
        self.env.close()


def record_episodes(
    act: Callable,
    env_id: str,
    env_kwargs: dict,
    pixels: dict | None,
    folder: str | Path,
    n_episodes: int,
    seed: int | None = None,
    name: Callable[[int], str] | None = None,
):
    """Run `n_episodes` with `act(obs) -> action` and write one mp4 per episode into `folder`.
    Returns (evaluation.Episodes, [video paths])."""
    folder = check_video_dir(folder)
    env = RecordingEnv(env_id, env_kwargs, pixels, folder, **({"name": name} if name else {}))
    try:
        episodes = evaluate_policy(act, env, n_episodes, seed=seed)
        env.finish()
    finally:
        env.close()
    return episodes, list(env.written)


class VideoCallback(Callback):
    """Every `video_freq` env steps, one deterministic episode recorded as `folder/step_<n>.mp4`."""

    def __init__(
        self,
        video_freq: int,
        folder: str | Path,
        env_id: str,
        env_kwargs: dict,
        pixels: dict | None,
        seed: int | None = None,
        say: Callable[[str], None] | None = print,
    ):
        self.video_freq, self.seed, self.say = video_freq, seed, say
        self.folder = check_video_dir(folder)
        check_renders(env_id)
        self._env_args = (env_id, env_kwargs, pixels)
        self._env: RecordingEnv | None = None  # started at the first recording, kept for the next ones
        self.written: list[Path] = []

    def on_step(self, agent) -> bool:
        if self.due(agent, self.video_freq):
            self.record(agent)
        return True

    def record(self, agent) -> Path | None:
        step = agent.num_timesteps
        if self._env is None:
            self._env = RecordingEnv(*self._env_args, self.folder)
        self._env.name = lambda i: f"step_{step:09d}.mp4"
        episodes = evaluate_policy(lambda obs: agent.predict(obs, deterministic=True)[0], self._env, 1, seed=self.seed)
        self._env.finish()
        self.written = list(self._env.written)
        if self.say is not None:
            self.say(f"video @ {step} steps: {self.written[-1]} (return {episodes.returns[0]:.1f})")
        return self.written[-1]

    def on_training_end(self, agent) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
