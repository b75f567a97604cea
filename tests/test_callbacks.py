"""The callback protocol of KerasSAC.learn and its built-ins, as an SB3 user would use them."""

import numpy as np
import pytest
from conftest import SMALL, make_match_env

from keras_sac import KerasSAC, LoadedPolicy
from keras_sac.callbacks import Callback, CheckpointCallback, EvalCallback, StopTrainingOnRewardThreshold, as_callback
from keras_sac.core.metrics import metric_values


class Recording(Callback):
    def __init__(self, stop_at=None):
        self.calls, self.stop_at = [], stop_at

    def on_training_start(self, agent):
        self.calls.append(("start", agent.num_timesteps))

    def on_step(self, agent):
        self.calls.append(("step", agent.num_timesteps))
        return agent.num_timesteps != self.stop_at

    def on_rollout_end(self, agent):
        self.calls.append(("rollout", agent.num_timesteps))

    def on_training_end(self, agent):
        self.calls.append(("end", agent.num_timesteps))


def test_hooks_in_order():
    agent = KerasSAC(make_match_env(), seed=0, train_freq=4, **SMALL)
    rec = Recording()
    agent.learn(60, callback=rec)
    kinds = [k for k, _ in rec.calls]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("start") == kinds.count("end") == 1
    assert [s for k, s in rec.calls if k == "step"] == list(range(1, 61))
    assert [s for k, s in rec.calls if k == "rollout"] == list(range(4, 61, 4))  # each train_freq phase
    # a rollout ends before its step's on_step (the training phase sits between them)
    i = rec.calls.index(("rollout", 8))
    assert rec.calls[i + 1] == ("step", 8)


def test_false_stops_and_end_still_runs():
    agent = KerasSAC(make_match_env(), seed=0, **SMALL)
    rec = Recording(stop_at=25)
    agent.learn(100, callback=[rec, lambda a: None])  # a list, and a plain function returning None
    assert agent.num_timesteps == 25 and rec.calls[-1] == ("end", 25)


def test_end_runs_after_an_error():
    agent = KerasSAC(make_match_env(), seed=0, **SMALL)
    rec = Recording()

    def boom(a):
        if a.num_timesteps == 10:
            raise KeyError("boom")

    with pytest.raises(KeyError):
        agent.learn(50, callback=[rec, boom])
    assert rec.calls[-1] == ("end", 10)


def test_plain_function_stops_too():
    agent = KerasSAC(make_match_env(), seed=0, **SMALL)
    agent.learn(100, callback=lambda a: a.num_timesteps < 7)
    assert agent.num_timesteps == 7


def test_not_a_callback():
    with pytest.raises(TypeError, match="callback must be a keras_sac.callbacks.Callback"):
        as_callback(42)


def test_eval_callback_best_export_and_stop(tmp_path):
    agent = KerasSAC(make_match_env(), seed=0, **SMALL)
    said = []
    stop = StopTrainingOnRewardThreshold(reward_threshold=-1e9, say=said.append)  # reached at the first eval
    evaluation = EvalCallback(
        make_match_env(),
        eval_freq=40,
        n_eval_episodes=2,
        seed=1,
        best_model_save_path=tmp_path / "best",
        callback_on_new_best=stop,
        say=said.append,
    )
    agent.learn(200, callback=evaluation)
    assert agent.num_timesteps == 40 and [s for s, _, _ in evaluation.evaluations] == [40]
    assert said[0].startswith("eval @ 40 steps: return") and said[1].startswith("stopping: mean evaluation return")
    obs = np.zeros((1, 2), np.float32)
    np.testing.assert_allclose(
        LoadedPolicy(tmp_path / "best")(obs), agent.predict(obs, deterministic=True)[0], atol=1e-5
    )


def test_eval_callback_periodic_and_final():
    agent = KerasSAC(make_match_env(), seed=0, **SMALL)
    evaluation = EvalCallback(make_match_env(), eval_freq=30, n_eval_episodes=1, final_step=100, say=None)
    agent.learn(100, callback=evaluation)
    assert [s for s, _, _ in evaluation.evaluations] == [30, 60, 90, 100]
    assert set(evaluation.last_metrics) == {"eval/mean_return", "eval/std_return", "eval/mean_ep_length"}


def test_stop_without_parent_says_how():
    agent = KerasSAC(make_match_env(), seed=0, **SMALL)
    with pytest.raises(ValueError, match="pass it as that EvalCallback's callback_on_new_best"):
        agent.learn(5, callback=StopTrainingOnRewardThreshold(0.0))


def test_checkpoint_callback_keeps_newest(tmp_path):
    agent = KerasSAC(make_match_env(), seed=0, **SMALL)
    agent.learn(100, callback=CheckpointCallback(save_freq=30, save_path=tmp_path / "ck", keep=2))
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["step_000000000060", "step_000000000090"]
    loaded = KerasSAC.load(tmp_path / "ck", env=make_match_env())
    assert loaded.num_timesteps == 90


def test_with_vector_envs_due_counts_every_env_step():
    agent = KerasSAC("Pendulum-v1", seed=0, n_envs=4, **SMALL)
    evaluation = EvalCallback("Pendulum-v1", eval_freq=50, n_eval_episodes=1, say=None)
    agent.learn(120, callback=evaluation)
    assert [s for s, _, _ in evaluation.evaluations] == [52, 100]  # the vector steps that passed 50 and 100


class _StepRecorder(Callback):
    def __init__(self):
        self.steps = []

    def on_step(self, agent):
        self.steps.append({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.locals.items()})


@pytest.mark.parametrize("n_envs", [1, 2])
def test_callbacks_see_each_steps_actions_rewards_ends_and_infos_as_sb3_locals(n_envs):
    recorder = _StepRecorder()
    agent = KerasSAC("Pendulum-v1", seed=0, n_envs=n_envs, learning_starts=10_000, net_arch=(16, 16))
    agent.learn(200 * n_envs, callback=[recorder])  # a Pendulum episode is 200 steps, truncated by its time limit
    assert len(recorder.steps) == 200
    for k, s in enumerate(recorder.steps):
        assert s["actions"].shape == (n_envs, 1) and np.all(np.abs(s["actions"]) <= 2.0)  # env bounds (+-2)
        assert s["rewards"].shape == (n_envs,) and len(s["infos"]) == n_envs
        assert not s["terminated"].any() and s["truncated"].all() == (k == 199)
        np.testing.assert_array_equal(s["dones"], s["terminated"] | s["truncated"])
    returns = np.sum([s["rewards"] for s in recorder.steps], axis=0)
    np.testing.assert_allclose(sorted(returns), sorted(list(agent.episode_returns)[:n_envs]), rtol=1e-6)
    if n_envs == 2:
        assert all(isinstance(info, dict) for info in recorder.steps[-1]["infos"])


def test_tensorboard_log_writes_train_py_s_metrics_in_a_folder_per_run_as_sb3_names_them(tmp_path):
    import csv

    import tensorflow as tf

    from keras_sac.io.logger import columns

    agent = KerasSAC("Pendulum-v1", seed=0, **SMALL, tensorboard_log=tmp_path / "tb")
    agent.learn(2_100, tb_log_name="SAC")
    agent.learn(1_000, tb_log_name="SAC", reset_num_timesteps=False)  # continues SAC_1
    agent.learn(1_000, tb_log_name="SAC")  # a new run: SAC_2
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["SAC_1", "SAC_2"]
    with open(tmp_path / "tb" / "SAC_1" / "metrics.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == columns(agent.config)  # train.py's columns, in its order
    assert [int(float(r["step"])) for r in rows] == [1000, 2000, 3000]
    assert float(rows[-1]["train/critic_loss"]) > 0 and rows[-1]["rollout/episode_return"]
    events = list((tmp_path / "tb" / "SAC_1" / "tb").glob("events.out.tfevents.*"))
    tags = {
        v.tag for e in events for record in tf.compat.v1.train.summary_iterator(str(e)) for v in record.summary.value
    }
    assert {"train/critic_loss", "train/alpha", "rollout/episode_return", "time/steps_per_second"} <= tags


class PhaseMetrics(Callback):
    """Each training phase's metrics, read before the logger after it in the list clears them."""

    def __init__(self):
        self.phases = []

    def on_step(self, agent):
        if len(agent.update_metrics):
            self.phases.append((agent.num_timesteps, metric_values(agent.last_metrics)))
        return True


def test_a_logged_row_holds_the_mean_over_its_updates_and_episodes_csv_every_training_episode(tmp_path):
    from keras_sac.callbacks import MetricsLogger
    from keras_sac.io.run_files import read_metrics

    recorder = PhaseMetrics()
    agent = KerasSAC(make_match_env(max_episode_steps=7), seed=0, **SMALL)
    agent.learn(700, callback=[recorder, MetricsLogger(tmp_path, log_interval=100)])
    rows = read_metrics(tmp_path / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(100, 701, 100))
    for row in rows[1:]:  # (phases are recorded at most once per step: each row's own, after the one before)
        window = [m for step, m in recorder.phases if row["step"] - 100 < step <= row["step"]]
        assert len(window) == 100 and len({m["train/critic_loss"] for m in window}) > 1
        for key in ("train/critic_loss", "train/actor_loss", "train/alpha", "train/entropy", "train/mean_q_2"):
            expected = np.mean([m[key] for m in window])
            assert row[key] == pytest.approx(expected, rel=1e-5), key  # not the last update's value
            assert row[key] != pytest.approx(window[-1][key], rel=1e-7), key
    episodes = read_metrics(tmp_path / "episodes.csv")
    assert len(episodes) == agent.num_episodes == 100  # 700 steps of 7-step episodes
    assert [int(e["step"]) for e in episodes] == list(range(7, 701, 7))  # each at the step it ended
    assert all(e["length"] == 7 for e in episodes)
    np.testing.assert_allclose([e["return"] for e in episodes], list(agent.episode_returns), rtol=1e-5)


def test_sb3_s_positional_policy_name_is_accepted_and_checked_against_the_observations():
    from keras_sac.config.settings import ConfigError

    agent = KerasSAC("MlpPolicy", "Pendulum-v1", seed=0, **SMALL)
    assert agent.spec.env_id == "Pendulum-v1"
    with pytest.raises(
        ConfigError,
        match=r"CnnPolicy is for image observations, and env Pendulum-v1 observes \(3,\) "
        r"float32: pass MlpPolicy, or leave the policy name out",
    ):
        KerasSAC("CnnPolicy", "Pendulum-v1", seed=0, **SMALL)
    with pytest.raises(TypeError, match=r"KerasSAC\('MlpPolicy'\) needs the env too"):
        KerasSAC("MlpPolicy")
    with pytest.raises(TypeError, match="got 3 positional arguments"):
        KerasSAC("Pendulum-v1", 3, 4)


def test_evaluation_lines_are_written_through_the_progress_bar(monkeypatch):
    # tqdm.write clears the bar, prints the line on its own and redraws the bar below it; a plain print glued
    # the line onto the bar ('...7991/8000 [00:55<00:00, ...]eval @ 8000 steps: ...'). (tqdm's text bar: the
    # widget bar is used only in Jupyter with ipywidgets installed.)
    from tqdm.std import tqdm

    written = []
    monkeypatch.setattr(tqdm, "write", classmethod(lambda cls, line, *a, **k: written.append(line)))
    agent = KerasSAC(make_match_env(), seed=0, **SMALL)
    agent.learn(120, callback=EvalCallback(make_match_env(), eval_freq=60, n_eval_episodes=1), progress_bar=True)
    assert [line.split(":")[0] for line in written] == ["eval @ 60 steps", "eval @ 120 steps"]
