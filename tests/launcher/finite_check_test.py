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
from official_ext.modeling.optimization import lars

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
  task_optimizer.use_lars(task)
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
  check = finite_check.FiniteVariablesCheck(
      lambda: variables, finite_check.StopReport(optimizer, step, None))
  check({'training_loss': 0.5})

  optimizer.get_slot(model.layers[0].bias, 'momentum').assign([np.nan, 0.0])
  with pytest.raises(finite_check.NonFiniteTrainingError) as excinfo:
    check({'training_loss': tf.constant(0.5)})
  message = str(excinfo.value)
  assert 'step 3' in message and 'latest checkpoint is none' in message
  assert finite_check.non_finite_names(variables) == [
      optimizer.get_slot(model.layers[0].bias, 'momentum').name]


def test_a_blow_up_model_garden_notices_ends_in_the_same_error(tmp_path):
  # Huge trust ratios: the loss passes trainer.loss_upper_bound within a few
  # steps, and Model Garden's check (no recovery trials) raises first.
  params = _params(train_steps=40)
  params.trainer.optimizer_config.optimizer.lars.eeta = 1000.0
  model_dir = str(tmp_path)
  with pytest.raises(finite_check.NonFiniteTrainingError) as excinfo:
    _run(lars_digits.DigitsTask(params.task), params, model_dir)
  message = str(excinfo.value)
  assert "Model Garden's blow-up check: The loss value is " in message
  step = int(re.search(r'Training stopped at step (\d+):', message).group(1))
  latest = tf.train.latest_checkpoint(model_dir)
  assert latest == os.path.join(model_dir, f'ckpt-{step - 2}')
  assert f'the latest checkpoint is {latest} ' in message
  assert 'eeta 1000.0, weight decay 0.0001' in message
  reader = tf.train.load_checkpoint(latest)
  for name, dtype in reader.get_variable_to_dtype_map().items():
    if dtype.is_floating:
      assert np.all(np.isfinite(reader.get_tensor(name))), name


def test_likely_causes_name_the_rate_of_the_last_update_and_lars_settings():
  schedule = tf_keras.optimizers.schedules.ExponentialDecay(
      1.0, decay_steps=10, decay_rate=0.5)
  optimizer = tf_keras.mixed_precision.LossScaleOptimizer(
      lars.LARS(learning_rate=schedule, eeta=0.01, weight_decay_rate=0.001))
  # The update to global step 21 ran at optimizer.iterations 20.
  expected_rate = 0.5 ** (20 / 10)
  assert finite_check.learning_rate_at(optimizer, 21) == pytest.approx(
      expected_rate)
  assert finite_check.likely_causes(optimizer, 21) == (
      f'learning rate {expected_rate:.6g} at step 21, eeta 0.01, '
      'weight decay 0.001')
  sgd = tf_keras.optimizers.legacy.SGD(learning_rate=0.25)
  assert finite_check.likely_causes(sgd, 3) == 'learning rate 0.25 at step 3'


def test_the_checkpoint_named_is_the_last_saved_even_while_it_is_written(
    tmp_path):
  # Big enough that the asynchronous write is still going on when the run
  # stops right after the save.
  weights = tf.Variable(tf.zeros([4_000_000]))
  step = tf.Variable(0, dtype=tf.int64)
  manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(weights=weights, step=step), str(tmp_path),
      max_to_keep=3)
  async_save = tf.train.CheckpointOptions(
      experimental_enable_async_checkpoint=True)
  manager.save(options=async_save)
  manager.sync()
  last_saved = manager.save(options=async_save)
  optimizer = tf_keras.optimizers.legacy.SGD()
  with pytest.raises(finite_check.NonFiniteTrainingError) as excinfo:
    finite_check.StopReport(optimizer, step, manager).stop('inf in weights')
  assert f'the latest checkpoint is {last_saved} ' in str(excinfo.value)
  assert tf.train.latest_checkpoint(str(tmp_path)) == last_saved
