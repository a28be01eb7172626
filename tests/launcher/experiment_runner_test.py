"""Tests for official_ext's experiment runner: mixed precision with LARS."""
import logging
import os

import numpy as np
import orbit
import pytest
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official_ext.launcher import experiment_runner
from official_ext.experiments import lars_digits

LARS = 'official_ext.modeling.optimization.lars.LARS'


@pytest.fixture
def float32_policy_after():
  yield
  tf_keras.mixed_precision.set_global_policy('float32')


@pytest.mark.parametrize('dtype,optimizer,async_checkpointing', [
    ('float16', 'tf_keras.src.mixed_precision.loss_scale_optimizer.'
                f'LossScaleOptimizer({LARS})', True),
    ('bfloat16', LARS, False),
])
def test_mixed_precision_trains_with_lars(dtype, optimizer,
                                          async_checkpointing, tmp_path,
                                          caplog, float32_policy_after):
  del float32_policy_after  # Used for its cleanup.
  caplog.set_level(logging.INFO)
  params = exp_factory.get_exp_config('lars_digits')
  params.override({
      'runtime': {'mixed_precision_dtype': dtype,
                  'distribution_strategy': 'one_device'},
      'task': {'train_data': {'global_batch_size': 16}},
      'trainer': {'train_steps': 4, 'steps_per_loop': 2,
                  'summary_interval': 2, 'checkpoint_interval': 4},
  })
  async_settings = []

  def controller(**kwargs):  # Model Garden builds it with keywords only.
    async_settings.append(kwargs['enable_async_checkpointing'])
    return orbit.Controller(**kwargs)

  model, _ = experiment_runner.run_experiment(
      params, 'train', str(tmp_path),
      enable_async_checkpointing=async_checkpointing,
      controller_cls=controller)
  # As official/vision/train.py's flag does, it reaches Orbit's Controller,
  # and the checkpoint below is complete either way.
  assert async_settings == [async_checkpointing]
  assert f'Training with optimizer {optimizer}' in caplog.messages
  conv = model.layers[0]
  assert conv.compute_dtype == dtype and conv.variable_dtype == 'float32'

  reader = tf.train.load_checkpoint(os.path.join(str(tmp_path), 'ckpt-4'))
  names = reader.get_variable_to_shape_map()
  for name, tf_dtype in reader.get_variable_to_dtype_map().items():
    if tf_dtype.is_floating:
      assert np.all(np.isfinite(reader.get_tensor(name))), name
  kernel = reader.get_tensor(
      'model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE')
  initial = lars_digits.build_convnet(params.task.model).get_weights()[0]
  assert not np.allclose(kernel, initial)  # It trained.
  assert reader.get_tensor('optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE') == 4
  # float16 trains with dynamic loss scaling; bfloat16 needs none.
  has_loss_scale = any('loss_scale' in name for name in names)
  assert has_loss_scale == (dtype == 'float16')
