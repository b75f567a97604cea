"""The bad-input matrix: every case is answered by one line that names the problem (and the fix), and
nothing is half-written. Python API first, then the command-line tools (exit code 2 for usage errors)."""

import errno
import subprocess
import sys
from pathlib import Path

import bad_envs  # noqa: F401  (registers the misbehaving envs)
import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from conftest import SMALL, cli_in_process, make_match_env

from keras_sac import CheckpointError, ConfigError, EnvError, KerasSAC, LoadedPolicy, PolicyError, SACConfig
from keras_sac.agent import TrainingDivergedError

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(SMALL, learning_starts=100)


def unbounded_env():
    env = make_match_env()
    env.unwrapped.action_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    return env


@pytest.fixture(scope="module")
def agent():
    return KerasSAC("Pendulum-v1", seed=0, **SMALL)


@pytest.fixture(scope="module")
def policy_dir(agent, tmp_path_factory):
    return agent.export(tmp_path_factory.mktemp("policy") / "policy")


def learn_on(env_id):
    return lambda: KerasSAC(env_id, seed=0, **FAST).learn(400)


API_CASES = {
    # env ids and spaces
    "unknown env id": (
        lambda: KerasSAC("InvertedPendulm-v5"),
        EnvError,
        r"unknown env id 'InvertedPendulm-v5' \(NameNotFound\): did you mean 'InvertedPendulum-v5'",
    ),
    "Discrete actions": (
        lambda: KerasSAC("CartPole-v1"),
        EnvError,
        r"Discrete action space; SAC needs continuous Box actions",
    ),
    "MultiDiscrete actions": (
        lambda: KerasSAC("MultiDiscreteActions-v0"),
        EnvError,
        r"MultiDiscrete action space; SAC needs continuous Box actions",
    ),
    "unbounded Box actions": (lambda: KerasSAC(unbounded_env()), EnvError, r"unbounded Box action space.*ClipAction"),
    # config
    "unknown key": (
        lambda: KerasSAC("Pendulum-v1", batchsize=64),
        ConfigError,
        r"unknown config key 'batchsize': did you mean 'batch_size'\?",
    ),
    "wrong type": (lambda: SACConfig(batch_size="many"), ConfigError, r"batch_size must be an integer, got 'many'"),
    "gamma out of (0, 1]": (
        lambda: SACConfig(gamma=1.5),
        ConfigError,
        r"gamma = 1.5 is out of range: expected a number in \(0, 1\]",
    ),
    "tau out of (0, 1]": (lambda: SACConfig(tau=0), ConfigError, r"tau = 0.0 is out of range"),
    "negative learning rate": (
        lambda: SACConfig(learning_rate=-1e-3),
        ConfigError,
        r"learning_rate = -0.001 is out of range: expected a number > 0",
    ),
    "batch_size > buffer_size": (
        lambda: SACConfig(batch_size=512, buffer_size=100),
        ConfigError,
        r"batch_size \(512\) is larger than buffer_size \(100\); lower batch_size",
    ),
    # observations handed to predict
    "predict: wrong shape": (
        lambda a, p: a.predict(np.zeros(4)),
        ValueError,
        r"observation has shape \(4,\); the agent expects \(3,\) for one observation",
    ),
    "predict: wrong dtype": (
        lambda a, p: a.predict(np.array(["a", "b", "c"])),
        ValueError,
        r"observation must be numeric; the agent got ndarray of dtype <U1",
    ),
    "predict: NaN": (
        lambda a, p: a.predict(np.array([np.nan, 0.0, 0.0])),
        ValueError,
        r"observation contains NaN or inf; the agent needs finite values",
    ),
    "predict: env.reset() tuple": (
        lambda a, p: a.predict(gym.make("Pendulum-v1").reset(seed=0)),
        ValueError,
        r"the agent got an \(observation, info\) tuple, as env.reset\(\) returns: unpack "
        r"it first, obs, info = env.reset\(\)",
    ),
    "policy: env.reset() tuple": (
        lambda a, p: LoadedPolicy(p)(gym.make("Pendulum-v1").reset(seed=0)),
        ValueError,
        r"the policy at .* got an \(observation, info\) tuple",
    ),
    # ... and to the exported SavedModel, through LoadedPolicy and through the raw signature
    "policy: wrong shape": (
        lambda a, p: LoadedPolicy(p)(np.zeros((2, 4))),
        ValueError,
        r"observation has shape \(2, 4\); the policy at .* expects \(3,\)",
    ),
    "signature: wrong shape": (
        lambda a, p: serve(p, np.zeros((2, 4), np.float32)),
        tf.errors.InvalidArgumentError,
        r"Shape of tensor observation \[2,4\] is not compatible with expected shape \[\?,3\]",
    ),
    "signature: wrong dtype": (
        lambda a, p: serve(p, np.zeros((2, 3), np.float64)),
        tf.errors.InvalidArgumentError,
        r"was expected to be a float tensor but is a double tensor",
    ),
    "signature: NaN": (
        lambda a, p: serve(p, np.full((1, 3), np.nan, np.float32)),
        tf.errors.InvalidArgumentError,
        r"keras_sac policy: observation contains NaN or inf",
    ),
    # env outputs while training
    "NaN reward": (
        learn_on("NanReward-v0"),
        EnvError,
        r"env returned a non-finite reward \(nan\) at step 150; the transition was not stored",
    ),
    "inf observation": (
        learn_on("NanObs-v0"),
        EnvError,
        r"env returned a non-finite observation \(entries \[0\]\) at step 150",
    ),
    "diverging loss": (
        learn_on("HugeReward-v0"),
        TrainingDivergedError,
        r"training diverged at step \d+: critic loss is not finite \(NaN or inf\)",
    ),
    # saved files
    "missing checkpoint": (
        lambda a, p: KerasSAC.load(p.parent / "nowhere"),
        CheckpointError,
        r"no keras_sac checkpoint at '.*nowhere': the path does not exist",
    ),
    "not a checkpoint": (lambda a, p: KerasSAC.load(p), CheckpointError, r"no keras_sac checkpoint at '.*policy'"),
    "missing SavedModel": (
        lambda a, p: LoadedPolicy(p / "variables"),
        PolicyError,
        r"no SavedModel policy at .*saved_model.pb is missing",
    ),
}


def serve(policy_dir, obs):
    return tf.saved_model.load(str(policy_dir)).signatures["serving_default"](observation=tf.constant(obs))


@pytest.mark.parametrize("case", API_CASES)
def test_api_bad_input(case, agent, policy_dir):
    call, error, pattern = API_CASES[case]
    with pytest.raises(error) as info:
        call(agent, policy_dir) if call.__code__.co_argcount == 2 else call()
    message = str(info.value)
    if error is tf.errors.InvalidArgumentError:
        message = info.value.message
    assert "\n" not in message.strip() or error is tf.errors.InvalidArgumentError
    assert __import__("re").search(pattern, message), message


def test_a_bad_env_output_does_not_poison_the_buffer():
    learner = KerasSAC("NanReward-v0", seed=0, **FAST)
    with pytest.raises(EnvError):
        learner.learn(400)
    assert learner.num_timesteps == 149 and len(learner.buffer) == 149
    assert np.isfinite(learner.buffer.rewards[:149]).all()


def test_read_only_disk_at_checkpoint_time_stops_the_run_naming_the_intact_checkpoint(tmp_path, monkeypatch):
    from keras_sac.config.sources import resolve_config
    from keras_sac.experiments.training import RunFailed, train
    from keras_sac.io import checkpoint
    from keras_sac.io.run_files import write_run_start

    config = resolve_config(
        "Pendulum-v1",
        tmp_path,
        overrides={
            "checkpoint_freq": "150",
            "log_interval": "50",
            "eval_freq": "0",
            "total_timesteps": "600",
            "net_arch": "[32, 32]",
            "batch_size": "32",
        },
    )
    write_run_start(tmp_path, config)
    real_save = checkpoint.save_agent

    def read_only_after_first(agent, path, include_buffer=True):
        if agent.num_timesteps > 150:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_save(agent, path, include_buffer)

    monkeypatch.setattr(checkpoint, "save_agent", read_only_after_first)
    from keras_sac.io import logger

    closed, real_close = [], logger.RunLogger.close
    monkeypatch.setattr(logger.RunLogger, "close", lambda self: closed.append(1) or real_close(self))
    with pytest.raises(
        RunFailed,
        match=r"could not write the checkpoint of step 300 \(\[Errno 30\] Read-only "
        r"file system\); the last good checkpoint is '.*step_000000000150'",
    ):
        train(config, tmp_path, progress_bar=False, say=lambda _: None)
    assert closed == [1]  # the metrics files were closed (flushed) on the way out
    assert KerasSAC.load(tmp_path).num_timesteps == 150


# ------------------------------------------------------------------------------------- command line
def run(script, *args, cwd):
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT / "tests")}  # for bad_envs:...
    return subprocess.run(
        [sys.executable, str(ROOT / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def error_line(proc, script):
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith(f"{script}: error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


TINY = ["--set", "net_arch=[32,32]", "--set", "batch_size=32", "--set", "eval_freq=0", "--no-progress"]
CLI_CASES = {
    "unknown env id": (["--env", "InvertedPendulm-v5"], "did you mean 'InvertedPendulum-v5'"),
    "Discrete actions": (["--env", "CartPole-v1"], "Discrete action space"),
    "unknown config key": (["--env", "Pendulum-v1", "--set", "gama=0.9"], "unknown config key 'gama'"),
    "bad --env-kwargs": (["--env", "Pendulum-v1", "--env-kwargs", "[1, 2]"], "--env-kwargs must be a mapping"),
    "unknown env kwarg": (
        ["--env", "Pendulum-v1", "--env-kwargs", "{gravity: 3}"],
        "does not accept the keyword arguments {'gravity': 3}",
    ),
    "unimportable env module": (["--env", "no_such_module:Env-v0"], "cannot import module 'no_such_module'"),
    "wrong type": (["--env", "Pendulum-v1", "--set", "batch_size=big"], "batch_size must be an integer"),
    "gamma out of range": (["--env", "Pendulum-v1", "--set", "gamma=2"], "gamma = 2.0 is out of range"),
    "tau out of range": (["--env", "Pendulum-v1", "--set", "tau=0"], "tau = 0.0 is out of range"),
    "batch > buffer": (
        ["--env", "Pendulum-v1", "--set", "buffer_size=100"],
        "batch_size (256) is larger than buffer_size (100)",
    ),
    "negative learning rate": (["--env", "Pendulum-v1", "--set", "learning_rate=-1"], "learning_rate = -1.0 is out"),
    "learning_starts > total": (
        ["--env", "Pendulum-v1", "--total-timesteps", "50"],
        "learning_starts (100) >= total_timesteps (50)",
    ),
    "malformed --set": (["--env", "Pendulum-v1", "--set", "gamma"], "--set expects key=value"),
    "missing --config": (["--env", "Pendulum-v1", "--config", "missing.yaml"], "config file 'missing.yaml' does not"),
    "resume: not a run": (["--resume", "."], "is not a train.py run folder"),
    "resume: missing folder": (
        ["--resume", "runs/does-not-exist"],
        "'runs/does-not-exist' does not exist: pass the run folder train.py made",
    ),
    "an abbreviation": (
        ["--env", "Pendulum-v1", "--set", "lr=1e-3"],
        "unknown config key 'lr': did you mean 'learning_rate'?",
    ),
    "a CleanRL name": (["--env", "Pendulum-v1", "--set", "policy_frequency=2"], "did you mean 'policy_delay'?"),
    "a YAML syntax error": (
        ["--env", "Pendulum-v1", "--config", "bad.yaml"],
        "is not valid YAML: could not find expected ':' at line 2: 'batch_size 256' (a setting is "
        "'key: value', with a space after the colon)",
    ),
}


@pytest.mark.parametrize("case", CLI_CASES)
def test_train_bad_input(case, tmp_path):
    args, fragment = CLI_CASES[case]
    (tmp_path / "bad.yaml").write_text("gamma: 0.99\nbatch_size 256\nlearning_rate: 3.0e-4\n")
    proc = run("train.py", *args, *(["--run-dir", tmp_path / "run"] if "--resume" not in args else []), cwd=tmp_path)
    assert proc.returncode == 2 and fragment in error_line(proc, "train.py")
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_train_refuses_a_run_dir_that_holds_a_run_unless_resume_or_force(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    proc = run("train.py", "--env", "Pendulum-v1", "--run-dir", tmp_path, cwd=tmp_path)
    assert proc.returncode == 2
    assert "already holds files; choose a new folder, pass --force" in error_line(proc, "train.py")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_train_bad_flags_are_usage_errors(tmp_path):
    for args, fragment in (
        (["--env", "Pendulum-v1", "--total-timesteps", "lots"], "invalid int value: 'lots'"),
        ([], "--env is required"),
        (["--resume", ".", "--seed", "3"], "drop --seed"),
    ):
        proc = run("train.py", *args, cwd=tmp_path)
        assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.filterwarnings("ignore:the mid-episode state of env")  # the test envs cannot be restored mid-episode
@pytest.mark.parametrize(
    "env_id, fragment",
    [
        ("bad_envs:NanReward-v0", "non-finite reward (nan) at step 150"),
        ("bad_envs:HugeReward-v0", "training diverged at step"),
    ],
)
def test_train_stops_on_bad_numbers_naming_the_intact_checkpoint(tmp_path, env_id, fragment, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = cli_in_process(  # (bad_envs is registered in this process by this module's import)
        "train.py",
        ["--env", env_id, "--total-timesteps", 2000, "--set", "checkpoint_freq=100", "--set", "learning_starts=100"]
        + ["--run-dir", tmp_path / "run", *TINY],
        capsys,
        monkeypatch,
    )
    line = error_line(proc, "train.py")
    assert proc.returncode == 1 and fragment in line and "the last good checkpoint is" in line
    KerasSAC.load(tmp_path / "run")  # and it loads


@pytest.mark.parametrize("path, fragment", [("nope", "does not exist"), (".", "no SavedModel policy at")])
def test_evaluate_bad_paths(tmp_path, path, fragment):
    proc = run("evaluate.py", path, cwd=tmp_path)
    assert proc.returncode == 2 and fragment in error_line(proc, "evaluate.py")
