"""Tests for official_ext/modeling/optimization/lars_update.py."""

import numpy as np
import pytest
import tensorflow as tf

from official_ext.modeling.optimization import lars_update


def _numpy_norm(x):
  return np.sqrt(np.sum(np.asarray(x, np.float64) ** 2))


@pytest.mark.parametrize('jit_compile', [False, True])
@pytest.mark.parametrize('shape', [(), (7,), (0,), (3, 0), (0, 3), (5, 3),
                                   (3, 3, 4, 6)])
def test_compiled_l2_norm_matches_numpy(shape, jit_compile):
  x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
  norm = tf.function(lars_update.compiled_l2_norm,
                     jit_compile=jit_compile)(tf.constant(x))
  np.testing.assert_allclose(norm.numpy(), _numpy_norm(x), rtol=1e-6)


@pytest.mark.parametrize('dtype', [tf.float16, tf.bfloat16])
def test_compiled_l2_norm_sums_half_precision_in_float32(dtype):
  # 300² · 4096 overflows float16 (max 65504) if summed in float16.
  x = tf.fill([64, 64], tf.constant(300.0, dtype))
  norm = tf.function(lars_update.compiled_l2_norm, jit_compile=True)(x)
  assert norm.dtype == tf.float32
  np.testing.assert_allclose(norm.numpy(), 300.0 * 64, rtol=1e-6)


def test_compiled_l2_norm_stays_precise_over_millions_of_elements():
  x = np.random.default_rng(1).standard_normal((4096, 1024)).astype(
      np.float32)
  norm = tf.function(lars_update.compiled_l2_norm,
                     jit_compile=True)(tf.constant(x))
  np.testing.assert_allclose(norm.numpy(), _numpy_norm(x), rtol=1e-6)


def _traced_ops(jit_compile):
  functions = []

  def trace():
    functions.append(lars_update.variable_update_function(
        tf.float32, decay=True, adapt=True, classic_momentum=True,
        nesterov=False))
    return tf.constant(0.0)

  tf.function(trace, jit_compile=jit_compile)()
  return {op.type for op in functions[0].graph.get_operations()}


def test_update_uses_the_compiled_norm_only_under_xla():
  compiled, plain = _traced_ops(jit_compile=True), _traced_ops(False)
  assert 'MatMul' in plain and 'Sum' not in plain
  assert 'Sum' in compiled and 'Square' in compiled


def test_update_function_is_traced_once_per_context():
  outside = lars_update.variable_update_function(
      tf.float32, True, True, True, False)
  assert outside is lars_update.variable_update_function(
      tf.float32, True, True, True, False)
  assert outside is not lars_update.variable_update_function(
      tf.float32, False, True, True, False)


def test_update_keeps_its_noinline_attribute():
  # The runtime then calls it once per variable instead of inlining it;
  # official_ext.benchmarks.runtime_calls measures that.
  update = lars_update.variable_update_function(
      tf.float32, True, True, True, False)
  assert update.function_def.attr['_noinline'].b

