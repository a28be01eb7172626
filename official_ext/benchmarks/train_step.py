"""End-to-end workload: a whole ResNet-50 train step, not just the update.

The optimizer-step workloads time `apply_gradients` alone, which is where the
optimizers differ. This workload puts that difference in proportion: each
contender trains its own `tf_keras.applications.ResNet50` (random weights,
nothing downloaded) on one fixed batch of random images, so a step is the
forward pass, the backward pass and the optimizer's update, as in training.
`--quick` swaps in a three-layer convolutional model with the same kinds of
variables (kernels, biases, batch-normalization scales and offsets).
"""

from typing import Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from official_ext.benchmarks import optimizer_runs

WORKLOAD = 'resnet50_train'

# Small images keep a step within a second on two cores; the variables, and
# so the update's cost, are ResNet-50's whatever the image size.
IMAGE_SIZE = 96
BATCH_SIZE = 4
NUM_CLASSES = 1000
QUICK_IMAGE_SIZE = 8
QUICK_NUM_CLASSES = 10


def build_model(quick: bool) -> tf_keras.Model:
  """ResNet-50 (or, for `--quick`, a tiny convolutional model).

  Args:
    quick: build the tiny model.

  Returns:
    A model mapping `[batch, size, size, 3]` images to class logits.
  """
  if not quick:
    return tf_keras.applications.ResNet50(
        weights=None, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        classes=NUM_CLASSES, classifier_activation=None)
  return tf_keras.Sequential([
      tf_keras.Input((QUICK_IMAGE_SIZE, QUICK_IMAGE_SIZE, 3)),
      tf_keras.layers.Conv2D(4, 3, name='conv'),
      tf_keras.layers.BatchNormalization(name='conv_bn'),
      tf_keras.layers.GlobalAveragePooling2D(),
      tf_keras.layers.Dense(QUICK_NUM_CLASSES, name='logits'),
  ])


def batch(quick: bool) -> Tuple[tf.Tensor, tf.Tensor]:
  """A fixed, seeded batch of images and labels."""
  size = QUICK_IMAGE_SIZE if quick else IMAGE_SIZE
  classes = QUICK_NUM_CLASSES if quick else NUM_CLASSES
  rng = np.random.default_rng(0)
  images = rng.standard_normal((BATCH_SIZE, size, size, 3), np.float32)
  labels = rng.integers(0, classes, BATCH_SIZE)
  return tf.constant(images), tf.constant(labels)


def make_runner(candidate: optimizer_runs.Contender, quick: bool,
                jit_compile: bool) -> optimizer_runs.StepRunner:
  """A runner whose step trains a fresh, seeded model with `candidate`.

  Args:
    candidate: the optimizer.
    quick: use the tiny model and images.
    jit_compile: whether the step is XLA-compiled.

  Returns:
    The runner; a step is forward, backward and `apply_gradients`.
  """
  tf_keras.utils.set_random_seed(0)
  images, labels = batch(quick)
  model, optimizer = build_model(quick), candidate.make()

  def train_step():
    with tf.GradientTape() as tape:
      logits = model(images, training=True)
      loss = tf.reduce_mean(tf_keras.losses.sparse_categorical_crossentropy(
          labels, logits, from_logits=True))
    variables = model.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

  return optimizer_runs.StepRunner(optimizer, train_step,
                                   model.trainable_variables, jit_compile)
