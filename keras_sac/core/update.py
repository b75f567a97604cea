"""The SAC update, assembled once from the config's choices and compiled by the agent.

`SACUpdate.step` reads as the paper's algorithm: critics, then (every `policy_delay` steps) actor and
temperature, then the target rule. Which backup, actor gradient, target rule and network mode it uses is
decided here in Python when the agent is built, so the traced graph holds only the chosen variant. Which
updates of a training phase step the actor is decided in Python too, before each call (`SACUpdate.plan`):
the agent compiles one program per pattern it meets, so the common delays run no per-update tf.cond.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import tensorflow as tf

from keras_sac.config.settings import SACConfig
from keras_sac.core import losses
from keras_sac.core.adam import AdamStep
from keras_sac.core.distributions import TanhGaussian, TanhGSDE
from keras_sac.core.encoders import augment
from keras_sac.core.spaces import Batch


class TrainingDivergedError(RuntimeError):
    """A loss or one of its gradients became NaN or inf; the message names it and the step."""


def polyak_update(online: list, target: list, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target, in place, as graph `assign` ops (no host round trip)."""
    with tf.name_scope("target_update"):
        for w, w_target in zip(online, target, strict=True):
            w_target.assign(tau * w + (1.0 - tau) * w_target)


def when(condition: tf.Tensor, action: Callable[[], Any]) -> None:
    """Run `action`'s ops only where the scalar boolean tensor `condition` holds: the tf.cond autograph makes
    of an `if` (its branches return a dummy 0: a cond needs an output; the ops inside run by their control
    dependencies)."""
    tf.cond(condition, lambda: (action(), 0)[1], lambda: 0)


class SACUpdate:
    """One gradient step of SAC and its variants on one minibatch.

    Args:
        config: the agent's `SACConfig`; the variant is fixed from it here.
        actor, critics, target_critics: the agent's networks (`target_critics` None with target_update none).
        log_alpha: the temperature variable; target_entropy: float.
        optimizers: (actor, critic, alpha) Keras optimizers, built.
        n_updates: int64 variable counting critic updates; rng: the agent's `tf.random.Generator`.
        obs_spec: the observations' `spaces.ObsSpec` (image augmentation needs their layout).
    """

    def __init__(
        self,
        config: SACConfig,
        actor,
        critics,
        target_critics,
        log_alpha,
        target_entropy: float,
        optimizers,
        n_updates,
        rng,
        obs_spec=None,
    ):
        c = self.config = config
        self.obs_spec = obs_spec
        self.actor, self.critics, self.target_critics = actor, critics, target_critics
        self.log_alpha, self.target_entropy = log_alpha, target_entropy
        actor_optimizer, critic_optimizer, alpha_optimizer = optimizers
        # Keras' Adam arithmetic with its per-step scalars computed once per optimizer, not once per variable
        self.actor_step = AdamStep(actor_optimizer, actor.learned_variables)
        self.critic_step = AdamStep(critic_optimizer, critics.trainable_variables)
        self.alpha_step = AdamStep(alpha_optimizer, [log_alpha])
        self.n_updates, self.rng = n_updates, rng
        self.quantile = c.critic_type == "quantile"
        backups: dict[str, Callable[..., Any]] = {
            "min": losses.min_backup,
            "mean": losses.mean_backup,
            "redq": functools.partial(losses.redq_backup, subset=c.redq_subset),
        }
        self.backup = backups[c.target_backup]
        # REDQ's actor maximises the mean over the whole ensemble (Chen et al. 2021, Alg. 1 line 13): the
        # in-target min already controls overestimation, and the mean of N critics is a lower-variance
        # signal than the min of N, which is strongly biased low for N = 10. Every other backup keeps
        # SAC's min over all critics.
        self.actor_q: Callable[..., Any] = losses.mean_backup if c.target_backup == "redq" else losses.min_backup
        self.critic_loss: Callable[..., Any] = losses.critic_loss
        if self.quantile:  # TQC: truncation in the target replaces the min, so the actor takes the plain mean
            self.backup = functools.partial(losses.truncated_mixture, drop_per_net=c.top_quantiles_to_drop_per_net)
            self.actor_q, self.critic_loss = losses.mean_over_atoms, losses.quantile_huber_loss
        self.dropout = c.critic_dropout > 0
        # Seeds drawn per step: next actions, actor actions, then one per option that needs its own. The
        # default draws two, as keras_sac always has, so its runs repeat across versions.
        self.augment = c.image_augmentation == "random_shift" and obs_spec is not None and obs_spec.has_images
        self.seed_names = [
            *(["noise"] if c.use_sde else ["next", "actor"]),
            *(["dropout"] if self.dropout else []),
            *(["redq"] if c.target_backup == "redq" else []),
            *(["augment"] if self.augment else []),
        ]
        # XLA compiles tf.debugging.check_numerics to nothing, so under XLA the check is a value: the first
        # non-finite loss or gradient sets `failure` (an index into FAILURES, 1-based) and from then on no
        # optimizer step or target update runs; the agent reads it after each call and stops training.
        self.failure = tf.Variable(0, dtype=tf.int32, trainable=False, name="failure") if c.use_xla else None
        # n_updates after the last training phase, mirrored in Python where a phase's plan or resets read it (a
        # read of the variable costs ~80 µs a call); None after any other compiled call: the variable is read then
        self.counted = c.policy_delay > 1 or c.reset_interval is not None
        self.known_updates: int | None = None
        if c.policy_delay > 1:  # the actor's metrics between its updates: those of its last update
            names = [
                "train/actor_loss",
                "train/entropy",
                *(["train/alpha_loss"] if c.learn_alpha else []),
                *(["train/actor_grad_norm"] if c.max_grad_norm is not None else []),
            ]
            self.held = {k: tf.Variable(0.0, trainable=False, name=k.replace("/", "_")) for k in names}

    def call(self, compiled, args: tuple, step: int):
        """Run a compiled function of these updates; a NaN/inf loss or gradient (caught by `_apply` before its
        optimizer step: check_numerics in a graph, `failure` under XLA) becomes TrainingDivergedError naming
        it and the env `step`."""
        self.known_updates = None
        try:
            result = compiled(*args)
        except tf.errors.InvalidArgumentError as exc:
            message = next((line for line in str(exc).splitlines() if "keras_sac:" in line), None)
            if message is None:
                raise
            what = message.split("keras_sac:")[1].split(":")[0].strip()
            raise TrainingDivergedError(f"training diverged at step {step}: {what} (NaN or inf)") from None
        failure = 0 if self.failure is None else int(self.failure.numpy())
        if failure:  # XLA's record of a non-finite update
            raise TrainingDivergedError(f"training diverged at step {step}: {FAILURES[failure - 1]} (NaN or inf)")
        return result

    def call_phase(self, program: Callable[[str], Any], args: tuple, step: int) -> tuple[Any, int | None]:
        """Run a training phase by `call`: the compiled `program(plan)` of this phase's `plan`. Returns (its
        result, n_updates after it; None where neither the plan nor resets read the count)."""
        before = 0
        if self.counted:
            before = int(self.n_updates.numpy()) if self.known_updates is None else self.known_updates
        result = self.call(program(self.plan(before)), args, step)
        if self.counted:
            self.known_updates = before + self.config.gradient_steps
        return result, self.known_updates

    def policy(self, obs, training=False) -> TanhGaussian:
        """pi(.|obs); with gSDE, samples share one noise matrix per seed (one per update, as SB3's reset_noise)."""
        if self.config.use_sde:
            mean, log_std, features = self.actor.with_features(obs, training=training)
            return TanhGSDE(mean, log_std, features, tf.exp(self.actor.sde_log_std))
        return TanhGaussian(*self.actor(obs, training=training))

    def step(self, batch: Batch, actor: bool | None = None) -> dict:
        """Shapes: obs/next_obs (batch, obs_dim), actions (batch, action_dim) in [-1, 1], rewards, terminated and
        discounts (batch,). Returns scalar metrics keyed `train/...`.

        With policy_delay > 1, `actor` says whether this update steps the actor and temperature (True), or only
        the critics, reporting the actor's held metrics (False); None decides in the graph, by a tf.cond on the
        update counter. With policy_delay 1 every update steps the actor."""
        c = self.config
        alpha = tf.exp(self.log_alpha)  # this step's temperature, held fixed in all three losses
        seeds = dict(zip(self.seed_names, tf.unstack(self.rng.make_seeds(len(self.seed_names)), axis=1)))
        if c.use_sde:  # one noise matrix for the whole update: next actions and the actor's actions alike
            seeds["next"] = seeds["actor"] = seeds["noise"]
        if self.dropout:  # one dropout mask each for the online critics, the bootstrap and the actor's critics
            seeds.update(
                zip(
                    ("drop_online", "drop_target", "drop_actor"),
                    tf.unstack(tf.random.experimental.stateless_split(seeds["dropout"], 3)),
                )
            )
        if (
            self.augment
        ):  # DrQ (Kostrikov et al. 2020): one random shift of obs for critic and actor, another of next_obs
            obs_seed, next_seed = tf.unstack(tf.random.experimental.stateless_split(seeds["augment"], 2))
            batch = batch._replace(
                obs=augment(batch.obs, self.obs_spec, c.augmentation_pad, obs_seed),
                next_obs=augment(batch.next_obs, self.obs_spec, c.augmentation_pad, next_seed),
            )
        info = self.update_critics(batch, alpha, seeds)
        if c.policy_delay == 1:
            info.update(self.update_actor_and_alpha(batch.obs, alpha, seeds))
        elif actor is None:  # TD3's delayed policy update: actor and temperature on every policy_delay-th one
            info.update(
                tf.cond(
                    self.n_updates % c.policy_delay == 0,
                    lambda: self._update_and_hold(batch.obs, alpha, seeds),
                    self._held_metrics,
                )
            )
        else:
            info.update(self._update_and_hold(batch.obs, alpha, seeds) if actor else self._held_metrics())
        self.n_updates.assign_add(1)
        self.update_targets()
        return {**info, "train/alpha": alpha}

    def plan(self, n_updates: int) -> str:
        """Which training phase runs next, from the update count before it (decided in Python before each call,
        so each pattern of actor updates is its own compiled program, without a tf.cond per update):

        - "every": policy_delay 1, every update steps the actor;
        - "actor" / "critic": one update per phase, with or without the actor's step;
        - "groups": gradient_steps a multiple of policy_delay, the phase starting a delay period (as every
          phase of `learn` does unless train_step ran between): each period's first update steps the actor, the
          other policy_delay - 1 not;
        - "cond": any other pattern: a tf.cond per update tests the counter.
        """
        delay, steps = self.config.policy_delay, self.config.gradient_steps
        if delay == 1:
            return "every"
        if steps == 1:
            return "critic" if n_updates % delay else "actor"
        return "groups" if steps % delay == 0 and n_updates % delay == 0 else "cond"

    def phase(self, minibatches, plan: str = "cond") -> dict:
        """`gradient_steps` updates in a graph loop, one per leading row of `minibatches` (each field
        (gradient_steps, batch, ...)), stepping the actor as `plan` says (see `plan`); returns their mean
        metrics, summed in update order whatever the plan. Under XLA the loop stops after an update that was not
        finite (`failure`); the agent raises after the call."""
        n, delay = self.config.gradient_steps, self.config.policy_delay
        first = {"critic": False, "cond": None}.get(plan, True)
        metrics = self.step(tf.nest.map_structure(lambda x: x[0], minibatches), first)
        if n == 1:
            return metrics
        if plan != "groups":
            metrics = self._updates(minibatches, 1, n, metrics, None if plan == "cond" else True)
            return tf.nest.map_structure(lambda total: total / n, metrics)
        # period 0's critic-only updates, then each further period: its actor update and its critic-only ones
        metrics = self._updates(minibatches, 1, delay, metrics, False)
        if n > delay:

            def period(p, total):
                start = p * delay
                total = tf.nest.map_structure(
                    tf.add, total, self.step(tf.nest.map_structure(lambda x: x[start], minibatches), True)
                )
                return p + 1, self._updates(minibatches, start + 1, start + delay, total, False)

            _, metrics = tf.while_loop(self._going(n // delay), period, (tf.constant(1), metrics))
        return tf.nest.map_structure(lambda total: total / n, metrics)

    def _going(self, stop):
        """A while_loop's condition: index < stop, and under XLA no non-finite update so far."""
        failure = self.failure
        return lambda i, _: i < stop if failure is None else tf.logical_and(i < stop, failure == 0)

    def _updates(self, minibatches, start, stop, total, actor: bool | None):
        """`total` plus the metrics of updates start .. stop - 1 (each `step(..., actor)`), in a graph loop."""

        def update(i, total):
            step = self.step(tf.nest.map_structure(lambda x: x[i], minibatches), actor)
            return i + 1, tf.nest.map_structure(tf.add, total, step)

        start = tf.constant(start) if isinstance(start, int) else start
        return tf.while_loop(self._going(stop), update, (start, total))[1]

    # ------------------------------------------------------------------ critics
    def update_critics(self, b: Batch, alpha, seeds) -> dict:
        """Regress every Q_i(s, a) onto the soft TD target (eq. 5)."""
        c = self.config
        next_actions, next_log_prob = self.policy(b.next_obs).sample_and_log_prob(seeds["next"])
        target_alpha = alpha if c.entropy_backup else 0.0
        if c.critic_batch_renorm:
            # CrossQ (Bhatt et al. 2024, eq. 6): no target networks; (s, a) and (s', a') pass through the
            # batch-renormalised critics as one batch, so both halves are normalised with the same statistics.
            with tf.GradientTape() as tape:
                joint_obs = tf.nest.map_structure(lambda x, y: tf.concat([x, y], 0), b.obs, b.next_obs)
                q_joint = self.critics(
                    joint_obs, tf.concat([b.actions, next_actions], 0), training=True, seed=seeds.get("drop_online")
                )
                q_values, next_q = tf.split(q_joint, 2, axis=1)
                target = self._target(b, tf.stop_gradient(next_q), next_log_prob, target_alpha, seeds)
                loss, info = self.critic_loss(q_values, *target)
        else:
            bootstrap = self.target_critics if self.target_critics is not None else self.critics
            next_q = bootstrap(b.next_obs, next_actions, seed=seeds.get("drop_target"))
            target = self._target(b, next_q, next_log_prob, target_alpha, seeds)
            with tf.GradientTape() as tape:
                loss, info = self.critic_loss(self.critics(b.obs, b.actions, seed=seeds.get("drop_online")), *target)
        info.update(self._apply(self.critic_step, tape, loss, "critic loss"))
        return info

    def _target(self, b: Batch, next_q_values, next_log_prob, alpha, seeds) -> tuple:
        """The TD target, as the critic loss's arguments after the critics' values: (target (batch,),) for
        scalar critics; for quantile ones (atoms (batch, K), their weights), every atom shifted by the same
        reward, discount and entropy bonus (Kuznetsov et al. 2020, eq. 11)."""
        if self.quantile:
            atoms, weights = self.backup(next_q_values)
            shifted = losses.soft_td_target(
                b.rewards[:, None], b.terminated[:, None], atoms, next_log_prob[:, None], alpha, b.discounts[:, None]
            )
            return shifted, weights
        next_q = self.backup(next_q_values, seed=seeds.get("redq"))
        return (losses.soft_td_target(b.rewards, b.terminated, next_q, next_log_prob, alpha, b.discounts),)

    # ------------------------------------------------------------------ actor and temperature
    def update_actor_and_alpha(self, obs, alpha, seeds) -> dict:
        """Actor on the freshly updated critics (as in SB3), then log-alpha toward the target entropy."""
        c = self.config
        k = c.num_actor_samples
        # row j * batch + i: sample j of state i
        obs_k = tf.nest.map_structure(lambda x: tf.tile(x, [k] + [1] * (x.shape.rank - 1)), obs) if k > 1 else obs
        drop = seeds.get("drop_actor")  # DroQ scores the actor's actions with dropout on too (as SBX does)
        with tf.GradientTape() as tape:
            pi = self.policy(obs_k, training=c.actor_batch_renorm)
            if c.actor_gradient == "reparametrize":
                actions, log_prob = pi.sample_and_log_prob(seeds["actor"])
                q = self.actor_q(self.critics(obs_k, actions, seed=drop))
                loss, info = losses.actor_loss(log_prob, q, alpha)
            else:
                actions, log_prob = pi.sample_detached_and_log_prob(seeds["actor"])
                q = tf.stop_gradient(self.actor_q(self.critics(obs_k, actions, seed=drop)))
                loss, info = losses.reinforce_actor_loss(log_prob, q, alpha, k)
        info.update(self._apply(self.actor_step, tape, loss, "actor loss"))
        if c.learn_alpha:
            with tf.GradientTape() as tape:
                loss, alpha_info = losses.alpha_loss(self.log_alpha, log_prob, self.target_entropy)
            self._apply(self.alpha_step, tape, loss, "alpha loss", clip=False)
            info.update(alpha_info)
        return info

    def _update_and_hold(self, obs, alpha, seeds) -> dict:
        info = self.update_actor_and_alpha(obs, alpha, seeds)
        for name, value in info.items():
            self.held[name].assign(value)
        return info

    def _held_metrics(self) -> dict:
        return {k: v.read_value() for k, v in self.held.items()}

    # ------------------------------------------------------------------ targets
    def update_targets(self) -> None:
        """Polyak every target_update_interval steps, a hard copy every target_update_period, or nothing."""
        c = self.config
        if c.target_update == "none":
            return
        online, target = self.critics.own_variables, self.target_critics.own_variables
        # XLA: no target step after a non-finite update, as check_numerics stops one in graph mode (where no
        # test is needed and no op is added). The compiled update runs without autograph: tensor conditions are
        # written as tf.cond.
        if self.failure is None:
            self._update_targets(online, target)
        else:
            when(self.failure == 0, lambda: self._update_targets(online, target))

    def _update_targets(self, online, target) -> None:
        c = self.config
        if c.target_update == "hard":
            when(self.n_updates % c.target_update_period == 0, lambda: polyak_update(online, target, 1.0))
        elif c.target_update_interval == 1:  # the default: no tf.cond (its branches cost ~35 ops)
            polyak_update(online, target, c.tau)
        else:
            when(self.n_updates % c.target_update_interval == 0, lambda: polyak_update(online, target, c.tau))

    # ------------------------------------------------------------------ optimizer steps
    def _apply(self, step: AdamStep, tape, loss, name: str, clip: bool = True) -> dict:
        """One optimizer step, unless the loss or a gradient is NaN/inf: then training stops before it.

        A finite loss can still have a non-finite gradient (e.g. through sqrt or log at 0), which Adam would
        spread into every weight it touches. In graph mode check_numerics raises, naming it (the agent turns
        that into TrainingDivergedError); under XLA, where check_numerics is compiled away, `failure` records
        it and the step is skipped (see __init__).

        With max_grad_norm (and `clip`), the gradients are scaled down to that global norm first, and the
        norm before clipping is returned as `train/<network>_grad_norm`; otherwise {} (no op is added)."""
        max_norm = self.config.max_grad_norm if clip else None
        if self.failure is None:
            with tf.control_dependencies([tf.debugging.check_numerics(loss, f"keras_sac: {name} is not finite")]):
                grads = tape.gradient(loss, step.variables)
            # One check over all gradients, not one per tensor: the sum of their entries is NaN or inf whenever
            # any entry is (a sum of finite entries overflows only past float32's 3.4e38, where a run has
            # diverged by any measure); a reduction is vectorised, check_numerics walks every entry.
            with tf.name_scope("finite_check"):
                total = tf.add_n([tf.reduce_sum(g) for g in grads if g is not None])
                finite = tf.debugging.check_numerics(total, f"keras_sac: {name} gradient is not finite")
            grads, info = self._clip(grads, max_norm, name)
            with tf.control_dependencies([finite]):
                step.apply(grads)
            return info
        grads = tape.gradient(loss, step.variables)
        loss_code, grad_code = (
            FAILURES.index(f"{name} {what}") + 1 for what in ("is not finite", "gradient is not finite")
        )
        finite_grads = tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(g)) for g in grads]))
        code = tf.where(tf.reduce_all(tf.math.is_finite(loss)), tf.where(finite_grads, 0, grad_code), loss_code)
        self.failure.assign(tf.where(self.failure > 0, self.failure, code))
        grads, info = self._clip(grads, max_norm, name)
        when(self.failure == 0, lambda: step.apply(grads))
        return info

    @staticmethod
    def _clip(grads: list, max_norm: float | None, name: str) -> tuple[list, dict]:
        """(grads scaled to global L2 norm <= max_norm, {"train/<net>_grad_norm": the norm before}), or the
        grads unchanged and {} when max_norm is None."""
        if max_norm is None:
            return grads, {}
        clipped, norm = tf.clip_by_global_norm(grads, max_norm)
        return clipped, {f"train/{name.split()[0]}_grad_norm": norm}


PLANS = ("every", "actor", "critic", "groups", "cond")  # SACUpdate.plan's answers


FAILURES = [
    f"{loss} {what}"
    for loss in ("critic loss", "actor loss", "alpha loss")
    for what in ("is not finite", "gradient is not finite")
]
