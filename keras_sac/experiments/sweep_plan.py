"""What a sweep is, before Ray or TensorFlow starts: its grid, its trials and their run folders, its manifest.

A sweep folder holds `sweep.json` (the manifest: envs, seeds, grid, fixed settings, search), one ordinary
train.py run folder per trial (`<env>/<grid values>/seed<k>` for a grid, `<env>/trial-<id>` for a search),
each with `sweep_trial.json` (its values, seed and attempts), Ray Tune's own state in `tune/`, and the report.
Everything here is checked before any trial starts; a mistake raises ConfigError with a one-line message.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import typing
from pathlib import Path

import yaml

from keras_sac.config.settings import ConfigError, RunConfig, SACConfig
from keras_sac.config.sources import ResolvedConfig, resolve_config
from keras_sac.io.files import write_atomic
from keras_sac.io.run_files import METRICS_FILE, RUN_FILE, finished_run

MANIFEST_FILE, TRIAL_FILE, PRUNED_FILE, TUNE_DIR = "sweep.json", "sweep_trial.json", "pruned.json", "tune"
METRICS = ("final", "best", "auc")  # what --search optimises: the last, the best or the mean evaluation return
NOT_IN_GRID = {"seed": "--seeds", "total_timesteps": "--total-timesteps"}
PRESET_KEY, DEFAULT_PRESET = "preset", "default"  # a suite trial's one value: which preset it runs


@dataclasses.dataclass(frozen=True)
class Trial:
    """One run of a grid sweep: an env, one value per grid key (as typed) and a seed."""

    env_id: str
    values: tuple[tuple[str, str], ...]
    seed: int

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.values) or "default"

    @property
    def run_dir(self) -> str:  # relative to the sweep folder
        return f"{self.env_id.rpartition(':')[2]}/{self.label}/seed{self.seed}"

    def as_dict(self) -> dict:
        return {
            "env_id": self.env_id,
            "values": dict(self.values),
            "label": self.label,
            "seed": self.seed,
            "run_dir": self.run_dir,
        }


@dataclasses.dataclass(frozen=True)
class Plan:
    """A sweep's definition: what `sweep.json` records and a re-run must repeat."""

    envs: tuple[str, ...]
    seeds: tuple[int, ...]
    grid: tuple[tuple[str, tuple[str, ...]], ...]  # key -> values, as typed, in command-line order
    fixed: tuple[tuple[str, str], ...] = ()  # --set key=value for every trial
    config_file: str | None = None
    total_timesteps: int | None = None
    search: str = "grid"  # or "optuna"
    n_trials: int | None = None  # optuna: how many configs to sample
    metric: str = "final"
    suite: tuple[tuple[str, tuple[str, ...]], ...] = ()  # a suite's env -> presets (the envs are the suite's)
    suite_file: str | None = None

    def trials(self) -> list[Trial]:
        """The grid's trials, env-major, then the grid's values (or the suite's presets), then seeds."""
        if self.suite:
            return [
                Trial(env, ((PRESET_KEY, preset),), seed)
                for env, presets in self.suite
                for preset in presets
                for seed in self.seeds
            ]
        keys = [k for k, _ in self.grid]
        combos = list(itertools.product(*(values for _, values in self.grid)))
        return [
            Trial(env, tuple(zip(keys, combo)), seed) for env in self.envs for combo in combos for seed in self.seeds
        ]

    def definition(self) -> dict:
        return {
            "envs": list(self.envs),
            "seeds": list(self.seeds),
            "grid": {k: list(v) for k, v in self.grid},
            "fixed": dict(self.fixed),
            "config_file": self.config_file,
            "total_timesteps": self.total_timesteps,
            "search": self.search,
            "trials": self.n_trials,
            "metric": self.metric,
            **(
                {"suite": {env: list(presets) for env, presets in self.suite}, "suite_file": self.suite_file}
                if self.suite
                else {}
            ),
        }

    @classmethod
    def from_definition(cls, d: dict) -> "Plan":
        """The Plan that `definition()` (sweep.json's) describes."""
        return cls(
            tuple(d["envs"]),
            tuple(d["seeds"]),
            tuple((k, tuple(v)) for k, v in d["grid"].items()),
            tuple(d["fixed"].items()),
            d["config_file"],
            d["total_timesteps"],
            d["search"],
            d["trials"],
            d["metric"],
            tuple((env, tuple(presets)) for env, presets in d.get("suite", {}).items()),
            d.get("suite_file"),
        )

    def resolve(self, env_id: str, values: dict, seed: int, configs_dir: Path) -> ResolvedConfig:
        """A trial's config; a suite's trial names its preset (`default`: the env's config alone)."""
        values = dict(values)
        config_file = self.config_file
        if PRESET_KEY in values:
            config_file = preset_file(values.pop(PRESET_KEY), configs_dir)
        return resolve_config(
            env_id,
            configs_dir,
            config_file,
            {**dict(self.fixed), **values},
            total_timesteps=self.total_timesteps,
            seed=seed,
        )


def preset_file(preset: str, configs_dir: Path) -> str | None:
    """A suite's preset name -> its YAML file (None for `default`: the env's own config)."""
    return None if preset == DEFAULT_PRESET else str(configs_dir / "presets" / f"{preset}.yaml")


def load_suite(name: str, configs_dir: Path) -> tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]:
    """A suite file -- configs/suites/<name>.yaml, or a path -- as (its path, ((env, (presets, ...)), ...)).

    The file maps each env id to the presets to run on it: `default` (the env's config alone) or the name of a
    file in configs/presets/ without `.yaml`. A file that is not such a mapping, or names a preset that does
    not exist, raises ConfigError naming it."""
    path = Path(name)
    if not path.suffix:
        path = configs_dir / "suites" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (configs_dir / "suites").glob("*.yaml"))
        raise ConfigError(
            f"--suite {name}: no suite file '{path}' (suites shipped: {', '.join(known)}; or pass a YAML file's path)"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"--suite {name}: '{path}' is not valid YAML ({str(exc).splitlines()[0]})") from None
    if (
        not isinstance(data, dict)
        or not data
        or not all(isinstance(v, list) and v and all(isinstance(p, str) for p in v) for v in data.values())
    ):
        raise ConfigError(
            f"--suite {name}: '{path}' must map each env id to a list of presets, e.g. "
            f"'Hopper-v5: [default, Hopper-v5-tqc]'"
        )
    for env_id, presets in data.items():
        for preset in presets:
            file = preset_file(preset, configs_dir)
            if file is not None and not Path(file).is_file():
                known = sorted(p.stem for p in (configs_dir / "presets").glob("*.yaml"))
                raise ConfigError(
                    f"--suite {name}: {env_id} names an unknown preset '{preset}' (presets: default, "
                    f"{', '.join(known)})"
                )
        if len(set(presets)) != len(presets):
            raise ConfigError(f"--suite {name}: {env_id} lists a preset twice")
    return str(path), tuple((str(env), tuple(presets)) for env, presets in data.items())


def parse_seeds(text: str) -> tuple[int, ...]:
    """ "0-4" -> (0, 1, 2, 3, 4); "0,3,7" -> (0, 3, 7); "5" -> (5,)."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise ConfigError(
                f"--seeds {text!r}: expected a range such as 0-4 or a list such as 0,3,7 (non-negative integers)"
            )
        first, last = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        seeds.extend(range(first, last + 1))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} names a seed twice")
    return tuple(seeds)


def split_values(text: str) -> list[str]:
    """Split a grid's values at the commas outside brackets: "[64,64],[256,256]" -> ["[64,64]", "[256,256]"]."""
    values, depth, current = [], 0, ""
    for ch in text:
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += ch
    values.append(current.strip())
    return values


def parse_grid(pairs: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`["learning_rate=3e-4,1e-3", "batch_size=256,512"]` -> ((key, values), ...), in the order given."""
    grid: dict[str, tuple[str, ...]] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        values = split_values(text) if sep else []
        if not key or not sep or not all(values):
            raise ConfigError(f"--grid expects key=value1,value2,..., got {pair!r}")
        if key in NOT_IN_GRID:
            raise ConfigError(f"--grid {key}: give it with {NOT_IN_GRID[key]}, which every trial shares")
        if key in grid:
            raise ConfigError(f"--grid {key} is given twice: list all its values in one --grid {key}=a,b,c")
        if len(set(values)) != len(values):
            raise ConfigError(f"--grid {pair!r} lists a value twice")
        grid[key] = tuple(values)
    return tuple(grid.items())


def field_type(key: str):
    """The declared type of a SACConfig or RunConfig setting (None for an unknown key)."""
    for cls in (SACConfig, RunConfig):
        hints = typing.get_type_hints(cls)
        if key in hints:
            return hints[key]
    return None


def validate(plan: Plan, configs_dir: Path) -> None:
    """Resolve every trial's config (each grid value alone first, so an error names the value); raises
    ConfigError before anything starts."""
    for env in plan.envs:
        for key, values in plan.grid:
            for value in values:
                try:
                    plan.resolve(env, {key: value}, 0, configs_dir)
                except ConfigError as exc:
                    raise ConfigError(f"--grid {key}={value}: {exc}") from None
        if plan.search == "grid":
            for trial in plan.trials():
                if trial.env_id == env and trial.seed == plan.seeds[0]:
                    try:
                        plan.resolve(env, dict(trial.values), trial.seed, configs_dir)
                    except ConfigError as exc:
                        what = "--suite" if plan.suite else "--grid values"
                        raise ConfigError(f"{what} {trial.label} on {env}: {exc}") from None
        else:
            for bound in (0, -1):  # the lower and the upper end of every range together
                ends = {key: sorted(values, key=_sort_key)[bound] for key, values in plan.grid}
                try:
                    plan.resolve(env, ends, plan.seeds[0], configs_dir)
                except ConfigError as exc:
                    raise ConfigError(f"--grid values {ends} on {env}: {exc}") from None


def _sort_key(value: str):
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def read_manifest(sweep_dir: Path) -> dict | None:
    try:
        return json.loads((sweep_dir / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise ConfigError(f"'{sweep_dir / MANIFEST_FILE}' is damaged: choose a new --sweep-dir") from None


def check_sweep_dir(sweep_dir: Path, plan: Plan) -> dict | None:
    """The folder's manifest if it holds this same sweep (a re-run), None if it is new or empty; a folder of
    another sweep, or not of a sweep, raises ConfigError."""
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise ConfigError(f"--sweep-dir '{sweep_dir}' is a file; choose a folder path")
    manifest = read_manifest(sweep_dir)
    if manifest is None:
        if sweep_dir.is_dir() and any(sweep_dir.iterdir()):
            raise ConfigError(
                f"--sweep-dir '{sweep_dir}' holds files but no {MANIFEST_FILE}: not a sweep folder; choose a new one"
            )
        return None
    ours, theirs = plan.definition(), manifest.get("definition", {})
    differing = [k for k in ours if ours[k] != theirs.get(k)]
    if differing:
        key = differing[0]
        raise ConfigError(
            f"--sweep-dir '{sweep_dir}' holds a different sweep (its {key} is "
            f"{json.dumps(theirs.get(key))}, this command's is {json.dumps(ours[key])}): choose a "
            f"new --sweep-dir, or repeat its own command: {' '.join(manifest.get('command', []))}"
        )
    return manifest


def write_manifest(sweep_dir: Path, plan: Plan, command: list[str], extra: dict | None = None) -> None:
    manifest = {"definition": plan.definition(), "command": command, **(extra or {})}
    if plan.search == "grid":
        manifest["trials"] = [t.as_dict() for t in plan.trials()]
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(sweep_dir / MANIFEST_FILE, json.dumps(manifest, indent=2))


def trial_status(run_dir: Path) -> str:
    """ "finished" (ran to its total), "pruned" (stopped early by the search's scheduler), "started" (has a
    checkpoint or metrics: resumes), or "new"."""
    if finished_run(run_dir) is not None:
        return "finished"
    if (run_dir / PRUNED_FILE).is_file():
        return "pruned"
    if (run_dir / "checkpoints").is_dir() or (run_dir / METRICS_FILE).is_file():
        return "started"
    return "new"


def sampled_trial_dir(plan: Plan, trial_id: str) -> Path:
    """The folder (relative to the sweep's) of a config a searcher sampled, named by Tune's trial id."""
    return Path(plan.envs[0].rpartition(":")[2]) / f"trial-{trial_id}"


def trial_folders(sweep_dir: Path) -> list[Path]:
    """Every trial run folder of a sweep (those with sweep_trial.json), sorted."""
    return sorted(
        p.parent
        for p in sweep_dir.glob(f"**/{TRIAL_FILE}")
        if TUNE_DIR not in p.relative_to(sweep_dir).parts and (p.parent / RUN_FILE).is_file()
    )
