"""Tests for the MLPerf ResNet-50 LARS recipe."""
import re

import numpy as np
import pytest
import tf_keras

from official.core import exp_factory
from official.core import task_factory
from official_ext.experiments import resnet50_imagenet_lars as recipe
from official_ext.modeling.optimization import optimizer_factory


def mlperf_reference_lr(step, batch_size, steps_per_epoch, train_steps):
  """The MLPerf reference schedule (lars_util.py), written independently."""
  if batch_size < 16384:
    base, warmup_epochs = 10.0, 5
  elif batch_size < 32768:
    base, warmup_epochs = 25.0, 5
  else:
    base, warmup_epochs = 31.2, 25
  warmup_steps = warmup_epochs * steps_per_epoch
  if step < warmup_steps:
    return base * step / warmup_steps
  decay_steps = train_steps - warmup_steps + 1
  progress = min(step - warmup_steps, decay_steps) / decay_steps
  return (base - 1e-4) * (1 - progress)**2 + 1e-4


@pytest.mark.parametrize('batch_size,expected', [
    (256, (10.0, 5)), (4096, (10.0, 5)), (16383, (10.0, 5)),
    (16384, (25.0, 5)), (32767, (25.0, 5)), (32768, (31.2, 25)),
    (65536, (31.2, 25)),
])
def test_batch_size_table(batch_size, expected):
  assert recipe.mlperf_base_learning_rate_and_warmup(batch_size) == expected


def test_nonpositive_batch_size_fails():
  with pytest.raises(ValueError, match='global_batch_size.*0'):
    recipe.mlperf_base_learning_rate_and_warmup(0)


@pytest.mark.parametrize('batch_size', [4096, 16384, 32768])
def test_schedule_matches_mlperf_reference(batch_size):
  steps_per_epoch, train_steps = 10, 400
  config = recipe.mlperf_lars_optimization(batch_size, train_steps,
                                           steps_per_epoch)
  schedule = optimizer_factory.OptimizerFactory(config).build_learning_rate()
  steps = list(range(0, train_steps + 20, 3)) + [49, 50, 51, 249, 250, 251]
  np.testing.assert_allclose(
      [float(schedule(s)) for s in steps],
      [mlperf_reference_lr(s, batch_size, steps_per_epoch, train_steps)
       for s in steps], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('exponent', [-2, -1, 0, 1])
def test_weight_decay_is_power_of_two_times_1e4(exponent):
  config = recipe.mlperf_lars_optimization(4096, 100, 10, exponent)
  assert config.optimizer.lars.weight_decay_rate == pytest.approx(
      1e-4 * 2**exponent)


def test_registered_experiment():
  config = exp_factory.get_exp_config('resnet50_imagenet_lars')
  assert config.task.model.backbone.resnet.model_id == 50
  assert config.task.losses.label_smoothing == 0.1
  assert config.task.losses.l2_weight_decay == 0.0
  assert config.task.train_data.global_batch_size == 4096
  steps_per_epoch = 1281167 // 4096
  assert config.trainer.train_steps == 41 * steps_per_epoch
  lars = config.trainer.optimizer_config.optimizer.get()
  assert config.trainer.optimizer_config.optimizer.type == 'lars'
  assert (lars.momentum, lars.eeta, lars.weight_decay_rate) == (0.9, 0.001,
                                                                5e-5)
  assert lars.exclude_from_weight_decay == ['batch_normalization', 'bias']
  assert lars.exclude_from_layer_adaptation == ['batch_normalization', 'bias']
  assert config.trainer.optimizer_config.warmup.linear.warmup_steps == (
      5 * steps_per_epoch)


def test_exclusions_are_exactly_batch_norm_and_bias_variables():
  config = exp_factory.get_exp_config('resnet50_imagenet_lars')
  config.task.model.backbone.resnet.model_id = 10
  config.task.model.backbone.resnet.depth_multiplier = 0.25
  config.task.model.input_size = [32, 32, 3]
  config.task.model.num_classes = 5
  model = task_factory.get_task(config.task).build_model()
  expected = set()
  for layer in model.submodules:
    if isinstance(layer, tf_keras.layers.BatchNormalization):
      expected |= {layer.gamma.ref(), layer.beta.ref()}
    elif getattr(layer, 'bias', None) is not None:
      expected.add(layer.bias.ref())
  patterns = config.trainer.optimizer_config.optimizer.lars
  excluded = {
      v.ref() for v in model.trainable_variables
      if any(re.search(p, v.name) for p in patterns.exclude_from_weight_decay)
  }
  assert expected and excluded == expected
  assert len(excluded) < len(model.trainable_variables)
