"""Files written by keras_sac 0.3.0 (commit bf362c0, before the package moved into subpackages) still load:
a checkpoint (KerasSAC.load, then training continues), a SavedModel policy (LoadedPolicy) and a TFLite policy
(keras_sac.runtime). tests/fixtures/ holds them and the actions 0.3.0 gave for two observations."""

import json
from pathlib import Path

import numpy as np

from keras_sac import KerasSAC, LoadedPolicy

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTED = json.loads((FIXTURES / "pendulum_0.3.0_expected.json").read_text())
OBS = np.array(EXPECTED["obs"], np.float32)
ACTIONS = np.array(EXPECTED["deterministic_actions"], np.float32)


def test_a_checkpoint_written_by_0_3_0_loads_acts_as_it_did_and_trains_on():
    agent = KerasSAC.load(FIXTURES / "pendulum_agent_0.3.0")
    assert agent.num_timesteps == EXPECTED["num_timesteps"]
    np.testing.assert_allclose(agent.predict(OBS, deterministic=True)[0], ACTIONS, rtol=0, atol=1e-6)
    assert agent.buffer.size == EXPECTED["num_timesteps"]  # the replay buffer came back too
    # 0.3.0 saved Keras' Adam slots; the update's AdamStep (core/adam.py) steps those same variables on.
    step = agent._update.critic_step
    updates = int(step.optimizer.iterations.numpy())
    assert updates > 0 and np.any(step.momentums[0].numpy()) and np.any(step.velocities[0].numpy())
    agent.learn(40, reset_num_timesteps=False)
    assert agent.num_timesteps == EXPECTED["num_timesteps"] + 40
    assert int(step.optimizer.iterations.numpy()) == updates + 40


def test_a_savedmodel_policy_exported_by_0_3_0_loads_and_acts_as_it_did():
    policy = LoadedPolicy(FIXTURES / "pendulum_policy_0.3.0")
    np.testing.assert_allclose(policy(OBS), ACTIONS, rtol=0, atol=1e-5)
    np.testing.assert_allclose(policy(OBS[0]), ACTIONS[0], rtol=0, atol=1e-5)
    assert policy.spec.env_id == "Pendulum-v1" and policy.spec.obs.obs_dim == 3


def test_a_tflite_policy_exported_by_0_3_0_runs_on_the_runtime():
    from keras_sac.runtime import load_policy

    np.testing.assert_allclose(load_policy(FIXTURES / "pendulum_policy_0.3.0.tflite")(OBS), ACTIONS, rtol=0, atol=1e-4)
