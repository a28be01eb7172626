"""Tests for LARS telemetry: recorded values, placement, no effect on
training or checkpoints."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official_ext.modeling.optimization import lars
from tests.modeling.optimization import lars_testing


def test_telemetry_records_ratio_norms_and_local_rate():
  w0 = np.random.RandomState(30).randn(4, 3)
  g = np.random.RandomState(31).randn(4, 3)
  kernel = tf.Variable(w0, name='dense/kernel')
  bias = tf.Variable([1.0, -2.0, 2.0], dtype=tf.float64, name='dense/bias')
  opt = lars.LARS(learning_rate=0.3, weight_decay_rate=0.1, eeta=0.01,
                  exclude_from_weight_decay=['bias'], telemetry=True)
  assert opt.telemetry_scalars() == {}
  opt.apply_gradients([(tf.constant(g), kernel),
                       (tf.constant([0.0, 4.0, 3.0], tf.float64), bias)])
  ratio = 0.01 * np.linalg.norm(w0) / np.linalg.norm(g + 0.1 * w0)
  expected = {
      'lars/dense/kernel/trust_ratio': ratio,
      'lars/dense/kernel/weight_norm': np.linalg.norm(w0),
      'lars/dense/kernel/gradient_norm': np.linalg.norm(g),
      'lars/dense/kernel/learning_rate': 0.3 * ratio,
      'lars/dense/bias/trust_ratio': 1.0,
      'lars/dense/bias/weight_norm': 3.0,
      'lars/dense/bias/gradient_norm': 5.0,
      'lars/dense/bias/learning_rate': 0.3,
  }
  got = opt.telemetry_scalars()
  assert sorted(got) == sorted(expected)
  for tag, value in expected.items():
    assert got[tag] == pytest.approx(value, rel=1e-6), tag


def test_telemetry_changes_neither_the_update_nor_checkpoints(tmp_path):
  kwargs = dict(learning_rate=0.4, weight_decay_rate=1e-3,
                exclude_from_weight_decay=['batch_normalization'])
  model_on = lars_testing.parity_model()
  opt_on = lars.LARS(telemetry=True, **kwargs)
  lars_testing.train(opt_on, steps=3, model=model_on)
  model_off = lars_testing.train(lars.LARS(**kwargs), steps=3)
  lars_testing.assert_weights_close(model_on.get_weights(),
                                    model_off.get_weights(), rtol=0)
  assert len(opt_on.telemetry_scalars()) == 4 * len(
      model_on.trainable_variables)
  # Telemetry variables are not optimizer weights: checkpoints and
  # get_weights() are those of a run without telemetry.
  assert len(opt_on.get_weights()) == 1 + len(model_on.trainable_variables)
  path = tf.train.Checkpoint(model=model_on, optimizer=opt_on).save(
      str(tmp_path / 'ckpt'))
  model_b, opt_b = lars_testing.parity_model(), lars.LARS(**kwargs)
  tf.train.Checkpoint(model=model_b, optimizer=opt_b).restore(
      path).assert_existing_objects_matched()
  lars_testing.train(opt_on, steps=2, model=model_on)
  lars_testing.train(opt_b, steps=2, model=model_b)
  lars_testing.assert_weights_close(model_b.get_weights(),
                                    model_on.get_weights(), rtol=0)


def test_telemetry_under_mirrored_strategy_and_jit():
  x = np.random.RandomState(6).randn(8, 5).astype(np.float32)
  y = np.random.RandomState(7).randint(0, 3, size=8)
  strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
  with strategy.scope():
    model = lars_testing.dense_model()
    optimizer = lars.LARS(learning_rate=0.5, weight_decay_rate=1e-3,
                          telemetry=True)
  lars_testing.mirrored_step(strategy, optimizer, model, x, y)
  reference_model = lars_testing.dense_model()
  reference = lars.LARS(learning_rate=0.5, weight_decay_rate=1e-3,
                        telemetry=True)

  @tf.function(jit_compile=True)
  def step():
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf_keras.losses.sparse_categorical_crossentropy(
          y, reference_model(x), from_logits=True))
    grads = tape.gradient(loss, reference_model.trainable_variables)
    reference.apply_gradients(zip(grads, reference_model.trainable_variables))

  step()
  mirrored = optimizer.telemetry_scalars()
  single = reference.telemetry_scalars()
  assert sorted(mirrored) == sorted(single)
  assert 'lars/d1/kernel/trust_ratio' in mirrored
  for tag, value in single.items():
    assert mirrored[tag] == pytest.approx(value, rel=1e-5), tag


def test_repeated_names_get_numbered_tags():
  first = tf.Variable([3.0, 4.0], name='w')
  second = tf.Variable([6.0, 8.0], name='w')
  opt = lars.LARS(learning_rate=0.5, telemetry=True)
  opt.apply_gradients([(tf.constant([1.0, 0.0]), first),
                       (tf.constant([0.0, 2.0]), second)])
  scalars = opt.telemetry_scalars()
  assert sorted(scalars) == sorted(
      f'lars/{name}/{field}' for name in ('w', 'w_2')
      for field in ('trust_ratio', 'weight_norm', 'gradient_norm',
                    'learning_rate'))
  assert {scalars['lars/w/weight_norm'], scalars['lars/w_2/weight_norm']} == {
      5.0, 10.0}
