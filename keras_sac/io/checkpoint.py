"""Whole-agent checkpoints: one folder, no pickle, written atomically, verified on load.

A checkpoint folder holds
    variables/agent.*   every TensorFlow variable (networks, targets, Adam slots, log-alpha, update
                        counter, the policy-noise generator) as a flat name -> variable TF checkpoint
    arrays.npz          the replay buffer's filled rows, the current observation and the env's
                        mid-episode state (see envs/state.py); read with allow_pickle=False
    agent.json          config, env spec, counters, NumPy and env random-generator states, episode stats
    MANIFEST.json       size and CRC32 of each file above; written last, so a folder without a matching
                        manifest is incomplete or damaged and is never trusted

Writes go to a hidden staging folder, are fsynced, and are moved into place only when complete (an
existing folder is swapped atomically, see files.py), so a kill at any moment leaves the previous
checkpoint untouched. `RollingCheckpoints` keeps the newest two
`step_<n>` folders of a run and falls back to the older one, with a warning, if the newest is damaged.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

from keras_sac import __version__
from keras_sac.config.settings import to_dict
from keras_sac.core.spaces import EnvSpec
from keras_sac.envs.make import check_same_spaces, make_env_like
from keras_sac.io.files import fsync_dir, fsync_tree, recover_dir, replace_dir, staging_dir

FORMAT = "keras_sac.agent/2"
AGENT_FILE, ARRAYS_FILE, MANIFEST_FILE = "agent.json", "arrays.npz", "MANIFEST.json"
VARIABLES_PREFIX = Path("variables") / "agent"
STEP_PREFIX = "step_"


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, damaged or does not match; the message names the path."""


# ---------------------------------------------------------------------------------------------- writing
def save_agent(agent, path: str | Path, include_buffer: bool = True) -> Path:
    """Write `agent` to the folder `path`, replacing it only once the new folder is complete."""
    import tensorflow as tf  # here, not at the top: callbacks and the CLIs' checks read folders without TensorFlow

    path = Path(path)
    tmp = staging_dir(path)
    try:
        tf.train.Checkpoint(**agent.state_variables()).write(str(tmp / VARIABLES_PREFIX))
        runtime, arrays = runtime_state(agent)
        if include_buffer:
            arrays.update({f"buffer.{k}": v for k, v in agent.buffer.state_arrays().items()})
        with open(tmp / ARRAYS_FILE, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]  # NumPy's stub mixes allow_pickle into **kwds
        meta = {
            "format": FORMAT,
            "keras_sac_version": __version__,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "config": to_dict(agent.config),
            "env": agent.spec.to_dict(),
            **runtime,
        }
        if agent.parts.names():  # what to pass again to load: a checkpoint stores no code
            meta["custom_parts"] = agent.parts.names()
        (tmp / AGENT_FILE).write_text(json.dumps(meta, indent=1))
        fsync_tree(tmp)
        _write_manifest(tmp)
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed write leaves no debris and the old folder as it was
        raise
    return path


def state_variables(agent) -> dict:
    """Every piece of the agent's TensorFlow state, keyed by a stable name: the Keras variable path, except
    for a user's own layers (core/parts.py), whose automatic names change from process to process and are
    keyed by position instead (`custom_state_keys`)."""
    from keras_sac.core.parts import custom_state_keys  # here: it imports Keras, and this module stays TF-free

    targets = agent.target_critics.variables if agent.target_critics is not None else []
    optimizers = (agent.actor_optimizer, agent.critic_optimizer, agent.alpha_optimizer)
    keras_vars = [
        *agent.actor.variables,
        *agent.critics.variables,
        *targets,
        *(v for optimizer in optimizers for v in optimizer.variables),
    ]
    keras_vars = list({id(v): v for v in keras_vars}.values())  # a shared encoder is in actor and critics
    stable = custom_state_keys(custom_layers(agent), optimizers) if agent.parts.names() else {}
    state = {stable.get(v.path, v.path).replace("/", "."): v for v in keras_vars}
    if len(state) != len(keras_vars):
        raise RuntimeError("two state variables share a path")  # would silently drop one on save
    # With policy_delay: the actor's last metrics, reported between its updates.
    held = {f"held.{name.replace('/', '.')}": v for name, v in getattr(agent._update, "held", {}).items()}
    sde = {"sde_noise": agent.sde_noise} if agent.config.use_sde else {}
    return {**state, **held, **sde, "log_alpha": agent.log_alpha, "n_updates": agent.n_updates, "tf_rng": agent.tf_rng}


def custom_layers(agent) -> dict:
    """{stable prefix: layer} of the agent's user-made layers."""
    layers = {}
    for net in (agent.critics, agent.target_critics):
        if net is None:
            continue
        if agent.parts.features_extractor is not None:
            layers[f"{net.name}/extractor"] = net.encoder
        if agent.parts.critic_torso is not None:
            layers.update({f"{net.name}/q_{i}/torso": q.torso for i, q in enumerate(net.members)})
    if agent.parts.actor_torso is not None:
        layers["actor/torso"] = agent.actor.trunk
    if agent.parts.features_extractor is not None and not agent.actor.detach_encoder:
        layers["actor/extractor"] = agent.actor.encoder
    return layers


def runtime_state(agent) -> tuple[dict, dict[str, np.ndarray]]:
    """The Python-side state a checkpoint needs besides the variables and the buffer: (JSON, arrays)."""
    episodes, arrays = agent.collector.state()
    state = {
        "num_timesteps": agent.num_timesteps,
        "np_rng": agent.np_rng.bit_generator.state,
        "predict_rng": agent.predict_rng.bit_generator.state,
        "update_metrics": agent.update_metrics.state(),  # the updates since the last logged row
        **episodes,
    }
    return state, arrays


# ---------------------------------------------------------------------------------------------- reading
def restore_runtime_state(agent, state: dict, arrays: dict[str, np.ndarray]) -> None:
    agent.num_timesteps = int(state["num_timesteps"])
    agent.np_rng.bit_generator.state = state["np_rng"]
    if "predict_rng" in state:  # (checkpoints from keras_sac before it was saved still load)
        agent.predict_rng.bit_generator.state = state["predict_rng"]
    agent.update_metrics.restore(state.get("update_metrics", {"phases": 0}))
    agent.collector.restore(state, arrays, agent.num_timesteps)
    buffer_arrays = {k[len("buffer.") :]: v for k, v in arrays.items() if k.startswith("buffer.")}
    if buffer_arrays:
        agent.buffer.restore_arrays(buffer_arrays)


def load_agent(cls, path: str | Path, env=None, parts: dict | None = None):
    """`cls.load`: rebuild the agent from its config and env spec, then restore every piece of state.
    `parts`: the custom parts (core/parts.py) the agent was saved with, by keyword."""
    path = resolve(path)
    meta, arrays = read_checkpoint(path)
    parts = dict(parts or {})
    saved_parts = meta.get("custom_parts", {})
    missing = [k for k in saved_parts if parts.get(k) is None]
    if missing:
        given = ", ".join(f"{k}={saved_parts[k].rpartition('.')[2].replace('<lambda>', '...')}" for k in missing)
        raise CheckpointError(
            f"the agent at '{path}' was built with its own {', '.join(missing)} "
            f"({', '.join(saved_parts[k] for k in missing)}), which a checkpoint does not store: "
            f"pass it again: KerasSAC.load(path, {given})"
        )
    extra = [k for k in parts if k not in saved_parts]
    if extra:
        raise CheckpointError(
            f"the agent at '{path}' was built without a custom {', '.join(extra)}: leave "
            f"{'it' if len(extra) == 1 else 'them'} out of load"
        )
    saved_spec = EnvSpec.from_dict(meta["env"])
    if env is None:
        if saved_spec.env_id is None:
            raise CheckpointError(f"the agent at '{path}' was trained on an unregistered env: pass env=")
        env = make_env_like(saved_spec)  # same id and gym.make keyword arguments
    agent = cls(env, **parts, **meta["config"])
    check_same_spaces(saved_spec, agent.spec, f"the agent saved at '{path}'")
    restore_variables(agent, path)
    agent.actor_changed()
    restore_runtime_state(agent, meta, arrays)
    return agent


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_FILE)


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def _write_manifest(folder: Path) -> None:
    """Sizes and CRC32s of the (already fsynced) files, written last."""
    entries = {
        str(path.relative_to(folder)): {"size": path.stat().st_size, "crc32": _crc32(path)} for path in _files(folder)
    }
    with open(folder / MANIFEST_FILE, "w") as f:
        json.dump({"format": FORMAT, "files": entries}, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(folder)


# ---------------------------------------------------------------------------------------------- reading
def verify(path: Path) -> None:
    """Raise CheckpointError unless every file listed in the manifest is present with its size and CRC."""
    manifest = path / MANIFEST_FILE
    if not manifest.is_file():
        if (path / AGENT_FILE).is_file():
            raise CheckpointError(
                f"checkpoint '{path}' is incomplete ({MANIFEST_FILE} is missing: the write was interrupted)"
            )
        raise CheckpointError(
            f"no keras_sac checkpoint at '{path}' ({AGENT_FILE} is missing): pass a folder "
            f"written by KerasSAC.save, a run's checkpoints/ folder or a run folder"
        )
    try:
        files = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"checkpoint '{path}' is damaged ({MANIFEST_FILE} is unreadable)") from None
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint '{path}' is damaged ({name} is missing)")
        if file.stat().st_size != expected["size"] or _crc32(file) != expected["crc32"]:
            raise CheckpointError(f"checkpoint '{path}' is damaged ({name} does not match its checksum)")


def resolve(path: str | Path) -> Path:
    """The checkpoint folder meant by `path`: itself, or the newest good one under it (or its checkpoints/)."""
    path = recover_dir(Path(path))  # a save killed between its two renames (systems without an atomic swap)
    if not path.exists():
        raise CheckpointError(f"no keras_sac checkpoint at '{path}': the path does not exist")
    if (path / MANIFEST_FILE).exists() or (path / AGENT_FILE).exists():
        return path
    for root in (path, path / "checkpoints"):
        if root.is_dir() and any(p.name.startswith(STEP_PREFIX) for p in root.iterdir()):
            return RollingCheckpoints(root).latest()
    raise CheckpointError(
        f"no keras_sac checkpoint at '{path}': pass a folder written by KerasSAC.save, a "
        f"run's checkpoints/ folder or a run folder"
    )


def read_checkpoint(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(agent.json contents, arrays) of a verified checkpoint folder."""
    verify(path)
    meta = json.loads((path / AGENT_FILE).read_text())
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' holds format {meta.get('format')!r}; this keras_sac reads {FORMAT!r}")
    try:
        with np.load(path / ARRAYS_FILE, allow_pickle=False) as npz:  # never runs pickled code
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        raise CheckpointError(
            f"checkpoint '{path}' holds data that needs pickle to load ({exc}); "
            f"keras_sac never unpickles: this file was not written by keras_sac"
        ) from None
    return meta, arrays


def restore_variables(agent, path: Path) -> None:
    """Read the checkpoint's TF variables into `agent.state_variables()`, all of them or none usable."""
    import tensorflow as tf  # (as in save_agent)

    try:
        tf.train.Checkpoint(**agent.state_variables()).read(str(path / VARIABLES_PREFIX)).assert_consumed()
    except Exception as exc:  # TF raises OpError, AssertionError, IndexError... for damaged or foreign files
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"checkpoint '{path}' does not fit this agent: {first_line}") from None


# ---------------------------------------------------------------------------------------------- a run's
class RollingCheckpoints:
    """`root/step_<n>` folders of one run: write a new one, keep the newest `keep`, find the newest good one."""

    def __init__(self, root: str | Path, keep: int = 2):
        self.root, self.keep = Path(root), keep

    def folders(self) -> list[Path]:
        """Completed step folders (staging folders are hidden), newest first."""
        if not self.root.is_dir():
            return []
        steps = [p for p in self.root.iterdir() if p.is_dir() and p.name.startswith(STEP_PREFIX)]
        return sorted(steps, key=lambda p: int(p.name[len(STEP_PREFIX) :]), reverse=True)

    def write(self, agent, include_buffer: bool = True) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        path = save_agent(agent, self.root / f"{STEP_PREFIX}{agent.num_timesteps:012d}", include_buffer)
        for old in self.folders()[self.keep :]:
            shutil.rmtree(old, ignore_errors=True)
        for debris in self.root.glob(f".{STEP_PREFIX}*"):  # staging folders of writes that were killed
            shutil.rmtree(debris, ignore_errors=True)
        return path

    def latest(self) -> Path:
        """The newest folder that verifies; a damaged newer one is skipped with a warning naming it."""
        problems = []
        for folder in self.folders():
            try:
                verify(folder)
            except CheckpointError as exc:
                problems.append(str(exc))
                continue
            for problem in problems:
                warnings.warn(f"{problem}; using the previous checkpoint '{folder}'", stacklevel=2)
            return folder
        detail = f": {'; '.join(problems)}" if problems else ""
        raise CheckpointError(f"no good checkpoint under '{self.root}'{detail}")
