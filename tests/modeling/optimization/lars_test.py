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
  got = lars.trust_ratio(tf.constant([2.0, 0.0, 3.0, 0.0]),
                         tf.constant([4.0, 5.0, 0.0, 0.0]), eeta)
  np.testing.assert_allclose(got.numpy(), [0.001 * 2.0 / 4.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize('dtype', [tf.float32, tf.float16, tf.bfloat16])
def test_l2_norm_matches_numpy_and_is_float32_for_half(dtype):
  x = np.random.RandomState(0).randn(3, 4, 5).astype(np.float32)
  got = lars.l2_norm(tf.constant(x, dtype))
  expected_dtype = tf.float32 if dtype != tf.float32 else dtype
  assert got.dtype == expected_dtype
  reference = np.linalg.norm(tf.cast(tf.constant(x, dtype), tf.float32))
  np.testing.assert_allclose(got.numpy(), reference, rtol=1e-6)


def test_l2_norm_of_large_float16_tensor_does_not_overflow():
  x = tf.fill([300, 300], tf.constant(10.0, tf.float16))  # sum of squares 9e6
  np.testing.assert_allclose(lars.l2_norm(x).numpy(), 3000.0, rtol=1e-6)


def test_weight_decayed_gradient_and_popular_momentum_on_plain_tensors():
  rs = np.random.RandomState(1)
  w, g, v = (rs.randn(4, 3) for _ in range(3))
  np.testing.assert_allclose(
      lars.weight_decayed_gradient(tf.constant(g), tf.constant(w), 0.1),
      g + 0.1 * w)
  for nesterov in (False, True):
    next_v, update = lars.popular_momentum(tf.constant(v), tf.constant(g), 0.9,
                                           nesterov)
    np.testing.assert_allclose(next_v, 0.9 * v + g)
    np.testing.assert_allclose(update,
                               0.9 * (0.9 * v + g) + g if nesterov else
                               0.9 * v + g)


def test_layer_adapted_learning_rate_on_plain_tensors():
  rs = np.random.RandomState(2)
  w, u = rs.randn(5, 2), rs.randn(5, 2)
  ratio = lars.trust_ratio(lars.l2_norm(tf.constant(w)),
                           lars.l2_norm(tf.constant(u)),
                           tf.constant(0.01, tf.float64))
  got = lars.layer_adapted_learning_rate(tf.constant(0.5, tf.float64), ratio)
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


@pytest.mark.parametrize('cls', BOTH_CLASSES)
def test_get_config_returns_every_constructor_argument(cls):
  opt = cls(learning_rate=0.3, momentum=0.8, weight_decay_rate=1e-4,
            eeta=0.002, nesterov=True, classic_momentum=False,
            exclude_from_weight_decay=['bias'],
            exclude_from_layer_adaptation=['gamma'], name='my_lars',
            clipnorm=1.0)
  config = opt.get_config()
  assert config['exclude_from_weight_decay'] == ['bias']
  assert config['exclude_from_layer_adaptation'] == ['gamma']
  assert config['learning_rate'] == pytest.approx(0.3)
  assert config['name'] == 'my_lars' and config['clipnorm'] == 1.0
  clone = cls.from_config(config)
  assert clone.get_config() == config


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


@pytest.mark.parametrize('dtype', [tf.float16, tf.bfloat16, tf.float64])
def test_half_and_double_variables_match_numpy(dtype):
  w0 = np.random.RandomState(12).randn(64, 32)
  g = np.random.RandomState(13).randn(64, 32) * 50.0
  var = tf.Variable(tf.constant(w0, dtype), name='k')
  opt = lars.LARS(learning_rate=0.5, weight_decay_rate=1e-2, eeta=0.01)
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
