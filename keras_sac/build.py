"""The agent's parts, made from its config and its env's spec: networks, optimizers and replay buffer.

`KerasSAC.__init__` calls these once; every variant choice (which encoder, shared or not, target critics or
none, uniform or hindsight replay) is made here, in Python, before anything is traced.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from keras_sac.config.settings import ConfigError, SACConfig
from keras_sac.core.encoders import EncoderError, ObsEncoder
from keras_sac.core.networks import Actor, Critics, MLPOptions
from keras_sac.core.normalization import ObsNormalizer
from keras_sac.core.parts import Parts, UserExtractor, check_layer, check_parts
from keras_sac.core.schedules import build_schedule
from keras_sac.core.signatures import obs_signature
from keras_sac.core.spaces import EnvSpec, ObsSpec
from keras_sac.core.update import polyak_update
from keras_sac.data.buffer import MultiEnvReplayBuffer, ReplayBuffer
from keras_sac.data.her import HerError, HerReplayBuffer, check_goal_env
from keras_sac.envs.make import make_env_like

IMAGE_SETTINGS = ("encoder", "encoder_channels", "encoder_features", "image_augmentation", "augmentation_pad")


class Networks(NamedTuple):
    actor: Actor
    critics: Critics
    target_critics: Critics | None  # None with target_update: none (CrossQ bootstraps from the online critics)


def zero_obs(obs: ObsSpec):
    """One all-zero observation batch (1, ...), to build the networks' weights."""
    spec = obs_signature(obs, [1])
    return tf.nest.map_structure(lambda s: tf.zeros(s.shape, s.dtype), spec)


SB3_POLICIES = {"MlpPolicy": "flat vector", "CnnPolicy": "image", "MultiInputPolicy": "Dict"}


def split_policy_name(first, rest: tuple):
    """`KerasSAC(env)` or SB3's `KerasSAC("MlpPolicy", env)` -> (env, policy name or None); anything else is a
    one-line TypeError."""
    if not rest:
        if isinstance(first, str) and first in SB3_POLICIES:
            raise TypeError(
                f"KerasSAC({first!r}) needs the env too: KerasSAC({first!r}, env) as in SB3, or KerasSAC(env)"
            )
        return first, None
    if len(rest) == 1 and isinstance(first, str) and first in SB3_POLICIES:
        return rest[0], first
    raise TypeError(
        f"KerasSAC takes the env, optionally after SB3's policy name ({', '.join(SB3_POLICIES)}), then "
        f"settings by keyword: KerasSAC(env, learning_rate=1e-3); got {1 + len(rest)} positional arguments"
    )


def check_policy_name(policy: str | None, spec: EnvSpec) -> None:
    """SB3's policy name must fit the observation space, as SB3 checks it; keras_sac's networks follow the space."""
    if policy is None:
        return
    kind = "Dict" if spec.obs.is_dict else "flat vector" if spec.obs.flat else "image"
    if SB3_POLICIES[policy] != kind:
        fit = next(name for name, k in SB3_POLICIES.items() if k == kind)
        raise ConfigError(
            f"{policy} is for {SB3_POLICIES[policy]} observations, and env {spec.env_id or ''} observes "
            f"{spec.obs.describe()}: pass {fit}, or leave the policy name out"
        )


def check_encoder_settings(cfg: SACConfig, spec: EnvSpec) -> None:
    """Image settings on an env without images would be accepted and ignored: refuse them instead."""
    if cfg.normalize_observations and not spec.obs.flat:
        raise ConfigError(
            f"normalize_observations works on flat vector observations, and env {spec.env_id or ''} "
            f"observes {spec.obs.describe()}: leave it out (images are scaled to [0, 1] already; a "
            f"Dict of vectors can be flattened with gymnasium.wrappers.FlattenObservation)"
        )
    if spec.obs.has_images:
        return
    defaults = SACConfig()
    changed = [name for name in IMAGE_SETTINGS if getattr(cfg, name) != getattr(defaults, name)]
    if changed:
        raise ConfigError(
            f"{', '.join(changed)} apply to image observations, and env {spec.env_id or ''} observes "
            f"{spec.obs.describe()}: leave them out (or set pixels to observe its frames)"
        )


def check_part_settings(cfg: SACConfig, parts: Parts) -> None:
    """Settings that shape keras_sac's own torso or buffer mean nothing with a user's: refuse them."""
    check_parts(parts)
    defaults = SACConfig()
    ours = {  # part: (the settings of keras_sac's own version of it, what they shape)
        "actor_torso": (("architecture", "actor_batch_renorm", "use_sde"), "actor torso"),  # gSDE: our features
        "critic_torso": (
            ("architecture", "critic_layer_norm", "critic_dropout", "critic_batch_renorm"),
            "critic torsos",
        ),
        "replay_buffer_class": (("replay_buffer",), "replay buffers (hindsight replay)"),
    }
    for part, (names, what) in ours.items():
        changed = [n for n in names if getattr(parts, part) is not None and getattr(cfg, n) != getattr(defaults, n)]
        if changed:
            raise ConfigError(
                f"{', '.join(changed)} apply to keras_sac's own {what}, and this agent has its own "
                f"{part}: leave {'it' if len(changed) == 1 else 'them'} out"
            )


def build_networks(cfg: SACConfig, spec: EnvSpec, parts: Parts = Parts()) -> Networks:
    """Actor, critics and target critics, built (weights drawn from Keras' global seed, set by the caller).
    `parts`: the user's own torsos or extractor in place of ours (core/parts.py)."""
    dtype = None if cfg.precision == "float32" else cfg.precision  # a Keras dtype policy
    common: dict[str, Any] = dict(
        activation=cfg.activation,
        init=cfg.init,
        renorm_momentum=cfg.batch_renorm_momentum,
        renorm_warmup=cfg.batch_renorm_warmup,
        renorm_after_activation=cfg.batch_renorm_after_activation,
        architecture=cfg.architecture,
    )
    actor_options = MLPOptions(**common, batch_renorm=cfg.actor_batch_renorm)
    # TensorFlow's ThreeFry kernel exists only under XLA; Philox (auto_select) is the graph-mode generator.
    critic_options = MLPOptions(
        **common,
        layer_norm=cfg.critic_layer_norm,
        dropout=cfg.critic_dropout,
        batch_renorm=cfg.critic_batch_renorm,
        rng_alg="threefry" if cfg.use_xla else "auto_select",
    )
    critic_arch, actor_arch = cfg.critic_arch or cfg.net_arch, cfg.actor_arch or cfg.net_arch
    structured = not spec.obs.flat
    n_quantiles = cfg.n_quantiles if cfg.critic_type == "quantile" else None

    def encoder(name):  # image and Dict observations: obs -> features (encoders.py), or the user's extractor
        if parts.features_extractor is not None:
            single = spec.obs.entries[0].key if not spec.obs.flat and not spec.obs.is_dict else None
            return UserExtractor(parts.make("features_extractor"), single, name=name)
        if not structured:
            return None
        return ObsEncoder(
            spec.obs,
            cfg.encoder,
            cfg.encoder_channels,
            cfg.encoder_features,
            cfg.vector_encoder_arch,
            MLPOptions(activation=cfg.activation, init=cfg.init),
            dtype=dtype,
            name=name,
        )

    normalizer = None
    if cfg.normalize_observations:  # built first, so its weights are named obs_normalizer/...
        normalizer = ObsNormalizer(spec.obs_dim, cfg.normalize_clip, cfg.normalize_epsilon, name="obs_normalizer")
    try:
        critic_torso = (lambda: parts.make("critic_torso")) if parts.critic_torso is not None else None

        def make_critics(name: str) -> Critics:  # the online critics and their targets alike
            return Critics(
                cfg.n_critics,
                critic_arch,
                critic_options,
                dtype=dtype,
                encoder=encoder("encoder"),
                normalizer=normalizer,
                n_quantiles=n_quantiles,
                torso_factory=critic_torso,
                name=name,
            )

        critics = make_critics("critics")
        # A shared encoder is the critics', read by the actor without gradient (SAC-AE, Yarats et al. 2019,
        # sec. 6; DrQ): the actor's loss would otherwise pull the features towards what the current policy
        # likes, and one encoder costs half the convolutions of two.
        shared = critics.encoder is not None and cfg.share_encoder
        actor = Actor(
            spec.action_dim,
            actor_arch,
            cfg.log_std_bounds,
            actor_options,
            dtype=dtype,
            use_sde=cfg.use_sde,
            log_std_init=cfg.log_std_init,
            encoder=critics.encoder if shared else encoder("encoder"),
            detach_encoder=shared,
            normalizer=normalizer,
            torso=parts.make("actor_torso") if parts.actor_torso else None,
            name="actor",
        )
        obs0, act0 = zero_obs(spec.obs), tf.zeros((1, spec.action_dim))
        check_custom_outputs(parts, actor, critics, obs0)
        if (
            structured or critics.encoder is not None
        ):  # the shared encoder is built (and named) by the critics that own it
            critics(obs0, act0), actor(obs0)
        else:  # weights drawn in the order keras_sac always drew them: same seed, same network
            actor(obs0), critics(obs0, act0)
        target_critics = None
        if cfg.target_update != "none":
            target_critics = make_critics("target_critics")
            target_critics(obs0, act0)
            polyak_update(critics.own_variables, target_critics.own_variables, tau=1.0)
    except EncoderError as exc:  # e.g. an image too small for the encoder's strides
        raise ConfigError(str(exc)) from None
    return Networks(actor, critics, target_critics)


def check_custom_outputs(parts: Parts, actor: Actor, critics: Critics, obs0) -> None:
    """Run each user part once on a zero observation, before the heads are built on it: a wrong output is a
    PartError naming the part, not a shape error deep inside a matmul."""
    features = obs0
    if actor.normalizer is not None:
        features = actor.normalizer(features)
    if parts.features_extractor is not None:
        features = critics.encoder(features)
        check_layer("features_extractor", features)
    if parts.actor_torso is not None:
        check_layer("actor_torso", actor.trunk(tf.cast(features, tf.float32)))
    if parts.critic_torso is not None:
        x = tf.concat([tf.cast(features, tf.float32), tf.zeros((1, actor.mean_head.units))], axis=-1)
        check_layer("critic_torso", critics.members[0].torso(x))


def build_optimizers(cfg: SACConfig, nets: Networks, log_alpha: tf.Variable):
    """(actor, critic, alpha) Adam optimizers, each rate a constant or a schedule (schedules.py), with their
    slots made now, eagerly: a tf.function must not create variables on its first call. With weight_decay,
    the actor's and critics' are AdamW (same slots and names, so checkpoints keep their layout); the
    temperature is never decayed toward 1."""

    for setting in ("actor_learning_rate", "critic_learning_rate", "alpha_learning_rate"):
        spec = getattr(cfg, setting)
        if isinstance(spec, dict) and "steps" not in spec:
            raise ConfigError(
                f"{setting}: a {spec['schedule']} schedule without steps runs over the whole run, whose "
                f"length the agent does not know: give steps (its optimizer's updates from start to "
                f"end), or train with train.py, which fills them in"
            )

    def adam(rate, name, variables, weight_decay=0.0):
        rate = build_schedule(cfg.learning_rate if rate is None else rate, cfg.learning_rate)
        if weight_decay > 0:
            optimizer = keras.optimizers.AdamW(rate, weight_decay=weight_decay, beta_1=cfg.adam_beta1, name=name)
        else:
            optimizer = keras.optimizers.Adam(rate, beta_1=cfg.adam_beta1, name=name)
        optimizer.build(variables)
        return optimizer

    return (
        adam(cfg.actor_learning_rate, "actor_adam", nets.actor.learned_variables, cfg.weight_decay),
        adam(cfg.critic_learning_rate, "critic_adam", nets.critics.trainable_variables, cfg.weight_decay),
        adam(cfg.alpha_learning_rate, "alpha_adam", [log_alpha]),
    )


def reset_networks(
    cfg: SACConfig, spec: EnvSpec, nets: Networks, optimizers, count: int, parts: Parts = Parts()
) -> None:
    """Re-initialise actor and critics in place, the `count`-th time (Nikishin et al. 2022, "The Primacy Bias
    in Deep Reinforcement Learning", sec. 4: every parameter of both networks and their optimizers' state).

    Fresh weights are drawn as at construction, from a seed made of the run's seed and `count`, so a resumed
    run resets to the same weights; the target critics restart as copies of the new critics, and the actor's
    and critics' Adam moments and step counts restart at zero. Kept: the replay buffer, the temperature and
    its optimizer, and the observation statistics (a description of the data, not something learned).
    """
    assert cfg.seed is not None  # KerasSAC draws and records one when none is given
    keras.utils.set_random_seed(int(np.random.SeedSequence([cfg.seed, count]).generate_state(1)[0] >> 1))
    fresh = build_networks(cfg, spec, parts)
    shared = {id(v) for v in nets.actor.normalizer.variables} if nets.actor.normalizer is not None else set()
    pairs_of_nets: list[tuple[Any, Any]] = [
        (nets.actor, fresh.actor),
        (nets.critics, fresh.critics),
        (nets.target_critics, fresh.target_critics),
    ]
    for old, new in pairs_of_nets:
        if old is None:
            continue
        pairs = [(v, w) for v, w in zip(old.variables, new.variables, strict=True) if id(v) not in shared]
        for v, w in pairs:
            v.assign(w)
    for optimizer in optimizers[:2]:  # its step count and moments; its learning rate is a setting, kept
        for v in optimizer.variables:
            if v is not getattr(optimizer, "_learning_rate", None):
                v.assign(tf.zeros_like(v))


def make_buffer(cfg: SACConfig, spec: EnvSpec, env: gym.Env | gym.vector.VectorEnv, buffer_class=None):
    """The replay buffer (one ring per env with n_envs > 1) and, for hindsight replay, the env whose
    `compute_reward` relabels (a vector env's copies may live in subprocesses: it runs in this process).
    Returns (buffer, reward_env or None)."""
    storage: dict[str, Any] = dict(
        optimize_memory_usage=cfg.optimize_memory_usage, n_steps=cfg.n_steps, gamma=cfg.gamma
    )
    frame_stack = (spec.pixels or {}).get("frame_stack", 1)
    if cfg.optimize_memory_usage and frame_stack > 1:  # each frame once (buffer.ObsArrays)
        storage["frame_stack"] = frame_stack
    part, reward_env = buffer_class or ReplayBuffer, None
    if cfg.replay_buffer == "her":
        reward_env = env if cfg.n_envs == 1 else make_env_like(spec)
        compute_reward: Any = getattr(reward_env.unwrapped, "compute_reward", None)  # checked just below
        try:
            check_goal_env(spec.obs, compute_reward, spec.env_id or type(env).__name__)
        except HerError as exc:
            raise ConfigError(str(exc)) from None
        limit = getattr(getattr(env, "spec", None), "max_episode_steps", None) or getattr(
            getattr(reward_env, "spec", None), "max_episode_steps", None
        )
        if limit and cfg.learning_starts < limit * cfg.n_envs:
            raise ConfigError(
                f"replay_buffer: her samples finished episodes only: learning_starts "
                f"({cfg.learning_starts}) must cover one {limit}-step episode per env; set "
                f"learning_starts: {limit * cfg.n_envs} or more"
            )
        part = functools.partial(
            HerReplayBuffer,
            compute_reward=compute_reward,
            n_sampled_goal=cfg.n_sampled_goal,
            goal_selection_strategy=cfg.goal_selection_strategy,
        )
    if cfg.n_envs == 1:
        return part(cfg.buffer_size, spec.obs, spec.action_dim, **storage), reward_env
    return MultiEnvReplayBuffer(
        cfg.buffer_size, spec.obs, spec.action_dim, cfg.n_envs, part=part, **storage
    ), reward_env
