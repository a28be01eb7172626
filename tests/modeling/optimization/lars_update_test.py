"""Tests for lars_update: the ops inside the per-variable update function.

The optimizer's traced graph holds one call op per variable, whatever the
update does, so these tests count the ops of the update function's own graph
and compare them with op sets written out here: Model Garden's update, and
exactly what each option adds when it is on. An option that is off adding
even one op fails them.

The norm used inside XLA-compiled steps, `xla_l2_norm`, is checked
against NumPy in float64, with and without XLA.
"""

import collections

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.modeling.optimization import lars as mg_lars
from official_ext.benchmarks import graph_size
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import lars_math
from official_ext.modeling.optimization import lars_update

# Model Garden's update of a float32 variable that gets weight decay and
# layer adaptation, classic momentum: the arguments (7 Placeholders), one
# read of w; g + λw (Mul, AddV2); ‖w‖ and ‖g + λw‖ (L2Loss, Mul by 2, Sqrt
# each); the guarded ratio η‖w‖/‖u‖ (Minimum, Greater, Mul, RealDiv,
# SelectV2); lr·t and lr·t·g (Mul, Mul); the fused momentum kernel; the
# constants (two 2s, 0, 1 and the kernel's lr) and the function's return
# (Identity, NoOp).
MODEL_GARDEN_OPS = collections.Counter({
    'Placeholder': 7, 'ReadVariableOp': 1, 'Mul': 6, 'AddV2': 1,
    'L2Loss': 2, 'Sqrt': 2, 'Minimum': 1,
    'Greater': 1, 'RealDiv': 1, 'SelectV2': 1, 'ResourceApplyMomentum': 1,
    'Const': 5, 'Identity': 1, 'NoOp': 1})

# What each option adds to MODEL_GARDEN_OPS when it is on.
ADDED_OPS = {
    'epsilon': {'AddV2': 1, 'Const': 1},
    'trust_clip': {'Greater': 1, 'RealDiv': 1, 'Minimum': 1, 'SelectV2': 1,
                   'Const': 3},
    'max_trust_ratio': {'Minimum': 1, 'Const': 1},
    # λ‖w‖ in the denominator; ‖g‖ replaces ‖g + λw‖.
    'trust_ratio_denominator': {'Mul': 1, 'AddV2': 1},
    # ‖g‖, a fourth argument and the write of the four values.
    'telemetry': {'Placeholder': 1, 'L2Loss': 1, 'Mul': 1, 'Sqrt': 1,
                  'Pack': 1, 'AssignVariableOp': 1, 'Const': 1},
}

OPTIONS_ON = {
    'epsilon': lars_math.TrustRatioOptions(epsilon=0.1),
    'trust_clip': lars_math.TrustRatioOptions(trust_clip=True),
    'max_trust_ratio': lars_math.TrustRatioOptions(max_trust_ratio=2.0),
    'trust_ratio_denominator': lars_math.TrustRatioOptions(denominator='paper'),
}


def update_ops(decay=True, adapt=True, options=lars_math.TrustRatioOptions(),
               telemetry=False):
  """Op types of the float32, classic-momentum update function's graph."""
  function = lars_update.variable_update_function(
      tf.float32, decay, adapt, True, False, options, telemetry)
  return collections.Counter(op.type for op in function.graph.get_operations())


def test_defaults_build_exactly_model_gardens_ops():
  assert update_ops() == MODEL_GARDEN_OPS


def test_each_option_adds_only_its_own_ops():
  for name, options in OPTIONS_ON.items():
    assert update_ops(options=options) == (
        MODEL_GARDEN_OPS + collections.Counter(ADDED_OPS[name])), name
  assert update_ops(telemetry=True) == (
      MODEL_GARDEN_OPS + collections.Counter(ADDED_OPS['telemetry']))


def test_excluded_variables_skip_their_ops():
  without_decay = MODEL_GARDEN_OPS - collections.Counter({'Mul': 1,
                                                          'AddV2': 1})
  assert update_ops(decay=False) == without_decay
  # The paper's denominator adds λ‖w‖ only for variables with weight decay.
  assert update_ops(decay=False, options=OPTIONS_ON[
      'trust_ratio_denominator']) == without_decay
  # No norms, no ratio: the update of momentum SGD with weight decay.
  assert update_ops(adapt=False) == collections.Counter({
      'Placeholder': 7, 'ReadVariableOp': 1, 'Mul': 2, 'AddV2': 1,
      'ResourceApplyMomentum': 1, 'Const': 1, 'Identity': 1, 'NoOp': 1})


def test_the_optimizer_calls_the_update_function_of_its_options():
  opt = lars.LARS(0.1, weight_decay_rate=1e-4, epsilon=0.1,
                  exclude_from_weight_decay=['bias'],
                  exclude_from_layer_adaptation=[])
  kernel = tf.Variable(tf.ones([3, 2]), name='dense/kernel')
  bias = tf.Variable(tf.ones([2]), name='dense/bias')

  @tf.function
  def apply():
    opt.apply_gradients([(tf.ones([3, 2]), kernel), (tf.ones([2]), bias)])

  graph_def = apply.get_concrete_function().graph.as_graph_def()
  called = [sorted(collections.Counter(node.op for node in f.node_def).items())
            for f in graph_def.library.function]
  epsilon = OPTIONS_ON['epsilon']
  expected = [update_ops(options=epsilon),
              update_ops(decay=False, options=epsilon)]
  # A FunctionDef lists its arguments in its signature, not as nodes.
  for ops in expected:
    del ops['Placeholder']
  assert sorted(called) == sorted(sorted(ops.items()) for ops in expected)


def _apply_graph_size(optimizer, num_variables):
  variables = [tf.Variable(tf.ones([4, 4]), name=f'layer_{i}/kernel')
               for i in range(num_variables)]
  grads = [tf.fill([4, 4], 0.5) for _ in range(num_variables)]

  @tf.function
  def apply():
    optimizer.apply_gradients(zip(grads, variables))

  return graph_size.graph_size(
      apply.get_concrete_function().graph.as_graph_def())


def test_traced_apply_graph_is_at_most_twice_momentum_sgd():
  """Traced ops count each update function's body once, as it is traced."""
  sgd = _apply_graph_size(tf_keras.optimizers.legacy.SGD(0.1, momentum=0.9),
                          50)
  ours = _apply_graph_size(
      lars.LARS(0.1, weight_decay_rate=1e-4, exclude_from_weight_decay=['x']),
      50)
  model_garden = _apply_graph_size(
      mg_lars.LARS(0.1, weight_decay_rate=1e-4), 50)
  assert ours.traced_ops <= 2 * sgd.traced_ops < model_garden.traced_ops


def _numpy_norm(x):
  return np.sqrt(np.sum(np.asarray(x, np.float64) ** 2))


@pytest.mark.parametrize('jit_compile', [False, True])
@pytest.mark.parametrize('shape', [(), (7,), (0,), (3, 0), (0, 3), (5, 3),
                                   (3, 3, 4, 6)])
def test_compiled_l2_norm_matches_numpy(shape, jit_compile):
  x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
  norm = tf.function(lars_update.xla_l2_norm,
                     jit_compile=jit_compile)(tf.constant(x))
  np.testing.assert_allclose(norm.numpy(), _numpy_norm(x), rtol=1e-6)


@pytest.mark.parametrize('dtype', [tf.float16, tf.bfloat16])
def test_compiled_l2_norm_sums_half_precision_in_float32(dtype):
  # 300² · 4096 overflows float16 (max 65504) if summed in float16.
  x = tf.fill([64, 64], tf.constant(300.0, dtype))
  norm = tf.function(lars_update.xla_l2_norm, jit_compile=True)(x)
  assert norm.dtype == tf.float32
  np.testing.assert_allclose(norm.numpy(), 300.0 * 64, rtol=1e-6)


def test_compiled_l2_norm_stays_precise_over_millions_of_elements():
  x = np.random.default_rng(1).standard_normal((4096, 1024)).astype(
      np.float32)
  norm = tf.function(lars_update.xla_l2_norm,
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
  assert 'L2Loss' in plain and 'Sum' not in plain
  assert 'Sum' in compiled and 'Square' in compiled and 'L2Loss' not in compiled


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

