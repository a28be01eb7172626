"""Tests for variable_names."""

import re

import tensorflow as tf

from official_ext.modeling.optimization import variable_names


def test_variable_name_is_the_same_on_every_replica():
  strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
  with strategy.scope():
    var = tf.Variable(1.0, name='d1/kernel')
  assert [variable_names.variable_name(v) for v in var.values] == [
      'd1/kernel:0'] * 2
  # The distributed variable itself, in cross-replica context.
  assert variable_names.variable_name(var) == 'd1/kernel:0'
  assert re.search('replica_1', var.values[1].name)


def test_plain_variable_keeps_its_name():
  assert variable_names.variable_name(tf.Variable(1.0, name='w')) == 'w:0'
