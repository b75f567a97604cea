"""The layout of a train.py run folder, and the parts of it that are read or made before TensorFlow starts."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import yaml

from keras_sac import __version__
from keras_sac.config import ConfigError, ResolvedConfig, RunConfig, read_yaml, split_known, to_dict

CONFIG_FILE, RUN_FILE, SUMMARY_FILE, METRICS_FILE = "config.yaml", "run.json", "summary.json", "metrics.csv"
CHECKPOINTS_DIR, POLICY_DIR, PLOT_FILE = "checkpoints", "policy", "learning_curve.png"


def default_run_dir(env_id: str) -> Path:
    return Path("runs") / f"{env_id}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run_dir(run_dir: Path, force: bool) -> None:
    """Create `run_dir`; one that already holds files is refused unless `force`."""
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"--run-dir '{run_dir}' is a file; choose a folder path")
    if run_dir.is_dir() and any(run_dir.iterdir()) and not force:
        raise FileExistsError(f"--run-dir '{run_dir}' already holds files; choose a new folder, pass --force "
                              f"to write over it, or --resume {run_dir} to continue it")
    run_dir.mkdir(parents=True, exist_ok=True)


def write_run_start(run_dir: Path, config: ResolvedConfig) -> None:
    """config.yaml (resolved, seed included) and run.json of a new run: all `--resume` needs to restart it."""
    resolved = {**config.sac, **to_dict(config.run)}
    (run_dir / CONFIG_FILE).write_text(
        f"# Resolved config of this run ({config.env_id}); sources: {', '.join(config.sources)}\n"
        + yaml.safe_dump(resolved, sort_keys=False))
    (run_dir / RUN_FILE).write_text(json.dumps({
        "env_id": config.env_id, "keras_sac_version": __version__, "python": platform.python_version(),
        "command": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))


def read_run_config(run_dir: Path, total_timesteps: int | None = None) -> ResolvedConfig:
    """The resolved config of an existing run folder (for --resume); `total_timesteps` may extend it."""
    if not (run_dir / RUN_FILE).is_file() or not (run_dir / CONFIG_FILE).is_file():
        raise ConfigError(f"'{run_dir}' is not a train.py run folder ({RUN_FILE} or {CONFIG_FILE} is missing)")
    try:
        env_id = json.loads((run_dir / RUN_FILE).read_text())["env_id"]
    except (ValueError, KeyError):
        raise ConfigError(f"'{run_dir / RUN_FILE}' is damaged") from None
    sac, run = split_known(read_yaml(run_dir / CONFIG_FILE))
    if total_timesteps is not None:
        run["total_timesteps"] = total_timesteps
    return ResolvedConfig(env_id, sac, RunConfig(**run), ("resumed",))
