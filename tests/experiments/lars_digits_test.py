"""Tests for the lars_digits experiment: data, model, loss, schedule, logs."""
import glob
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn import datasets
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official_ext.experiments import lars_digits
from official_ext.modeling.optimization import optimizer_factory


def _rows(images):
  """The images as a sorted list of bytes: a multiset, for comparisons."""
  return sorted(image.tobytes() for image in images)


def test_split_is_fixed_disjoint_and_complete():
  train_images, train_labels = lars_digits.load_split(is_training=True)
  val_images, val_labels = lars_digits.load_split(is_training=False)
  assert train_images.shape == (1437, 8, 8, 1)
  assert val_images.shape == (360, 8, 8, 1)
  assert train_images.dtype == np.float32
  assert 0.0 <= train_images.min() and train_images.max() <= 1.0
  assert set(train_labels) == set(val_labels) == set(range(10))
  digits = datasets.load_digits()
  everything = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
  assert _rows(np.concatenate([train_images, val_images])) == _rows(everything)
  again, _ = lars_digits.load_split(is_training=False)
  np.testing.assert_array_equal(again, val_images)


def test_inputs_shard_and_batch_per_replica():
  task_config = lars_digits.DigitsTaskConfig()
  task = lars_digits.DigitsTask(task_config)
  contexts = [tf.distribute.InputContext(2, i, 2) for i in range(2)]
  seen = []
  for context in contexts:
    dataset = task.build_inputs(task_config.validation_data, context)
    batches = list(dataset)
    assert all(images.shape[0] == 60 for images, _ in batches)
    seen.append(np.concatenate([images.numpy() for images, _ in batches]))
  assert _rows(np.concatenate(seen)) == _rows(
      lars_digits.load_split(is_training=False)[0])

  train = task.build_inputs(task_config.train_data, contexts[0])
  images, labels = next(iter(train))
  assert images.shape == (64, 8, 8, 1) and labels.shape == (64,)


def test_model_outputs_float32_logits():
  model = lars_digits.build_convnet(lars_digits.DigitsConvNet(filters=[4, 8]))
  logits = model(tf.zeros([3, 8, 8, 1]))
  assert logits.shape == (3, 10) and logits.dtype == tf.float32
  assert model.layers[-1].dtype_policy.compute_dtype == 'float32'


def test_loss_is_mean_softmax_cross_entropy():
  task = lars_digits.DigitsTask(lars_digits.DigitsTaskConfig())
  logits = np.random.RandomState(0).randn(5, 10).astype(np.float32)
  labels = np.array([0, 3, 9, 3, 1])
  log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  expected = -log_softmax[np.arange(5), labels].mean()
  loss = task.build_losses(tf.constant(labels), tf.constant(logits),
                           aux_losses=[tf.constant(0.5)])
  np.testing.assert_allclose(float(loss), expected + 0.5, rtol=1e-5)


def test_experiment_uses_lars_with_warmup_and_decay():
  config = exp_factory.get_exp_config('lars_digits')
  optimization = config.trainer.optimizer_config
  assert optimization.optimizer.type == 'lars'
  factory = optimizer_factory.OptimizerFactory(optimization)
  schedule = factory.build_learning_rate()
  optimizer = factory.build_optimizer(schedule)
  assert isinstance(optimizer, tf_keras.optimizers.legacy.Optimizer)
  peak = optimization.learning_rate.polynomial.initial_learning_rate
  warmup = optimization.warmup.linear.warmup_steps
  total = config.trainer.train_steps
  lrs = np.array([float(schedule(s)) for s in range(total + 1)])
  np.testing.assert_allclose(lrs[:warmup], peak * np.arange(warmup) / warmup,
                             rtol=1e-6)
  assert lrs[warmup] == max(lrs)
  assert np.all(np.diff(lrs[warmup:]) <= 0)
  np.testing.assert_allclose(lrs[-1], 1e-4, rtol=1e-4)


def test_every_topology_trains_on_the_same_global_batches():
  task_config = lars_digits.DigitsTaskConfig()
  task_config.train_data.global_batch_size = 16
  task = lars_digits.DigitsTask(task_config)
  steps = 3
  one_device = list(task.build_inputs(task_config.train_data).take(steps))
  for pipelines, replicas in [(1, 2), (2, 2), (2, 4)]:
    per_step = replicas // pipelines
    streams = [
        list(task.build_inputs(
            task_config.train_data,
            tf.distribute.InputContext(pipelines, p, replicas)).take(
                steps * per_step)) for p in range(pipelines)]
    for step, (images, labels) in enumerate(one_device):
      # Slice s of a global batch is pipeline s % pipelines's next batch.
      slices = [streams[s % pipelines][step * per_step + s // pipelines]
                for s in range(replicas)]
      assert all(x.shape[0] == 16 // replicas for x, _ in slices)
      np.testing.assert_array_equal(
          np.concatenate([x.numpy() for x, _ in slices]), images.numpy())
      np.testing.assert_array_equal(
          np.concatenate([y.numpy() for _, y in slices]), labels.numpy())


def test_initial_weights_are_seeded_and_batch_norm_synchronized():
  config = lars_digits.DigitsConvNet(filters=[4, 8])
  first = lars_digits.build_convnet(config).get_weights()
  second = lars_digits.build_convnet(config).get_weights()
  for a, b in zip(first, second):
    np.testing.assert_array_equal(a, b)
  reseeded = lars_digits.build_convnet(
      lars_digits.DigitsConvNet(filters=[4, 8], seed=1)).get_weights()
  assert not np.array_equal(first[0], reseeded[0])
  norms = [layer for layer in lars_digits.build_convnet(config).layers
           if isinstance(layer, tf_keras.layers.BatchNormalization)]
  assert len(norms) == 2 and all(layer.synchronized for layer in norms)


def _summaries(model_dir):
  """{(tag, step): value} of the train summaries in `model_dir`/train."""
  values = {}
  for path in glob.glob(os.path.join(model_dir, 'train', 'events.out.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        values[value.tag, event.step] = float(
            tf.make_ndarray(value.tensor))
  return values


@pytest.mark.e2e
def test_demo_logs_its_loss_every_loop_and_records_telemetry(tmp_path):
  model_dir = str(tmp_path / 'model_dir')
  process = subprocess.run(
      [sys.executable, '-m', 'official_ext.train', '--experiment=lars_digits',
       '--mode=train', f'--model_dir={model_dir}',
       '--params_override=trainer.train_steps=4,trainer.steps_per_loop=2,'
       'trainer.summary_interval=2,trainer.checkpoint_interval=4,'
       'task.train_data.global_batch_size=32'],
      capture_output=True, text=True, check=False)
  assert process.returncode == 0, process.stderr[-5000:]

  logged_losses = {
      int(step): float(loss) for step, loss in re.findall(
          r'train \| step: +(\d+) \| .*\btraining_loss: (\S+)$',
          process.stderr, re.MULTILINE)}
  summaries = _summaries(model_dir)
  # Every loop's line carries the loss the train summaries recorded.
  assert sorted(logged_losses) == [2, 4]
  for step, loss in logged_losses.items():
    assert loss == pytest.approx(summaries['training_loss', step], rel=1e-5)
  # Telemetry is on by default: 4 scalars per trainable variable (8 in the
  # digits convnet), at each summary step.
  for step in (2, 4):
    lars_tags = [tag for tag, at in summaries
                 if at == step and tag.startswith('lars/')]
    assert len(lars_tags) == 8 * 4
    trust_ratios = [summaries[tag, step] for tag in lars_tags
                    if tag.endswith('/trust_ratio')]
    assert len(trust_ratios) == 8 and all(r > 0 for r in trust_ratios)
