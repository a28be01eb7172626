"""Tests for internals: each private internal, on the versions it was checked
against, and the error when one is gone."""
from importlib import metadata

import keras
import pytest
import tensorflow as tf
import tf_keras

from official.modeling.optimization import lr_schedule

from official_ext import internals


@pytest.mark.parametrize('package', sorted(internals.CHECKED_AGAINST))
def test_installed_versions_are_the_checked_ones(package):
  installed = metadata.version(package)
  checked = internals.CHECKED_AGAINST[package]
  assert installed == checked or installed.startswith(checked + '.'), (
      f'{package} {installed} is installed; official_ext.internals was '
      f'checked against {checked}.*: re-check each internal there, then '
      f'update CHECKED_AGAINST.')


def test_optimizer_variable_key_is_the_same_for_variable_and_handle():
  variable = tf.Variable([1.0, 2.0], name='v')
  key = internals.optimizer_variable_key(variable)
  assert key == internals.optimizer_variable_key(variable.handle)
  other = tf.Variable([1.0], name='v')
  assert key != internals.optimizer_variable_key(other)


def test_variable_shared_name_has_no_device_suffix():
  strategy = tf.distribute.MirroredStrategy(['/cpu:0'])
  with strategy.scope():
    variable = tf.Variable(1.0, name='dense/kernel')
  assert variable.name == 'dense/kernel:0'
  assert internals.variable_shared_name(variable) == 'dense/kernel'


def test_in_xla_context_follows_jit_compile():
  seen = []

  def probe():
    seen.append(internals.in_xla_context())
    return tf.constant(0)

  tf.function(probe, jit_compile=True)()
  tf.function(probe)()
  assert seen == [True, False]


def test_warmup_wrapped_schedule_and_offset():
  after = lr_schedule.CosineDecayWithOffset(
      offset=5, initial_learning_rate=1.0, decay_steps=10)
  warmup = lr_schedule.LinearWarmup(after, warmup_steps=5,
                                    warmup_learning_rate=0.0)
  assert internals.warmup_wrapped_schedule(warmup) is after
  assert internals.warmup_wrapped_schedule(after) is None
  assert internals.schedule_offset(after) == 5
  assert 'offset' not in after.get_config()  # why the internal is read
  assert internals.schedule_offset(warmup) is None
  assert internals.schedule_offset(
      tf_keras.optimizers.schedules.CosineDecay(1.0, 10)) is None


def test_keras_nested_layers_reaches_inner_layers():
  inner = keras.Sequential([keras.layers.Dense(2, name='deep')], name='inner')
  model = keras.Sequential([keras.Input((3,)), inner])
  names = [layer.name for layer in internals.keras_nested_layers(model)]
  assert 'deep' in names and 'inner' in names
  assert model.name not in names


def test_a_missing_internal_names_itself_and_the_checked_version():
  with pytest.raises(internals.InternalChangedError,
                     match=r"keras.Layer._flatten_layers.*keras 3\.15\.\*"):
    internals.keras_nested_layers(object())
  with pytest.raises(internals.InternalChangedError,
                     match=r'tf.Variable._shared_name.*tensorflow 2\.20'):
    internals.variable_shared_name(object())


def test_distributed_container_of_each_replica_component():
  strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
  with strategy.scope():
    variable = tf.Variable(1.0, name='dense/kernel')
  components = strategy.experimental_local_results(variable)
  assert components[1].name == 'dense/kernel/replica_1:0'
  for component in components:
    assert internals.distributed_container(component) is variable
  assert internals.distributed_container(tf.Variable(1.0)) is None


def test_create_optimizer_weights_makes_slots_and_iterations_eagerly():
  variable = tf.Variable([1.0, 2.0])
  optimizer = tf_keras.optimizers.legacy.SGD(momentum=0.9)
  internals.create_optimizer_weights(optimizer, [variable])
  assert optimizer.get_slot(variable, 'momentum').shape == (2,)
  assert int(optimizer.iterations) == 0
