"""Keras' Adam and AdamW as TensorFlow's fused Adam kernel, one op per variable (issue #29: fewer ops per update).

Keras 3's `Adam.update_step` runs once per variable and recomputes, for each, the step count's cast, both beta
powers, the bias-corrected rate and the learning rate's cast, then updates the two moments and the weight in about
fifteen element-wise ops: 441 of the 1,184 ops the default agent's update executes. `AdamStep` computes the
per-step scalars once per optimizer and hands each variable to `ResourceApplyAdam`, TensorFlow's own kernel for
Adam (the one tf.keras 2 used), which does the same arithmetic in the same order in one pass:

    m += (g - m) * (1 - beta_1);  v += (g^2 - v) * (1 - beta_2)
    w -= (m * lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)) / (sqrt(v) + epsilon)

The one difference from Keras is where `1 - beta` is rounded: the kernel takes beta as float32 and subtracts in
float32 (1 - 0.999f = 0.00099998713), Keras subtracts in Python's double and rounds the result (0.001f). Given the
betas rounded to float32, Keras' steps and these are bit for bit the same (tests/test_adam.py); with 0.999 itself,
the second moment's rate is 1.3e-5 of itself smaller (tf.keras 2's Adam, which used this kernel, rounded the same
way). Steps are deterministic, so a `--deterministic` run still resumes bit for bit.

It updates the optimizer's own slot variables (`_momentums`, `_velocities`, `iterations`): checkpoints, network
resets and `optimizer.variables` see the same state as before, under the same names.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class AdamStep:
    """`apply(grads)` = `optimizer.apply(grads, variables)` for a built Keras Adam or AdamW, one op per variable.

    Refuses what it does not reproduce (AMSGrad, gradient clipping, EMA, accumulation, loss scaling): the agent
    builds none of them, and a silent difference from Keras would be a different optimizer.
    """

    def __init__(self, optimizer: keras.optimizers.Optimizer, variables):
        unsupported = {
            "amsgrad": getattr(optimizer, "amsgrad", False),
            "clipnorm": optimizer.clipnorm,
            "clipvalue": optimizer.clipvalue,
            "global_clipnorm": optimizer.global_clipnorm,
            "use_ema": optimizer.use_ema,
            "gradient_accumulation_steps": optimizer.gradient_accumulation_steps,
            "loss_scale_factor": optimizer.loss_scale_factor,
        }
        if not isinstance(optimizer, keras.optimizers.Adam) or any(unsupported.values()):
            used = [k for k, v in unsupported.items() if v]
            raise ValueError(f"AdamStep reproduces plain Keras Adam/AdamW only; got {type(optimizer).__name__} {used}")
        self.optimizer = optimizer
        self.variables = list(variables)
        slots = [optimizer._get_variable_index(v) for v in self.variables]
        # The tf.Variables under the Keras ones (the optimizer's slots and the weights): their assign_add/assign_sub
        # are single ops (a Keras variable's are a read, an add and an assign), as Keras' TensorFlow optimizer uses.
        self.momentums = [_tf_variable(optimizer._momentums[i]) for i in slots]
        self.velocities = [_tf_variable(optimizer._velocities[i]) for i in slots]
        self._weights = [_tf_variable(v) for v in self.variables]
        self._iterations = _tf_variable(optimizer.iterations)
        decay = optimizer.weight_decay  # AdamW (Keras' base optimizer decays before the Adam step)
        self.decayed = [decay is not None and optimizer._use_weight_decay(v) for v in self.variables]

    def apply(self, grads) -> None:
        """One step on `grads` (one per variable, in the order given at construction); a None gradient leaves
        its variable alone, as Keras does."""
        with tf.name_scope(f"{self.optimizer.name}_step"):  # (op_census.py attributes ops by scope)
            opt = self.optimizer
            dtype = tf.float32
            lr = tf.cast(opt.learning_rate, dtype)  # a schedule's value at this step (Keras reads it at `iterations`)
            step = tf.cast(opt.iterations + 1, dtype)
            beta_1, beta_2, epsilon = (tf.constant(x, dtype) for x in (opt.beta_1, opt.beta_2, opt.epsilon))
            beta_1_power, beta_2_power = tf.pow(beta_1, step), tf.pow(beta_2, step)
            slots = zip(grads, self._weights, self.momentums, self.velocities, self.decayed, strict=True)
            pairs = [(g, w, m, v, d) for g, w, m, v, d in slots if g is not None]
            if any(d for *_, d in pairs):
                wd = tf.cast(opt.weight_decay, dtype)
                for _, w, _, _, d in pairs:
                    if d:  # Keras' w.assign(w - w * wd * lr), one read and one op fewer (bit for bit the same)
                        w.assign_sub(w * wd * lr)
            for g, w, m, v, _ in pairs:
                tf.raw_ops.ResourceApplyAdam(
                    var=w.handle,
                    m=m.handle,
                    v=v.handle,
                    beta1_power=beta_1_power,
                    beta2_power=beta_2_power,
                    lr=lr,
                    beta1=beta_1,
                    beta2=beta_2,
                    epsilon=epsilon,
                    grad=tf.cast(g, w.dtype),
                )
            self._iterations.assign_add(1)


def _tf_variable(variable) -> tf.Variable:
    return variable.value if isinstance(variable, keras.Variable) else variable
