"""Recording an env's episodes as mp4 files, inside the process that steps the env.

In a RemoteEnv's child (remote.py), where MuJoCo can render, `FrameWriter` encodes each frame after reset
and step with imageio's ffmpeg plugin; the parent only sends actions (experiments/video.py). No TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import numpy as np

from keras_sac.extras import require


class VideoError(ValueError):
    """A video cannot be recorded (a folder that cannot be written, an env that cannot render)."""


class FrameWriter:
    """Frames -> an H.264 mp4 at `path`, written beside it and renamed into place when complete."""

    def __init__(self, path: str, fps: float):
        require("video", "videos (--video, video_freq, record_episodes)")
        import imageio.v2 as imageio

        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.stem}.tmp{self.path.suffix}")
        # yuv420p (what every player reads) needs even sides: imageio pads to a multiple of 2
        self.writer = imageio.get_writer(
            self.tmp, fps=fps, codec="libx264", quality=7, macro_block_size=2, ffmpeg_log_level="error"
        )
        self.frames = 0

    def add(self, frame) -> None:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise VideoError(f"render() returned {frame.dtype} {frame.shape}, not an (H, W, 3) uint8 frame")
        self.writer.append_data(frame)
        self.frames += 1

    def close(self) -> int:
        self.writer.close()
        os.replace(self.tmp, self.path)
        return self.frames

    def abandon(self) -> None:
        try:
            self.writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def follow_agent(env: gym.Env) -> None:
    """Point a MuJoCo env's offscreen camera at its model's `track` camera (which follows the body).

    Gymnasium 1.4 renders from a free camera unless camera_id/camera_name is given, and the free camera of
    HalfCheetah-v5 (also Hopper, Walker2d, Ant) does not follow the robot, which runs out of the picture in
    a second. Called only for videos of envs observed through their own observations (a pixel observation's
    camera is left as trained)."""
    renderer = getattr(env.unwrapped, "mujoco_renderer", None)
    if renderer is None or getattr(renderer, "camera_id", None) != -1:  # not MuJoCo, or a camera was chosen
        return
    import mujoco

    track = mujoco.mj_name2id(renderer.model, mujoco.mjtObj.mjOBJ_CAMERA, "track")
    if track >= 0:
        renderer.camera_id = track
