"""Tests for the check that no inf or NaN reaches a checkpoint."""
import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official_ext.launcher import finite_check
from official_ext.launcher import task_optimizer
from official_ext.launcher import experiment_runner
from official_ext.experiments import lars_digits

POISONED_STEP = 4


class NanGradientDigitsTask(lars_digits.DigitsTask):
  """lars_digits whose loss has a NaN gradient, yet a finite value, once.

  The training batch of step POISONED_STEP carries labels shifted by
  NUM_CLASSES; for it the loss adds `sqrt(‖o − stop_gradient(o)‖²)` of the
  logits `o`: 0 in value, NaN in gradient (sqrt's infinite slope at 0 times
  0), like an unguarded norm of a zero vector.
  """

  def build_inputs(self, params, input_context=None):
    dataset = super().build_inputs(params, input_context)
    if not params.is_training:
      return dataset
    return dataset.enumerate().map(
        lambda i, batch: (batch[0], tf.where(
            i == POISONED_STEP - 1, batch[1] + lars_digits.NUM_CLASSES,
            batch[1])))

  def build_losses(self, labels, model_outputs, aux_losses=None):
    poisoned = tf.reduce_any(labels >= lars_digits.NUM_CLASSES)
    loss = super().build_losses(labels % lars_digits.NUM_CLASSES,
                                model_outputs, aux_losses)
    zero = model_outputs - tf.stop_gradient(model_outputs)
    return loss + tf.cond(
        poisoned, lambda: tf.sqrt(tf.reduce_sum(tf.square(zero))),
        lambda: tf.constant(0.0))


def _params(**trainer):
  params = exp_factory.get_exp_config('lars_digits')
  params.override({
      'task': {'train_data': {'global_batch_size': 16}},
      'trainer': {'train_steps': 4, 'steps_per_loop': 2,
                  'checkpoint_interval': 2, 'summary_interval': 2,
                  **trainer},
  })
  return params


def _run(task, params, model_dir):
  """Trains `task` as the launcher does (official_ext's runner)."""
  task_optimizer.use_official_ext_optimizers(task,
                                             params.trainer.optimizer_config)
  return experiment_runner.ExperimentRunner(
      distribution_strategy=tf.distribute.get_strategy(), task=task,
      mode='train', params=params, model_dir=model_dir).run()


def test_nan_gradient_with_finite_loss_stops_before_the_checkpoint(tmp_path):
  params = _params()
  model_dir = str(tmp_path)
  with pytest.raises(finite_check.NonFiniteTrainingError) as excinfo:
    _run(NanGradientDigitsTask(params.task), params, model_dir)
  message = str(excinfo.value)
  assert f'step {POISONED_STEP}' in message
  assert re.search(r'NaN in conv2d(_\d+)?/kernel:0, ', message)
  assert 'latest checkpoint is ' + os.path.join(model_dir, 'ckpt-2') in message
  # The loop's loss was finite: Model Garden's loss check could not see it.
  loss = float(message.split('training loss ')[1].split(')')[0])
  assert np.isfinite(loss)

  assert tf.train.latest_checkpoint(model_dir).endswith('ckpt-2')
  assert not tf.io.gfile.glob(os.path.join(model_dir, 'ckpt-4*'))
  reader = tf.train.load_checkpoint(os.path.join(model_dir, 'ckpt-2'))
  for name, dtype in reader.get_variable_to_dtype_map().items():
    if dtype.is_floating:
      assert np.all(np.isfinite(reader.get_tensor(name))), name


def test_without_poison_the_same_run_completes(tmp_path):
  params = _params()
  _run(lars_digits.DigitsTask(params.task), params, str(tmp_path))
  assert tf.train.latest_checkpoint(str(tmp_path)).endswith('ckpt-4')


def test_check_names_non_finite_variables_and_passes_finite_ones():
  model = tf_keras.Sequential([tf_keras.Input((3,)),
                               tf_keras.layers.Dense(2, name='dense')])
  optimizer = tf_keras.optimizers.legacy.SGD(momentum=0.9)
  optimizer.apply_gradients(
      zip([tf.ones_like(v) for v in model.trainable_variables],
          model.trainable_variables))
  variables = finite_check.trainer_variables(model, optimizer)
  # Weights and momentum slots; the int64 iteration count is skipped.
  assert len(variables) == 4
  step = tf.Variable(3, dtype=tf.int64)
  check = finite_check.FiniteVariablesCheck(lambda: variables, step, None)
  check({'training_loss': 0.5})

  optimizer.get_slot(model.layers[0].bias, 'momentum').assign([np.nan, 0.0])
  with pytest.raises(finite_check.NonFiniteTrainingError) as excinfo:
    check({'training_loss': tf.constant(0.5)})
  message = str(excinfo.value)
  assert 'step 3' in message and 'latest checkpoint is none' in message
  assert finite_check.non_finite_names(variables) == [
      optimizer.get_slot(model.layers[0].bias, 'momentum').name]
