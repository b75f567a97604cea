"""`KerasSAC`: the agent, its compiled update and its Stable-Baselines3-style API."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from keras_sac import build
from keras_sac.callbacks import progress_bar_for, with_metrics_log
from keras_sac.config.settings import SACConfig, draw_seed, make_sac_config
from keras_sac.core import spaces
from keras_sac.core.distributions import TanhGaussian, numpy_action
from keras_sac.core.metrics import UpdateMetrics, metric_values
from keras_sac.core.networks import ActorCopy, ActorSnapshot
from keras_sac.core.parts import Parts
from keras_sac.core.sde import EnvNoise
from keras_sac.core.signatures import minibatch_signature, obs_signature
from keras_sac.core.spaces import Batch, EnvSpec, action_affine, to_env_action
from keras_sac.core.threads import configure_threads
from keras_sac.core.update import PLANS, SACUpdate, TrainingDivergedError, polyak_update
from keras_sac.data.buffer import pack, packed_width, unpack
from keras_sac.data.collection import Collector, check_vector_env, make_vector_env
from keras_sac.envs.make import env_spec, resolve_env
from keras_sac.io import checkpoint
from keras_sac.io.export_formats import export_agent
from keras_sac.io.startup import quiet_first_op

__all__ = ["KerasSAC", "TrainingDivergedError", "polyak_update"]


class KerasSAC:
    """Soft Actor-Critic with learned temperature (Haarnoja et al. 2018, arXiv 1812.05905).

    Args:
        env: (after SB3's policy name, if given: "MlpPolicy", "CnnPolicy" or "MultiInputPolicy", checked against
            the observation space; keras_sac picks its networks from that space either way)
            a Gymnasium env with bounded Box actions and Box observations (flat vectors, or uint8 images:
            see spaces.py) or a Dict of them, or a registered env id; with
            `n_envs` > 1, copies are made from its id, or pass a `gymnasium.vector.VectorEnv` built with
            same-step autoreset (then n_envs is its num_envs).
        tensorboard_log: a folder: every `learn` writes its metrics there (TensorBoard and metrics.csv, as
            train.py; see `learn`'s `tb_log_name`).
        actor_torso, critic_torso, features_extractor, replay_buffer_class: your own parts in place of
            keras_sac's (their contract: `keras_sac.core.parts.Parts`); pass them again to `load`.
        **hyperparameters: fields of `SACConfig` (Stable-Baselines3 names); unknown keys are refused.

    The agent acts in [-1, 1]^d; `predict` and exported policies map actions to the env's bounds.
    """

    def __init__(
        self,
        env: gym.Env | gym.vector.VectorEnv | str,
        *sb3_env,
        actor_torso=None,
        critic_torso=None,
        features_extractor=None,
        replay_buffer_class=None,
        tensorboard_log: str | Path | None = None,
        **hyperparameters,
    ):
        env, policy = build.split_policy_name(env, sb3_env)  # SB3's KerasSAC("MlpPolicy", env, ...)
        if isinstance(env, gym.vector.VectorEnv):
            check_vector_env(env)
            if hyperparameters.setdefault("n_envs", env.num_envs) != env.num_envs:
                raise ValueError(
                    f"n_envs ({hyperparameters['n_envs']}) differs from the vector env's num_envs "
                    f"({env.num_envs}): leave n_envs out"
                )
        config = make_sac_config(**hyperparameters)
        if config.seed is None:  # record the seed actually used, so every run can be repeated
            config = dataclasses.replace(config, seed=draw_seed())
        self.config: SACConfig = config
        configure_threads(config.threads, config.use_xla)  # before TensorFlow's first op (core/threads.py)
        quiet_first_op()
        self.parts = Parts(actor_torso, critic_torso, features_extractor, replay_buffer_class)
        self.tensorboard_log = tensorboard_log  # learn() logs there, as train.py logs into its run folder
        build.check_part_settings(config, self.parts)
        env = resolve_env(env, config.pixels)
        self.spec: EnvSpec = env_spec(env, config.image_channels, config.pixels)
        build.check_encoder_settings(config, self.spec)
        build.check_policy_name(policy, self.spec)
        if config.n_envs > 1 and not isinstance(env, gym.vector.VectorEnv):
            env = make_vector_env(self.spec, config.n_envs, config.vectorization, first=env)
        self.env = env  # the env, or the VectorEnv of n_envs envs, that training steps
        self.num_timesteps = 0  # env steps: n_envs per vector step
        self.last_metrics: dict = {}
        self.update_metrics = UpdateMetrics()  # each training phase's metrics, for their mean
        self.progress_info: dict[str, str] = {}  # extra fields shown beside learn()'s progress bar
        self._build()
        self.collector = Collector(self.env, config.n_envs, self.buffer, self.spec.obs)

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        cfg, spec = self.config, self.spec
        assert cfg.seed is not None  # __init__ draws and records one when none is given
        keras.utils.set_random_seed(cfg.seed)  # weight initialisers draw from Keras' global seed
        self.actor, self.critics, self.target_critics = build.build_networks(cfg, spec, self.parts)
        self._actor_copy = ActorCopy(self.actor)  # predict's NumPy copy of the actor
        self.log_alpha = tf.Variable(math.log(cfg.init_alpha), dtype=tf.float32, name="log_alpha")
        self.target_entropy = float(-spec.action_dim if cfg.target_entropy is None else cfg.target_entropy)
        optimizers = build.build_optimizers(
            cfg, build.Networks(self.actor, self.critics, self.target_critics), self.log_alpha
        )
        self.actor_optimizer, self.critic_optimizer, self.alpha_optimizer = optimizers
        self.n_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="n_updates")
        self.tf_rng = tf.random.Generator.from_seed(cfg.seed)  # policy noise inside compiled code
        self.np_rng = np.random.default_rng(cfg.seed)  # warm-up actions and replay indices
        self.predict_rng = np.random.default_rng([cfg.seed, 1])  # predict's own noise: training never reads it
        self.buffer, self._reward_env = build.make_buffer(cfg, spec, self.env, self.parts.replay_buffer_class)
        self._action_center, self._action_scale = action_affine(spec.action_low, spec.action_high)
        self.sde = None  # gSDE's noise matrices in the env (core/sde.py)
        if cfg.use_sde:
            width = (cfg.actor_arch or cfg.net_arch)[-1]
            self.sde = EnvNoise(cfg.n_envs, width, spec.action_dim, self.tf_rng, cfg.sde_sample_freq)
        self._update = SACUpdate(
            cfg,
            self.actor,
            self.critics,
            self.target_critics,
            self.log_alpha,
            self.target_entropy,
            optimizers,
            self.n_updates,
            self.tf_rng,
            spec.obs,
        )
        self._compile()

    def _compile(self) -> None:
        """The compiled functions: the training phase, the single update and the actions."""
        cfg, spec = self.config, self.spec
        obs_spec = obs_signature(spec.obs, [None])
        act_spec = tf.TensorSpec([None, spec.action_dim], tf.float32, name="actions")
        vec_spec = tf.TensorSpec([None], tf.float32)
        # input_signature fixes dtypes and ranks, so each function traces once (tests/test_agent.py). The
        # compiled functions are private: calling them directly would change the actor behind predict's back.
        xla = cfg.use_xla  # both training graphs alike, so dropout's generator (build.py) works in each
        # autograph off: the update's few tensor conditions and its loop are written as tf.cond/tf.while_loop, and
        # converting every function the update calls was most of its tracing time (HalfCheetah: 5 s -> 1.7 s)
        self._compiled_train_step = tf.function(
            self._train_step,
            input_signature=[obs_spec, act_spec, vec_spec, obs_spec, vec_spec, vec_spec],
            jit_compile=xla,
            autograph=False,
        )
        self._stochastic_action = tf.function(self._sample_action, input_signature=[obs_spec])
        width = packed_width(spec.obs_dim, spec.action_dim) if spec.obs.flat else 0
        minibatch_spec = minibatch_signature(spec.obs, spec.action_dim, cfg.gradient_steps, width, cfg.batch_size)
        # predict's (mean, log_std) where the actor has no NumPy twin (images, Dicts, a user's torso or
        # extractor); NumPy draws the noise, as for the others
        self._policy_moments = tf.function(lambda obs: self.actor(obs), input_signature=[obs_spec])
        # one training phase per pattern of actor updates (`SACUpdate.plan`): with policy_delay 1 just "every";
        # CrossQ's one update per phase at delay 3 alternates "actor" and "critic" programs
        self._phases = {
            plan: tf.function(
                self._phase_function(plan), input_signature=[minibatch_spec, obs_spec], jit_compile=xla, autograph=False
            )
            for plan in PLANS
        }
        self._compiled_update_and_act = self._phases[self._update.plan(0)]  # a fresh agent's first phase
        self._concrete: dict = {}  # traced on first use: an agent that never trains never traces

    @property
    def alpha(self) -> float:
        return float(tf.exp(self.log_alpha))

    def policy(self, obs: tf.Tensor) -> TanhGaussian:
        """pi(.|obs) as a tanh-Gaussian over [-1, 1]^d; obs: (batch, obs_dim). With gSDE, the distribution of
        one action under a fresh noise matrix (training's noise is shared across steps and the minibatch)."""
        return TanhGaussian(*self.actor(obs))

    # ------------------------------------------------------------------ the update
    def train_step(self, obs, actions, rewards, next_obs, terminated, discounts=None) -> dict:
        """One compiled SAC update from one minibatch (see `update.SACUpdate.step`); returns its metrics as
        tensors. `discounts` (batch,) defaults to gamma (one-step transitions)."""
        if discounts is None:
            discounts = np.full(np.shape(rewards), self.config.gamma, np.float32)
        return self._run_update(self._compiled_train_step, obs, actions, rewards, next_obs, terminated, discounts)

    def _run_update(self, compiled, *args):
        """Call a compiled update: with `_train`'s phases, the paths by which training changes the weights (a
        NaN/inf loss or gradient raises TrainingDivergedError: `SACUpdate.call`)."""
        self._actor_copy.changed()
        return self._update.call(compiled, args, self.num_timesteps)

    def _train_step(self, *batch) -> dict:
        return self._update.step(Batch(*batch))

    def _phase_function(self, plan: str):
        def _update_and_act(minibatches, current_obs):  # named so in XLA's dumps, which xla_census.py reads
            return self._update_and_act(minibatches, current_obs, plan)

        return _update_and_act

    def _update_and_act(self, minibatches, current_obs, plan: str = "cond"):
        """A whole training phase in one compiled call: `gradient_steps` updates, then the next action.

        minibatches: (gradient_steps, batch, ...) `buffer.pack`ed minibatches, sampled at once (image/Dict
            observations: a `Batch` of such arrays, images uint8). The updates run in a graph loop (which of
        them step the actor: `plan`, see `SACUpdate.plan`); the action for `current_obs` is drawn from the
        updated policy in the same call, saving a second call per env step (~0.4 ms against a ~5 ms step).
        Returns (the updates' mean metrics, actions (n_envs, action_dim) in [-1, 1])."""
        if self.spec.obs.flat:  # each field (gradient_steps, batch, ...)
            minibatches = unpack(minibatches, self.spec.obs_dim, self.spec.action_dim)
        return self._update.phase(minibatches, plan), self._sample_action(current_obs)

    def _compiled(self, name: str):
        """The traced graph of a compiled method, or of the training phase of plan `name` (`SACUpdate.plan`),
        called directly: that skips tf.function's argument matching, ~0.2 ms per call here (docs/benchmarks.md).
        Inputs must match its input_signature."""
        if name not in self._concrete:
            compiled = self._phases[name] if name in self._phases else getattr(self, name)
            self._concrete[name] = compiled.get_concrete_function()
        return self._concrete[name]

    def _sample_action(self, obs):
        """One draw from pi(.|obs) per row, in [-1, 1]: independent noise, or with gSDE (obs: one row per env)
        each env's current noise matrix."""
        if self.sde is not None:
            return self.sde.action(self.actor, obs)
        return self.policy(obs).sample_and_log_prob(self.tf_rng.make_seeds(1)[:, 0])[0]

    @property
    def sde_noise(self) -> tf.Variable:
        """gSDE's env noise matrices (n_envs, features, action_dim); only with use_sde."""
        assert self.sde is not None, "sde_noise exists with use_sde only"
        return self.sde.noise

    # ------------------------------------------------------------------ acting
    def _to_env_action(self, actions: np.ndarray) -> np.ndarray:
        return to_env_action(actions, self._action_center, self._action_scale)

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        """Action(s) for observation(s), in the env's action bounds.

        Args:
            observation: (obs_dim,) for one observation or (batch, obs_dim) for a batch; an image (its
                shape, uint8) or a batch of them; for a Dict space a dict of those, keyed as the space.
            state, episode_start: accepted for Stable-Baselines3 compatibility; SAC is not recurrent.
            deterministic: tanh(mean) instead of a sample. Both modes compute in NumPy from a copy of the
                actor's weights, taken again after every update and restore (`agent.actor_changed()`
                after assigning the actor's weights by hand); samples draw from `agent.predict_rng`, a
                generator of their own (saved with the agent), so calling predict never changes what
                training does.
        Returns:
            (actions, None): actions (action_dim,) or (batch, action_dim), float32.
        """
        batch, single = spaces.as_batch(self.spec.obs, observation, "the agent")
        rng = None if deterministic else self.predict_rng
        if ActorSnapshot.supports(self.actor):
            snapshot = self._actor_copy.get()
            unit_actions = snapshot.mode(batch) if rng is None else snapshot.sample(batch, rng)
        else:  # images, Dicts, user parts: the actor's (mean, log_std) from TensorFlow, then NumPy
            mean, log_std = (t.numpy() for t in self._compiled("_policy_moments")(batch))
            unit_actions = numpy_action(mean, log_std, rng)
        actions = self._to_env_action(unit_actions)
        return (actions[0] if single else actions), None

    def actor_changed(self) -> None:
        """Tell the agent its actor's weights were assigned from outside (updates and `load` need not)."""
        self._actor_copy.changed()

    # ------------------------------------------------------------------ training
    def learn(
        self,
        total_timesteps: int,
        callback=None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
        tb_log_name: str = "SAC",
    ) -> "KerasSAC":
        """Collect experience and train for `total_timesteps` env steps.

        Args:
            total_timesteps: env steps to take in this call.
            callback: a `keras_sac.callbacks.Callback` (SB3's hooks: on_training_start, on_step -- return
                False to stop --, on_rollout_end, on_training_end), a function `f(agent)` called as on_step,
                or a list of these.
            reset_num_timesteps: start counting from 0 with a fresh episode; False continues the current
                run (same episode, same counters), as after `load`.
            progress_bar: show a tqdm bar with steps/s, the mean return of the last 100 training episodes
                and `progress_info` (train.py puts the last evaluation there).
            tb_log_name: with `tensorboard_log` set on the agent, this call's metrics go to
                `<tensorboard_log>/<tb_log_name>_<n>` (metrics.csv and TensorBoard; `callbacks.MetricsLogger`).
        Returns:
            self.
        """
        if int(total_timesteps) != total_timesteps or total_timesteps < 1:
            raise ValueError(f"total_timesteps must be a positive integer, got {total_timesteps!r}")
        cfg, collector = self.config, self.collector
        if reset_num_timesteps:
            self.num_timesteps = 0
            collector.obs = self.collector.next_action = None
        if collector.obs is None:
            # Seeded once per agent (as SB3 does): a second learn() continues the env's random stream
            # instead of replaying the first call's episode starts.
            self._start_episodes(seed=None if collector.seeded else cfg.seed)
            collector.seeded = True
        end = self.num_timesteps + int(total_timesteps)  # with n_envs > 1, up to n_envs - 1 more are taken
        bar = progress_bar_for(self.num_timesteps, end) if progress_bar else None
        callback = with_metrics_log(callback, self.tensorboard_log, tb_log_name, reset_num_timesteps)
        callback.on_training_start(self)
        try:
            while self.num_timesteps < end:
                ended = self._collect()
                if (self.num_timesteps // cfg.n_envs) % cfg.train_freq == 0:
                    callback.on_rollout_end(self)
                    if self.num_timesteps > cfg.learning_starts:
                        self._train()
                if bar is not None:
                    bar.update(cfg.n_envs)
                    if ended.any():
                        bar.set_postfix(
                            {"return(last 100 ep)": f"{np.mean(self.episode_returns):.1f}", **self.progress_info},
                            refresh=False,
                        )
                callback.update_locals(self.collector.step_locals())
                if callback.on_step(self) is False:
                    break
        finally:
            if bar is not None:
                bar.close()
            callback.on_training_end(self)
        return self

    def _train(self) -> None:
        """One training phase: all gradient steps and the next actions, in one compiled call."""
        cfg = self.config
        sample = self.buffer.sample(cfg.gradient_steps * cfg.batch_size, self.np_rng)
        if self.spec.obs.flat:
            minibatches = pack(sample).reshape(cfg.gradient_steps, cfg.batch_size, -1)
        else:
            minibatches = tf.nest.map_structure(
                lambda x: x.reshape(cfg.gradient_steps, cfg.batch_size, *x.shape[1:]), sample
            )
        self._actor_copy.changed()  # as _run_update: the one other path by which training changes the weights
        (self.last_metrics, actions), updates = self._update.call_phase(
            self._compiled, (minibatches, self.collector.obs), self.num_timesteps
        )
        self.collector.next_action = actions.numpy()
        self.update_metrics.add(self.last_metrics)
        if updates is not None and cfg.reset_interval is not None and updates % cfg.reset_interval == 0:
            self._reset_networks(updates // cfg.reset_interval)

    def _reset_networks(self, count: int) -> None:
        """reset_interval: fresh actor and critics, the buffer kept (`build.reset_networks`). The action just
        drawn for the next step came from the old actor; it is taken, as any action drawn before an update is."""
        nets = build.Networks(self.actor, self.critics, self.target_critics)
        build.reset_networks(
            self.config, self.spec, nets, (self.actor_optimizer, self.critic_optimizer), count, self.parts
        )
        self.actor_changed()

    def _start_episodes(self, seed: int | None) -> None:
        self.collector.reset(seed)
        self._observed(self.collector.obs)
        self.collector.next_action = None
        if self.sde is not None:
            self.sde.resample(np.ones(self.config.n_envs, bool))

    def _collect(self) -> np.ndarray:
        """One vector step (n_envs env steps) with the policy's actions; returns which envs' episodes ended."""
        cfg, obs = self.config, self.collector.obs
        if self.num_timesteps < cfg.learning_starts:
            actions = self.np_rng.uniform(-1.0, 1.0, (cfg.n_envs, self.spec.action_dim)).astype(np.float32)
        elif self.collector.next_action is not None:  # drawn for obs at the end of the last training phase
            actions, self.collector.next_action = self.collector.next_action, None
        else:
            actions = self._compiled("_stochastic_action")(obs).numpy()
        ended = self.collector.step(actions, self._to_env_action(actions), self.num_timesteps)
        self._observed(self.collector.obs)
        self.num_timesteps += cfg.n_envs
        if self.sde is not None:
            self.sde.after_step(self.num_timesteps // cfg.n_envs, ended)
        return ended

    def _observed(self, obs) -> None:
        """normalize_observations: fold the observations training just met into the running statistics.
        (After an episode end, the final observation is in the buffer but not here: SB3 skips it too.)"""
        if self.actor.normalizer is not None:
            self.actor.normalizer.update(obs)
            self.actor_changed()  # predict's snapshot holds the statistics

    # Training-episode statistics, kept by the collector.
    num_episodes = property(lambda self: self.collector.num_episodes, doc="Training episodes over the agent's life.")
    episode_returns = property(lambda self: self.collector.episode_returns, doc="The last 100 training returns.")
    episode_lengths = property(lambda self: self.collector.episode_lengths, doc="The last 100 training lengths.")

    def metrics(self) -> dict[str, float]:
        """The recent episode statistics and the update metrics (train/...) as Python floats: with a MetricsLogger
        attached, the mean over the updates since its last row (`update_metrics`); else the last update's."""
        return {
            **(self.update_metrics.mean() or metric_values(self.last_metrics)),
            "train/target_entropy": self.target_entropy,
            "train/n_updates": float(self.n_updates.numpy()),
            "train/learning_rate": float(self.critic_optimizer.learning_rate),  # this step's, if scheduled
            **self.collector.episode_metrics(),
        }

    def close(self) -> None:
        """Close the training env(s) (with async vectorization: stop their subprocesses)."""
        self.collector.close()
        if self._reward_env not in (None, self.env):
            self._reward_env.close()

    # ------------------------------------------------------------------ persistence
    def state_variables(self) -> dict:
        """Every piece of TensorFlow state, keyed by a stable name (`checkpoint.state_variables`)."""
        return checkpoint.state_variables(self)

    def save(self, path: str | Path, include_buffer: bool = True) -> Path:
        """Save the whole agent to the folder `path`, atomically (see `checkpoint.py`).

        Holds weights, target weights, optimizer states, log-alpha, counters, every random generator's
        state (TF policy noise, NumPy replay/warm-up and predict generators, the env's), the env's
        mid-episode state (MuJoCo and classic-control envs), the config and, unless
        `include_buffer=False`, the replay buffer. No pickle. `load` + `learn(..., reset_num_timesteps=False)`
        continues exactly where the saved agent stood.
        """
        return checkpoint.save_agent(self, path, include_buffer)

    @classmethod
    def load(cls, path: str | Path, env: gym.Env | str | None = None, **parts) -> "KerasSAC":
        """Rebuild an agent saved with `save`; `env` defaults to a new env of the saved id.

        `path` is a saved folder, or a run's `checkpoints/` folder or run folder, whose newest good
        checkpoint is used (a damaged newer one is skipped with a warning). `parts`: the custom parts the
        agent was built with (`actor_torso=...`, see `__init__`), which a checkpoint names but never stores.
        """
        return checkpoint.load_agent(cls, path, env, parts)

    def export(self, path: str | Path, format: str = "savedmodel") -> Path:
        """Write the policy for use without keras_sac.

        format: "savedmodel" (a folder: deterministic and stochastic signatures, `export.py`), "tflite" or
            "onnx" (one file with the deterministic action, plus `<file>.json`; `export_formats.py`; load
            with `keras_sac.io.runtime.load_policy`, which needs no TensorFlow).
        """
        return export_agent(self, path, format)
