"""Tests for official_ext/benchmarks/graph_size.py."""

import tensorflow as tf

from official_ext.benchmarks import graph_size


def _op_count(function, *args):
  return len(function.get_concrete_function(*args).graph.get_operations())


def test_nested_functions_count_once_traced_and_per_call_expanded():

  @tf.function
  def leaf(x):
    return tf.sqrt(x * x + 1.0)

  @tf.function
  def middle(x):
    return leaf(x) + leaf(2.0 * x)

  @tf.function
  def top(x):
    return middle(x) - middle(-x)

  spec = tf.TensorSpec([3], tf.float32)
  leaf_ops, middle_ops, top_ops = (
      _op_count(f, spec) for f in (leaf, middle, top))

  size = graph_size.graph_size(
      top.get_concrete_function(spec).graph.as_graph_def())

  assert size.traced_ops == top_ops + middle_ops + leaf_ops
  assert size.expanded_ops == top_ops + 2 * (middle_ops + 2 * leaf_ops)


def test_graph_without_calls_counts_its_nodes():

  @tf.function
  def flat(x):
    return tf.reduce_sum(x * x)

  spec = tf.TensorSpec([4], tf.float32)
  graph_def = flat.get_concrete_function(spec).graph.as_graph_def()
  assert graph_size.graph_size(graph_def) == graph_size.GraphSize(
      _op_count(flat, spec), _op_count(flat, spec))
