"""The slim install: the core trains, evaluates, plots and exports SavedModels without any optional extra, and
a feature whose extra is missing says so in one line naming the pip command, before it starts anything."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SMALL

from keras_sac.extras import EXTRAS, MissingExtra, require

ROOT = Path(__file__).resolve().parents[1]
# gymnasium[mujoco] (the core) depends on imageio itself; the video extra adds imageio-ffmpeg's encoder
ALL_EXTRAS = sorted({m for modules in EXTRAS.values() for m in modules} - {"imageio"})


def run_without(modules, script, *args, timeout=600):
    """`python script args` with `modules` made unimportable (as if their extra were not installed)."""
    code = (
        "import runpy, sys\n"
        f"for m in {list(modules)!r}: sys.modules[m] = None\n"
        f"sys.argv = [{script!r}, *{[str(a) for a in args]!r}]\n"
        f"runpy.run_path({str(ROOT / script)!r}, run_name='__main__')\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line]


def test_require_names_the_missing_modules_and_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(MissingExtra) as caught:
        require("pixels", "pixels (observing an env through its frames)")
    assert str(caught.value) == (
        "pixels (observing an env through its frames) needs keras_sac's optional 'pixels' part (cv2 not "
        "installed): pip install 'keras_sac[pixels]'  (in a clone: pip install -e '.[pixels]')"
    )
    require("video", "videos")  # installed here: nothing raised


def test_every_extra_lists_modules_its_requirements_file_installs():
    # each module of EXTRAS comes from a distribution pinned in requirements/<extra>.txt
    import importlib.metadata

    distributions = importlib.metadata.packages_distributions()
    for extra, modules in EXTRAS.items():
        pinned = (ROOT / "requirements" / f"{extra}.txt").read_text().lower().replace("_", "-")
        for module in modules:
            names = [d.lower().replace("_", "-") for d in distributions[module]]
            assert any(f"\n{name}==" in pinned or f"\n{name}[" in pinned for name in names), (extra, module)


def test_the_core_alone_trains_evaluates_plots_and_exports_a_savedmodel(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_without(
        ALL_EXTRAS,
        "train.py",
        "--env",
        "InvertedPendulum-v5",
        "--total-timesteps",
        "400",
        "--run-dir",
        run_dir,
        "--no-progress",
        "--set",
        "learning_starts=200",
        "--set",
        "eval_freq=200",
        "--set",
        "n_eval_episodes=1",
        "--set",
        "net_arch=[32,32]",
        "--set",
        "batch_size=32",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run_dir / "policy" / "saved_model.pb").is_file() and (run_dir / "learning_curve.png").is_file()
    proc = run_without(ALL_EXTRAS, "evaluate.py", run_dir, "--episodes", "1")
    assert proc.returncode == 0 and "episode 0: return" in proc.stdout, proc.stderr[-3000:]


@pytest.mark.parametrize(
    "blocked, args, extra",
    [
        (["cv2"], ["--env", "Pendulum-v1", "--config", "keras_sac/configs/Pendulum-v1-pixels.yaml"], "pixels"),
        (["imageio_ffmpeg"], ["--env", "Pendulum-v1", "--set", "video_freq=1000"], "video"),
    ],
)
def test_train_py_without_an_extra_is_one_line_and_writes_nothing(tmp_path, blocked, args, extra):
    proc = run_without(blocked, "train.py", *args, "--run-dir", tmp_path / "run")
    assert proc.returncode == 2, proc.stderr[-3000:]
    (line,) = error_lines(proc.stderr)
    assert line.startswith("train.py: error: ") and f"pip install 'keras_sac[{extra}]'" in line
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()


def test_sweep_py_without_ray_is_one_line_and_starts_nothing(tmp_path):
    proc = run_without(["ray"], "sweep.py", "--env", "Pendulum-v1", "--sweep-dir", tmp_path / "sweep")
    assert proc.returncode == 2, proc.stderr[-3000:]
    (line,) = error_lines(proc.stderr)
    assert "sweeps (Ray Tune, Optuna) needs keras_sac's optional 'sweep' part (ray not installed)" in line
    assert not (tmp_path / "sweep").exists()


def test_onnx_export_and_file_runtimes_without_the_export_extra_name_it(tmp_path, monkeypatch):
    from keras_sac import KerasSAC
    from keras_sac.runtime import load_policy

    agent = KerasSAC("Pendulum-v1", seed=0, **SMALL)
    agent.export(tmp_path / "policy.tflite", format="tflite")  # TensorFlow's own converter: the core
    for module in ("tf2onnx", "ai_edge_litert"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtra, match=r"export\(format='onnx'\) needs .*pip install 'keras_sac\[export\]'"):
        agent.export(tmp_path / "policy.onnx", format="onnx")
    assert not (tmp_path / "policy.onnx").exists()
    with pytest.raises(MissingExtra, match=r"a \.tflite policy \(LiteRT\) needs .*ai_edge_litert not installed"):
        load_policy(tmp_path / "policy.tflite")
