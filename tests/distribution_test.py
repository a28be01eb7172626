"""LARS under tf.distribute: MirroredStrategy equals one device; loss scaling.

The replicas are the logical CPU devices that tests/conftest.py sets up. The
one-device reference is itself checked against Model Garden's LARS, an
independent implementation.
"""
import functools
from typing import Any, Dict

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.core import base_task
from official.core import config_definitions
from official.modeling.optimization import lars as mg_lars
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import optimizer_factory
from official_ext.modeling.optimization.configs import optimization_config

GLOBAL_BATCH = 8
STEPS = 3
# Anchored patterns see the single-device names (`dense/bias:0`) on every
# replica, not the replicas' `dense/bias/replica_1:0`.
EXCLUSIONS = dict(
    exclude_from_weight_decay=[r'^dense/bias:0$', r'^conv/bias:0$'],
    exclude_from_layer_adaptation=[r'/bias:0$'])


def _mirrored(num_devices):
  """MirroredStrategy over the first `num_devices` logical CPUs.

  Cross-device reduction goes through one device: TensorFlow's collective
  all-reduce, MirroredStrategy's default on CPUs, keys its groups per process,
  so strategies of different sizes in one test process would collide.
  """
  strategy = tf.distribute.MirroredStrategy(
      [f'/cpu:{i}' for i in range(num_devices)],
      cross_device_ops=tf.distribute.ReductionToOneDevice())
  assert strategy.num_replicas_in_sync == num_devices
  return strategy


def _data():
  rng = np.random.RandomState(3)
  x = rng.randn(GLOBAL_BATCH, 6, 6, 2).astype(np.float32)
  y = rng.randint(0, 4, size=GLOBAL_BATCH)
  return x, y


def _initial_weights():
  tf_keras.utils.set_random_seed(5)
  return _model().get_weights()


def _model():
  return tf_keras.Sequential([
      tf_keras.Input((6, 6, 2)),
      tf_keras.layers.Conv2D(3, 3, activation='tanh', name='conv'),
      tf_keras.layers.Flatten(),
      tf_keras.layers.Dense(4, name='dense'),
  ])


def _train(strategy, make_optimizer, steps=STEPS):
  """Trains from fixed weights on the global batch; returns each replica's."""
  x, y = _data()
  with strategy.scope():
    model = _model()
    model.set_weights(_initial_weights())
    optimizer = make_optimizer()
  dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
  batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

  @tf.function
  def step(inputs, labels):

    def replica_step(inputs, labels):
      with tf.GradientTape() as tape:
        per_example = tf_keras.losses.sparse_categorical_crossentropy(
            labels, model(inputs), from_logits=True)
        loss = tf.reduce_sum(per_example) / GLOBAL_BATCH
      grads = tape.gradient(loss, model.trainable_variables)
      optimizer.apply_gradients(zip(grads, model.trainable_variables))

    strategy.run(replica_step, args=(inputs, labels))

  for _ in range(steps):
    step(*batch)
  return [[c.numpy() for c in strategy.experimental_local_results(v)]
          for v in model.trainable_variables]


def _mirrored_test_kwargs(classic_momentum: bool) -> Dict[str, Any]:
  return dict(learning_rate=0.5, momentum=0.9, weight_decay_rate=0.01,
              eeta=0.01, nesterov=True, classic_momentum=classic_momentum,
              **EXCLUSIONS)


@functools.lru_cache(maxsize=None)
def _one_device_runs(classic_momentum: bool):
  """official_ext's and Model Garden's LARS on one device, for every count."""
  kwargs = _mirrored_test_kwargs(classic_momentum)
  return (_train(tf.distribute.OneDeviceStrategy('/cpu:0'),
                 lambda: lars.LARS(**kwargs)),
          _train(tf.distribute.OneDeviceStrategy('/cpu:0'),
                 lambda: mg_lars.LARS(**kwargs)))


@pytest.mark.parametrize('classic_momentum', [True, False])
@pytest.mark.parametrize('num_devices', [2, 4])
def test_mirrored_lars_equals_one_device(num_devices, classic_momentum):
  kwargs = _mirrored_test_kwargs(classic_momentum)
  one_device, model_garden = _one_device_runs(classic_momentum)
  mirrored = _train(_mirrored(num_devices), lambda: lars.LARS(**kwargs))

  initial = _initial_weights()
  for reference, mg, replicas, start in zip(one_device, model_garden,
                                            mirrored, initial):
    np.testing.assert_allclose(reference[0], mg[0], rtol=1e-6, atol=1e-7)
    assert not np.allclose(reference[0], start)  # The steps did something.
    assert len(replicas) == num_devices
    for replica in replicas:
      np.testing.assert_array_equal(replica, replicas[0])
      np.testing.assert_allclose(replica, reference[0], rtol=1e-5, atol=1e-5)


def test_the_exclusions_change_the_result():
  # Otherwise the comparisons above could not tell if replicas ignored them.
  one_device = tf.distribute.OneDeviceStrategy('/cpu:0')
  kwargs = dict(learning_rate=0.5, weight_decay_rate=0.01, eeta=0.01,
                nesterov=True)
  excluded = _train(one_device, lambda: lars.LARS(**kwargs, **EXCLUSIONS))
  included = _train(one_device, lambda: lars.LARS(**kwargs))
  for with_exclusions, without in zip(excluded, included):
    # Well above the 1e-5 the replicas are held to.
    assert np.max(np.abs(with_exclusions[0] - without[0])) > 1e-4


def _loss_scaled_lars():
  """LossScaleOptimizer(LARS), built as the launcher builds it for float16."""
  config = optimization_config.OptimizationConfig({
      'optimizer': {'type': 'lars', 'lars': {'weight_decay_rate': 1e-3,
                                             **EXCLUSIONS}},
      'learning_rate': {'type': 'constant',
                        'constant': {'learning_rate': 0.5}},
  })
  return base_task.Task.create_optimizer(
      optimizer_factory.route_lars(config), config_definitions.RuntimeConfig(
          mixed_precision_dtype='float16', loss_scale='dynamic'))


def test_loss_scaling_skips_a_non_finite_step_on_every_replica():
  strategy = _mirrored(2)
  with strategy.scope():
    var = tf.Variable(np.linspace(-1.0, 1.0, 6, dtype=np.float32),
                      name='dense/kernel')
    optimizer = _loss_scaled_lars()
  assert isinstance(optimizer.inner_optimizer, lars.LARS)

  @tf.function
  def step(poison):

    def replica_step():
      replica = tf.distribute.get_replica_context().replica_id_in_sync_group
      with tf.GradientTape() as tape:
        loss = optimizer.get_scaled_loss(tf.reduce_sum(var * var))
      grad = optimizer.get_unscaled_gradients(tape.gradient(loss, [var]))[0]
      # Only replica 1 sees inf; the all-reduced gradient is inf for both.
      grad = tf.where(poison & tf.equal(replica, 1), np.inf, grad)
      optimizer.apply_gradients([(grad, var)])

    strategy.run(replica_step)

  step(tf.constant(False))
  weights = [v.numpy() for v in var.values]
  slots = [v.numpy() for v in optimizer.inner_optimizer.get_slot(
      var, 'momentum').values]
  scale = float(optimizer.loss_scale)
  iterations = int(optimizer.iterations.numpy())

  step(tf.constant(True))
  for replica, before in zip(var.values, weights):
    np.testing.assert_array_equal(replica.numpy(), before)
  for slot, before in zip(
      optimizer.inner_optimizer.get_slot(var, 'momentum').values, slots):
    np.testing.assert_array_equal(slot.numpy(), before)
  assert float(optimizer.loss_scale) == scale / 2
  # Keras still counts the skipped step, keeping the learning rate schedule
  # in step with Model Garden's global step.
  assert int(optimizer.iterations.numpy()) == iterations + 1

  step(tf.constant(False))
  assert np.all(np.isfinite(var.values[0].numpy()))
  assert not np.array_equal(var.values[0].numpy(), weights[0])
