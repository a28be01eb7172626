"""Shared pieces of the LARS tests: a numpy oracle, models, training loops.

`numpy_lars_step` is written from the formula of You et al. 2017 as Model
Garden states it, independently of the code under test.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.modeling.optimization import lars as mg_lars
from official.nlp.modeling.layers import transformer_encoder_block
from official_ext.modeling.optimization import lars

# A test of a deliberate difference from Model Garden's LARS runs against
# both classes; on Model Garden's it must fail, so the difference stays proven.
MG_DEFECT = pytest.mark.xfail(strict=True,
                              reason="Model Garden's LARS has this defect")
BOTH_CLASSES = [
    pytest.param(lars.LARS, id='official_ext'),
    pytest.param(mg_lars.LARS, id='model_garden', marks=MG_DEFECT),
]

# Bad values of Model Garden's options: (kwargs, error type, the field and
# the value the one-line message must name).
BAD_MODEL_GARDEN_OPTIONS = [
    ({'momentum': 1.0}, ValueError, 'momentum', '1.0'),
    ({'momentum': -0.5}, ValueError, 'momentum', '-0.5'),
    ({'eeta': 0.0}, ValueError, 'eeta', '0.0'),
    ({'eeta': -1e-3}, ValueError, 'eeta', '-0.001'),
    ({'weight_decay_rate': -1e-4}, ValueError, 'weight_decay_rate', '-0.0001'),
    ({'weight_decay_rate': float('nan')}, ValueError, 'weight_decay_rate',
     'nan'),
    ({'nesterov': 'yes'}, TypeError, 'nesterov', 'yes'),
    ({'classic_momentum': 1}, TypeError, 'classic_momentum', '1'),
    ({'exclude_from_weight_decay': 'bias'}, TypeError,
     'exclude_from_weight_decay', "'bias'"),
    ({'exclude_from_layer_adaptation': 'bias'}, TypeError,
     'exclude_from_layer_adaptation', "'bias'"),
    ({'exclude_from_weight_decay': ['bias', 3]}, TypeError,
     'exclude_from_weight_decay', '3'),
    ({'exclude_from_layer_adaptation': ['(unclosed']}, ValueError,
     'exclude_from_layer_adaptation', '(unclosed'),
]


def numpy_lars_step(w, g, v, *, lr, momentum, weight_decay_rate, eeta,
                    nesterov, classic_momentum, decay, adapt):
  """One LARS step in float64 numpy, from the paper's formula."""

  def trust(w_norm, u_norm):
    return eeta * w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0

  if decay:
    g = g + weight_decay_rate * w
  if classic_momentum:
    local_lr = lr * (trust(np.linalg.norm(w), np.linalg.norm(g))
                     if adapt else 1.0)
    v = momentum * v + local_lr * g
    update = momentum * v + local_lr * g if nesterov else v
    return w - update, v
  v = momentum * v + g
  update = momentum * v + g if nesterov else v
  local_lr = lr * (trust(np.linalg.norm(w), np.linalg.norm(update))
                   if adapt else 1.0)
  return w - local_lr * update, v


def parity_model():
  """A model with several layer types; no bias feeds a normalization layer,
  so no variable's gradient is pure rounding noise."""
  tf_keras.utils.set_random_seed(7)
  return tf_keras.Sequential([
      tf_keras.layers.Conv2D(6, 3, use_bias=False, input_shape=(8, 8, 2)),
      tf_keras.layers.BatchNormalization(),
      tf_keras.layers.ReLU(),
      tf_keras.layers.DepthwiseConv2D(3, use_bias=False),
      tf_keras.layers.LayerNormalization(),
      tf_keras.layers.Flatten(),
      tf_keras.layers.Dense(16, activation='tanh'),
      tf_keras.layers.Dense(5),
  ])


PARITY_X = np.random.RandomState(0).randn(32, 8, 8, 2).astype(np.float32)
PARITY_Y = np.random.RandomState(1).randint(0, 5, size=32)


def train(optimizer, steps=10, model=None, use_function=True):
  """Trains `model` (default: `parity_model()`) for `steps` steps."""
  model = model or parity_model()

  def step():
    with tf.GradientTape() as tape:
      logits = model(PARITY_X, training=True)
      loss = tf.reduce_mean(
          tf_keras.losses.sparse_categorical_crossentropy(
              PARITY_Y, logits, from_logits=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

  step = tf.function(step) if use_function else step
  for _ in range(steps):
    step()
  return model


def assert_weights_close(actual, expected, rtol=1e-6):
  """Relative error of each variable, measured against its own scale."""
  for a, e in zip(actual, expected):
    a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
    scale = max(np.max(np.abs(e)), 1e-12)
    assert np.max(np.abs(a - e)) / scale <= rtol, (
        f'relative difference {np.max(np.abs(a - e)) / scale:.3g} > {rtol}')


def dense_model():
  tf_keras.utils.set_random_seed(11)
  return tf_keras.Sequential([
      tf_keras.layers.Dense(8, activation='tanh', input_shape=(5,), name='d1'),
      tf_keras.layers.Dense(3, name='d2'),
  ])


def mirrored_step(strategy, optimizer, model, x, y):
  """One synchronous step on the global batch (x, y), split over replicas."""
  dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x))
  batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

  def replica_step(inputs, labels):
    with tf.GradientTape() as tape:
      per_example = tf_keras.losses.sparse_categorical_crossentropy(
          labels, model(inputs, training=False), from_logits=True)
      loss = tf.reduce_sum(per_example) / len(x)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

  strategy.run(tf.function(replica_step), args=batch)


class _NormalizingBlock(tf_keras.layers.Layer):
  """A custom layer holding a normalization layer: found by type, not name."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.projection = tf_keras.layers.Dense(4, name='projection')
    self.norm = tf_keras.layers.GroupNormalization(groups=2, name='gn')

  def call(self, x):
    return self.norm(self.projection(x))


def normalization_model():
  """A model with every kind of normalization layer, one in a custom layer."""
  inputs = tf_keras.Input((6, 6, 2))
  x = tf_keras.layers.Conv2D(4, 3, use_bias=False, name='stem')(inputs)
  x = tf_keras.layers.BatchNormalization(name='bn_renamed')(x)
  x = tf_keras.layers.experimental.SyncBatchNormalization(name='sync')(x)
  x = tf_keras.layers.Flatten()(x)
  x = _NormalizingBlock(name='block')(x)
  x = tf_keras.layers.LayerNormalization(name='ln')(x)
  x = transformer_encoder_block.RMSNorm(name='rms')(x)
  return tf_keras.Model(inputs, tf_keras.layers.Dense(3, name='head')(x))


NORMALIZATION_NAMES = [
    'bn_renamed/gamma:0', 'bn_renamed/beta:0', 'sync/gamma:0', 'sync/beta:0',
    'block/gn/gamma:0', 'block/gn/beta:0', 'ln/gamma:0', 'ln/beta:0',
    'rms/rms/scale:0']


def assert_imports_no_framework(module: str, code: str = ''):
  """Imports `module`, runs `code`, in a fresh Python: no TF or Keras loads.

  Args:
    module: a dotted module path.
    code: statements to run after the import.
  """
  repo = pathlib.Path(__file__).resolve().parents[3]
  program = '\n'.join([
      'import sys', f'import {module}', code,
      'loaded = {"tensorflow", "tf_keras", "keras"} & set(sys.modules)',
      'assert not loaded, loaded'])
  process = subprocess.run(
      [sys.executable, '-c', program], cwd=repo, capture_output=True,
      text=True, env=dict(os.environ, PYTHONPATH=str(repo)), check=False,
      timeout=120)
  assert process.returncode == 0, process.stderr
