"""core/schedules.py: each schedule's rate at given update counts against its closed form, worked by hand."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sac.core.schedules import LinearWarmup, build_schedule


def rates(schedule, steps):
    # int64, as Keras' optimizer.iterations is
    return [float(schedule(tf.constant(k, tf.int64))) for k in steps]


def test_a_constant_is_returned_as_a_float():
    assert build_schedule(3, 1e-3) == 3.0 and isinstance(build_schedule(3, 1e-3), float)


def test_linear_goes_from_start_to_end_over_steps_then_holds():
    schedule = build_schedule({"schedule": "linear", "end": 1e-4, "steps": 10}, 3e-4)  # start: the default rate
    expected = [3e-4 - 2e-5 * min(k, 10) for k in range(14)]
    np.testing.assert_allclose(rates(schedule, range(14)), expected, rtol=1e-6)


def test_cosine_follows_half_a_cosine_from_start_to_end():
    schedule = build_schedule({"schedule": "cosine", "start": 1e-3, "end": 1e-4, "steps": 8}, 3e-4)
    expected = [1e-4 + (1e-3 - 1e-4) * 0.5 * (1 + math.cos(math.pi * min(k, 8) / 8)) for k in range(11)]
    np.testing.assert_allclose(rates(schedule, range(11)), expected, rtol=1e-5)


def test_cosine_ends_at_zero_by_default():
    schedule = build_schedule({"schedule": "cosine", "steps": 4}, 1e-3)
    assert rates(schedule, [4, 9]) == pytest.approx([0.0, 0.0], abs=1e-12)


def test_exponential_multiplies_by_decay_rate_every_steps_updates():
    schedule = build_schedule({"schedule": "exponential", "steps": 5, "decay_rate": 0.5}, 1e-3)
    np.testing.assert_allclose(rates(schedule, [0, 5, 10, 15]), [1e-3, 5e-4, 2.5e-4, 1.25e-4], rtol=1e-6)


def test_warm_up_rises_linearly_to_start_then_runs_the_schedule_from_its_own_step_zero():
    schedule = build_schedule({"schedule": "linear", "start": 1e-3, "end": 1e-4, "steps": 10, "warmup_steps": 4}, 3e-4)
    assert isinstance(schedule, LinearWarmup)
    warm = [1e-3 * (k + 1) / 4 for k in range(4)]  # 2.5e-4, 5e-4, 7.5e-4, 1e-3: step 0 already moves the weights
    after = [1e-3 - 9e-5 * min(k, 10) for k in range(12)]  # the linear schedule at 0, 1, ... after the warm-up
    np.testing.assert_allclose(rates(schedule, range(16)), warm + after, rtol=1e-6)


def test_warm_up_survives_keras_serialisation():
    schedule = build_schedule({"schedule": "cosine", "start": 1e-3, "steps": 6, "warmup_steps": 2}, 3e-4)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(restored, LinearWarmup)
    np.testing.assert_allclose(rates(restored, range(10)), rates(schedule, range(10)), rtol=1e-7)
