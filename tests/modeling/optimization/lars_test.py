"""Tests for official_ext's LARS: math, parity with Model Garden, fixed defects.

Two independent oracles: `numpy_lars_step`, written from the formula of
You et al. 2017 as Model Garden states it, and Model Garden's own
`official.modeling.optimization.lars.LARS`. Tests of a deliberate difference
from Model Garden run against both classes; on Model Garden's they are
expected to fail (`xfail(strict=True)`), so each difference stays proven.
"""

import itertools
import re

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.modeling.optimization import lars as mg_lars
from official.modeling.optimization import lr_schedule
from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import lars_math

MG_DEFECT = pytest.mark.xfail(strict=True,
                              reason="Model Garden's LARS has this defect")
BOTH_CLASSES = [
    pytest.param(lars.LARS, id='official_ext'),
    pytest.param(mg_lars.LARS, id='model_garden', marks=MG_DEFECT),
]


def numpy_lars_step(w, g, v, *, lr, momentum, weight_decay_rate, eeta,
                    nesterov, classic_momentum, decay, adapt):
  """One LARS step in float64 numpy, from the paper's formula."""

  def trust(w_norm, u_norm):
    return eeta * w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0

  if decay:
    g = g + weight_decay_rate * w
  if classic_momentum:
    local_lr = lr * (trust(np.linalg.norm(w), np.linalg.norm(g))
                     if adapt else 1.0)
    v = momentum * v + local_lr * g
    update = momentum * v + local_lr * g if nesterov else v
    return w - update, v
  v = momentum * v + g
  update = momentum * v + g if nesterov else v
  local_lr = lr * (trust(np.linalg.norm(w), np.linalg.norm(update))
                   if adapt else 1.0)
  return w - local_lr * update, v


# ----------------------------------------------------------------- pure math


def test_trust_ratio_matches_formula_and_guards():
  eeta = tf.constant(0.001)
  got = lars_math.trust_ratio(tf.constant([2.0, 0.0, 3.0, 0.0]),
                         tf.constant([4.0, 5.0, 0.0, 0.0]), eeta)
  np.testing.assert_allclose(got.numpy(), [0.001 * 2.0 / 4.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize('dtype', [tf.float32, tf.float16, tf.bfloat16])
def test_l2_norm_matches_numpy_and_is_float32_for_half(dtype):
  x = np.random.RandomState(0).randn(3, 4, 5).astype(np.float32)
  got = lars_math.l2_norm(tf.constant(x, dtype))
  expected_dtype = tf.float32 if dtype != tf.float32 else dtype
  assert got.dtype == expected_dtype
  reference = np.linalg.norm(tf.cast(tf.constant(x, dtype), tf.float32))
  np.testing.assert_allclose(got.numpy(), reference, rtol=1e-6)


def test_l2_norm_of_large_float16_tensor_does_not_overflow():
  x = tf.fill([300, 300], tf.constant(10.0, tf.float16))  # sum of squares 9e6
  np.testing.assert_allclose(lars_math.l2_norm(x).numpy(), 3000.0, rtol=1e-6)


def test_weight_decayed_gradient_and_popular_momentum_on_plain_tensors():
  rs = np.random.RandomState(1)
  w, g, v = (rs.randn(4, 3) for _ in range(3))
  np.testing.assert_allclose(
      lars_math.weight_decayed_gradient(tf.constant(g), tf.constant(w), 0.1),
      g + 0.1 * w)
  for nesterov in (False, True):
    next_v, update = lars_math.popular_momentum(tf.constant(v), tf.constant(g), 0.9,
                                           nesterov)
    np.testing.assert_allclose(next_v, 0.9 * v + g)
    np.testing.assert_allclose(update,
                               0.9 * (0.9 * v + g) + g if nesterov else
                               0.9 * v + g)


def test_layer_adapted_learning_rate_on_plain_tensors():
  rs = np.random.RandomState(2)
  w, u = rs.randn(5, 2), rs.randn(5, 2)
  ratio = lars_math.trust_ratio(lars_math.l2_norm(tf.constant(w)),
                           lars_math.l2_norm(tf.constant(u)),
                           tf.constant(0.01, tf.float64))
  got = lars_math.layer_adapted_learning_rate(tf.constant(0.5, tf.float64), ratio)
  np.testing.assert_allclose(
      got, 0.5 * 0.01 * np.linalg.norm(w) / np.linalg.norm(u), rtol=1e-12)


# ------------------------------------------------- full steps vs numpy oracle

ALL_MODES = list(
    itertools.product([True, False], [False, True], [0.0, 0.01],
                      [None, ['bias']]))


@pytest.mark.parametrize('classic,nesterov,weight_decay_rate,excluded',
                         ALL_MODES)
def test_steps_match_numpy_reference(classic, nesterov, weight_decay_rate,
                                     excluded):
  rs = np.random.RandomState(3)
  values = {'layer/kernel:0': rs.randn(6, 4), 'layer/bias:0': rs.randn(4)}
  grads = [{k: rs.randn(*x.shape) for k, x in values.items()}
           for _ in range(5)]
  hyper = dict(momentum=0.9, weight_decay_rate=weight_decay_rate, eeta=0.01,
               nesterov=nesterov, classic_momentum=classic)
  opt = lars.LARS(learning_rate=0.3, exclude_from_weight_decay=excluded,
                  **hyper)
  variables = {k: tf.Variable(x.astype(np.float32), name=k.split(':')[0])
               for k, x in values.items()}
  reference = {k: (x, np.zeros_like(x)) for k, x in values.items()}
  for step_grads in grads:
    opt.apply_gradients(
        (tf.constant(step_grads[k], tf.float32), variables[k])
        for k in values)
    for k in values:
      excluded_here = bool(excluded) and 'bias' in k
      reference[k] = numpy_lars_step(
          *reference[k][:1], step_grads[k], reference[k][1], lr=0.3,
          decay=bool(weight_decay_rate) and not excluded_here,
          adapt=not excluded_here, **hyper)
  for k, var in variables.items():
    np.testing.assert_allclose(var.numpy(), reference[k][0], rtol=2e-5,
                               atol=2e-6)
    np.testing.assert_allclose(
        opt.get_slot(var, 'momentum').numpy(), reference[k][1], rtol=2e-5,
        atol=2e-6)


# ------------------------------------------- parity with Model Garden's LARS


def _parity_model():
  """A model with several layer types; no bias feeds a normalization layer,
  so no variable's gradient is pure rounding noise."""
  tf_keras.utils.set_random_seed(7)
  return tf_keras.Sequential([
      tf_keras.layers.Conv2D(6, 3, use_bias=False, input_shape=(8, 8, 2)),
      tf_keras.layers.BatchNormalization(),
      tf_keras.layers.ReLU(),
      tf_keras.layers.DepthwiseConv2D(3, use_bias=False),
      tf_keras.layers.LayerNormalization(),
      tf_keras.layers.Flatten(),
      tf_keras.layers.Dense(16, activation='tanh'),
      tf_keras.layers.Dense(5),
  ])


_PARITY_X = np.random.RandomState(0).randn(32, 8, 8, 2).astype(np.float32)
_PARITY_Y = np.random.RandomState(1).randint(0, 5, size=32)


def _train(optimizer, steps=10, model=None, use_function=True):
  model = model or _parity_model()

  def step():
    with tf.GradientTape() as tape:
      logits = model(_PARITY_X, training=True)
      loss = tf.reduce_mean(
          tf_keras.losses.sparse_categorical_crossentropy(
              _PARITY_Y, logits, from_logits=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

  step = tf.function(step) if use_function else step
  for _ in range(steps):
    step()
  return model


def assert_weights_close(actual, expected, rtol=1e-6):
  """Relative error of each variable, measured against its own scale."""
  for a, e in zip(actual, expected):
    a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
    scale = max(np.max(np.abs(e)), 1e-12)
    assert np.max(np.abs(a - e)) / scale <= rtol, (
        f'relative difference {np.max(np.abs(a - e)) / scale:.3g} > {rtol}')


PARITY_EXCLUSIONS = [
    (None, None),
    (['batch_normalization', 'layer_normalization', 'bias'], None),
    (['bias'], ['batch_normalization', 'layer_normalization']),
]


@pytest.mark.parametrize(
    'classic,nesterov,weight_decay_rate,exclusions',
    list(itertools.product([True, False], [False, True], [0.0, 5e-3],
                           PARITY_EXCLUSIONS)))
def test_ten_steps_match_model_garden(classic, nesterov, weight_decay_rate,
                                      exclusions):
  kwargs = dict(learning_rate=0.4, momentum=0.9, eeta=0.01,
                weight_decay_rate=weight_decay_rate, nesterov=nesterov,
                classic_momentum=classic,
                exclude_from_weight_decay=exclusions[0],
                exclude_from_layer_adaptation=exclusions[1])
  ours = _train(lars.LARS(**kwargs))
  theirs = _train(mg_lars.LARS(**kwargs))
  assert_weights_close(ours.get_weights(), theirs.get_weights())
  # The models did train: parity of two no-ops would prove nothing.
  assert not np.allclose(ours.get_weights()[0],
                         _parity_model().get_weights()[0])


@pytest.mark.parametrize('clip', [{'clipnorm': 0.1}, {'clipvalue': 0.01},
                                  {'global_clipnorm': 0.2}])
def test_clipping_matches_model_garden(clip):
  kwargs = dict(learning_rate=0.4, weight_decay_rate=1e-3, **clip)
  assert_weights_close(
      _train(lars.LARS(**kwargs), steps=4).get_weights(),
      _train(mg_lars.LARS(**kwargs), steps=4).get_weights())


def test_learning_rate_schedule_matches_model_garden():
  def schedule():
    return lr_schedule.LinearWarmup(
        tf_keras.optimizers.schedules.PolynomialDecay(1.0, 20, 0.01),
        warmup_steps=3, warmup_learning_rate=0.0)

  assert_weights_close(
      _train(lars.LARS(schedule(), weight_decay_rate=1e-3)).get_weights(),
      _train(mg_lars.LARS(schedule(), weight_decay_rate=1e-3)).get_weights())


# ------------------------------------------------------- defaults and API


def test_constructor_defaults_equal_model_garden():
  ours, theirs = lars.LARS(), mg_lars.LARS()
  for attr in ('momentum', 'weight_decay_rate', 'eeta', 'nesterov',
               'classic_momentum', 'exclude_from_weight_decay',
               'exclude_from_layer_adaptation'):
    assert getattr(ours, attr) == getattr(theirs, attr), attr
  assert ours._name == theirs._name == 'LARS'  # pylint: disable=protected-access
  assert float(ours._get_hyper('learning_rate')) == pytest.approx(0.01)  # pylint: disable=protected-access
  assert isinstance(ours, tf_keras.optimizers.legacy.Optimizer)


def test_clip_attributes():
  opt = lars.LARS(clipnorm=1.5, clipvalue=0.5)
  assert (opt.clipnorm, opt.clipvalue, opt.global_clipnorm) == (1.5, 0.5, None)
  assert lars.LARS(global_clipnorm=2.0).global_clipnorm == 2.0


def test_clipvalue_bounds_the_raw_gradient():
  var = tf.Variable([1.0, 1.0], name='w')
  opt = lars.LARS(learning_rate=1.0, momentum=0.0, clipvalue=0.5,
                  exclude_from_layer_adaptation=['w'])
  opt.apply_gradients([(tf.constant([3.0, -0.2]), var)])
  np.testing.assert_allclose(var.numpy(), [0.5, 1.2], rtol=1e-6)


def test_slots_weights_variables_iterations():
  var = tf.Variable(tf.ones([3, 2]), name='w')
  opt = lars.LARS()
  assert opt.get_slot_names() == []
  opt.apply_gradients([(tf.ones([3, 2]), var)])
  assert opt.get_slot_names() == ['momentum']
  slot = opt.get_slot(var, 'momentum')
  assert slot.shape == var.shape
  assert int(opt.iterations) == 1
  assert opt.weights == opt.variables()
  assert opt.weights[0] is opt.iterations
  assert any(w is slot for w in opt.weights)


def test_add_slot_and_add_weight():
  var = tf.Variable(tf.zeros([2]), name='w')
  opt = lars.LARS()
  extra = opt.add_slot(var, 'extra', initializer='ones')
  np.testing.assert_array_equal(opt.get_slot(var, 'extra').numpy(), [1, 1])
  assert extra is opt.get_slot(var, 'extra')
  counter = opt.add_weight('counter', shape=[3], initializer='ones')
  np.testing.assert_array_equal(counter.numpy(), [1, 1, 1])
  # Tracked, so checkpoints save it.
  assert opt._trackable_children()['counter'] is counter  # pylint: disable=protected-access


def test_minimize_with_tape_and_callable_loss():
  var = tf.Variable([1.0, -2.0], name='w')
  opt = lars.LARS(learning_rate=0.1, momentum=0.0, eeta=1.0)
  opt.minimize(lambda: tf.reduce_sum(var**2), var_list=[var])
  # g = 2w; trust = ‖w‖/‖2w‖ = 1/2; w ← w − 0.1·(1/2)·2w = 0.9·w.
  np.testing.assert_allclose(var.numpy(), [0.9, -1.8], rtol=1e-6)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(var**2)
  opt.minimize(loss, var_list=[var], tape=tape)
  np.testing.assert_allclose(var.numpy(), [0.81, -1.62], rtol=1e-6)
  assert int(opt.iterations) == 2


def test_get_gradients_and_get_updates_in_graph_mode():
  with tf.Graph().as_default():
    var = tf.Variable([1.0, 2.0], name='w')
    loss = tf.reduce_sum(var**2)
    opt = lars.LARS(learning_rate=0.1, momentum=0.0, eeta=1.0)
    grads = opt.get_gradients(loss, [var])
    updates = opt.get_updates(loss, [var])
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      np.testing.assert_allclose(sess.run(grads)[0], [2.0, 4.0])
      sess.run(updates)
      np.testing.assert_allclose(sess.run(var), [0.9, 1.8], rtol=1e-6)


def test_get_weights_set_weights_round_trip_continues_identically():
  model_a, model_b = _parity_model(), _parity_model()
  opt_a = lars.LARS(learning_rate=0.4, weight_decay_rate=1e-3)
  _train(opt_a, steps=3, model=model_a)
  opt_b = lars.LARS(learning_rate=0.4, weight_decay_rate=1e-3)
  opt_b._create_all_weights(model_b.trainable_variables)  # pylint: disable=protected-access
  opt_b.set_weights(opt_a.get_weights())
  model_b.set_weights(model_a.get_weights())
  assert int(opt_b.iterations) == 3
  _train(opt_a, steps=2, model=model_a)
  _train(opt_b, steps=2, model=model_b)
  assert_weights_close(model_b.get_weights(), model_a.get_weights(), rtol=0)


def test_checkpoint_round_trip_continues_identically(tmp_path):
  model_a = _parity_model()
  opt_a = lars.LARS(learning_rate=0.4, weight_decay_rate=1e-3, nesterov=True)
  _train(opt_a, steps=3, model=model_a)
  path = tf.train.Checkpoint(model=model_a, optimizer=opt_a).save(
      str(tmp_path / 'ckpt'))
  model_b = _parity_model()
  opt_b = lars.LARS(learning_rate=0.4, weight_decay_rate=1e-3, nesterov=True)
  tf.train.Checkpoint(model=model_b, optimizer=opt_b).restore(path)
  _train(opt_a, steps=2, model=model_a)
  _train(opt_b, steps=2, model=model_b)
  assert int(opt_b.iterations) == 5
  assert_weights_close(model_b.get_weights(), model_a.get_weights(), rtol=0)


def test_model_garden_checkpoint_restores_into_ours(tmp_path):
  """Same slot names and meaning: a drop-in replacement resumes MG runs."""
  model_mg = _parity_model()
  opt_mg = mg_lars.LARS(learning_rate=0.4, weight_decay_rate=1e-3)
  _train(opt_mg, steps=3, model=model_mg)
  path = tf.train.Checkpoint(model=model_mg, optimizer=opt_mg).save(
      str(tmp_path / 'ckpt'))
  model_ours = _parity_model()
  opt_ours = lars.LARS(learning_rate=0.4, weight_decay_rate=1e-3)
  tf.train.Checkpoint(model=model_ours, optimizer=opt_ours).restore(path)
  _train(opt_mg, steps=2, model=model_mg)
  _train(opt_ours, steps=2, model=model_ours)
  assert_weights_close(model_ours.get_weights(), model_mg.get_weights())


# ------------------------------------------- get_config / from_config


# What the optimizers below are built with, written out: a field that
# get_config drops, or from_config ignores, fails the comparison.
MODEL_GARDEN_ARGUMENTS = dict(
    momentum=0.8, weight_decay_rate=1e-4, eeta=0.002, nesterov=True,
    classic_momentum=False, exclude_from_weight_decay=['bias'],
    exclude_from_layer_adaptation=['gamma'], name='my_lars')


@pytest.mark.parametrize('cls', BOTH_CLASSES)
def test_get_config_returns_every_constructor_argument(cls):
  opt = cls(learning_rate=0.3, clipnorm=1.0, **MODEL_GARDEN_ARGUMENTS)
  expected = dict(MODEL_GARDEN_ARGUMENTS, clipnorm=1.0)
  for config in (opt.get_config(), cls.from_config(opt.get_config()).get_config()):
    assert {key: config[key] for key in expected} == expected
    assert config['learning_rate'] == pytest.approx(0.3)


@pytest.mark.parametrize('cls', BOTH_CLASSES)
def test_from_config_continues_training_identically(cls):
  opt = cls(learning_rate=0.4, weight_decay_rate=1e-3,
            exclude_from_weight_decay=['batch_normalization'],
            exclude_from_layer_adaptation=['layer_normalization'])
  clone = cls.from_config(opt.get_config())
  assert_weights_close(_train(clone, steps=4).get_weights(),
                       _train(opt, steps=4).get_weights(), rtol=0)


def _schedules():
  keras_schedules = tf_keras.optimizers.schedules
  yield keras_schedules.PiecewiseConstantDecay([2, 4], [0.5, 0.2, 0.1])
  yield keras_schedules.CosineDecay(0.5, 10, alpha=0.1)
  yield lr_schedule.PolynomialWarmUp(
      keras_schedules.PolynomialDecay(0.5, 10, 0.01, power=2.0),
      warmup_steps=3, power=1.0)
  yield lr_schedule.LinearWarmup(
      lr_schedule.CosineDecayWithOffset(offset=2, initial_learning_rate=0.5,
                                        decay_steps=10),
      warmup_steps=2, warmup_learning_rate=0.01)
  yield lr_schedule.PowerAndLinearDecay(0.5, total_decay_steps=10, power=-0.5,
                                        linear_decay_fraction=0.5)
  yield lr_schedule.StepCosineDecayWithOffset(
      boundaries=[0, 5], values=[0.5, 0.1], offset=1)


@pytest.mark.parametrize('cls', BOTH_CLASSES)
@pytest.mark.parametrize('schedule', list(_schedules()),
                         ids=lambda s: type(s).__name__)
def test_from_config_rebuilds_learning_rate_schedules(cls, schedule):
  opt = cls(learning_rate=schedule)
  clone = cls.from_config(opt.get_config())
  restored = clone._get_hyper('learning_rate')  # pylint: disable=protected-access
  assert type(restored) is type(schedule)  # pylint: disable=unidiomatic-typecheck
  for step in (0, 1, 2, 3, 5, 8, 12):
    np.testing.assert_allclose(float(restored(step)), float(schedule(step)),
                               rtol=1e-6)


class HalvingSchedule(tf_keras.optimizers.schedules.LearningRateSchedule):
  """A user schedule known only through `custom_objects`."""

  def __init__(self, initial):
    self.initial = initial

  def __call__(self, step):
    return self.initial * tf.pow(0.5, tf.cast(step, tf.float32))

  def get_config(self):
    return {'initial': self.initial}


def test_from_config_honours_custom_objects():
  config = lars.LARS(learning_rate=HalvingSchedule(0.8)).get_config()
  with pytest.raises(ValueError, match='HalvingSchedule'):
    lars.LARS.from_config(config)
  clone = lars.LARS.from_config(
      config, custom_objects={'HalvingSchedule': HalvingSchedule})
  restored = clone._get_hyper('learning_rate')  # pylint: disable=protected-access
  assert float(restored(2)) == pytest.approx(0.2)


# ------------------------------------------------------ exclusion semantics


@pytest.mark.parametrize('cls', BOTH_CLASSES)
def test_empty_layer_adaptation_list_adapts_every_variable(cls):
  kernel = tf.Variable(tf.fill([4], 2.0), name='dense/kernel')
  opt = cls(learning_rate=1.0, momentum=0.0, eeta=0.1,
            weight_decay_rate=0.01, exclude_from_weight_decay=['kernel'],
            exclude_from_layer_adaptation=[])
  opt.apply_gradients([(tf.fill([4], 1.0), kernel)])
  # No decay (excluded) but adapted: trust = 0.1·‖w‖/‖g‖ = 0.1·4/2 = 0.2.
  np.testing.assert_allclose(kernel.numpy(), np.full(4, 2.0 - 0.2), rtol=1e-6)


def test_none_layer_adaptation_falls_back_to_weight_decay_list():
  kernel = tf.Variable(tf.fill([4], 2.0), name='dense/kernel')
  opt = lars.LARS(learning_rate=1.0, momentum=0.0, eeta=0.1,
                  weight_decay_rate=0.01, exclude_from_weight_decay=['kernel'])
  assert opt.exclude_from_layer_adaptation == ['kernel']
  opt.apply_gradients([(tf.fill([4], 1.0), kernel)])
  np.testing.assert_allclose(kernel.numpy(), np.full(4, 1.0), rtol=1e-6)


# ------------------------------------------------------------ sparse


def _embedding_model():
  tf_keras.utils.set_random_seed(3)
  return tf_keras.Sequential([
      tf_keras.layers.Embedding(20, 4, input_length=6),
      tf_keras.layers.Flatten(),
      tf_keras.layers.Dense(3),
  ])


_TOKENS = np.random.RandomState(4).randint(0, 20, size=(16, 6))
_TOKEN_LABELS = np.random.RandomState(5).randint(0, 3, size=16)


def _train_embedding(optimizer, densify, use_function, steps=4):
  model = _embedding_model()

  def step():
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf_keras.losses.sparse_categorical_crossentropy(
          _TOKEN_LABELS, model(_TOKENS), from_logits=True))
    grads = tape.gradient(loss, model.trainable_variables)
    assert isinstance(grads[0], tf.IndexedSlices)
    if densify:
      grads = [tf.convert_to_tensor(g) for g in grads]
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

  step = tf.function(step) if use_function else step
  for _ in range(steps):
    step()
  return model.get_weights()


@pytest.mark.parametrize('cls', BOTH_CLASSES)
@pytest.mark.parametrize('use_function', [False, True],
                         ids=['eager', 'tf_function'])
def test_sparse_gradients_equal_densified(cls, use_function):
  kwargs = dict(learning_rate=0.5, weight_decay_rate=1e-3, eeta=0.01)
  sparse = _train_embedding(cls(**kwargs), False, use_function)
  dense = _train_embedding(mg_lars.LARS(**kwargs), True, use_function)
  assert_weights_close(sparse, dense)


def test_sparse_gradients_in_model_fit():
  kwargs = dict(learning_rate=0.5, weight_decay_rate=1e-3, eeta=0.01)
  model = _embedding_model()
  model.compile(optimizer=lars.LARS(**kwargs),
                loss=tf_keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  model.fit(_TOKENS, _TOKEN_LABELS, batch_size=16, epochs=3, verbose=0,
            shuffle=False)
  dense = _train_embedding(mg_lars.LARS(**kwargs), True, True, steps=3)
  assert_weights_close(model.get_weights(), dense, rtol=1e-5)


# ------------------------------------------------------------ distribution


def _mirrored_step(strategy, optimizer, model, x, y):
  """One synchronous step on the global batch (x, y), split over replicas."""
  dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x))
  batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

  def replica_step(inputs, labels):
    with tf.GradientTape() as tape:
      per_example = tf_keras.losses.sparse_categorical_crossentropy(
          labels, model(inputs, training=False), from_logits=True)
      loss = tf.reduce_sum(per_example) / len(x)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

  strategy.run(tf.function(replica_step), args=batch)


def _dense_model():
  tf_keras.utils.set_random_seed(11)
  return tf_keras.Sequential([
      tf_keras.layers.Dense(8, activation='tanh', input_shape=(5,), name='d1'),
      tf_keras.layers.Dense(3, name='d2'),
  ])


@pytest.mark.parametrize('cls', BOTH_CLASSES)
def test_anchored_exclusions_under_mirrored_strategy(cls):
  devices = ['/cpu:0', '/cpu:1']
  x = np.random.RandomState(6).randn(8, 5).astype(np.float32)
  y = np.random.RandomState(7).randint(0, 3, size=8)
  kwargs = dict(learning_rate=0.5, weight_decay_rate=0.01, eeta=0.01,
                nesterov=True, exclude_from_weight_decay=[r'kernel:0$'])

  strategy = tf.distribute.MirroredStrategy(devices)
  with strategy.scope():
    model = _dense_model()
    optimizer = cls(**kwargs)
  for _ in range(3):
    _mirrored_step(strategy, optimizer, model, x, y)

  reference_model = _dense_model()
  reference_optimizer = lars.LARS(**kwargs)
  for _ in range(3):
    _mirrored_step(tf.distribute.get_strategy(), reference_optimizer,
                   reference_model, x, y)

  for var, expected in zip(model.trainable_variables,
                           reference_model.get_weights()):
    replicas = [v.numpy() for v in var.values]
    assert len(replicas) == 2
    np.testing.assert_array_equal(replicas[0], replicas[1])
    assert_weights_close([replicas[0]], [expected])


# ------------------------------------------------------------ validation


@pytest.mark.parametrize('kwargs,error,field,value', [
    ({'learning_rate': -0.1}, ValueError, 'learning_rate', '-0.1'),
    ({'learning_rate': 'fast'}, TypeError, 'learning_rate', 'fast'),
    ({'momentum': 1.0}, ValueError, 'momentum', '1.0'),
    ({'momentum': -0.5}, ValueError, 'momentum', '-0.5'),
    ({'eeta': 0.0}, ValueError, 'eeta', '0.0'),
    ({'eeta': -1e-3}, ValueError, 'eeta', '-0.001'),
    ({'weight_decay_rate': -1e-4}, ValueError, 'weight_decay_rate', '-0.0001'),
    ({'weight_decay_rate': float('nan')}, ValueError, 'weight_decay_rate',
     'nan'),
    ({'nesterov': 'yes'}, TypeError, 'nesterov', 'yes'),
    ({'classic_momentum': 1}, TypeError, 'classic_momentum', '1'),
    ({'exclude_from_weight_decay': 'bias'}, TypeError,
     'exclude_from_weight_decay', "'bias'"),
    ({'exclude_from_layer_adaptation': 'bias'}, TypeError,
     'exclude_from_layer_adaptation', "'bias'"),
    ({'exclude_from_weight_decay': ['bias', 3]}, TypeError,
     'exclude_from_weight_decay', '3'),
    ({'exclude_from_layer_adaptation': ['(unclosed']}, ValueError,
     'exclude_from_layer_adaptation', '(unclosed'),
])
@pytest.mark.parametrize('cls', BOTH_CLASSES)
def test_bad_arguments_fail_at_construction(cls, kwargs, error, field, value):
  with pytest.raises(error) as excinfo:
    cls(**kwargs)
  assert field in str(excinfo.value) and value in str(excinfo.value)


def test_valid_edge_values_are_accepted():
  opt = lars.LARS(learning_rate=0.0, momentum=0.0, weight_decay_rate=0.0,
                  exclude_from_weight_decay=('bias',))
  assert opt.exclude_from_weight_decay == ['bias']
  assert lars.LARS(learning_rate=tf.Variable(0.1)).get_config()[
      'learning_rate'] == pytest.approx(0.1)


def test_variable_name_is_the_same_on_every_replica():
  strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
  with strategy.scope():
    var = tf.Variable(1.0, name='d1/kernel')
  assert [lars.variable_name(v) for v in var.values] == ['d1/kernel:0'] * 2
  # The distributed variable itself, in cross-replica context.
  assert lars.variable_name(var) == 'd1/kernel:0'
  assert re.search('replica_1', var.values[1].name)


# ------------------------------------------------------ Keras integration


@pytest.mark.parametrize('file_name', ['model.keras', 'saved_model'])
def test_model_fit_save_and_load_restores_a_working_lars(tmp_path, file_name):
  x = np.random.RandomState(8).randn(64, 5).astype(np.float32)
  y = np.random.RandomState(9).randint(0, 3, size=64)
  schedule = lr_schedule.LinearWarmup(
      tf_keras.optimizers.schedules.PolynomialDecay(0.5, 40, 0.01),
      warmup_steps=4, warmup_learning_rate=0.0)
  model = _dense_model()
  model.compile(
      optimizer=lars.LARS(schedule, weight_decay_rate=1e-4,
                          exclude_from_weight_decay=['bias'],
                          exclude_from_layer_adaptation=[]),
      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  first = model.fit(x, y, batch_size=16, epochs=3, verbose=0).history['loss']
  assert first[-1] < first[0]

  path = str(tmp_path / file_name)
  model.save(path)
  loaded = tf_keras.models.load_model(path)  # no custom_objects needed
  assert isinstance(loaded.optimizer, lars.LARS)
  assert loaded.optimizer.get_config() == model.optimizer.get_config()
  # Like every tf_keras legacy optimizer (legacy SGD included), the slots are
  # not restored by load_model: resume training state with tf.train.Checkpoint.
  before = loaded.get_weights()
  loaded.fit(x, y, batch_size=16, epochs=1, verbose=0)
  assert not np.allclose(before[0], loaded.get_weights()[0])


# ------------------------------------------------- graph size, XLA, dtypes


def _apply_graph_op_count(optimizer, num_variables):
  variables = [tf.Variable(tf.ones([4, 4]), name=f'layer_{i}/kernel')
               for i in range(num_variables)]
  grads = [tf.fill([4, 4], 0.5) for _ in range(num_variables)]

  @tf.function
  def apply():
    optimizer.apply_gradients(zip(grads, variables))

  return len(apply.get_concrete_function().graph.get_operations())


def test_traced_apply_graph_is_at_most_twice_momentum_sgd():
  sgd = _apply_graph_op_count(
      tf_keras.optimizers.legacy.SGD(0.1, momentum=0.9), 50)
  ours = _apply_graph_op_count(
      lars.LARS(0.1, weight_decay_rate=1e-4, exclude_from_weight_decay=['x']),
      50)
  model_garden = _apply_graph_op_count(
      mg_lars.LARS(0.1, weight_decay_rate=1e-4), 50)
  assert ours <= 2 * sgd < model_garden


@pytest.mark.parametrize('classic', [True, False])
def test_jit_compiled_train_step_matches_model_garden(classic):
  kwargs = dict(learning_rate=0.4, weight_decay_rate=1e-3, nesterov=True,
                classic_momentum=classic,
                exclude_from_weight_decay=['batch_normalization'])
  model, optimizer = _parity_model(), lars.LARS(**kwargs)

  @tf.function(jit_compile=True)
  def step():
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf_keras.losses.sparse_categorical_crossentropy(
          _PARITY_Y, model(_PARITY_X, training=True), from_logits=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

  for _ in range(5):
    step()
  expected = _train(mg_lars.LARS(**kwargs), steps=5).get_weights()
  assert_weights_close(model.get_weights(), expected, rtol=1e-5)


HALF_AND_DOUBLE = [
    pytest.param(lars.LARS, tf.float16, id='official_ext-float16'),
    pytest.param(lars.LARS, tf.bfloat16, id='official_ext-bfloat16'),
    pytest.param(lars.LARS, tf.float64, id='official_ext-float64'),
    # Model Garden sums float16 squares in float16: the norm overflows.
    pytest.param(mg_lars.LARS, tf.float16, id='model_garden-float16',
                 marks=MG_DEFECT),
]


@pytest.mark.parametrize('cls,dtype', HALF_AND_DOUBLE)
def test_half_and_double_variables_match_numpy(cls, dtype):
  w0 = np.random.RandomState(12).randn(64, 32)
  g = np.random.RandomState(13).randn(64, 32) * 50.0
  var = tf.Variable(tf.constant(w0, dtype), name='k')
  opt = cls(learning_rate=0.5, weight_decay_rate=1e-2, eeta=0.01)
  opt.apply_gradients([(tf.constant(g, dtype), var)])
  w_cast = tf.cast(tf.constant(w0, dtype), tf.float64).numpy()
  g_cast = tf.cast(tf.constant(g, dtype), tf.float64).numpy()
  expected, _ = numpy_lars_step(
      w_cast, g_cast, np.zeros_like(w0), lr=0.5, momentum=0.9,
      weight_decay_rate=1e-2, eeta=0.01, nesterov=False,
      classic_momentum=True, decay=True, adapt=True)
  tolerance = {tf.float16: 2e-3, tf.bfloat16: 2e-2, tf.float64: 1e-12}[dtype]
  np.testing.assert_allclose(
      tf.cast(var, tf.float64).numpy(), expected, rtol=tolerance,
      atol=tolerance)


# ------------------- published variants: golden numbers from the references
#
# Each reference below is transcribed from the named implementation's update
# (float64 numpy, several steps, constant learning rate) and compared with
# official_ext's LARS configured as the README's variants table says. The
# learning rates are exact in float32, the dtype of Keras' learning-rate
# hyperparameter, so float64 variables match to 1e-12.


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


def test_larc_clipping_with_zero_learning_rate_leaves_the_factor_at_one():
  ratio = lars_math.larc_clipped_trust_ratio(tf.constant(0.3), tf.constant(0.0))
  assert float(ratio) == 1.0
  ratio = lars_math.larc_clipped_trust_ratio(tf.constant(0.3), tf.constant(0.5))
  assert float(ratio) == pytest.approx(0.6)


def test_paper_trust_ratio_guards_and_optional_decay():
  got = lars_math.paper_trust_ratio(tf.constant([2.0, 0.0, 2.0]),
                               tf.constant([4.0, 4.0, 0.0]),
                               tf.constant(0.1), tf.constant(0.5), 1.0)
  np.testing.assert_allclose(got.numpy(),
                             [0.1 * 2.0 / (4.0 + 0.5 * 2.0 + 1.0), 1.0, 1.0])
  got = lars_math.paper_trust_ratio(tf.constant(2.0), tf.constant(4.0),
                               tf.constant(0.1), None)
  assert float(got) == pytest.approx(0.05)


def test_variant_options_with_defaults_are_model_garden_bit_for_bit():
  explicit = dict(trust_ratio_denominator='model_garden', epsilon=0.0,
                  trust_clip=False, max_trust_ratio=None, telemetry=False)
  kwargs = dict(learning_rate=0.4, weight_decay_rate=1e-3, nesterov=True,
                exclude_from_weight_decay=['batch_normalization'])
  assert_weights_close(_train(lars.LARS(**kwargs, **explicit)).get_weights(),
                       _train(lars.LARS(**kwargs)).get_weights(), rtol=0)
  assert lars.LARS(**explicit).trust_ratio_options == lars_math.TrustRatioOptions()


# ------------------------------------------- name-independent exclusion


def _selector_variables():
  return {
      'conv/kernel': tf.Variable(tf.fill([2, 2, 1, 3], 2.0), name='conv/kernel'),
      'bn/gamma': tf.Variable(tf.fill([3], 2.0), name='bn/gamma'),
      'dense/kernel': tf.Variable(tf.fill([3, 2], 2.0), name='dense/kernel'),
      'dense/bias': tf.Variable(tf.fill([2], 2.0), name='dense/bias'),
  }


def _decisions(optimizer, variables):
  return {name: (optimizer.weight_decay_exclusion(var),
                 optimizer.layer_adaptation_exclusion(var))
          for name, var in variables.items()}


def test_one_dimensional_selectors_use_rank_not_names():
  variables = _selector_variables()
  opt = lars.LARS(weight_decay_rate=1e-4,
                  exclude_one_dimensional_from_weight_decay=True,
                  exclude_one_dimensional_from_layer_adaptation=True)
  one_d = ('exclude_one_dimensional_from_weight_decay',
           'exclude_one_dimensional_from_layer_adaptation')
  assert _decisions(opt, variables) == {
      'conv/kernel': (None, None), 'bn/gamma': one_d,
      'dense/kernel': (None, None), 'dense/bias': one_d}


def test_exact_name_selectors_accept_names_with_or_without_index():
  variables = _selector_variables()
  opt = lars.LARS(weight_decay_rate=1e-4,
                  exclude_variables_from_weight_decay=['dense/kernel:0'],
                  exclude_variables_from_layer_adaptation=['conv/kernel',
                                                           'conv'])
  decisions = _decisions(opt, variables)
  assert decisions['dense/kernel'] == (
      'exclude_variables_from_weight_decay', None)
  assert decisions['conv/kernel'] == (
      None, 'exclude_variables_from_layer_adaptation')
  # Exact: 'conv' is no prefix match, and nothing else is excluded.
  assert decisions['bn/gamma'] == decisions['dense/bias'] == (None, None)


def test_normalization_selectors_need_the_model_and_then_select_by_identity():
  variables = _selector_variables()
  opt = lars.LARS(weight_decay_rate=1e-4,
                  exclude_normalization_from_layer_adaptation=True)
  with pytest.raises(ValueError,
                     match='exclude_normalization_from_layer_adaptation.*'
                     'use_model'):
    opt.layer_adaptation_exclusion(variables['bn/gamma'])
  with pytest.raises(ValueError, match='use_model'):
    opt.apply_gradients([(tf.ones([3]), variables['bn/gamma'])])
  opt.set_normalization_variables([variables['bn/gamma']])
  assert opt.normalization_variable_names == frozenset(['bn/gamma:0'])
  assert _decisions(opt, variables)['bn/gamma'] == (
      None, 'exclude_normalization_from_layer_adaptation')
  assert _decisions(opt, variables)['dense/bias'] == (None, None)


def test_reasons_name_the_first_setting_that_excludes():
  variables = _selector_variables()
  opt = lars.LARS(weight_decay_rate=0.0, exclude_from_layer_adaptation=['bn'],
                  exclude_one_dimensional_from_layer_adaptation=True)
  decisions = _decisions(opt, variables)
  assert decisions['bn/gamma'] == ('weight_decay_rate = 0',
                                   "exclude_from_layer_adaptation 'bn'")
  assert decisions['dense/bias'][1] == (
      'exclude_one_dimensional_from_layer_adaptation')


def test_selectors_change_the_update_like_equivalent_regexes():
  """Selectors only choose variables: same steps as the regexes they mean."""
  kwargs = dict(learning_rate=0.4, weight_decay_rate=5e-3, eeta=0.01)
  by_selector, by_regex = _parity_model(), _parity_model()
  opt = lars.LARS(
      exclude_one_dimensional_from_weight_decay=True,
      exclude_normalization_from_layer_adaptation=True,
      exclude_variables_from_layer_adaptation=[
          by_selector.layers[-1].kernel.name],
      **kwargs)
  opt.set_normalization_variables(
      by_selector.layers[1].trainable_variables +
      by_selector.layers[4].trainable_variables)
  _train(opt, steps=4, model=by_selector)
  _train(lars.LARS(
      exclude_from_weight_decay=['batch_normalization', 'layer_normalization',
                                 'bias'],
      exclude_from_layer_adaptation=[
          'batch_normalization', 'layer_normalization',
          re.escape(by_regex.layers[-1].kernel.name)],
      **kwargs), steps=4, model=by_regex)
  assert_weights_close(by_selector.get_weights(), by_regex.get_weights(),
                       rtol=0)


def test_selectors_under_mirrored_strategy_use_the_container_name():
  devices = ['/cpu:0', '/cpu:1']
  x = np.random.RandomState(6).randn(8, 5).astype(np.float32)
  y = np.random.RandomState(7).randint(0, 3, size=8)
  common = dict(learning_rate=0.5, weight_decay_rate=0.01, eeta=0.01)
  selectors = dict(exclude_variables_from_weight_decay=['d1/kernel'],
                   exclude_one_dimensional_from_layer_adaptation=True,
                   **common)
  strategy = tf.distribute.MirroredStrategy(devices)
  with strategy.scope():
    model = _dense_model()
    optimizer = lars.LARS(**selectors)
  for _ in range(3):
    _mirrored_step(strategy, optimizer, model, x, y)
  reference_model = _dense_model()
  reference = lars.LARS(exclude_from_weight_decay=['d1/kernel'],
                        exclude_from_layer_adaptation=['bias'], **common)
  for _ in range(3):
    _mirrored_step(tf.distribute.get_strategy(), reference, reference_model,
                   x, y)
  for var, expected in zip(model.trainable_variables,
                           reference_model.get_weights()):
    assert_weights_close([var.values[1].numpy()], [expected])


# ------------------------------------------------------------ telemetry


def test_telemetry_records_ratio_norms_and_local_rate():
  w0 = np.random.RandomState(30).randn(4, 3)
  g = np.random.RandomState(31).randn(4, 3)
  kernel = tf.Variable(w0, name='dense/kernel')
  bias = tf.Variable([1.0, -2.0, 2.0], dtype=tf.float64, name='dense/bias')
  opt = lars.LARS(learning_rate=0.3, weight_decay_rate=0.1, eeta=0.01,
                  exclude_from_weight_decay=['bias'], telemetry=True)
  assert opt.telemetry_scalars() == {}
  opt.apply_gradients([(tf.constant(g), kernel),
                       (tf.constant([0.0, 4.0, 3.0], tf.float64), bias)])
  ratio = 0.01 * np.linalg.norm(w0) / np.linalg.norm(g + 0.1 * w0)
  expected = {
      'lars/dense/kernel/trust_ratio': ratio,
      'lars/dense/kernel/weight_norm': np.linalg.norm(w0),
      'lars/dense/kernel/gradient_norm': np.linalg.norm(g),
      'lars/dense/kernel/learning_rate': 0.3 * ratio,
      'lars/dense/bias/trust_ratio': 1.0,
      'lars/dense/bias/weight_norm': 3.0,
      'lars/dense/bias/gradient_norm': 5.0,
      'lars/dense/bias/learning_rate': 0.3,
  }
  got = opt.telemetry_scalars()
  assert sorted(got) == sorted(expected)
  for tag, value in expected.items():
    assert got[tag] == pytest.approx(value, rel=1e-6), tag


def test_telemetry_changes_neither_the_update_nor_checkpoints(tmp_path):
  kwargs = dict(learning_rate=0.4, weight_decay_rate=1e-3,
                exclude_from_weight_decay=['batch_normalization'])
  model_on, opt_on = _parity_model(), lars.LARS(telemetry=True, **kwargs)
  _train(opt_on, steps=3, model=model_on)
  model_off = _train(lars.LARS(**kwargs), steps=3)
  assert_weights_close(model_on.get_weights(), model_off.get_weights(),
                       rtol=0)
  assert len(opt_on.telemetry_scalars()) == 4 * len(
      model_on.trainable_variables)
  # Telemetry variables are not optimizer weights: checkpoints and
  # get_weights() are those of a run without telemetry.
  assert len(opt_on.get_weights()) == 1 + len(model_on.trainable_variables)
  path = tf.train.Checkpoint(model=model_on, optimizer=opt_on).save(
      str(tmp_path / 'ckpt'))
  model_b, opt_b = _parity_model(), lars.LARS(**kwargs)
  tf.train.Checkpoint(model=model_b, optimizer=opt_b).restore(
      path).assert_existing_objects_matched()
  _train(opt_on, steps=2, model=model_on)
  _train(opt_b, steps=2, model=model_b)
  assert_weights_close(model_b.get_weights(), model_on.get_weights(), rtol=0)


def test_telemetry_off_builds_the_same_graph():
  off = _apply_graph_op_count(lars.LARS(0.1, telemetry=False), 20)
  default = _apply_graph_op_count(lars.LARS(0.1), 20)
  on = _apply_graph_op_count(lars.LARS(0.1, telemetry=True), 20)
  assert off == default < on


def test_telemetry_under_mirrored_strategy_and_jit():
  x = np.random.RandomState(6).randn(8, 5).astype(np.float32)
  y = np.random.RandomState(7).randint(0, 3, size=8)
  strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
  with strategy.scope():
    model = _dense_model()
    optimizer = lars.LARS(learning_rate=0.5, weight_decay_rate=1e-3,
                          telemetry=True)
  _mirrored_step(strategy, optimizer, model, x, y)
  reference_model = _dense_model()
  reference = lars.LARS(learning_rate=0.5, weight_decay_rate=1e-3,
                        telemetry=True)

  @tf.function(jit_compile=True)
  def step():
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf_keras.losses.sparse_categorical_crossentropy(
          y, reference_model(x), from_logits=True))
    grads = tape.gradient(loss, reference_model.trainable_variables)
    reference.apply_gradients(zip(grads, reference_model.trainable_variables))

  step()
  mirrored, single = optimizer.telemetry_scalars(), reference.telemetry_scalars()
  assert sorted(mirrored) == sorted(single)
  assert 'lars/d1/kernel/trust_ratio' in mirrored
  for tag, value in single.items():
    assert mirrored[tag] == pytest.approx(value, rel=1e-5), tag


# ------------------------------------------ config of trained optimizers


def _train_one_variable(optimizer, steps=3):
  var = tf.Variable([[1.0, -2.0], [0.5, 3.0]], name='dense/kernel')
  for _ in range(steps):
    optimizer.apply_gradients([(tf.constant([[0.1, 0.2], [-0.3, 0.4]]), var)])
  return optimizer


EVERY_OPTION = dict(
    momentum=0.8, weight_decay_rate=1e-4, eeta=0.002, nesterov=True,
    classic_momentum=True, exclude_from_weight_decay=['bias'],
    exclude_from_layer_adaptation=['gamma'], name='my_lars',
    trust_ratio_denominator='paper', epsilon=1e-7, trust_clip=True,
    max_trust_ratio=2.5, exclude_one_dimensional_from_weight_decay=True,
    exclude_one_dimensional_from_layer_adaptation=True,
    exclude_normalization_from_weight_decay=False,
    exclude_normalization_from_layer_adaptation=False,
    exclude_variables_from_weight_decay=['a/kernel'],
    exclude_variables_from_layer_adaptation=['b/kernel:0'], telemetry=True)


def test_trained_optimizer_config_round_trips_every_argument():
  opt = _train_one_variable(lars.LARS(learning_rate=0.25, decay=0.01,
                                      clipvalue=0.5, **EVERY_OPTION))
  assert int(opt.iterations) == 3
  expected = dict(EVERY_OPTION, learning_rate=0.25, decay=0.01, clipvalue=0.5)
  config = opt.get_config()
  assert config == expected
  clone = lars.LARS.from_config(config)
  assert clone.get_config() == expected
  # The clone decays the learning rate as the original: 0.25 / (1 + 0.01·t).
  clone.iterations.assign(4)
  assert float(clone._decayed_lr(tf.float32)) == pytest.approx(0.25 / 1.04)  # pylint: disable=protected-access


def test_trained_optimizer_with_float_learning_rate_round_trips():
  # After a step the learning rate is read back from its variable, as a
  # numpy float32.
  opt = _train_one_variable(lars.LARS(learning_rate=0.1))
  clone = lars.LARS.from_config(opt.get_config())
  assert float(clone._get_hyper('learning_rate')) == pytest.approx(0.1)  # pylint: disable=protected-access


@pytest.mark.parametrize('schedule,expected', [
    (tf_keras.optimizers.schedules.PiecewiseConstantDecay(
        [2, 4], [0.5, 0.2, 0.1]), [0.5, 0.5, 0.5, 0.2, 0.2, 0.1]),
    (lr_schedule.LinearWarmup(
        lr_schedule.CosineDecayWithOffset(
            offset=2, initial_learning_rate=0.5, decay_steps=8),
        warmup_steps=2, warmup_learning_rate=0.1),
     [0.1, 0.3] + [0.25 * (1 + np.cos(np.pi * t / 8)) for t in (0, 1, 2, 3)]),
], ids=['PiecewiseConstantDecay', 'LinearWarmup_CosineDecayWithOffset'])
def test_trained_optimizer_with_schedule_round_trips(schedule, expected):
  opt = _train_one_variable(lars.LARS(learning_rate=schedule, decay=0.5))
  clone = lars.LARS.from_config(opt.get_config())
  restored = clone._get_hyper('learning_rate')  # pylint: disable=protected-access
  np.testing.assert_allclose([float(restored(step)) for step in range(6)],
                             expected, rtol=1e-6)
  assert clone.get_config()['decay'] == 0.5


def test_name_is_validated():
  with pytest.raises(TypeError, match=r'^LARS: name must be a string, got 3'):
    lars.LARS(name=3)


def test_options_are_validated_by_the_constructor():
  with pytest.raises(ValueError, match="^LARS: trust_ratio_denominator .*"
                     "'papers'"):
    lars.LARS(trust_ratio_denominator='papers')
