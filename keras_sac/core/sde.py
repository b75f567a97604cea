"""gSDE's exploration in the env (Raffin et al. 2021, "Smooth Exploration for Robotic Reinforcement Learning").

Env i acts with tanh(mean(s) + h(s) @ (sigma * E_i)): h the actor's last hidden features, sigma its learned
exp(sde_log_std) and E_i ~ N(0, I) a (features, action_dim) matrix held between resamples -- at each of env i's
episode starts and every `sample_freq` vector steps -- so the action noise is smooth in time. sigma is read at
each step, so the noise follows the learned scale. (The update's own noise, one matrix per minibatch, is
`distributions.TanhGSDE`.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf


class EnvNoise:
    """The n_envs noise matrices E_i of gSDE's env actions, as one variable (saved with the agent)."""

    def __init__(self, n_envs: int, features: int, action_dim: int, rng: tf.random.Generator, sample_freq: int):
        self.noise = tf.Variable(tf.zeros((n_envs, features, action_dim)), trainable=False, name="sde_noise")
        self.rng, self.sample_freq = rng, sample_freq
        self._draw = tf.function(self._draw_where, input_signature=[tf.TensorSpec([n_envs], tf.bool)])
        self._concrete: Any = None  # traced on first use, then called directly (no argument matching)

    def _draw_where(self, envs):
        """New matrices for the envs where `envs` (n_envs,) is True."""
        fresh = tf.random.stateless_normal(tf.shape(self.noise), self.rng.make_seeds(1)[:, 0])
        self.noise.assign(tf.where(envs[:, None, None], fresh, self.noise))

    def resample(self, envs: np.ndarray) -> None:
        if self._concrete is None:
            self._concrete = self._draw.get_concrete_function()
        self._concrete(tf.constant(envs, tf.bool))

    def after_step(self, vector_steps: int, ended: np.ndarray) -> None:
        """New matrices at every sample_freq-th vector step (all envs), and for the envs whose episode ended."""
        every = self.sample_freq > 0 and vector_steps % self.sample_freq == 0
        if every or ended.any():
            self.resample(np.ones_like(ended) if every else ended)

    def action(self, actor, obs):
        """In graph: each env's action in [-1, 1] under its current matrix; obs has one row per env."""
        mean, _, features = actor.with_features(obs)
        noise = tf.exp(actor.sde_log_std) * self.noise  # (n_envs, features, action_dim)
        return tf.tanh(mean + tf.einsum("nf,nfa->na", features, noise))
