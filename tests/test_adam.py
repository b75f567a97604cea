"""core/adam.py's AdamStep against Keras' own optimizer: bit for bit the same weights and slots after each step, given
the betas as float32 (as TensorFlow's fused kernel takes them)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sac.core.adam import AdamStep
from keras_sac.core.schedules import build_schedule

SHAPES = [(3, 4), (4,), (1,), (64, 256)]  # the last one large enough for the kernel's vectorised, sharded loop


def make_variables():
    rng = np.random.default_rng(0)
    return [tf.Variable(rng.normal(size=shape).astype(np.float32), name=f"w{i}") for i, shape in enumerate(SHAPES)]


def gradients(step: int):
    rng = np.random.default_rng(100 + step)
    # Mixed scales, so the moments, the bias correction and epsilon all matter.
    return [tf.constant(rng.normal(size=shape).astype(np.float32) * 10.0 ** rng.integers(-4, 2)) for shape in SHAPES]


OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(3e-4),
    "adam beta1 0.5": lambda: keras.optimizers.Adam(1e-3, beta_1=0.5),
    "adamw": lambda: keras.optimizers.AdamW(1e-3, weight_decay=0.1),
    "scheduled rate with warm-up": lambda: keras.optimizers.Adam(
        build_schedule({"schedule": "cosine", "steps": 7, "warmup_steps": 3}, 1e-3)
    ),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_adam_step_matches_keras_apply_bit_for_bit(name):
    keras_vars, our_vars = make_variables(), make_variables()
    keras_opt, our_opt = OPTIMIZERS[name](), OPTIMIZERS[name]()
    # The fused kernel computes 1 - beta in float32, from beta rounded to float32 (1 - 0.999f = 0.00099998713);
    # Keras computes it in Python's double and rounds after (0.001f). Give Keras the betas the kernel sees.
    keras_opt.beta_1, keras_opt.beta_2 = float(np.float32(keras_opt.beta_1)), float(np.float32(keras_opt.beta_2))
    keras_opt.build(keras_vars)
    our_opt.build(our_vars)
    step = AdamStep(our_opt, our_vars)
    keras_apply = tf.function(lambda grads: keras_opt.apply(grads, keras_vars))
    our_apply = tf.function(step.apply)
    for i in range(12):
        grads = gradients(i)
        keras_apply(grads)
        our_apply(grads)
        # the weights (where the bias correction, the rate and weight decay act) and every slot (the moments)
        for ours, theirs in zip(our_vars + our_opt.variables, keras_vars + keras_opt.variables, strict=True):
            assert np.all(np.isfinite(ours.numpy())), f"{ours.name} after step {i}"  # NaN == NaN to assert_array_equal
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=f"{ours.name} after step {i}")
    assert int(our_opt.iterations.numpy()) == 12
    # The weights moved (a step that did nothing would also "match" an optimizer that did nothing).
    assert not np.array_equal(our_vars[0].numpy(), make_variables()[0].numpy())


def test_a_none_gradient_leaves_its_variable_and_slots_alone_as_keras_does():
    variables = make_variables()
    opt = keras.optimizers.Adam(1e-2)
    opt.build(variables)
    step = AdamStep(opt, variables)
    grads = gradients(0)
    step.apply([grads[0], None, *grads[2:]])
    assert np.any(step.momentums[0].numpy()) and np.any(step.velocities[2].numpy())
    assert not np.any(step.momentums[1].numpy()) and not np.any(step.velocities[1].numpy())
    assert not np.array_equal(variables[0].numpy(), make_variables()[0].numpy())
    np.testing.assert_array_equal(variables[1].numpy(), make_variables()[1].numpy())


def test_a_gradient_list_of_another_length_is_refused_not_zipped_short():
    # one gradient too few would otherwise leave the last variable untrained without a word
    variables = make_variables()
    opt = keras.optimizers.Adam(1e-2)
    opt.build(variables)
    step = AdamStep(opt, variables)
    with pytest.raises(ValueError, match="zip"):
        step.apply(gradients(0)[:-1])
    with pytest.raises(ValueError, match="zip"):
        step.apply([*gradients(0), gradients(1)[0]])


REFUSED = {  # each setting AdamStep does not reproduce, and what its refusal must name
    "amsgrad": (keras.optimizers.Adam, dict(amsgrad=True)),
    "clipnorm": (keras.optimizers.Adam, dict(clipnorm=1.0)),
    "clipvalue": (keras.optimizers.AdamW, dict(clipvalue=1.0)),
    "global_clipnorm": (keras.optimizers.Adam, dict(global_clipnorm=1.0)),
    "use_ema": (keras.optimizers.Adam, dict(use_ema=True)),
    "gradient_accumulation_steps": (keras.optimizers.Adam, dict(gradient_accumulation_steps=2)),
    "loss_scale_factor": (keras.optimizers.Adam, dict(loss_scale_factor=8.0)),
    "SGD": (keras.optimizers.SGD, {}),
}


@pytest.mark.parametrize("named", list(REFUSED))
def test_what_it_does_not_reproduce_is_refused_by_name(named):
    cls, kwargs = REFUSED[named]
    optimizer = cls(**kwargs)
    variables = make_variables()
    optimizer.build(variables)
    with pytest.raises(ValueError, match="plain Keras Adam/AdamW only") as refusal:
        AdamStep(optimizer, variables)
    # the refusal names the class and exactly the offending setting (mutmut: renamed keys survived without this)
    shown = f"got {cls.__name__} {[named] if kwargs else []}"
    assert str(refusal.value).endswith(shown), (str(refusal.value), shown)
