"""The learned functions: a Gaussian policy head and an ensemble of Q networks, as Keras 3 models.

Both are built on a torso (`layers.MLP`, or `simba.SimbaTorso` with `architecture: simba`) made by
`make_torso` from the config's options. A critic outputs one value, or `n_quantiles` quantiles of the
return's distribution (TQC). Both return plain tensors; the tanh-Gaussian distribution is built from the
actor's output outside `call` (see `distributions.py`), so the models stay exportable without TensorFlow
Probability.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_sac.core.distributions import numpy_action
from keras_sac.core.layers import ACTIVATIONS, MLP, BatchRenorm, BuiltOnCall, MLPOptions, dense  # noqa: F401 (re-exported)
from keras_sac.core.simba import SimbaTorso

# MODEL_DTYPE: `Actor` and `Critics` give a mixed precision policy to their layers only. The models compute
# nothing themselves, and a model with the policy would cast its float inputs to bfloat16 on the way in: the raw
# observations, before the float32 normaliser, rounded to 8 mantissa bits (1000.5 -> 1000), and the critics'
# concat of normalised float32 observations with bfloat16 actions failed outright.


def make_torso(widths: Sequence[int], options: MLPOptions, dtype=None, name: str = "trunk"):
    """The hidden stack the options name: an `MLP` over `widths`, or SimBa's residual torso of
    len(widths) blocks of width widths[0] (the config refuses unequal SimBa widths)."""
    if options.architecture == "simba":
        return SimbaTorso(widths[0], len(widths), options.activation, dtype=dtype, name=name)
    return MLP(widths, options, dtype=dtype, name=name)


class Actor(BuiltOnCall, keras.Model):
    """MLP `obs -> (mean, log_std)` of a diagonal Gaussian over pre-tanh actions.

    log_std is squashed into `log_std_bounds` through tanh (CleanRL/SBX-style) instead of clipped: a clip's
    gradient is exactly zero past a bound, where the policy can get stuck; the squash's only fades as it
    nears one.

    With `use_sde` (gSDE, Raffin et al. 2021, sec. 3) there is no log-std head: noise weights `sde_log_std`
    (features x action_dim, state-independent) scale a noise matrix W that multiplies the last hidden
    features h, so the pre-tanh action is mean + h @ W. For one W drawn afresh, that action is Gaussian with
    variance (h^2) @ exp(sde_log_std)^2 per dimension, which `call` returns as log_std; h enters the noise
    without gradient, as in SB3 (`learn_features=False`).
    """

    def __init__(
        self,
        action_dim: int,
        net_arch: Sequence[int],
        log_std_bounds: Sequence[float],
        options: MLPOptions = MLPOptions(),
        dtype=None,
        use_sde: bool = False,
        log_std_init: float = -3.0,
        encoder=None,
        detach_encoder: bool = False,
        normalizer=None,
        torso=None,
        **kwargs,
    ):
        # `dtype` goes to the layers, not to the model (see `MODEL_DTYPE`)
        super().__init__(**kwargs)
        self.normalizer = normalizer  # normalize_observations: the ObsNormalizer shared with the critics
        # Image/Dict observations: obs -> features first. A detached encoder is the critics' (shared): the
        # actor reads its features without gradient and does not train it (learned_variables leaves it out).
        self.encoder, self.detach_encoder = encoder, detach_encoder
        # torso: a user's Layer (core/parts.py) in place of ours
        self.trunk = torso if torso is not None else make_torso(net_arch, options, dtype=dtype, name="trunk")
        self.mean_head = dense(action_dim, options.init, 0.01, dtype, "mean")
        self.use_sde = use_sde
        if use_sde:
            self.sde_log_std = self.add_weight(
                shape=(net_arch[-1], action_dim),
                dtype="float32",
                initializer=keras.initializers.Constant(log_std_init),
                name="sde_log_std",
            )
        else:
            self.log_std_head = dense(action_dim, options.init, 0.01, dtype, "log_std")
        self.log_std_low, self.log_std_high = float(log_std_bounds[0]), float(log_std_bounds[1])

    def call(self, obs, training=False):
        """obs: (batch, obs_dim) -> mean, log_std: (batch, action_dim) each, float32 under any dtype policy.

        `training` matters only with batch renorm: batch statistics (and a running-statistics update) in the
        actor's own update, running statistics everywhere else.
        """
        mean, log_std, _ = self.with_features(obs, training)
        return mean, log_std

    def with_features(self, obs, training=False):
        """(mean, log_std, h): h (batch, features) the last hidden layer (float32 and without gradient with gSDE)."""
        if self.normalizer is not None:
            obs = self.normalizer(obs)
        if self.encoder is not None:
            obs = self.encoder(obs)
            if self.detach_encoder:
                obs = tf.stop_gradient(obs)
        h = self.trunk(obs, training=training)
        mean = tf.cast(self.mean_head(h), tf.float32)
        if self.use_sde:
            features = tf.stop_gradient(tf.cast(h, tf.float32))
            variance = tf.matmul(tf.square(features), tf.exp(2.0 * self.sde_log_std))
            return mean, 0.5 * tf.math.log(variance + SDE_EPSILON), features
        unit = tf.tanh(tf.cast(self.log_std_head(h), tf.float32))  # in (-1, 1)
        log_std = self.log_std_low + 0.5 * (self.log_std_high - self.log_std_low) * (unit + 1.0)
        return mean, log_std, h

    @property
    def learned_variables(self) -> list:
        """The variables the actor's loss trains: all trainable ones but a shared (detached) encoder's."""
        if self.encoder is None or not self.detach_encoder:
            return self.trainable_variables
        shared = {id(v) for v in self.encoder.variables}
        return [v for v in self.trainable_variables if id(v) not in shared]


SDE_EPSILON = 1e-6  # keeps gSDE's std > 0 where the features are all zero (SB3's epsilon)


class ActorSnapshot:
    """A NumPy copy of an `Actor`'s weights: its deterministic action tanh(mean) and tanh-Gaussian samples.

    For single observations this skips TensorFlow's per-call dispatch (~250 us here) for three small
    matmuls (~15 us); it mirrors `Actor.call` at inference and is tested against it (tests/test_agent.py).
    """

    @staticmethod
    def supports(actor: Actor) -> bool:
        """Whether the actor has a NumPy twin: flat observations and keras_sac's own torso (not a user's)."""
        return actor.encoder is None and hasattr(actor.trunk, "numpy_forward")

    def __init__(self, actor: Actor):
        self._trunk = actor.trunk.numpy_forward()
        if actor.normalizer is not None:
            normalize, trunk = actor.normalizer.numpy_forward(), self._trunk
            self._trunk = lambda obs: trunk(normalize(obs))
        self.mean = (actor.mean_head.kernel.numpy(), actor.mean_head.bias.numpy())
        if actor.use_sde:
            self.sde_variance = np.exp(2.0 * actor.sde_log_std.numpy())
        else:
            self.log_std = (actor.log_std_head.kernel.numpy(), actor.log_std_head.bias.numpy())
        self.use_sde = actor.use_sde
        self.log_std_low, self.log_std_high = actor.log_std_low, actor.log_std_high

    def mode(self, obs: np.ndarray) -> np.ndarray:
        """obs: (batch, obs_dim) float32 -> tanh(mean): (batch, action_dim)."""
        return numpy_action(self._trunk(obs) @ self.mean[0] + self.mean[1])

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """obs: (batch, obs_dim) -> tanh(mean + std * noise), noise ~ N(0, I) from `rng`: (batch, action_dim).

        gSDE: std is the spread of h @ W over W, i.e. each row drawn as with a fresh noise matrix."""
        h = self._trunk(obs)
        if self.use_sde:
            log_std = 0.5 * np.log(np.square(h) @ self.sde_variance + SDE_EPSILON)
        else:
            unit = np.tanh(h @ self.log_std[0] + self.log_std[1])
            log_std = self.log_std_low + 0.5 * (self.log_std_high - self.log_std_low) * (unit + 1.0)
        return numpy_action(h @ self.mean[0] + self.mean[1], log_std, rng)


class ActorCopy:
    """predict's `ActorSnapshot` of an actor, taken again on first use after `changed()`, which whatever changes
    the actor's weights calls: every update (even one that fails half-way), `load`, a reset, a user's assignment."""

    def __init__(self, actor: Actor):
        self.actor, self.version, self._taken_at = actor, 0, -1
        self._snapshot: ActorSnapshot | None = None

    def changed(self) -> None:
        self.version += 1

    def get(self) -> ActorSnapshot:
        if self._taken_at != self.version:
            self._snapshot, self._taken_at = ActorSnapshot(self.actor), self.version
        assert self._snapshot is not None
        return self._snapshot


class _ValueHead(keras.layers.Layer):
    """A critic's linear output on its torso: `x -> (batch,)`, or `(batch, n_outputs)` quantiles, float32.
    Mixed in before a torso class (`QNetwork(_ValueHead, MLP)`), whose `call` its `super().call` reaches."""

    def _add_head(self, n_outputs: int, init: str, dtype) -> None:
        self.n_outputs = n_outputs
        self.q = dense(n_outputs, init, 1.0, dtype, "q")

    def call(self, x, training=False, seed=None):
        out = tf.cast(self.q(super().call(x, training=training, seed=seed)), tf.float32)
        return tf.squeeze(out, axis=-1) if self.n_outputs == 1 else out


class QNetwork(_ValueHead, MLP):
    """One critic on an MLP torso (its weights keep the paths keras_sac's checkpoints have always used)."""

    def __init__(self, net_arch: Sequence[int], options: MLPOptions, dtype=None, n_outputs: int = 1, **kwargs):
        super().__init__(net_arch, options, dtype=dtype, **kwargs)
        self._add_head(n_outputs, options.init, dtype)


class SimbaQNetwork(_ValueHead, SimbaTorso):
    """One critic on SimBa's torso: len(net_arch) residual blocks of width net_arch[0]."""

    def __init__(self, net_arch: Sequence[int], options: MLPOptions, dtype=None, n_outputs: int = 1, **kwargs):
        super().__init__(net_arch[0], len(net_arch), options.activation, dtype=dtype, **kwargs)
        self._add_head(n_outputs, "default", dtype)


class TorsoQNetwork(BuiltOnCall, keras.layers.Layer):
    """One critic on a user's torso (core/parts.py): `x -> (batch,)` or `(batch, n_outputs)`, float32."""

    def __init__(self, torso, n_outputs: int = 1, dtype=None, **kwargs):
        super().__init__(**kwargs)  # `dtype` goes to the head; the user's torso keeps its own (see `MODEL_DTYPE`)
        self.torso, self.n_outputs = torso, n_outputs
        self.q = dense(n_outputs, "default", 1.0, dtype, "q")

    def call(self, x, training=False, seed=None):
        out = tf.cast(self.q(self.torso(x, training=training)), tf.float32)
        return tf.squeeze(out, axis=-1) if self.n_outputs == 1 else out


class Critics(BuiltOnCall, keras.Model):
    """`n_critics` independent Q networks on concat(obs, action): `(obs, actions) -> q_values (n_critics, batch)`,
    or with `n_quantiles` (TQC) each member's quantiles of the return: `(n_critics, batch, n_quantiles)`.

    Kept as separate networks rather than one batched (n_critics, ...) matmul per layer, so that TensorFlow's
    graph executor can run the members concurrently on two cores. (The batched version this replaced was
    slower in 2026-11's measurement; that code is no longer in the tree, so no figure is claimed.)
    """

    def __init__(
        self,
        n_critics: int,
        net_arch: Sequence[int],
        options: MLPOptions = MLPOptions(),
        dtype=None,
        encoder=None,
        normalizer=None,
        n_quantiles: int | None = None,
        torso_factory=None,
        **kwargs,
    ):
        super().__init__(**kwargs)  # `dtype` goes to the members, not to the model (see `MODEL_DTYPE`)
        self.n_critics, self.n_quantiles = n_critics, n_quantiles
        self.normalizer = normalizer  # shared with the actor (and the target critics)
        self.encoder = encoder  # image/Dict observations: one encoder feeds every member
        for i in range(n_critics):  # attributes, not a list: TF's object graph does not follow Keras 3 lists
            if torso_factory is not None:  # a user's torso (core/parts.py), one per member
                member = TorsoQNetwork(torso_factory(), n_quantiles or 1, dtype=dtype, name=f"q_{i}")
            else:
                member = (SimbaQNetwork if options.architecture == "simba" else QNetwork)(
                    net_arch, options, dtype=dtype, n_outputs=n_quantiles or 1, name=f"q_{i}"
                )
            setattr(self, f"q_{i}", member)

    @property
    def own_variables(self) -> list:
        """The variables that belong to these critics alone (not the shared ObsNormalizer's): what Polyak
        averaging copies to the target critics."""
        if self.normalizer is None:
            return self.variables
        shared = {id(v) for v in self.normalizer.variables}
        return [v for v in self.variables if id(v) not in shared]

    @property
    def members(self) -> list:
        return [getattr(self, f"q_{i}") for i in range(self.n_critics)]

    def call(self, obs, actions, training=False, seed=None):
        """obs: (batch, obs_dim), actions: (batch, action_dim) in [-1, 1] -> (n_critics, batch), float32
        (with n_quantiles: (n_critics, batch, n_quantiles)).

        `training`: batch-renorm batch statistics; `seed` ((2,) int): dropout on. Both off by default.
        """
        if self.normalizer is not None:
            obs = self.normalizer(obs)
        if self.encoder is not None:
            obs = tf.cast(self.encoder(obs), actions.dtype)
        x = tf.concat([obs, actions], axis=-1)
        seeds = [None] * self.n_critics
        if seed is not None:
            seeds = tf.unstack(tf.random.experimental.stateless_split(seed, self.n_critics))
        return tf.stack([q(x, training=training, seed=s) for q, s in zip(self.members, seeds)])
