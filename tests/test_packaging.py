"""What `pip install .` ships: the package with its configs, the console commands, the version; and the
run's hyperparameters in TensorBoard's HParams view."""

import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

import keras_sac

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "keras-sac-train": "keras_sac.cli.train:console",
    "keras-sac-evaluate": "keras_sac.cli.evaluate:console",
    "keras-sac-plot": "keras_sac.experiments.plot:console",
    "keras-sac-sweep": "keras_sac.cli.sweep:console",
    "keras-sac-report": "keras_sac.experiments.report:console",
}


def test_wheel_holds_package_configs_and_commands(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("keras_sac-*.whl")
    assert wheel.name.startswith(f"keras_sac-{keras_sac.__version__}-")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        metadata = next(z.read(n).decode() for n in names if n.endswith("METADATA"))
    configs = ROOT / "keras_sac" / "configs"
    for config in [*configs.rglob("*.yaml"), *configs.rglob("*.csv")]:  # presets, suites, published figures
        assert f"keras_sac/configs/{config.relative_to(configs)}" in names
    for name, target in COMMANDS.items():
        assert f"{name} = {target}" in entry_points
    requires = [line.partition(": ")[2] for line in metadata.splitlines() if line.startswith("Requires-Dist: ")]
    core = [r for r in requires if ";" not in r]
    assert core == pins("requirements/core.txt")  # the slim install: train, evaluate, plot, SavedModel
    for extra in ("pixels", "video", "export", "sweep"):
        assert f"Provides-Extra: {extra}" in metadata
        marker = f'; extra == "{extra}"'
        assert sorted(r.removesuffix(marker) for r in requires if r.endswith(marker)) == sorted(
            pins(f"requirements/{extra}.txt")
        )
    extras = {r.partition(";")[0].strip() for r in requires if r.endswith('extra == "all"')}
    assert extras == {p for e in ("pixels", "video", "export", "sweep") for p in pins(f"requirements/{e}.txt")}


def pins(path: str) -> list[str]:
    """The requirement lines of a requirements file, following its -r includes."""
    out = []
    for line in (ROOT / path).read_text().splitlines():
        line = line.partition("#")[0].strip()
        if line.startswith("-r "):
            out += pins(str(Path(path).parent / line[3:].strip()))
        elif line:
            out.append(line)
    return out


def test_requirements_txt_locks_the_core_and_every_extra():
    # The README's set-up commands install requirements.txt: everything a test or a README step uses.
    files = ["core", "pixels", "video", "export", "sweep"]
    assert pins("requirements.txt") == [p for f in files for p in pins(f"requirements/{f}.txt")]


def test_console_commands_resolve_and_run():
    scripts = {e.name: e for e in importlib.metadata.entry_points(group="console_scripts") if e.name in COMMANDS}
    assert set(scripts) == set(COMMANDS)
    for name, entry in scripts.items():
        assert callable(entry.load())
    for name in COMMANDS:  # installed next to this interpreter by `pip install -e .`
        proc = subprocess.run(
            [str(Path(sys.executable).parent / name), "--help"], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0 and f"usage: {name}" in proc.stdout, proc.stderr


def test_version():
    assert keras_sac.__version__ == importlib.metadata.version("keras_sac")


def test_repository_configs_link_to_the_packaged_ones():
    assert (ROOT / "configs" / "HalfCheetah-v5.yaml").resolve() == (
        ROOT / "keras_sac" / "configs" / "HalfCheetah-v5.yaml"
    ).resolve()


def test_hparams_written_once_for_new_runs(tmp_path):
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2

    from keras_sac.io.logger import RunLogger

    logger = RunLogger(
        tmp_path,
        hparams={"env_id": "Pendulum-v1", "gamma": 0.99, "net_arch": (256, 256), "use_sde": False, "seed": None},
    )
    logger.log(100, {"train/alpha": 0.5})
    logger.close()
    plugins = []
    for path in tmp_path.glob("tb/events.out.tfevents*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            plugins += [v.metadata.plugin_data.plugin_name for v in event.summary.value]
    assert plugins.count("hparams") == 1
    RunLogger(tmp_path, resume_at=100, hparams={"gamma": 0.99}).close()  # a resume does not add a second one
    count = 0
    for path in tmp_path.glob("tb/events.out.tfevents*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            count += sum(v.metadata.plugin_data.plugin_name == "hparams" for v in event.summary.value)
    assert count == 1


def test_shipped_configs_are_valid():
    from keras_sac.config.settings import RunConfig, make_sac_config
    from keras_sac.config.sources import split_known, take_env_kwargs

    configs = ROOT / "keras_sac" / "configs"
    candidates = sorted((ROOT / "benchmarks" / "screening").glob("*.yaml"))  # overlays started as background runs
    for path in [*configs.rglob("*.yaml"), *candidates]:
        if path.parent.name == "suites":  # a suite maps envs to presets: test_suite.py checks them
            continue
        sac, run = split_known(take_env_kwargs(yaml.safe_load(path.read_text()) or {}, {}, str(path)))
        make_sac_config(**sac), RunConfig(**run)
    assert list((configs / "suites").glob("*.yaml")) and list((configs / "published").glob("*.csv"))
    assert len(candidates) >= 4
