"""normalize_observations: running statistics from collected observations only, frozen in evaluation, saved
and resumed exactly, and inside every exported policy."""

import numpy as np
import pytest
from conftest import SMALL, make_match_env

from keras_sac import ConfigError, KerasSAC, LoadedPolicy
from keras_sac.core.normalization import ObsNormalizer
from keras_sac.evaluation import evaluate_policy


def test_running_statistics_match_numpy():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (n, 4)) for n in (1, 5, 1, 17, 2)]
    norm = ObsNormalizer(4, clip=100.0)
    for b in batches:
        norm.update(b)
    everything = np.concatenate(batches)
    # the count starts at 1e-4 (as SB3's RunningMeanStd), so the statistics agree to about that share
    np.testing.assert_allclose(norm.mean.numpy(), everything.mean(0), rtol=1e-4)
    np.testing.assert_allclose(norm.var.numpy(), everything.var(0), rtol=1e-4)
    x = rng.normal(3.0, 2.0, (3, 4)).astype(np.float32)
    expected = (x - everything.mean(0)) / np.sqrt(everything.var(0) + 1e-8)
    np.testing.assert_allclose(norm(x).numpy(), expected, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(norm.numpy_forward()(x), expected, rtol=1e-3, atol=1e-4)


def test_a_fresh_normaliser_is_the_identity_with_float64_statistics_no_optimizer_sees():
    norm = ObsNormalizer(3)
    assert (norm.clip, norm.epsilon) == (10.0, 1e-8)  # SB3's VecNormalize defaults
    stats = {v.name: v for v in norm.weights}
    assert list(stats) == ["mean", "var", "count"]  # the names checkpoints store them under
    assert [v.shape for v in stats.values()] == [(3,), (3,), ()]
    assert all(v.dtype == "float64" for v in stats.values())
    assert norm.trainable_weights == [] and len(norm.non_trainable_weights) == 3
    np.testing.assert_array_equal(stats["mean"].numpy(), np.zeros(3))
    np.testing.assert_array_equal(stats["var"].numpy(), np.ones(3))
    np.testing.assert_allclose(stats["count"].numpy(), 1e-4, rtol=1e-6)  # SB3's RunningMeanStd starts there
    x = np.array([[0.5, -3.0, 7.0]], np.float32)
    np.testing.assert_allclose(norm(x).numpy(), x, rtol=1e-6)


def test_float32_observations_are_folded_in_float64():
    # collected observations arrive as float32; the statistics are summed in float64 (Chan et al.'s formula,
    # SB3's count starting at 1e-4), so a float32 batch gives the float64 reference to float64 rounding (summed in
    # float32, as np.asarray(batch) without the dtype would, every mean differs beyond rtol 1e-12)
    rng = np.random.default_rng(3)
    batches = [(50.0 + rng.normal(0.0, 0.3, (n, 3))).astype(np.float32) for n in (64, 7, 200)]
    norm = ObsNormalizer(3)
    mean, var, count = np.zeros(3), np.ones(3), 1e-4
    for b in batches:
        norm.update(b)
        b64 = b.astype(np.float64)
        delta, total = b64.mean(0) - mean, count + len(b)
        mean, var = (
            mean + delta * len(b) / total,
            (var * count + b64.var(0) * len(b) + delta**2 * count * len(b) / total) / total,
        )
        count = total
    np.testing.assert_allclose(norm.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(norm.var.numpy(), var, rtol=1e-9)
    np.testing.assert_allclose(norm.count.numpy(), count, rtol=1e-12)  # (1e-4 as stored: a float32 constant)


def test_clip_and_a_constant_feature_in_the_graph_and_in_predicts_numpy_copy():
    # column 0: mean 1, var 1, clipped at +-2 on both sides; column 1 a feature that never varied (var 0:
    # epsilon alone keeps the scale finite, and the feature at its mean normalises to 0)
    norm = ObsNormalizer(2, clip=2.0)
    norm.mean.assign([1.0, 5.0])
    norm.var.assign([1.0, 0.0])
    x = np.array([[100.0, 5.0], [-100.0, 5.0], [1.5, 5.0]], np.float32)
    expected = [[2.0, 0.0], [-2.0, 0.0], [0.5, 0.0]]
    np.testing.assert_allclose(norm(x).numpy(), expected, atol=1e-4)
    numpy_copy = norm.numpy_forward()(x)
    np.testing.assert_allclose(numpy_copy, expected, atol=1e-4)
    assert numpy_copy.dtype == np.float32  # predict's actor snapshot computes in float32, as the graph does


def test_collected_observations_only_and_frozen_in_evaluation():
    agent = KerasSAC(make_match_env(), seed=0, normalize_observations=True, **SMALL)
    agent.learn(120)
    norm = agent.actor.normalizer
    # the reset observation and one per step (n_envs 1): MatchEnv's x is U(-1, 1)^2
    assert norm.count.numpy() == pytest.approx(121 + 1e-4)
    assert np.all(np.abs(norm.mean.numpy()) < 0.2) and np.all(np.abs(norm.var.numpy() - 1 / 3) < 0.1)
    before = [v.numpy().copy() for v in norm.variables]
    agent.predict(np.zeros((5, 2), np.float32))
    evaluate_policy(lambda o: agent.predict(o, deterministic=True)[0], make_match_env(), 3, seed=1)
    assert all(np.array_equal(b, v.numpy()) for b, v in zip(before, norm.variables))
    # one normaliser, read by actor, critics and target critics; Polyak averaging leaves it alone
    assert agent.critics.normalizer is norm and agent.target_critics.normalizer is norm
    assert not {id(v) for v in norm.variables} & {id(v) for v in agent.target_critics.own_variables}


def test_saved_and_resumed_exactly(tmp_path):
    kwargs = dict(seed=3, normalize_observations=True, **SMALL)
    straight = KerasSAC("Pendulum-v1", **kwargs)  # its mid-episode state is saved too
    straight.learn(150)
    straight.save(tmp_path / "ckpt")
    straight.learn(100, reset_num_timesteps=False)
    resumed = KerasSAC.load(tmp_path / "ckpt")
    resumed.learn(100, reset_num_timesteps=False)
    for a, b in zip(straight.actor.normalizer.variables, resumed.actor.normalizer.variables):
        assert np.array_equal(a.numpy(), b.numpy()), a.path
    obs = np.random.default_rng(1).uniform(-1, 1, (8, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        straight.predict(obs, deterministic=True)[0], resumed.predict(obs, deterministic=True)[0]
    )


def test_exported_policy_takes_raw_observations(tmp_path):
    agent = KerasSAC(make_match_env(), seed=0, normalize_observations=True, **SMALL)
    agent.learn(150)
    obs = np.random.default_rng(2).uniform(-1, 1, (32, 2)).astype(np.float32) * 5.0
    expected = agent.predict(obs, deterministic=True)[0]
    policy = LoadedPolicy(agent.export(tmp_path / "policy"))
    np.testing.assert_allclose(policy(obs), expected, atol=1e-5)
    assert policy.metadata["normalize_observations"] is True
    # and the statistics matter: the same weights without them act differently
    agent.actor.normalizer.mean.assign(np.zeros(2))
    agent.actor.normalizer.var.assign(np.ones(2))
    agent.actor_changed()
    assert np.abs(agent.predict(obs, deterministic=True)[0] - expected).max() > 1e-3


def test_refused_for_image_observations():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import image_envs  # noqa: F401

    with pytest.raises(ConfigError, match="normalize_observations works on flat vector observations"):
        KerasSAC("BrightSpot-hwc-v0", normalize_observations=True, encoder="small")


def test_settings_validated():
    with pytest.raises(ConfigError, match="normalize_clip = 0.0 is out of range"):
        KerasSAC(make_match_env(), normalize_observations=True, normalize_clip=0.0)
