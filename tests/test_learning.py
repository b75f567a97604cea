"""SAC must actually learn: a toy task in seconds (default suite), each variant on it and InvertedPendulum-v5
(slow)."""

import pytest
from conftest import make_match_env

from keras_sac import KerasSAC
from keras_sac.evaluation import evaluate_policy


def test_learns_the_match_task_in_a_few_hundred_steps():
    # Best action a = x earns reward 1 per step; uniform random actions average 1 - 5/3 = -0.67.
    agent = KerasSAC(
        make_match_env(), seed=0, net_arch=(64, 64), batch_size=64, learning_starts=100, learning_rate=1e-3, gamma=0.5
    )
    agent.learn(800)
    returns, *_ = evaluate_policy(lambda obs: agent.predict(obs, deterministic=True)[0], make_match_env(), 10, seed=1)
    assert returns.mean() / 10 > 0.85, returns  # mean reward per step


@pytest.mark.slow
def test_inverted_pendulum_is_balanced_within_20k_steps():
    agent = KerasSAC("InvertedPendulum-v5", seed=0)
    agent.learn(20_000)
    import gymnasium as gym

    returns, *_ = evaluate_policy(
        lambda obs: agent.predict(obs, deterministic=True)[0], gym.make("InvertedPendulum-v5"), 10, seed=100
    )
    assert returns.mean() >= 950, returns


@pytest.mark.slow
def test_inverted_pendulum_is_balanced_with_4_envs():
    # 4 env steps per vector step and 4 gradient steps per phase: the single env's one update per env step
    agent = KerasSAC("InvertedPendulum-v5", seed=0, n_envs=4, gradient_steps=4)
    agent.learn(20_000)
    agent.close()
    import gymnasium as gym

    returns, *_ = evaluate_policy(
        lambda obs: agent.predict(obs, deterministic=True)[0], gym.make("InvertedPendulum-v5"), 10, seed=100
    )
    assert returns.mean() >= 950, returns


LEARNING_VARIANTS = {  # each variant's own settings, on the match task's small networks
    "redq": dict(n_critics=5, target_backup="redq", gradient_steps=2),
    "droq": dict(critic_dropout=0.01, critic_layer_norm=True, gradient_steps=2),
    "crossq": dict(
        critic_batch_renorm=True,
        actor_batch_renorm=True,
        target_update="none",
        policy_delay=3,
        adam_beta1=0.5,
        batch_renorm_warmup=200,
    ),
    "reinforce": dict(actor_gradient="reinforce", num_actor_samples=8),
    "hard_targets_n_step_no_entropy_backup": dict(
        target_update="hard", target_update_period=20, n_steps=2, entropy_backup=False
    ),
    "tanh_orthogonal_delay_2": dict(activation="tanh", init="orthogonal", policy_delay=2),
    "tqc": dict(critic_type="quantile", n_quantiles=10, top_quantiles_to_drop_per_net=1, n_critics=3),
    "simba_adamw": dict(architecture="simba", normalize_observations=True, weight_decay=0.01),
    "resets": dict(reset_interval=400),  # one reset half-way (update 400 of 700): it must learn again
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LEARNING_VARIANTS))
def test_each_variant_learns_the_match_task(name):
    agent = KerasSAC(
        make_match_env(),
        seed=0,
        net_arch=(64, 64),
        batch_size=64,
        learning_starts=100,
        learning_rate=1e-3,
        gamma=0.5,
        **LEARNING_VARIANTS[name],
    )
    agent.learn(800)
    returns, *_ = evaluate_policy(lambda obs: agent.predict(obs, deterministic=True)[0], make_match_env(), 10, seed=1)
    assert returns.mean() / 10 > 0.85, returns  # mean reward per step; random actions: -0.67


@pytest.mark.slow
def test_learns_from_images_with_random_shift():
    # BrightSpot (tests/image_envs.py): reward -|a - x| for a bright square at x, seen only in a 24x24 image.
    # Uniform random actions average -0.67 per step; reading x off the image is needed to beat about -0.5.
    import image_envs  # noqa: F401  (registers BrightSpot-*)

    settings = dict(
        encoder="small",
        encoder_features=32,
        net_arch=(64, 64),
        batch_size=64,
        learning_starts=100,
        learning_rate=1e-3,
        gamma=0.5,
        image_augmentation="random_shift",
        augmentation_pad=2,
    )
    agent = KerasSAC("BrightSpot-chw-v0", seed=0, **settings)
    agent.learn(1500)
    import gymnasium as gym

    returns, *_ = evaluate_policy(
        lambda obs: agent.predict(obs, deterministic=True)[0], gym.make("BrightSpot-chw-v0"), 20, seed=1
    )
    assert returns.mean() / 10 > -0.25, returns  # mean reward per step


@pytest.mark.slow
def test_her_reaches_goals_that_plain_replay_does_not_at_the_same_budget():
    import gymnasium as gym

    from keras_sac.envs.goal import ENV_ID

    success = {}
    for buffer in ("her", "uniform"):
        agent = KerasSAC(ENV_ID, seed=0, learning_starts=500, replay_buffer=buffer)
        agent.learn(4000)
        _, _, successes = evaluate_policy(
            lambda obs: agent.predict(obs, deterministic=True)[0], gym.make(ENV_ID), 50, seed=1000
        )
        success[buffer] = successes.mean()
    assert success["her"] >= 0.5 and success["her"] > success["uniform"] + 0.3, success
