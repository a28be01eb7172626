"""`resnet50_imagenet_lars`: the MLPerf ResNet-50 LARS recipe on ImageNet.

Model Garden's `resnet_imagenet` experiment (ResNet-50, ImageNet TFRecords with
`image/encoded` JPEG bytes and `image/class/label`, read from
`task.train_data.input_path` / `task.validation_data.input_path`) with the
optimizer recipe of the MLPerf training reference
(mlcommons/training, image_classification/tensorflow2, `lars_util.py`):

* LARS, momentum 0.9, eeta 0.001, epsilon 0; batch normalization and bias
  variables excluded from weight decay and from layer adaptation.
* Weight decay `1e-4 * 2**N` (the values MLPerf allows), applied by LARS rather
  than as an L2 loss; N = -1 (5e-5) by default.
* Label smoothing 0.1.
* Learning rate: linear warmup from 0 to the base LR over the warmup epochs,
  then polynomial decay of power 2 down to 1e-4 over
  `train_steps - warmup_steps + 1` steps. Base LR and warmup depend on the
  global batch size, as in the reference:

  | global batch size  | base LR | warmup epochs |
  |--------------------|---------|---------------|
  | < 16384            | 10.0    | 5             |
  | 16384 .. 32767     | 25.0    | 5             |
  | >= 32768           | 31.2    | 25            |

The registered experiment uses Model Garden's batch size of 4096 and 41
epochs. The schedule is computed from the batch size when the config is built:
after changing `task.train_data.global_batch_size`, set the learning-rate and
warmup fields to `mlperf_lars_optimization(new_batch_size, ...)`'s values.
"""
import dataclasses
from typing import Tuple

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.vision.configs import image_classification

from official_ext.experiments import lars_optimization
from official_ext.modeling.optimization.configs import optimization_config

END_LEARNING_RATE = 1e-4
DECAY_POWER = 2.0


@dataclasses.dataclass(frozen=True)
class _BatchSizeTier:
  min_batch_size: int
  base_learning_rate: float
  warmup_epochs: int


# Tiers of the MLPerf reference, largest batch size first.
_MLPERF_TIERS = (
    _BatchSizeTier(32768, 31.2, 25),
    _BatchSizeTier(16384, 25.0, 5),
    _BatchSizeTier(0, 10.0, 5),
)


def mlperf_base_learning_rate_and_warmup(
    global_batch_size: int) -> Tuple[float, int]:
  """Returns the reference's (base learning rate, warmup epochs).

  Args:
    global_batch_size: the global training batch size (> 0).

  Raises:
    ValueError: if `global_batch_size` is not positive.
  """
  if global_batch_size <= 0:
    raise ValueError(
        f'global_batch_size must be positive, got {global_batch_size!r}.')
  tier = next(t for t in _MLPERF_TIERS if global_batch_size >= t.min_batch_size)
  return tier.base_learning_rate, tier.warmup_epochs


def mlperf_lars_optimization(
    global_batch_size: int,
    train_steps: int,
    steps_per_epoch: int,
    weight_decay_exponent: int = -1) -> optimization_config.OptimizationConfig:
  """Returns the MLPerf LARS optimization config for a batch size.

  Args:
    global_batch_size: global training batch size; picks base LR and warmup.
    train_steps: total training steps.
    steps_per_epoch: training steps per epoch.
    weight_decay_exponent: N in the weight decay `1e-4 * 2**N`.

  Returns:
    An official_ext OptimizationConfig with `optimizer.type: lars`.
  """
  base_learning_rate, warmup_epochs = mlperf_base_learning_rate_and_warmup(
      global_batch_size)
  warmup_steps = warmup_epochs * steps_per_epoch
  return lars_optimization.lars_with_warmup_and_polynomial_decay(
      base_learning_rate=base_learning_rate,
      warmup_steps=warmup_steps,
      decay_steps=train_steps - warmup_steps + 1,
      weight_decay_rate=1e-4 * 2.0**weight_decay_exponent,
      end_learning_rate=END_LEARNING_RATE,
      power=DECAY_POWER,
      momentum=0.9,
      eeta=0.001)


def resnet50_imagenet_lars_config(
    global_batch_size: int = 4096,
    train_epochs: int = 41,
    weight_decay_exponent: int = -1) -> cfg.ExperimentConfig:
  """Model Garden's ResNet-50 ImageNet experiment with the MLPerf LARS recipe.

  Args:
    global_batch_size: global training (and evaluation) batch size.
    train_epochs: number of training epochs.
    weight_decay_exponent: N in the weight decay `1e-4 * 2**N`.

  Returns:
    The experiment config.
  """
  config = image_classification.image_classification_imagenet()
  steps_per_epoch = (
      image_classification.IMAGENET_TRAIN_EXAMPLES // global_batch_size)
  train_steps = train_epochs * steps_per_epoch
  config.task.train_data.global_batch_size = global_batch_size
  config.task.validation_data.global_batch_size = global_batch_size
  # LARS applies the weight decay; an L2 loss term would apply it twice.
  config.task.losses.l2_weight_decay = 0.0
  config.task.losses.label_smoothing = 0.1
  config.trainer.train_steps = train_steps
  config.trainer.steps_per_loop = steps_per_epoch
  config.trainer.summary_interval = steps_per_epoch
  config.trainer.checkpoint_interval = steps_per_epoch
  config.trainer.validation_interval = steps_per_epoch
  config.trainer.validation_steps = (
      image_classification.IMAGENET_VAL_EXAMPLES // global_batch_size)
  config.trainer.optimizer_config = mlperf_lars_optimization(
      global_batch_size, train_steps, steps_per_epoch, weight_decay_exponent)
  return config


@exp_factory.register_config_factory('resnet50_imagenet_lars')
def resnet50_imagenet_lars() -> cfg.ExperimentConfig:
  """ResNet-50 on ImageNet, MLPerf LARS recipe, batch size 4096."""
  return resnet50_imagenet_lars_config()
