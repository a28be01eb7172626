"""Tests of the keras.ops LARS formulas against NumPy, on this process's
backend (TensorFlow under pytest; other backends: lars_test.py)."""

import keras
import numpy as np
import pytest

from official_ext.keras import lars_update
from official_ext.modeling.optimization import lars_math


def _rule(**kwargs) -> lars_update.UpdateRule:
  values = dict(decay=True, adapt=True, classic_momentum=True, nesterov=False)
  values.update(kwargs)
  return lars_update.UpdateRule(**values)


@pytest.mark.parametrize('dtype', ['float32', 'float16', 'bfloat16'])
def test_l2_norm_is_float32_for_half_precision(dtype):
  x = np.full([300, 300], 2.0, np.float32)  # ‖x‖² = 360000: float16 overflows
  norm = lars_update.l2_norm(keras.ops.cast(x, dtype))
  assert keras.backend.standardize_dtype(norm.dtype) == 'float32'
  np.testing.assert_allclose(float(norm), 600.0, rtol=1e-6)


@pytest.mark.parametrize('shape', [(), (7,), (3, 5, 2, 4), (4, 0), (0,)])
def test_inner_product_sums_every_element_of_any_shape(shape):
  rng = np.random.default_rng(1)
  x, y = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
  got = lars_update.inner_product(keras.ops.convert_to_tensor(x),
                                  keras.ops.convert_to_tensor(y))
  np.testing.assert_allclose(float(got), float(np.sum(x.astype(np.float64) *
                                                      y)), rtol=1e-6,
                             atol=1e-6)


@pytest.mark.parametrize('param_norm,other_norm', [(0.0, 2.0), (3.0, 0.0),
                                                   (0.0, 0.0)])
def test_trust_ratio_is_one_when_a_norm_is_zero(param_norm, other_norm):
  ratio = lars_math.trust_ratio(
      keras.ops.convert_to_tensor(param_norm),
      keras.ops.convert_to_tensor(other_norm), 0.5,
      ops=lars_update.KERAS_OPS)
  assert float(ratio) == 1.0


@pytest.mark.parametrize('options,decay,expected', [
    # η‖w‖/‖u‖ = 0.5·3/2
    (dict(), True, 0.75),
    # η‖w‖/(‖g‖ + λ‖w‖ + ε) = 1.5/(4 + 0.1·3 + 0.7)
    (dict(denominator='paper', epsilon=0.7), True, 1.5 / 5.0),
    # without decay the paper's denominator drops λ‖w‖: 1.5/4
    (dict(denominator='paper'), False, 0.375),
    # LARC: min(0.75/lr, 1) with lr = 2
    (dict(trust_clip=True), True, 0.375),
    (dict(max_trust_ratio=0.25), True, 0.25),
])
def test_layer_trust_ratio_variants_in_keras_ops(options, decay, expected):
  paper = options.get('denominator') == 'paper'
  ratio = lars_math.layer_trust_ratio(
      keras.ops.convert_to_tensor(3.0),
      keras.ops.convert_to_tensor(4.0 if paper else 2.0), 0.5,
      keras.ops.convert_to_tensor(2.0), lars_math.TrustRatioOptions(**options),
      0.1 if decay else None, lars_update.KERAS_OPS)
  np.testing.assert_allclose(float(ratio), expected, rtol=1e-6)


def test_trust_clip_with_zero_learning_rate_keeps_ratio_one():
  ratio = lars_math.layer_trust_ratio(
      keras.ops.convert_to_tensor(3.0), keras.ops.convert_to_tensor(2.0), 0.5,
      keras.ops.convert_to_tensor(0.0),
      lars_math.TrustRatioOptions(trust_clip=True), None,
      lars_update.KERAS_OPS)
  assert float(ratio) == 1.0


def _numpy_step(w, v, g, lr, m, wd, eeta, classic, nesterov):
  g = g + wd * w
  if classic:
    lr_local = lr * eeta * np.linalg.norm(w) / np.linalg.norm(g)
    v_next = m * v + lr_local * g
    return w - (m * v_next + lr_local * g if nesterov else v_next), v_next
  v_next = m * v + g
  u = m * v_next + g if nesterov else v_next
  lr_local = lr * eeta * np.linalg.norm(w) / np.linalg.norm(u)
  return w - lr_local * u, v_next


@pytest.mark.parametrize('classic', [True, False])
@pytest.mark.parametrize('nesterov', [False, True])
@pytest.mark.parametrize('decay_scaled_apart', [True, False])
def test_lars_update_matches_numpy(classic, nesterov, decay_scaled_apart):
  rng = np.random.default_rng(1)
  w, v, g = (rng.standard_normal([5, 4]).astype(np.float32) for _ in range(3))
  param, velocity = lars_update.lars_update(
      _rule(classic_momentum=classic, nesterov=nesterov,
            decay_scaled_apart=decay_scaled_apart),
      keras.ops.convert_to_tensor(w), keras.ops.convert_to_tensor(v),
      keras.ops.convert_to_tensor(g), keras.ops.convert_to_tensor(0.3),
      momentum=0.9, weight_decay_rate=0.01, eeta=0.2)
  expected_param, expected_velocity = _numpy_step(
      w.astype(np.float64), v, g, 0.3, 0.9, 0.01, 0.2, classic, nesterov)
  np.testing.assert_allclose(keras.ops.convert_to_numpy(param),
                             expected_param, rtol=1e-5)
  np.testing.assert_allclose(keras.ops.convert_to_numpy(velocity),
                             expected_velocity, rtol=1e-5)
