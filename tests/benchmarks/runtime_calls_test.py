"""Tests for official_ext/benchmarks/runtime_calls.py."""

import tensorflow as tf

from official_ext.benchmarks import runtime_calls


def test_lars_update_calls_survive_graph_optimization():
  counts = runtime_calls.lars_step_call_counts()
  assert counts == {'traced': runtime_calls.NUM_VARIABLES,
                    'executed': runtime_calls.NUM_VARIABLES}


def test_an_ordinary_nested_function_is_counted_as_inlined():
  inner = tf.function(lambda x: x * 2.0 + 1.0)

  @tf.function
  def outer():
    return inner(tf.constant(1.0)) + inner(tf.constant(2.0))

  assert runtime_calls.call_counts(outer) == {'traced': 2, 'executed': 0}

