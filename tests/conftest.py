"""Shared pytest setup: quiet TensorFlow, 4 CPU devices, one launcher server.

Four logical CPU devices let `tf.distribute.MirroredStrategy` tests run 2 or 4
replicas on one machine. They must be configured before TensorFlow
initializes its runtime, hence here, once, for the whole session.

The `launcher` fixture runs `python -m official_ext.train` command lines as
forks of one process that imports TensorFlow and Model Garden once for the
session (tests/forked_launcher.py).
"""
import os
from typing import Iterator

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# pylint: disable=g-import-not-at-top
import pytest
import tensorflow as tf

from tests import forked_launcher
# pylint: enable=g-import-not-at-top

NUM_LOGICAL_CPUS = 4

_cpus = tf.config.list_physical_devices('CPU')
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * NUM_LOGICAL_CPUS)


@pytest.fixture(scope='session')
def launcher() -> Iterator[forked_launcher.ForkedLauncher]:
  """Launches `python -m official_ext.train`; see tests/forked_launcher.py."""
  with forked_launcher.ForkedLauncher() as server:
    yield server
