"""Policy export as a standalone SavedModel, and loading it back.

The SavedModel holds only TensorFlow graph ops and the actor's weights: it loads with
`tf.saved_model.load(path)` where neither keras_sac nor TensorFlow Probability is installed.

    policy = tf.saved_model.load("runs/.../policy")
    policy.signatures["serving_default"](observation=obs)["action"]   # deterministic, in env bounds
    policy.signatures["sample_action"](observation=obs)["action"]     # a draw from pi(.|obs), in env bounds
                                                                       # (gSDE: a fresh noise matrix per row)
    json.loads(policy.metadata().numpy())                              # env id, spaces, step, version

`obs` is float32 [batch, obs_dim]: one observation is a batch of one, obs[None]. An image policy takes
`observation=` uint8 [batch, *image shape]; a Dict policy one keyword input per key (`metadata["observation"]`
lists keys, shapes, dtypes). The same metadata is also
written as `assets.extra/keras_sac.json` for tools that do not load TF (see policy_files.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_sac import __version__
from keras_sac.core import spaces
from keras_sac.core.distributions import policy_action
from keras_sac.core.signatures import obs_signature
from keras_sac.core.spaces import ObsSpec, action_affine
from keras_sac.io.files import fsync_tree, replace_dir, staging_dir
from keras_sac.io.policy_files import METADATA_FILE, PolicyError, find_policy, spec_from_metadata
from keras_sac.io.startup import quiet_tensorflow_logs

__all__ = ["LoadedPolicy", "PolicyError", "export_policy", "policy_metadata"]


class _PolicyModule(tf.Module):
    """The actor plus the [-1, 1] -> env-bounds map, as plain-TF functions with named signatures.

    Flat observations are one float32 input `observation` [batch, obs_dim]; an image is one input
    `observation` in its own shape and dtype (uint8); a Dict observation is one input per key, named by it.
    """

    def __init__(self, actor, obs: ObsSpec, action_low, action_high, metadata_json: str, seed: int):
        super().__init__(name="keras_sac_policy")
        self.actor = actor
        self.obs = obs
        center, half_range = action_affine(action_low, action_high)
        self.action_center, self.action_scale = tf.constant(center), tf.constant(half_range)
        self.rng = tf.random.Generator.from_seed(seed)
        # Dict observations are keyword inputs: the signature's input names are the keys
        signature = [obs_signature(obs, [None], name="observation")]
        self.action = tf.function(self._action, input_signature=signature)
        self.sample_action = tf.function(self._sample_action, input_signature=signature)
        self.metadata = tf.function(lambda: tf.constant(metadata_json), input_signature=[])

    def _checked(self, observation):
        # Signatures check only dtypes; without these a wrong width fails deep inside a matmul.
        if self.obs.flat:
            observation = tf.ensure_shape(
                observation, [None, self.obs.obs_dim], name="observation_must_be_batch_by_obs_dim"
            )
            return tf.debugging.check_numerics(observation, "keras_sac policy: observation contains NaN or inf")
        checked = {}
        for e in self.obs.entries:
            x = tf.ensure_shape(observation[e.key], [None, *e.shape], name=f"{e.key}_shape")
            if not e.image:
                x = tf.debugging.check_numerics(x, f"keras_sac policy: observation {e.key} contains NaN or inf")
            checked[e.key] = x
        return checked

    def _action(self, observation):
        return {"action": policy_action(self.actor, self._checked(observation), self.action_center, self.action_scale)}

    def _sample_action(self, observation):
        return {
            "action": policy_action(
                self.actor,
                self._checked(observation),
                self.action_center,
                self.action_scale,
                seed=self.rng.make_seeds(1)[:, 0],
            )
        }


def policy_metadata(agent) -> dict:
    """What an exported policy says about itself (every format): env, spaces, bounds, inputs, signatures."""
    obs = agent.spec.obs
    if obs.flat:
        inputs = f"observation: float32 [batch, {obs.obs_dim}]; one observation is a batch of one"
    else:
        inputs = (
            "; ".join(f"{e.key}: {e.dtype} [batch, {', '.join(map(str, e.shape))}]" for e in obs.entries)
            + " (keyword inputs); one observation is a batch of one"
        )
    metadata = {
        "format": "keras_sac.policy/1",
        "keras_sac_version": __version__,
        **agent.spec.to_dict(),  # the env spec as checkpoints write it (EnvSpec.from_dict reads both)
        "observation_shape": [obs.obs_dim] if obs.flat else list(obs.entries[0].shape),
        "observation_dtype": "float32" if obs.flat else obs.entries[0].dtype,
        "signature_input": inputs,
        "action_shape": [agent.spec.action_dim],
        "num_timesteps": agent.num_timesteps,
        "normalize_observations": bool(agent.config.normalize_observations),
        "signatures": {
            "serving_default": "deterministic action tanh(mean), in env bounds",
            "sample_action": "stochastic action from the tanh-Gaussian, in env bounds",
        },
    }
    if obs.is_dict:  # the keys' shapes and dtypes are in "observation" (EnvSpec.to_dict)
        metadata.pop("observation_shape"), metadata.pop("observation_dtype")
    if agent.config.use_sde:
        metadata["signatures"]["sample_action"] = (
            "gSDE policy: each row drawn as with a fresh noise matrix W, i.e. tanh(N(mean, (h^2) @ sigma^2)) with h "
            "the last hidden features; the time-correlated exploration of training (one W held over many steps) "
            "needs the agent"
        )
    return metadata


def export_policy(agent, path: str | Path) -> Path:
    """Write `agent`'s policy to the SavedModel folder `path` (replaced if it exists)."""
    path = Path(path)
    metadata = policy_metadata(agent)
    obs = agent.spec.obs
    module = _PolicyModule(
        agent.actor, obs, agent.spec.action_low, agent.spec.action_high, json.dumps(metadata), seed=agent.config.seed
    )
    tmp = staging_dir(path)
    try:
        with quiet_tensorflow_logs():
            tf.saved_model.save(
                module, str(tmp), signatures={"serving_default": module.action, "sample_action": module.sample_action}
            )
        (tmp / METADATA_FILE).parent.mkdir(exist_ok=True)
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        fsync_tree(tmp)  # durable before it replaces the previous policy, as checkpoints are
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # no staging debris; the previous policy stays in place
        raise
    return path


class LoadedPolicy:
    """An exported policy loaded back: `policy(obs, deterministic=True)` -> actions in env bounds."""

    def __init__(self, path: str | Path):
        path = find_policy(path)
        try:
            self.module = tf.saved_model.load(str(path))
            self.metadata = json.loads(self.module.metadata().numpy())
        except Exception as exc:  # TF raises many types for a damaged SavedModel
            raise PolicyError(
                f"SavedModel at '{path}' is corrupt or not a keras_sac policy: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
        self.path = path
        self.spec = spec_from_metadata(self.metadata)

    def __call__(self, observation, deterministic: bool = True) -> np.ndarray:
        """Action(s) in env bounds for one observation (obs_dim,) or a batch (batch, obs_dim); the raw
        SavedModel signatures take only batches, this adds and removes the batch dimension."""
        owner = f"the policy at '{self.path}'"
        name = "serving_default" if deterministic else "sample_action"
        batch, single = spaces.as_batch(self.spec.obs, observation, owner)
        inputs = {spaces.BOX_KEY: batch} if self.spec.obs.flat else batch  # the signature's input names
        actions = self.module.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})["action"].numpy()
        return actions[0] if single else actions
