"""KerasSAC: the compiled update, acting, the API contract and persistence."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from conftest import SMALL, make_match_env

from keras_sac import CheckpointError, EnvError, KerasSAC
from keras_sac.agent import TrainingDivergedError, polyak_update
from keras_sac.core import losses as losses_module
from keras_sac.core.spaces import Batch
from keras_sac.data.buffer import pack


def all_variables(agent):
    return [
        *agent.actor.variables,
        *agent.critics.variables,
        *agent.target_critics.variables,
        agent.log_alpha,
        *agent.actor_optimizer.variables,
        *agent.critic_optimizer.variables,
        *agent.alpha_optimizer.variables,
        agent.n_updates,
        agent.tf_rng.state,
    ]


def batch_of(agent, n=32, seed=0):
    rng = np.random.default_rng(seed)
    f = lambda *shape: rng.uniform(-1, 1, shape).astype(np.float32)  # noqa: E731
    return (
        f(n, agent.spec.obs_dim),
        f(n, agent.spec.action_dim),
        f(n),
        f(n, agent.spec.obs_dim),
        (rng.random(n) < 0.2).astype(np.float32),
        np.full(n, agent.config.gamma, np.float32),
    )


@pytest.mark.parametrize("tau", [0.0, 1.0, 0.25])
def test_polyak_update(tau):
    online, target = [tf.Variable([1.0, 2.0])], [tf.Variable([5.0, 6.0])]
    polyak_update(online, target, tau)
    np.testing.assert_allclose(target[0].numpy(), tau * np.array([1.0, 2.0]) + (1 - tau) * np.array([5.0, 6.0]))


def test_one_update_changes_every_trainable_variable_and_moves_targets_by_tau(match_env):
    agent = KerasSAC(match_env, seed=0, tau=0.1, **SMALL)
    before = {id(v): v.numpy().copy() for v in all_variables(agent)}
    targets_before = [v.numpy().copy() for v in agent.target_critics.variables]
    metrics = agent.train_step(*batch_of(agent))
    for v in [*agent.actor.trainable_variables, *agent.critics.trainable_variables, agent.log_alpha]:
        assert not np.array_equal(v.numpy(), before[id(v)]), f"{v.name} did not change"
    for online, target, old in zip(agent.critics.variables, agent.target_critics.variables, targets_before):
        np.testing.assert_allclose(target.numpy(), 0.1 * online.numpy() + 0.9 * old, rtol=1e-5, atol=1e-7)
    assert set(metrics) == {
        "train/critic_loss",
        "train/mean_q",
        "train/mean_q_per_critic",
        "train/actor_loss",
        "train/entropy",
        "train/alpha_loss",
        "train/alpha",
    }
    assert metrics["train/mean_q_per_critic"].shape == (2,)


def test_update_traces_once_and_creates_no_variables(match_env):
    agent = KerasSAC(match_env, seed=0, **SMALL)
    n_vars = len(all_variables(agent))
    for i in range(3):
        agent.train_step(*batch_of(agent, seed=i))
    agent.learn(120)  # acting, sampling and training through the public loop
    agent.predict(np.zeros(2)), agent.predict(np.zeros((5, 2)))
    assert agent._compiled_train_step.experimental_get_tracing_count() == 1
    assert agent._stochastic_action.experimental_get_tracing_count() == 1
    assert agent._compiled_update_and_act.experimental_get_tracing_count() == 1
    assert len(all_variables(agent)) == n_vars


@pytest.mark.parametrize("compile_mode", ["graph", pytest.param("xla", marks=pytest.mark.slow)])
@pytest.mark.parametrize(
    "gradient_steps, policy_delay, plans",
    [
        (3, 1, ["every"]),
        (1, 3, ["actor", "critic", "critic", "actor"]),  # CrossQ's pattern: a program each, chosen in Python
        (6, 3, ["groups", "groups"]),  # two delay periods per phase, in a loop
        (3, 3, ["groups"]),  # one period: the DroQ and REDQ presets' pattern
        (4, 3, ["cond", "cond"]),  # no fixed pattern: a tf.cond per update
    ],
)
def test_a_fused_training_phase_equals_its_updates_one_by_one(
    match_env, compile_mode, gradient_steps, policy_delay, plans
):
    # gradient_steps updates in one compiled call (graph loop) then the next action, against the same
    # minibatches fed to train_step one at a time (its policy delay a tf.cond on the counter) and a separate
    # action draw after each phase's updates.
    settings = dict(seed=3, gradient_steps=gradient_steps, policy_delay=policy_delay, compile_mode=compile_mode)
    fused, stepped = (KerasSAC(match_env, **settings, **SMALL) for _ in range(2))
    obs = np.full((1, 2), 0.25, np.float32)
    # XLA maps the generator's Philox counters to a tensor's elements in its own order: the same state gives
    # other (equally distributed) draws than TensorFlow's kernel, so the XLA phase is compared with XLA.
    draw = (
        stepped._stochastic_action if compile_mode == "graph" else tf.function(stepped._sample_action, jit_compile=True)
    )
    for phase, plan in enumerate(plans):
        batches = [batch_of(fused, seed=phase * gradient_steps + i) for i in range(gradient_steps)]
        assert fused._update.plan(int(fused.n_updates.numpy())) == plan
        metrics, action = fused._compiled(plan)(np.stack([pack(Batch(*b)) for b in batches]), obs)
        each = [stepped.train_step(*batch) for batch in batches]
        stepped_action = draw(obs)
        for name in each[0]:  # the phase reports its updates' mean (SB3 logs the mean over gradient steps)
            mean = np.mean([m[name].numpy() for m in each], axis=0)
            np.testing.assert_allclose(metrics[name].numpy(), mean, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(action.numpy(), stepped_action.numpy(), rtol=1e-5, atol=1e-6)
    assert int(fused.n_updates.numpy()) == int(stepped.n_updates.numpy()) == len(plans) * gradient_steps
    for a, b in zip(all_variables(fused), all_variables(stepped), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=getattr(a, "path", a.name))
    if gradient_steps > 1:
        assert not np.allclose(each[0]["train/critic_loss"], each[-1]["train/critic_loss"])  # a mean, not the last
    if policy_delay > 1:  # the actor stepped once per period: its optimizer's count says how often
        assert int(fused.actor_optimizer.iterations.numpy()) == -(-len(plans) * gradient_steps // policy_delay)


def test_gradient_steps_and_train_freq_set_the_number_of_updates(match_env):
    agent = KerasSAC(match_env, seed=0, train_freq=4, gradient_steps=3, compile_mode="graph", **SMALL)  # no XLA wait
    agent.learn(90)  # training phases after steps 52, 56, ..., 88
    assert int(agent.n_updates.numpy()) == 3 * 10
    assert agent._compiled_update_and_act.experimental_get_tracing_count() == 1


def test_fixed_alpha_stays_fixed(match_env):
    agent = KerasSAC(match_env, seed=0, learn_alpha=False, init_alpha=0.2, **SMALL)
    metrics = agent.train_step(*batch_of(agent))
    assert agent.alpha == pytest.approx(0.2) and "train/alpha_loss" not in metrics


def test_target_update_interval_skips_polyak_between_intervals(match_env):
    agent = KerasSAC(match_env, seed=0, target_update_interval=2, **SMALL)
    first = agent.target_critics.variables[0].numpy().copy()
    agent.train_step(*batch_of(agent))
    np.testing.assert_array_equal(agent.target_critics.variables[0].numpy(), first)
    agent.train_step(*batch_of(agent, seed=1))
    assert not np.array_equal(agent.target_critics.variables[0].numpy(), first)


def test_predict_shapes_bounds_and_bad_shapes(match_env):
    agent = KerasSAC(match_env, seed=0, **SMALL)
    action, state = agent.predict(np.zeros(2))
    assert action.shape == (2,) and state is None
    actions, _ = agent.predict(np.random.default_rng(0).uniform(-1, 1, (100, 2)))
    assert actions.shape == (100, 2) and actions.dtype == np.float32
    assert np.all(actions >= -2.0) and np.all(actions <= 2.0)
    assert np.abs(actions).max() > 1.0  # rescaled from [-1, 1] to the env's [-2, 2]
    with pytest.raises(
        ValueError,
        match=r"observation has shape \(3,\); the agent expects \(2,\) for one "
        r"observation or \(batch, 2\) for a batch",
    ):
        agent.predict(np.zeros(3))
    with pytest.raises(ValueError, match=r"observation has shape \(4, 2, 1\)"):
        agent.predict(np.zeros((4, 2, 1)))


def test_deterministic_predict_is_tanh_mean_rescaled_and_follows_training(match_env):
    agent = KerasSAC(match_env, seed=0, **SMALL)
    obs = np.random.default_rng(1).uniform(-1, 1, (8, 2)).astype(np.float32)
    seen = []
    for _ in range(3):  # untrained, then after each of two learn calls: the NumPy snapshot follows the weights
        mean, _ = agent.actor(obs)
        action = agent.predict(obs, deterministic=True)[0]
        np.testing.assert_allclose(action, 2.0 * np.tanh(mean.numpy()), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(action, 2.0 * agent.policy(obs).mode().numpy(), rtol=1e-5, atol=1e-6)
        seen.append(action)
        agent.learn(80, reset_num_timesteps=False)
    assert not np.allclose(seen[0], seen[1]) and not np.allclose(seen[1], seen[2])  # training moved it each time


class RecordSteps(gym.Wrapper):
    """Keeps every observation env.step returned, to compare with what the buffer stored."""

    def __init__(self, env):
        super().__init__(env)
        self.step_obs = []

    def step(self, action):
        obs, *rest = self.env.step(action)
        self.step_obs.append(np.array(obs))
        return obs, *rest


def test_buffer_stores_terminated_not_truncated():
    # terminates at step 3 of an episode; otherwise the TimeLimit truncates at 5
    terminating = KerasSAC(make_match_env(max_episode_steps=5, terminate_at=3), seed=0, **SMALL)
    terminating.learn(9)
    np.testing.assert_array_equal(terminating.buffer.terminated[:9], [0, 0, 1, 0, 0, 1, 0, 0, 1])
    recorder = RecordSteps(make_match_env(max_episode_steps=5))
    truncating = KerasSAC(recorder, seed=0, **SMALL)
    truncating.learn(12)
    assert not truncating.buffer.terminated[:12].any()  # a time limit is not a terminal state
    assert list(truncating.episode_lengths) == [5, 5]
    # every stored next_obs is what env.step returned, so across the boundary (step 5) the episode's real
    # final observation, and not the observation the reset began the next episode with
    np.testing.assert_array_equal(truncating.buffer.next_obs[:12], np.stack(recorder.step_obs))
    assert not np.array_equal(truncating.buffer.next_obs[4], truncating.buffer.obs[5])


def test_learn_continues_with_reset_num_timesteps_false(match_env):
    agent = KerasSAC(match_env, seed=0, **SMALL)
    agent.learn(60)
    obs_before = agent.collector.obs[0].copy()
    agent.learn(40, reset_num_timesteps=False)
    assert agent.num_timesteps == 100 and len(agent.buffer) == 100
    np.testing.assert_array_equal(agent.buffer.obs[60], obs_before)  # step 61 acted where step 60 left off
    agent.learn(30)
    assert agent.num_timesteps == 30  # a reset run counts from zero again


def test_callback_is_called_every_step_and_can_stop(match_env):
    agent = KerasSAC(match_env, seed=0, **SMALL)
    seen = []
    agent.learn(500, callback=lambda a: seen.append(a.num_timesteps) or a.num_timesteps < 70)
    assert seen == list(range(1, 71)) and agent.num_timesteps == 70


class FixedNoise:
    def __init__(self, noise):
        self.noise = noise

    def standard_normal(self, shape, dtype):
        assert shape == self.noise.shape
        return self.noise.astype(dtype)


def test_stochastic_predict_is_the_tanh_gaussian_in_numpy_and_leaves_training_alone():
    agent = KerasSAC(make_match_env(), seed=0, **SMALL)
    agent.learn(80)
    obs = np.random.default_rng(1).uniform(-1, 1, (8, 2)).astype(np.float32)
    noise = np.random.default_rng(2).standard_normal((8, 2))
    mean, log_std = (x.numpy() for x in agent.actor(obs))
    np.testing.assert_allclose(
        agent._actor_copy.get().sample(obs, FixedNoise(noise)),
        np.tanh(mean + np.exp(log_std) * noise),
        rtol=1e-5,
        atol=1e-6,
    )
    actions = agent.predict(obs)[0]
    assert actions.shape == (8, 2) and np.abs(actions).max() <= 2.0 and len(np.unique(actions)) == 16
    twin = KerasSAC(make_match_env(), seed=0, **SMALL)  # the same run without predict calls in between
    twin.learn(80)
    agent.learn(40, reset_num_timesteps=False), twin.learn(40, reset_num_timesteps=False)
    for a, b in zip(all_variables(agent), all_variables(twin), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_same_seed_gives_same_actions_after_training():
    def run():
        agent = KerasSAC(make_match_env(), seed=3, **SMALL)
        agent.learn(150)
        return agent.predict(np.linspace(-1, 1, 20).reshape(10, 2), deterministic=True)[0]

    np.testing.assert_array_equal(run(), run())


def test_seed_is_recorded_when_not_given(match_env):
    agent = KerasSAC(match_env, **SMALL)
    assert isinstance(agent.config.seed, int)


@pytest.mark.filterwarnings("ignore:the mid-episode state of env MatchEnv")  # toy env: new episode
def test_save_load_restores_everything_and_training_continues(tmp_path, match_env):
    agent = KerasSAC(match_env, seed=0, **SMALL)
    agent.learn(120)
    agent.predict(np.zeros((3, 2)))  # moves predict_rng: the save must carry its state
    agent.save(tmp_path / "agent")
    loaded = KerasSAC.load(tmp_path / "agent", env=make_match_env())
    obs = np.random.default_rng(2).uniform(-1, 1, (16, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0])
    saved, restored = all_variables(agent), all_variables(loaded)
    assert len(saved) == len(restored) == len(agent.state_variables())  # the test covers all saved state
    for a, b in zip(saved, restored):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path if hasattr(a, "path") else a.name)
    assert loaded.num_timesteps == 120 and loaded.config == agent.config
    # the random streams continue where they were: both draw the same next stochastic action and batch
    # (agent.predict drew from predict_rng before the save, so a fresh generator would differ)
    np.testing.assert_array_equal(loaded.predict(obs)[0], agent.predict(obs)[0])
    assert loaded.np_rng.integers(1 << 30) == agent.np_rng.integers(1 << 30)
    loaded.learn(60, reset_num_timesteps=False)
    assert loaded.num_timesteps == 180


@pytest.mark.filterwarnings("ignore:the mid-episode state of env MatchEnv")  # toy env: new episode
def test_save_replaces_an_existing_save(tmp_path, match_env):
    agent = KerasSAC(match_env, seed=0, **SMALL)
    agent.save(tmp_path / "agent")
    agent.learn(60)
    agent.save(tmp_path / "agent")
    assert KerasSAC.load(tmp_path / "agent", env=make_match_env()).num_timesteps == 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent"]  # no temp folders left behind


def test_load_errors_name_the_path(tmp_path, match_env):
    with pytest.raises(CheckpointError, match=r"no keras_sac checkpoint at .*nowhere': the path does not exist"):
        KerasSAC.load(tmp_path / "nowhere")
    agent = KerasSAC(match_env, seed=0, **SMALL)
    agent.save(tmp_path / "agent")
    data = next((tmp_path / "agent" / "variables").glob("agent.data*"))
    data.write_bytes(b"garbage")
    with pytest.raises(
        CheckpointError,
        match=r"checkpoint .* is damaged \(variables/agent.data.* does not match "
        r"its checksum\)",
    ):
        KerasSAC.load(tmp_path / "agent", env=make_match_env())
    (tmp_path / "agent" / "MANIFEST.json").unlink()
    with pytest.raises(CheckpointError, match="is incomplete \\(MANIFEST.json is missing"):
        KerasSAC.load(tmp_path / "agent", env=make_match_env())


def test_load_refuses_a_mismatched_env(tmp_path, match_env):
    KerasSAC(match_env, seed=0, **SMALL).save(tmp_path / "agent")
    with pytest.raises(EnvError, match="env Pendulum-v1 does not match the agent saved at"):
        KerasSAC.load(tmp_path / "agent", env="Pendulum-v1")


@pytest.mark.filterwarnings("ignore:the mid-episode state of env MatchEnv")  # toy env: new episode
@pytest.mark.parametrize("normalize", [False, True])  # (the two together once failed to build)
def test_mixed_bfloat16_keeps_float32_state_and_learns_finite(tmp_path, match_env, normalize):
    agent = KerasSAC(match_env, seed=0, precision="mixed_bfloat16", normalize_observations=normalize, **SMALL)
    layer = agent.actor.trunk.layers[0]
    assert layer.compute_dtype == "bfloat16" and layer.kernel.dtype == "float32"
    assert all(v.dtype == "float32" for v in agent.critic_optimizer.variables if "iteration" not in v.path)
    agent.learn(150)
    assert all(np.isfinite(v) for v in agent.metrics().values())
    obs = np.array([0.3, -0.6], np.float32)
    mean, _ = agent.actor(obs[None])
    assert mean.dtype == "float32"
    # deterministic predict runs the same weights in float32: within bfloat16 rounding of the network
    np.testing.assert_allclose(agent.predict(obs, deterministic=True)[0], 2.0 * np.tanh(mean.numpy()[0]), atol=0.05)
    agent.save(tmp_path / "a")
    loaded = KerasSAC.load(tmp_path / "a", env=match_env)
    assert loaded.config.precision == "mixed_bfloat16" and loaded.actor.trunk.layers[0].compute_dtype == "bfloat16"
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0])


def test_the_td_target_comes_from_the_target_critics(match_env):
    # Target critics set apart from the online ones, and held still (target_update_interval=2): the critic
    # loss of one update must be the hand value from the *target* weights, and the targets must not move.
    agent = KerasSAC(match_env, seed=0, gamma=0.9, init_alpha=0.3, target_update_interval=2, **SMALL)
    for w in agent.target_critics.variables:
        w.assign(w * 0.5 + 0.1)
    obs, actions, rewards, next_obs, terminated, _ = batch_of(agent, n=64)
    targets_before = [w.numpy().copy() for w in agent.target_critics.variables]
    # the draw the update will make for a' ~ pi(.|s'): the same generator state, the same first seed
    twin_rng = tf.random.Generator.from_state(agent.tf_rng.state.numpy(), agent.tf_rng.algorithm)  # a copy
    next_actions, next_log_prob = agent.policy(next_obs).sample_and_log_prob(twin_rng.make_seeds(2)[:, 0])
    next_q = agent.target_critics(next_obs, next_actions).numpy().min(axis=0)
    y = rewards + 0.9 * (1 - terminated) * (next_q - 0.3 * next_log_prob.numpy())
    q = agent.critics(obs, actions).numpy()
    expected_loss = sum(0.5 * np.mean((q[i] - y) ** 2) for i in range(2))
    online_q = agent.critics(next_obs, next_actions).numpy().min(axis=0)  # what a miswired target would use
    miswired = sum(
        0.5 * np.mean((q[i] - (rewards + 0.9 * (1 - terminated) * (online_q - 0.3 * next_log_prob.numpy()))) ** 2)
        for i in range(2)
    )
    assert abs(miswired - expected_loss) > 1e-2 * expected_loss  # the test can tell the two apart
    metrics = agent.train_step(obs, actions, rewards, next_obs, terminated)
    np.testing.assert_allclose(float(metrics["train/critic_loss"]), expected_loss, rtol=1e-5)
    for w, before in zip(agent.target_critics.variables, targets_before):
        np.testing.assert_array_equal(w.numpy(), before)  # no Polyak step before the interval


def nan_gradient(loss, values):
    zero = tf.reduce_mean(values) - tf.stop_gradient(tf.reduce_mean(values))
    return loss + tf.sqrt(zero)  # the value stays finite; d sqrt(z)/dz at z = 0 is inf


FAULTS = {  # what fails -> (the loss function it is put into, the loss with the fault)
    "critic loss gradient": ("critic_loss", nan_gradient),
    "critic loss": ("critic_loss", lambda loss, values: loss + tf.math.log(0.0 * tf.reduce_mean(values))),
    "actor loss": ("actor_loss", lambda loss, values: loss * np.inf),
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("compile_mode, gradient_steps", [("graph", 1), pytest.param("xla", 3, marks=pytest.mark.slow)])
def test_a_non_finite_loss_or_gradient_stops_training_before_its_optimizer_step(
    match_env, monkeypatch, compile_mode, gradient_steps, fault
):
    # graph mode: check_numerics raises; XLA compiles it away, so there the update records the first failure,
    # skips that optimizer step and every one after it in the fused phase (3 steps: the first fails), and the
    # agent raises after the call, naming it.
    function, faulty = FAULTS[fault]
    real_loss = getattr(losses_module, function)

    def loss_with_fault(values, *args):
        loss, info = real_loss(values, *args)
        return faulty(loss, values), info

    monkeypatch.setattr(losses_module, function, loss_with_fault)  # read when the update traces
    agent = KerasSAC(match_env, seed=0, compile_mode=compile_mode, gradient_steps=gradient_steps, **SMALL)
    kept = agent.actor.variables + ([] if function == "actor_loss" else agent.critics.variables)
    kept += agent.target_critics.variables if function == "critic_loss" else []
    before = [w.numpy().copy() for w in kept]
    with pytest.raises(
        TrainingDivergedError, match=rf"^training diverged at step 51: {fault} is not finite \(NaN or inf\)$"
    ):
        agent.learn(200)
    for w, value in zip(kept, before, strict=True):
        np.testing.assert_array_equal(w.numpy(), value)


def test_a_second_learn_call_continues_the_env_random_stream(match_env):
    agent = KerasSAC(match_env, seed=0, **SMALL)
    agent.learn(5)
    first_start = agent.buffer.obs[0].copy()
    agent.learn(5)  # reset_num_timesteps=True: a new episode, but not the same one again
    assert not np.array_equal(agent.buffer.obs[5], first_start)
    twin = KerasSAC(make_match_env(), seed=0, **SMALL)  # the seed still fixes the first episode
    twin.learn(5)
    np.testing.assert_array_equal(twin.buffer.obs[0], first_start)


def test_every_way_the_actor_changes_reaches_predict(tmp_path, match_env):
    agent = KerasSAC(match_env, seed=0, **SMALL)
    obs = np.random.default_rng(1).uniform(-1, 1, (8, 2)).astype(np.float32)
    fresh = lambda: 2.0 * np.tanh(agent.actor(obs)[0].numpy())  # noqa: E731
    agent.predict(obs, deterministic=True)  # a snapshot exists
    agent.train_step(*batch_of(agent))
    np.testing.assert_allclose(agent.predict(obs, deterministic=True)[0], fresh(), rtol=1e-5, atol=1e-6)
    for w in agent.actor.trainable_variables:
        w.assign(w * 1.5)
    agent.actor_changed()
    np.testing.assert_allclose(agent.predict(obs, deterministic=True)[0], fresh(), rtol=1e-5, atol=1e-6)
    # no compiled update is reachable by a public name (calling one directly would bypass predict's copy)
    public = [
        name
        for name, value in vars(agent).items()
        if not name.startswith("_") and isinstance(value, tf.types.experimental.PolymorphicFunction)
    ]
    assert public == []
