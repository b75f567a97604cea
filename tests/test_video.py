"""Videos: evaluate.py --video and train.py's video_freq, headless, MuJoCo rendered outside TensorFlow."""

import os
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from keras_sac import KerasSAC
from keras_sac.experiments.video import VideoError, check_renders, check_video_dir, record_episodes

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def frames_of(path: Path) -> tuple[int, np.ndarray]:
    """(frame count, first frame) of an mp4."""
    with imageio.get_reader(path) as reader:
        return reader.count_frames(), reader.get_data(0)


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory):
    """A tiny train.py run on InvertedPendulum-v5 (MuJoCo) with a video every 200 steps."""
    run_dir = tmp_path_factory.mktemp("video") / "run"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "--env",
            "InvertedPendulum-v5",
            "--total-timesteps",
            "400",
            "--seed",
            "0",
            "--run-dir",
            str(run_dir),
            "--set",
            "video_freq=200",
            "--set",
            "learning_starts=100",
            "--set",
            "eval_freq=400",
            "--set",
            "n_eval_episodes=1",
            "--set",
            "net_arch=[32,32]",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, proc


@pytest.mark.slow  # a train.py run and MuJoCo rendering: ~40 s; CI runs the slow tests too
def test_train_records_mujoco_videos(pendulum_run):
    run_dir, proc = pendulum_run
    videos = sorted((run_dir / "videos").glob("*.mp4"))
    assert [v.name for v in videos] == ["step_000000200.mp4", "step_000000400.mp4"]
    assert "video @ 200 steps:" in proc.stdout
    count, first = frames_of(videos[0])
    assert first.shape == (480, 480, 3) and count >= 2
    assert first.std() > 10  # a rendered scene, not a blank frame
    assert not list((run_dir / "videos").glob(".*"))  # no staging files left


@pytest.mark.slow
def test_evaluate_video_one_file_per_episode(pendulum_run, tmp_path):
    run_dir, _ = pendulum_run
    proc = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), str(run_dir), "--episodes", "2", "--video", str(tmp_path / "v")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lengths = [int(line.rsplit("length ", 1)[1]) for line in proc.stdout.splitlines() if line.startswith("episode ")]
    videos = sorted((tmp_path / "v").glob("*.mp4"))
    assert [v.name for v in videos] == ["episode-0.mp4", "episode-1.mp4"]
    for video, length in zip(videos, lengths):
        assert frames_of(video)[0] == length + 1  # the reset frame and one per step


def test_classic_control_video_in_process_api(tmp_path):
    agent = KerasSAC("Pendulum-v1", seed=0, net_arch=(16, 16), learning_starts=10)
    episodes, paths = record_episodes(
        lambda o: agent.predict(o, deterministic=True)[0], "Pendulum-v1", {}, None, tmp_path, 1, seed=0
    )
    assert episodes.lengths.tolist() == [200] and [p.name for p in paths] == ["episode-0.mp4"]
    count, first = frames_of(paths[0])
    assert count == 201 and first.shape == (500, 500, 3)


def test_bad_input(tmp_path):
    sys.path.insert(0, str(TESTS))
    with pytest.raises(VideoError, match="env 'bad_envs:NoRender-v0' cannot render rgb_array frames"):
        check_renders("bad_envs:NoRender-v0")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(VideoError, match="cannot write videos into"):
        check_video_dir(blocker / "videos")


def test_cli_bad_input_is_one_line(tmp_path):
    run_dir = KerasSAC("Pendulum-v1", seed=0, net_arch=(16, 16)).export(tmp_path / "policy")
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), str(run_dir), "--video", str(blocker / "v")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip().startswith("evaluate.py: error: cannot write videos into")
        and proc.stderr.strip().count("\n") == 0
    ), proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "--env",
            "bad_envs:NoRender-v0",
            "--set",
            "video_freq=10",
            "--run-dir",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "train.py: error: env 'bad_envs:NoRender-v0' cannot render rgb_array frames" in proc.stderr
    assert not (tmp_path / "r").exists()  # refused before any folder was made
