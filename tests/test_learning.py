"""SAC must actually learn: ReachHold (tests/reach_env.py: real dynamics, a late reward, a myopic policy fails)
in seconds for plain SAC and the graph-compiled variants (default suite), every variant on it and
InvertedPendulum-v5 with -m slow."""

import numpy as np
import pytest
from reach_env import braking, greedy, make_reach_env

from keras_sac import KerasSAC
from keras_sac.evaluation import evaluate_policy


def reach_return(agent, episodes=10) -> float:
    returns, *_ = evaluate_policy(
        lambda obs: agent.predict(obs, deterministic=True)[0], make_reach_env(), episodes, seed=100
    )
    return float(returns.mean())


def scripted_return(policy) -> float:
    returns, *_ = evaluate_policy(policy, make_reach_env(), 10, seed=100)
    return float(returns.mean())


def test_reach_hold_defeats_the_myopic_policy_and_rewards_planning():
    # The scripted baselines the learning checks are measured against: pushing towards the target at every
    # step (what maximises the next reward) swings past it and off the track; a controller that brakes holds it.
    assert scripted_return(greedy) < 5.0
    assert scripted_return(braking) > 40.0
    rng = np.random.default_rng(0)  # (one generator for the whole run: a new one per step repeats one action)
    assert scripted_return(lambda obs: rng.uniform(-1, 1, 1).astype(np.float32)) < 5.0


REACH = dict(net_arch=(64, 64), batch_size=64, learning_starts=200, learning_rate=1e-3)  # gamma: SAC's 0.99
REACH_BAR = 30.0  # mean return of the deterministic policy; the myopic policy earns ~3, the braking one ~45
# each variant's own settings and its budget in env steps; the graph-compiled ones at one gradient step per env
# step run in the default suite, the XLA-compiled ones (REDQ, DroQ, CrossQ) and the slower learners with -m slow
REACH_VARIANTS = {
    "sac": ({}, 2500),
    "tqc": (dict(critic_type="quantile", n_quantiles=10, top_quantiles_to_drop_per_net=1, n_critics=3), 2500),
    "hard_targets_n_step_no_entropy_backup": (
        dict(target_update="hard", target_update_period=20, n_steps=3, entropy_backup=False),
        2500,
    ),
    "reinforce": (dict(actor_gradient="reinforce", num_actor_samples=8), 2500),
    "redq": (dict(n_critics=5, target_backup="redq", gradient_steps=2), 2500),
    "droq": (dict(critic_dropout=0.01, critic_layer_norm=True, gradient_steps=2), 2500),
    "crossq": (
        dict(
            critic_batch_renorm=True,
            actor_batch_renorm=True,
            target_update="none",
            policy_delay=1,
            adam_beta1=0.5,
            batch_renorm_warmup=1000,
        ),
        8000,
    ),
    "gsde": (dict(use_sde=True, log_std_init=-1.0), 4000),  # SB3's -3 explores too little to find the target
    "simba_adamw": (dict(architecture="simba", weight_decay=0.01), 4000),
    # resets at updates 2000 and 4000 (env steps 2200, 4200), each dropping the return (to 9-43 a thousand steps
    # on): it must learn again. At interval 1000 the last reset left 800 updates, too few on 1 of 4 seeds
    "resets": (dict(reset_interval=2000), 6000),
    "tanh_orthogonal_delay_2": (dict(activation="tanh", init="orthogonal", policy_delay=2), 4000),
}
# CrossQ is checked on the median of three seeds, at policy delay 1 (the paper's 3 is the presets'; policy delay
# itself is checked by tanh_orthogonal_delay_2). Its slow start on this task makes one seed a coin toss: at delay
# 3 seed 0 still earned 10.6 at 8000 steps (CI, 2026-12-03, and locally on Zen 4) where it had reached >= 38 on
# the machine that set the budget, and 1 of 6 seeds stayed below 30. At delay 1, 10 seeds at 8000: 34.9 (seed 0)
# and 42.6-49.2; the median of three fails only if two seeds fail together.
SEEDS = {"crossq": (0, 1, 2)}
FAST = {"sac", "tqc", "hard_targets_n_step_no_entropy_backup", "reinforce"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[] if n in FAST else [pytest.mark.slow]) for n in REACH_VARIANTS]
)
def test_each_variant_learns_to_reach_and_hold(name):
    settings, steps = REACH_VARIANTS[name]
    returns = []
    for seed in SEEDS.get(name, (0,)):
        agent = KerasSAC(make_reach_env(), seed=seed, **REACH, **settings)
        agent.learn(steps)
        returns.append(reach_return(agent))
    assert np.median(returns) >= REACH_BAR, (name, returns)  # myopic: ~3


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
