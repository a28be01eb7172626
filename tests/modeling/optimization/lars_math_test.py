"""Tests for lars_math: each formula on plain tensors, and the published
variants it implements, against golden numbers from their references.

Each reference below is transcribed from the named implementation's update
(float64 numpy, several steps, constant learning rate) and compared with
official_ext's LARS configured as docs/options.md's variants table says. The
learning rates are exact in float32, the dtype of Keras' learning-rate
hyperparameter, so float64 variables match to 1e-12.
"""

import numpy as np
import pytest
import tensorflow as tf

from official.modeling.optimization import lars as mg_lars
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import lars_math
from tests.modeling.optimization import lars_testing


# --------------------------------------------------------------- pure math


def test_trust_ratio_matches_formula_and_guards():
  eeta = tf.constant(0.001)
  got = lars_math.trust_ratio(tf.constant([2.0, 0.0, 3.0, 0.0]),
                         tf.constant([4.0, 5.0, 0.0, 0.0]), eeta)
  np.testing.assert_allclose(got.numpy(), [0.001 * 2.0 / 4.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize('dtype', [tf.float32, tf.float16, tf.bfloat16])
def test_l2_norm_matches_numpy_and_is_float32_for_half(dtype):
  x = np.random.RandomState(0).randn(3, 4, 5).astype(np.float32)
  got = lars_math.l2_loss_norm(tf.constant(x, dtype))
  expected_dtype = tf.float32 if dtype != tf.float32 else dtype
  assert got.dtype == expected_dtype
  reference = np.linalg.norm(tf.cast(tf.constant(x, dtype), tf.float32))
  np.testing.assert_allclose(got.numpy(), reference, rtol=1e-6)


def test_l2_norm_of_large_float16_tensor_does_not_overflow():
  x = tf.fill([300, 300], tf.constant(10.0, tf.float16))  # sum of squares 9e6
  np.testing.assert_allclose(lars_math.l2_loss_norm(x).numpy(), 3000.0, rtol=1e-6)


def test_l2_norm_of_an_embedding_sized_tensor_is_exact_to_float32_rounding():
  # BERT-base's word embeddings: 30522 x 768 values.
  x = np.random.RandomState(0).randn(30522, 768).astype(np.float32)
  reference = np.sqrt(np.sum(np.square(x, dtype=np.float64)))
  np.testing.assert_allclose(lars_math.l2_loss_norm(tf.constant(x)).numpy(),
                             reference, rtol=1e-6)


def test_weight_decayed_gradient_and_popular_momentum_on_plain_tensors():
  rs = np.random.RandomState(1)
  w, g, v = (rs.randn(4, 3) for _ in range(3))
  np.testing.assert_allclose(
      lars_math.weight_decayed_gradient(tf.constant(g), tf.constant(w), 0.1),
      g + 0.1 * w)
  for nesterov in (False, True):
    next_v, update = lars_math.popular_momentum(tf.constant(v),
                                                tf.constant(g), 0.9, nesterov)
    np.testing.assert_allclose(next_v, 0.9 * v + g)
    np.testing.assert_allclose(update,
                               0.9 * (0.9 * v + g) + g if nesterov else
                               0.9 * v + g)


def test_layer_adapted_learning_rate_on_plain_tensors():
  rs = np.random.RandomState(2)
  w, u = rs.randn(5, 2), rs.randn(5, 2)
  ratio = lars_math.trust_ratio(lars_math.l2_loss_norm(tf.constant(w)),
                                lars_math.l2_loss_norm(tf.constant(u)),
                                tf.constant(0.01, tf.float64))
  got = lars_math.layer_adapted_learning_rate(tf.constant(0.5, tf.float64),
                                              ratio)
  np.testing.assert_allclose(
      got, 0.5 * 0.01 * np.linalg.norm(w) / np.linalg.norm(u), rtol=1e-12)


def test_paper_trust_ratio_guards_and_optional_decay():
  got = lars_math.paper_trust_ratio(tf.constant([2.0, 0.0, 2.0]),
                               tf.constant([4.0, 4.0, 0.0]),
                               tf.constant(0.1), tf.constant(0.5), 1.0)
  np.testing.assert_allclose(got.numpy(),
                             [0.1 * 2.0 / (4.0 + 0.5 * 2.0 + 1.0), 1.0, 1.0])
  got = lars_math.paper_trust_ratio(tf.constant(2.0), tf.constant(4.0),
                               tf.constant(0.1), None)
  assert float(got) == pytest.approx(0.05)


def test_scaled_weight_decayed_gradient_is_the_scaled_sum():
  rng = np.random.default_rng(7)
  w, g = (rng.standard_normal(1000).astype(np.float32) for _ in range(2))
  got = lars_math.scaled_weight_decayed_gradient(
      tf.constant(g), tf.constant(w), 1e-4, tf.constant(0.3)).numpy()
  expected = 0.3 * (g.astype(np.float64) + 1e-4 * w.astype(np.float64))
  np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_larc_clipping_with_zero_learning_rate_leaves_the_factor_at_one():
  ratio = lars_math.larc_clipped_trust_ratio(tf.constant(0.3),
                                             tf.constant(0.0))
  assert float(ratio) == 1.0
  ratio = lars_math.larc_clipped_trust_ratio(tf.constant(0.3),
                                             tf.constant(0.5))
  assert float(ratio) == pytest.approx(0.6)


# ------------------ published variants: golden numbers from the references


def _reference_norms(w, g):
  return np.linalg.norm(w), np.linalg.norm(g)


def mlperf_reference_step(w, g, v, *, lr, momentum, weight_decay, eeta,
                          epsilon, nesterov, skip):
  """mlcommons/training image_classification/tensorflow2/lars_optimizer.py.

  `compute_lr` then `_resource_apply_dense`; its momentum slot holds `-v`.
  """
  scaled_lr = lr
  if not skip:
    w_norm, g_norm = _reference_norms(w, g)
    trust = (eeta * w_norm / (g_norm + weight_decay * w_norm + epsilon)
             if w_norm > 0 and g_norm > 0 else 1.0)
    scaled_lr = lr * trust
    g = g + weight_decay * w
  mom = -v * momentum - g * scaled_lr
  w = (w + mom * momentum - g * scaled_lr) if nesterov else w + mom
  return w, -mom


def timm_reference_step(w, g, buf, *, lr, momentum, weight_decay, trust_coeff,
                        eps, trust_clip, nesterov):
  """timm `Lars.step` (optim/lars.py), dampening 0; equal to Apex `LARC`
  (clip=trust_clip) around torch SGD for non-zero norms. `buf` is the
  momentum buffer, `v / lr` in official_ext's terms."""
  w_norm, g_norm = _reference_norms(w, g)
  trust = trust_coeff * w_norm / (g_norm + w_norm * weight_decay + eps)
  trust = trust if w_norm > 0 and g_norm > 0 else 1.0
  if trust_clip:
    trust = min(trust / lr, 1.0)
  grad = (g + weight_decay * w) * trust
  buf = momentum * buf + grad
  step = grad + momentum * buf if nesterov else buf
  return w - lr * step, buf, trust


def optax_reference_step(w, g, trace, *, lr, momentum, weight_decay,
                         trust_coefficient, eps, nesterov):
  """optax.lars: add_decayed_weights, scale_by_trust_ratio(eps),
  scale_by_learning_rate, trace(momentum, nesterov)."""
  u = g + weight_decay * w
  w_norm, u_norm = _reference_norms(w, u)
  trust = trust_coefficient * w_norm / (u_norm + eps)
  u = u * (1.0 if w_norm == 0 or u_norm == 0 else trust)
  u = -lr * u
  trace = u + momentum * trace
  update = u + momentum * trace if nesterov else trace
  return w + update, trace


def _variant_variables(scales):
  """Variables whose ‖w‖/‖g‖ differ by the given factors, and gradients."""
  rs = np.random.RandomState(20)
  values = {f'layer_{i}/kernel:0': rs.randn(5, 3) * scale
            for i, scale in enumerate(scales)}
  values['layer_0/bias:0'] = rs.randn(3)
  grads = [{k: rs.randn(*x.shape) for k, x in values.items()}
           for _ in range(4)]
  return values, grads


def _run_variant(optimizer, values, grads):
  variables = {k: tf.Variable(x, dtype=tf.float64, name=k.split(':')[0])
               for k, x in values.items()}
  for step_grads in grads:
    optimizer.apply_gradients(
        (tf.constant(step_grads[k], tf.float64), variables[k])
        for k in values)
  return {k: v.numpy() for k, v in variables.items()}


@pytest.mark.parametrize('nesterov', [False, True])
def test_paper_denominator_matches_mlperf_reference(nesterov):
  hyper = dict(momentum=0.9, eeta=0.01, nesterov=nesterov)
  values, grads = _variant_variables([1.0, 30.0])
  got = _run_variant(
      lars.LARS(learning_rate=0.75, weight_decay_rate=0.05,
                trust_ratio_denominator='paper', epsilon=1e-3,
                exclude_from_weight_decay=['bias'], **hyper), values, grads)
  for name, w in values.items():
    v = np.zeros_like(w)
    for step_grads in grads:
      w, v = mlperf_reference_step(
          w, step_grads[name], v, lr=0.75, weight_decay=0.05, epsilon=1e-3,
          skip='bias' in name, **hyper)
    np.testing.assert_allclose(got[name], w, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize('nesterov', [False, True])
@pytest.mark.parametrize('trust_clip', [False, True])
def test_larc_clip_and_paper_denominator_match_timm_and_apex(trust_clip,
                                                            nesterov):
  lr, eeta, weight_decay, eps = 0.0625, 0.02, 1e-3, 1e-8
  # ‖w‖/‖g‖ ≈ 0.5 and ≈ 20 give trust ratios below and above lr, so LARC
  # clipping leaves one variable alone and caps the other.
  values, grads = _variant_variables([0.5, 20.0])
  del values['layer_0/bias:0']
  got = _run_variant(
      lars.LARS(learning_rate=lr, momentum=0.9, eeta=eeta,
                weight_decay_rate=weight_decay, nesterov=nesterov,
                trust_ratio_denominator='paper', epsilon=eps,
                trust_clip=trust_clip), values, grads)
  clipped = []
  for name, w in values.items():
    buf = np.zeros_like(w)
    for step_grads in grads:
      w, buf, trust = timm_reference_step(
          w, step_grads[name], buf, lr=lr, momentum=0.9,
          weight_decay=weight_decay, trust_coeff=eeta, eps=eps,
          trust_clip=trust_clip, nesterov=nesterov)
      clipped.append(trust == 1.0)
    np.testing.assert_allclose(got[name], w, rtol=1e-12, atol=1e-13)
  if trust_clip:
    assert any(clipped) and not all(clipped)


@pytest.mark.parametrize('nesterov', [False, True])
def test_model_garden_denominator_with_epsilon_matches_optax(nesterov):
  values, grads = _variant_variables([1.0, 0.01])
  eps = 0.5  # Large enough to matter next to ‖g + λw‖ ≈ 4.
  got = _run_variant(
      lars.LARS(learning_rate=0.25, momentum=0.9, eeta=0.05,
                weight_decay_rate=0.01, nesterov=nesterov, epsilon=eps,
                exclude_from_layer_adaptation=[]), values, grads)
  for name, w in values.items():
    trace = np.zeros_like(w)
    for step_grads in grads:
      w, trace = optax_reference_step(
          w, step_grads[name], trace, lr=0.25, momentum=0.9,
          weight_decay=0.01, trust_coefficient=0.05, eps=eps,
          nesterov=nesterov)
    np.testing.assert_allclose(got[name], w, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize('classic', [True, False])
def test_max_trust_ratio_bounds_the_factor(classic):
  bound = 0.05
  values, grads = _variant_variables([0.05, 20.0])
  hyper = dict(momentum=0.9, weight_decay_rate=0.0, eeta=0.01,
               nesterov=False, classic_momentum=classic)
  got = _run_variant(lars.LARS(learning_rate=0.25, max_trust_ratio=bound,
                               exclude_from_layer_adaptation=[], **hyper),
                     values, grads)
  bounded = []
  for name, w in values.items():
    v = np.zeros_like(w)
    for step_grads in grads:
      g = step_grads[name]
      u = g if classic else 0.9 * v + g
      ratio = 0.01 * np.linalg.norm(w) / np.linalg.norm(u)
      bounded.append(ratio > bound)
      local_lr = 0.25 * min(ratio, bound)
      v = 0.9 * v + (local_lr * g if classic else g)
      w = w - (v if classic else local_lr * v)
    np.testing.assert_allclose(got[name], w, rtol=1e-12, atol=1e-13)
  assert any(bounded) and not all(bounded)


def test_all_variant_options_compose_in_order():
  """Paper denominator + ε, then LARC clipping, then the upper bound."""
  lr, eeta, wd, eps, bound = 0.125, 0.02, 1e-2, 1e-6, 0.6
  w0 = np.random.RandomState(21).randn(6, 4)
  g = np.random.RandomState(22).randn(6, 4) * 0.01
  var = tf.Variable(w0, name='k')
  lars.LARS(learning_rate=lr, momentum=0.0, eeta=eeta, weight_decay_rate=wd,
            trust_ratio_denominator='paper', epsilon=eps, trust_clip=True,
            max_trust_ratio=bound).apply_gradients([(tf.constant(g), var)])
  w_norm, g_norm = np.linalg.norm(w0), np.linalg.norm(g)
  ratio = eeta * w_norm / (g_norm + wd * w_norm + eps)
  factor = min(min(ratio / lr, 1.0), bound)
  assert factor == bound  # Every stage mattered: ratio/lr > 1 > bound.
  np.testing.assert_allclose(var.numpy(), w0 - lr * factor * (g + wd * w0),
                             rtol=1e-12)


def test_variant_options_at_their_defaults_are_model_gardens_update():
  explicit = dict(trust_ratio_denominator='model_garden', epsilon=0.0,
                  trust_clip=False, max_trust_ratio=None, telemetry=False)
  kwargs = dict(learning_rate=0.4, weight_decay_rate=1e-3, nesterov=True,
                exclude_from_weight_decay=['batch_normalization'])
  with_defaults = lars_testing.train(lars.LARS(**kwargs, **explicit))
  # Bit for bit the update without the options...
  lars_testing.assert_weights_close(
      with_defaults.get_weights(),
      lars_testing.train(lars.LARS(**kwargs)).get_weights(), rtol=0)
  # ... and Model Garden's, to float32 rounding (norms are summed in another
  # order).
  lars_testing.assert_weights_close(
      with_defaults.get_weights(),
      lars_testing.train(mg_lars.LARS(**kwargs)).get_weights())
  assert lars.LARS(**explicit).trust_ratio_options == (
      lars_math.TrustRatioOptions('model_garden', 0.0, False, None))


def test_paper_denominator_adds_no_decay_term_for_an_excluded_variable():
  """A variable excluded from weight decay but adapted: t = η‖w‖/‖g‖."""
  w0, g = np.array([3.0, 4.0]), np.array([0.6, -0.8])
  bias = tf.Variable(w0, name='dense/bias')
  lars.LARS(learning_rate=0.5, momentum=0.0, eeta=0.1, weight_decay_rate=0.5,
            trust_ratio_denominator='paper', exclude_from_weight_decay=['bias'],
            exclude_from_layer_adaptation=[]).apply_gradients(
                [(tf.constant(g), bias)])
  # ‖w‖ = 5, ‖g‖ = 1: t = 0.1·5/1 = 0.5 (with λ‖w‖ it would be 0.5/3.5).
  np.testing.assert_allclose(bias.numpy(), w0 - 0.5 * 0.5 * g, rtol=1e-12)
