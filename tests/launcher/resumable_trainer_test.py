"""Tests for official_ext's Trainer: a resumed run continues the data order."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official_ext.launcher import resumable_trainer
from official_ext.experiments import lars_digits


def _labels(dataset, batches):
  return [labels.numpy() for _, labels in dataset.take(batches)]


@pytest.mark.parametrize('pipelines,replicas,per_step', [
    (1, 1, 1), (1, 4, 4), (2, 2, 1), (2, 4, 2)])
def test_batches_per_step(pipelines, replicas, per_step):
  context = tf.distribute.InputContext(pipelines, 0, replicas)
  assert resumable_trainer.batches_per_step(context) == per_step


@pytest.mark.parametrize('pipelines,replicas', [(1, 1), (1, 2), (2, 4)])
def test_skipping_steps_starts_at_the_next_step(pipelines, replicas):
  task_config = lars_digits.DigitsTaskConfig()
  task_config.train_data.global_batch_size = 16
  task = lars_digits.DigitsTask(task_config)
  context = tf.distribute.InputContext(pipelines, pipelines - 1, replicas)
  per_step = replicas // pipelines
  fresh = _labels(task.build_inputs(task_config.train_data, context),
                  7 * per_step)
  resumed = resumable_trainer.skipping_steps(task.build_inputs, 5)(
      task_config.train_data, context)
  np.testing.assert_array_equal(
      np.concatenate(_labels(resumed, 2 * per_step)),
      np.concatenate(fresh[5 * per_step:]))


class _PlainDigitsTask(lars_digits.DigitsTask):
  resumable_train_input = False


def _trainer(task_cls, global_step):
  params = exp_factory.get_exp_config('lars_digits')
  params.task.train_data.global_batch_size = 16
  task = task_cls(params.task)
  trainer = resumable_trainer.Trainer(
      params, task, model=task.build_model(),
      optimizer=tf_keras.optimizers.legacy.SGD(), train=True, evaluate=False)
  trainer.global_step.assign(global_step)  # As a restore would.
  return trainer, task


def _first_labels(trainer):
  _, labels = next(iter(trainer.train_dataset))
  return labels.numpy()


def test_resumed_trainer_starts_with_the_next_steps_batch():
  trainer, task = _trainer(lars_digits.DigitsTask, global_step=3)
  trainer.train_loop_begin()
  expected = _labels(task.build_inputs(task.task_config.train_data), 4)[3]
  np.testing.assert_array_equal(_first_labels(trainer), expected)
  dataset = trainer.train_dataset
  trainer.train_loop_begin()  # Only the first loop repositions the input.
  assert trainer.train_dataset is dataset


@pytest.mark.parametrize('task_cls,global_step', [
    (lars_digits.DigitsTask, 0), (_PlainDigitsTask, 3)])
def test_fresh_runs_and_other_tasks_keep_their_input(task_cls, global_step):
  trainer, _ = _trainer(task_cls, global_step)
  dataset = trainer.train_dataset
  trainer.train_loop_begin()
  assert trainer.train_dataset is dataset
