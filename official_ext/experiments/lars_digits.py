"""`lars_digits`: a small convnet trained with LARS on scikit-learn's digits.

The 1797 8x8 handwritten digits ship inside scikit-learn, so the experiment
needs no download. A fixed permutation splits them into 1437 training and 360
validation images. The optimizer is LARS (momentum 0.9, eeta 0.001, weight
decay 1e-4, BN and bias excluded from weight decay and adaptation) with a
linear warmup then polynomial decay; a train_and_eval run reaches >= 0.95
validation accuracy in about a minute on 2 CPU cores.

Training is deterministic and independent of the device topology: the initial
weights and the data order are seeded, every replica trains on its slice of
the same global batches, and batch norm statistics are synchronized across
replicas, so one device, `MirroredStrategy` and several workers train the same
model, and a resumed run continues with the batch an uninterrupted run would
have used.
"""
import dataclasses
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from official.core import base_task
from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import task_factory
from official.modeling import hyperparams

from official_ext.experiments import digits_data
from official_ext.experiments import lars_optimization

NUM_CLASSES = digits_data.NUM_CLASSES
IMAGE_SIZE = digits_data.IMAGE_SIZE
VALIDATION_EXAMPLES = 360
# Seeds the train/validation split, which must not change between runs.
_SPLIT_SEED = 0


@dataclasses.dataclass
class DigitsConvNet(hyperparams.Config):
  """A stack of 3x3 conv + BN + ReLU blocks, global pooling and a classifier.

  Attributes:
    filters: output channels of each conv block; a 2x2 max-pool follows every
      block but the last.
    use_sync_bn: batch norm over the global batch rather than each replica's
      slice of it, so that training does not depend on the number of replicas.
    seed: seeds the initial weights.
  """
  filters: List[int] = dataclasses.field(default_factory=lambda: [32, 64])
  use_sync_bn: bool = True
  seed: int = 0


@dataclasses.dataclass
class DigitsTaskConfig(cfg.TaskConfig):
  """Task config of the digits classifier."""
  model: DigitsConvNet = dataclasses.field(default_factory=DigitsConvNet)
  train_data: cfg.DataConfig = dataclasses.field(
      default_factory=lambda: cfg.DataConfig(  # pylint: disable=g-long-lambda
          is_training=True, global_batch_size=128, seed=0))
  validation_data: cfg.DataConfig = dataclasses.field(
      default_factory=lambda: cfg.DataConfig(  # pylint: disable=g-long-lambda
          is_training=False, global_batch_size=120, drop_remainder=False))


def load_split(is_training: bool) -> Tuple[np.ndarray, np.ndarray]:
  """Returns (images, labels) of the training or validation split.

  Args:
    is_training: the 1437-image training split if True, else the 360-image
      validation split.

  Returns:
    float32 images of shape [N, 8, 8, 1] scaled to [0, 1], int32 labels [N].
  """
  images, labels = digits_data.load_digits()
  order = np.random.RandomState(_SPLIT_SEED).permutation(len(labels))
  split = (order[VALIDATION_EXAMPLES:] if is_training
           else order[:VALIDATION_EXAMPLES])
  return images[split][..., np.newaxis], labels[split]


def build_convnet(model_config: DigitsConvNet) -> tf_keras.Model:
  """Builds the classifier; its logits stay float32 under mixed precision."""
  layers = [tf_keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1))]
  for i, filters in enumerate(model_config.filters):
    if i:
      layers.append(tf_keras.layers.MaxPool2D())
    layers += [
        tf_keras.layers.Conv2D(
            filters, 3, padding='same', use_bias=False,
            kernel_initializer=tf_keras.initializers.GlorotUniform(
                seed=model_config.seed + i)),
        tf_keras.layers.BatchNormalization(
            momentum=0.9, synchronized=model_config.use_sync_bn),
        tf_keras.layers.ReLU(),
    ]
  layers += [
      tf_keras.layers.GlobalAveragePooling2D(),
      tf_keras.layers.Dense(
          NUM_CLASSES, dtype='float32',
          kernel_initializer=tf_keras.initializers.GlorotUniform(
              seed=model_config.seed + len(model_config.filters))),
  ]
  return tf_keras.Sequential(layers, name='digits_convnet')


@task_factory.register_task_cls(DigitsTaskConfig)
class DigitsTask(base_task.Task):
  """Classifies the digits; Model Garden's default train and eval steps."""

  # The training input is a seeded, in-memory sequence of batches: a resumed
  # run skips the batches already trained on (official_ext.launcher.resumable_trainer).
  resumable_train_input = True

  def build_model(self) -> tf_keras.Model:
    return build_convnet(self.task_config.model)

  def build_inputs(
      self,
      params: cfg.DataConfig,
      input_context: Optional[tf.distribute.InputContext] = None
  ) -> tf.data.Dataset:
    """Builds the per-replica dataset of (images, labels) batches.

    Args:
      params: the split (`is_training`), global batch size and shuffle seed.
      input_context: the distribution input context, if any.

    Returns:
      For training, this pipeline's replicas' slices of the global batches of
      the shuffled, repeated split: every input pipeline draws the same global
      batches, so the data order does not depend on the number of workers or
      replicas. For validation, this pipeline's share of one pass.
    """
    images, labels = load_split(params.is_training)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    context = input_context or tf.distribute.InputContext()
    batch_size = context.get_per_replica_batch_size(params.global_batch_size)
    if params.is_training:
      dataset = dataset.shuffle(len(labels), seed=params.seed).repeat()
      dataset = dataset.batch(params.global_batch_size,
                              drop_remainder=params.drop_remainder)
      dataset = dataset.rebatch(batch_size)
    else:
      dataset = dataset.batch(batch_size, drop_remainder=params.drop_remainder)
    # Per-replica batch i goes to pipeline i % num_input_pipelines, which
    # feeds it to one of its replicas.
    dataset = dataset.shard(context.num_input_pipelines,
                            context.input_pipeline_id)
    return dataset.prefetch(tf.data.AUTOTUNE)

  def build_losses(self, labels, model_outputs, aux_losses=None) -> tf.Tensor:
    """Mean sparse softmax cross-entropy, plus any auxiliary losses."""
    loss = tf.reduce_mean(
        tf_keras.losses.sparse_categorical_crossentropy(
            labels, model_outputs, from_logits=True))
    if aux_losses:
      loss += tf.add_n(aux_losses)
    return loss

  def build_metrics(self, training: bool = True):
    del training
    return [tf_keras.metrics.SparseCategoricalAccuracy(name='accuracy')]


@exp_factory.register_config_factory('lars_digits')
def lars_digits() -> cfg.ExperimentConfig:
  """The digits convnet trained with LARS, warmup and polynomial decay."""
  train_steps = 400
  warmup_steps = 40
  return cfg.ExperimentConfig(
      task=DigitsTaskConfig(),
      trainer=cfg.TrainerConfig(
          train_steps=train_steps,
          steps_per_loop=100,
          summary_interval=100,
          checkpoint_interval=train_steps,
          validation_interval=200,
          validation_steps=-1,
          optimizer_config=(
              lars_optimization.lars_with_warmup_and_polynomial_decay(
                  base_learning_rate=3.0,
                  warmup_steps=warmup_steps,
                  decay_steps=train_steps - warmup_steps,
                  weight_decay_rate=1e-4))),
      restrictions=[
          'task.train_data.is_training != None',
          'task.validation_data.is_training != None',
      ])
