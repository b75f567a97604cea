"""The layout of a train.py run folder, and the parts of it that are read or made before TensorFlow starts."""

from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from keras_sac import __version__
from keras_sac.config.settings import ConfigError, RunConfig, to_dict
from keras_sac.config.sources import ResolvedConfig, read_yaml, split_known, take_env_kwargs
from keras_sac.io.files import write_atomic

# Distributions whose versions a run records (read from package metadata: nothing is imported).
RECORDED_PACKAGES = ("tensorflow", "keras", "tensorflow-probability", "gymnasium", "mujoco", "numpy")

CONFIG_FILE, RUN_FILE, SUMMARY_FILE, METRICS_FILE = "config.yaml", "run.json", "summary.json", "metrics.csv"
EPISODES_FILE = "episodes.csv"  # one row per training episode: the step it ended at, its return and length
EPISODE_COLUMNS = ("step", "return", "length")
CHECKPOINTS_DIR, POLICY_DIR, PLOT_FILE, VIDEOS_DIR = "checkpoints", "policy", "learning_curve.png", "videos"
BEST_POLICY_DIR, BEST_POLICY_FILE = "best_policy", "best_policy.json"  # the best evaluation's policy, and which


def default_run_dir(env_id: str) -> Path:
    return Path("runs") / f"{env_id.rpartition(':')[2]}-{time.strftime('%Y%m%d-%H%M%S')}"


# What a run writes into its folder. A new run written over an old one (--force) first removes these, so nothing
# of the old run mixes with the new one's: its checkpoints would outrank the new run's (a higher step is newer),
# its metrics.csv and TensorBoard events would be appended to, its policies would stand in for the new run's.
RUN_OUTPUTS = (
    CHECKPOINTS_DIR,
    "tb",
    VIDEOS_DIR,
    POLICY_DIR,
    BEST_POLICY_DIR,
    BEST_POLICY_FILE,
    METRICS_FILE,
    EPISODES_FILE,
    SUMMARY_FILE,
    CONFIG_FILE,
    RUN_FILE,
    PLOT_FILE,
    "diagnostics.png",
    *(f"{POLICY_DIR}.{fmt}{ext}" for fmt in ("tflite", "onnx") for ext in ("", ".json")),  # --export-tflite/-onnx
)


def prepare_run_dir(run_dir: Path, force: bool) -> None:
    """Create `run_dir`; one that already holds files is refused unless `force`, which removes an old run's
    outputs (`RUN_OUTPUTS`) from it and leaves any other file there alone."""
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"--run-dir '{run_dir}' is a file; choose a folder path")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not force:
            raise FileExistsError(
                f"--run-dir '{run_dir}' already holds files; choose a new folder, pass --force "
                f"to write over it, or --resume {run_dir} to continue it"
            )
        for name in RUN_OUTPUTS:
            path = run_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)


def write_run_start(run_dir: Path, config: ResolvedConfig, command: list[str] | None = None) -> None:
    """config.yaml (resolved, seed included) and run.json of a new run: all `--resume` needs to restart it.
    `command`: what started it (default: this process's command line)."""
    resolved = {**config.sac, **to_dict(config.run)}
    if config.env_kwargs:  # the file is the whole config: `train.py --env ENV --config it` runs the same again
        resolved["env_kwargs"] = config.env_kwargs
    (run_dir / CONFIG_FILE).write_text(
        f"# Resolved config of this run ({config.env_id}); sources: {', '.join(config.sources)}\n"
        + yaml.safe_dump(resolved, sort_keys=False)
    )
    write_atomic(
        run_dir / RUN_FILE,
        json.dumps(
            {
                "env_id": config.env_id,
                "env_kwargs": config.env_kwargs,
                "command": command or sys.argv,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "versions": versions(),
                "commit": source_commit(),
                "machine": machine(),
                "resumes": [],
            },
            indent=2,
        ),
    )


def record_resume(run_dir: Path, from_step: int, total_timesteps: int, command: list[str] | None = None) -> None:
    """Append one entry (when, from which step, to which total, by what command, with which code, on what) to
    run.json's `resumes`. `command`: what resumed it (default: this process's command line; a sweep's worker
    gives the sweep's)."""
    record = json.loads((run_dir / RUN_FILE).read_text())
    record.setdefault("resumes", []).append(
        {
            "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "from_step": from_step,
            "total_timesteps": total_timesteps,
            "command": command or sys.argv,
            "commit": source_commit(),  # a run resumed from another checkout continues with that code
            "versions": versions(),
            "machine": machine(),
        }
    )
    write_atomic(run_dir / RUN_FILE, json.dumps(record, indent=2))


def source_commit() -> str | None:
    """The git commit of the keras_sac checkout this process runs (with '+changes' where its files differ from
    it), or None for an installed package: which code a run's results came from."""
    package = Path(__file__).resolve().parents[1]
    if not (package.parent / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
            cwd=package,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = head.stdout.strip()
    return (commit + ("+changes" if dirty.stdout.strip() else "")) if head.returncode == 0 and commit else None


def versions() -> dict[str, str | None]:
    """keras_sac, Python and each of RECORDED_PACKAGES (None if not installed)."""
    out: dict[str, str | None] = {"keras_sac": __version__, "python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine(cpuinfo: str = "/proc/cpuinfo") -> dict:
    """The CPU model, its core count and the OS, for reading speed figures later; on Linux also the CPU's family
    and model numbers and its widest vector instructions, which tell apart kinds sold under one name (an
    "AMD EPYC" VM may be a Zen 3 with AVX2 or a Zen 4 with AVX-512)."""
    out = {"cpu": platform.processor() or None, "cores": os.cpu_count(), "system": platform.platform()}
    try:
        with open(cpuinfo) as f:
            fields: dict[str, str] = {}
            for line in f:
                if not line.strip():
                    break  # the first processor's block is enough
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return out
    out["cpu"] = fields.get("model name", out["cpu"])
    if "cpu family" in fields and "model" in fields:
        out["cpu_id"] = f"family {fields['cpu family']} model {fields['model']}"
    flags = set(fields.get("flags", "").split())
    isa = next((name for flag, name in VECTOR_ISAS if flag in flags), None)
    if isa:
        out["isa"] = isa
    return out


VECTOR_ISAS = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("asimd", "NEON"))  # widest first


def finished_run(run_dir: Path) -> int | None:
    """The step count of a run whose last session ran to its total (summary.json), else None."""
    try:
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return None
    steps, total = summary.get("num_timesteps"), summary.get("total_timesteps")
    if summary.get("stopped_by") is None and steps is not None and total is not None and steps >= total:
        return int(steps)
    return None


def read_run_config(run_dir: Path, total_timesteps: int | None = None) -> ResolvedConfig:
    """The resolved config of an existing run folder (for --resume); `total_timesteps` may extend it."""
    if not (run_dir / RUN_FILE).is_file() or not (run_dir / CONFIG_FILE).is_file():
        if not run_dir.exists():
            raise ConfigError(
                f"'{run_dir}' does not exist: pass the run folder train.py made (it prints it, e.g. "
                f"runs/<env>-<date>), or leave out --resume to start a new run"
            )
        raise ConfigError(f"'{run_dir}' is not a train.py run folder ({RUN_FILE} or {CONFIG_FILE} is missing)")
    try:
        record = json.loads((run_dir / RUN_FILE).read_text())
        env_id, env_kwargs = record["env_id"], record.get("env_kwargs") or {}
    except (ValueError, KeyError):
        raise ConfigError(f"'{run_dir / RUN_FILE}' is damaged") from None
    sac, run = split_known(take_env_kwargs(read_yaml(run_dir / CONFIG_FILE), {}, str(run_dir / CONFIG_FILE)))
    if total_timesteps is not None:
        run["total_timesteps"] = total_timesteps
    return ResolvedConfig(env_id, sac, RunConfig(**run), ("resumed",), env_kwargs)


def read_metrics(csv_path: Path) -> list[dict[str, float]]:
    """Rows of a metrics.csv as dicts of floats (empty cells left out)."""
    with open(csv_path, newline="") as f:
        return [_as_floats(row) for row in csv.DictReader(f)]


def _as_floats(row: dict[str, str]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items() if v not in ("", None)}
