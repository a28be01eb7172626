"""Tests for lossless learning-rate (de)serialization."""

import json

import numpy as np
import pytest
import tf_keras

from official.modeling.optimization import lr_schedule
from official_ext.modeling.optimization import lr_serialization


def test_plain_values_pass_through():
  assert lr_serialization.serialize_learning_rate(0.1) == 0.1
  assert lr_serialization.deserialize_learning_rate(0.1) == 0.1


def test_nested_warmup_with_offset_round_trips_through_json():
  schedule = lr_schedule.LinearWarmup(
      lr_schedule.PolynomialDecayWithOffset(
          offset=3, initial_learning_rate=1.0, decay_steps=10,
          end_learning_rate=0.1, power=2.0),
      warmup_steps=3, warmup_learning_rate=0.0)
  serialized = json.loads(json.dumps(
      lr_serialization.serialize_learning_rate(schedule)))
  assert serialized['class_name'] == 'LinearWarmup'
  inner = serialized['config']['after_warmup_lr_sched']
  assert inner['class_name'] == 'PolynomialDecayWithOffset'
  assert inner['config']['offset'] == 3
  restored = lr_serialization.deserialize_learning_rate(serialized)
  for step in range(0, 16, 3):
    np.testing.assert_allclose(float(restored(step)), float(schedule(step)),
                               rtol=1e-6)


def test_keras_builtin_schedule_round_trips():
  schedule = tf_keras.optimizers.schedules.ExponentialDecay(0.5, 4, 0.5)
  restored = lr_serialization.deserialize_learning_rate(
      lr_serialization.serialize_learning_rate(schedule))
  assert isinstance(restored, tf_keras.optimizers.schedules.ExponentialDecay)
  assert float(restored(8)) == pytest.approx(0.125)


def test_unknown_class_names_the_class():
  with pytest.raises(ValueError, match='NoSuchSchedule'):
    lr_serialization.deserialize_learning_rate(
        {'class_name': 'NoSuchSchedule', 'config': {}})
