"""Shared fixtures: a tiny continuous-control env whose optimum is known, small agent settings, and train.py's
and evaluate.py's main called in the test's process."""

import os
import subprocess
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

if "mutmut" in sys.modules:  # a mutation run (docs/testing.md): let Keras read the trampolines' signatures
    from mutmut_signatures import pytest_collection_finish, pytest_collection_modifyitems, pytest_runtest_setup  # noqa: F401

# Small networks and batches: the tests check behaviour, not scale.
SMALL = dict(net_arch=(32, 32), batch_size=32, buffer_size=10_000, learning_starts=50)


class MatchEnv(gym.Env):
    """Observe x ~ U(-1, 1)^2; the reward is 1 - mean((a - x)^2), so the best action is a = x.

    Actions are Box(-2, 2): the agent's tanh output must be rescaled to reach them. The episode
    terminates at `terminate_at` (if set); a TimeLimit wrapper (see `make_match_env`) truncates it.
    """

    def __init__(self, terminate_at: int | None = None):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
        self.terminate_at = terminate_at

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.x = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self.x, {}

    def step(self, action):
        reward = 1.0 - float(np.mean((np.asarray(action) - self.x) ** 2))
        self.t += 1
        terminated = self.terminate_at is not None and self.t >= self.terminate_at
        self.x = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self.x, reward, terminated, False, {}


def make_match_env(max_episode_steps: int = 10, terminate_at: int | None = None) -> gym.Env:
    return gym.wrappers.TimeLimit(MatchEnv(terminate_at), max_episode_steps=max_episode_steps)


@pytest.fixture
def match_env():
    return make_match_env()


def cli_in_process(script: str, args, capsys, monkeypatch) -> subprocess.CompletedProcess:
    """train.py's or evaluate.py's main called in this process with `args`: its exit code, stdout and stderr. The
    same code as a fresh `python train.py ...` from the command line on, without its interpreter and TensorFlow
    start-up (~10 s under load), for tests whose subject is not that start-up."""
    from keras_sac.cli import evaluate, train

    main = {"train.py": train.main, "evaluate.py": evaluate.main}[script]
    capsys.readouterr()  # what the test printed before is not the script's
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # main sets it; undone after the test
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)
