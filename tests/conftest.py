"""Shared pytest setup: quiet TensorFlow and split the CPU into 4 devices.

Four logical CPU devices let `tf.distribute.MirroredStrategy` tests run 2 or 4
replicas on one machine. They must be configured before TensorFlow
initializes its runtime, hence here, once, for the whole session.
"""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf  # pylint: disable=g-import-not-at-top

NUM_LOGICAL_CPUS = 4

_cpus = tf.config.list_physical_devices('CPU')
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * NUM_LOGICAL_CPUS)
