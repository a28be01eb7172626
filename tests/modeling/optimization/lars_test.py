"""Tests for official_ext's LARS class: parity with Model Garden, the Keras
optimizer API, and the defects of Model Garden's class it fixes.

Two independent oracles: `lars_testing.numpy_lars_step`, written from the
formula of You et al. 2017 as Model Garden states it, and Model Garden's own
`official.modeling.optimization.lars.LARS`. Tests of a deliberate difference
from Model Garden run against both classes; on Model Garden's they are
expected to fail (`xfail(strict=True)`), so each difference stays proven.
The formulas, the update function, options, exclusion, telemetry and the
get_config/from_config round trips (lars_config_test.py) have test files of
their own.
"""

import itertools

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.modeling.optimization import lars as mg_lars
from official.modeling.optimization import lr_schedule
from official_ext.modeling.optimization import lars
from tests.modeling.optimization import lars_testing

MG_DEFECT = lars_testing.MG_DEFECT
BOTH_CLASSES = lars_testing.BOTH_CLASSES


# ---------------------------------------------- full steps vs numpy oracle


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
      reference[k] = lars_testing.numpy_lars_step(
          *reference[k][:1], step_grads[k], reference[k][1], lr=0.3,
          decay=bool(weight_decay_rate) and not excluded_here,
          adapt=not excluded_here, **hyper)
  for k, var in variables.items():
    np.testing.assert_allclose(var.numpy(), reference[k][0], rtol=2e-5,
                               atol=2e-6)
    np.testing.assert_allclose(
        opt.get_slot(var, 'momentum').numpy(), reference[k][1], rtol=2e-5,
        atol=2e-6)


# ----------------------------------------- parity with Model Garden's LARS


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
  ours = lars_testing.train(lars.LARS(**kwargs))
  theirs = lars_testing.train(mg_lars.LARS(**kwargs))
  lars_testing.assert_weights_close(ours.get_weights(), theirs.get_weights())
  # The models did train: parity of two no-ops would prove nothing.
  assert not np.allclose(ours.get_weights()[0],
                         lars_testing.parity_model().get_weights()[0])


@pytest.mark.parametrize('clip', [{'clipnorm': 0.1}, {'clipvalue': 0.01},
                                  {'global_clipnorm': 0.2}])
def test_clipping_matches_model_garden(clip):
  kwargs = dict(learning_rate=0.4, weight_decay_rate=1e-3, **clip)
  lars_testing.assert_weights_close(
      lars_testing.train(lars.LARS(**kwargs), steps=4).get_weights(),
      lars_testing.train(mg_lars.LARS(**kwargs), steps=4).get_weights())


def test_learning_rate_schedule_matches_model_garden():
  def schedule():
    return lr_schedule.LinearWarmup(
        tf_keras.optimizers.schedules.PolynomialDecay(1.0, 20, 0.01),
        warmup_steps=3, warmup_learning_rate=0.0)

  ours = lars_testing.train(lars.LARS(schedule(), weight_decay_rate=1e-3))
  theirs = lars_testing.train(mg_lars.LARS(schedule(), weight_decay_rate=1e-3))
  lars_testing.assert_weights_close(ours.get_weights(), theirs.get_weights())


# -------------------------------------------------------- defaults and API


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
  # The iteration counter, then the slot: nothing else is optimizer state.
  for weights in (opt.weights, opt.variables()):
    assert [id(w) for w in weights] == [id(opt.iterations), id(slot)]


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
  model_a, model_b = lars_testing.parity_model(), lars_testing.parity_model()
  opt_a = lars.LARS(learning_rate=0.4, weight_decay_rate=1e-3)
  lars_testing.train(opt_a, steps=3, model=model_a)
  opt_b = lars.LARS(learning_rate=0.4, weight_decay_rate=1e-3)
  opt_b._create_all_weights(model_b.trainable_variables)  # pylint: disable=protected-access
  opt_b.set_weights(opt_a.get_weights())
  model_b.set_weights(model_a.get_weights())
  assert int(opt_b.iterations) == 3
  lars_testing.train(opt_a, steps=2, model=model_a)
  lars_testing.train(opt_b, steps=2, model=model_b)
  lars_testing.assert_weights_close(model_b.get_weights(),
                                    model_a.get_weights(), rtol=0)


def test_checkpoint_round_trip_continues_identically(tmp_path):
  model_a = lars_testing.parity_model()
  opt_a = lars.LARS(learning_rate=0.4, weight_decay_rate=1e-3, nesterov=True)
  lars_testing.train(opt_a, steps=3, model=model_a)
  path = tf.train.Checkpoint(model=model_a, optimizer=opt_a).save(
      str(tmp_path / 'ckpt'))
  model_b = lars_testing.parity_model()
  opt_b = lars.LARS(learning_rate=0.4, weight_decay_rate=1e-3, nesterov=True)
  tf.train.Checkpoint(model=model_b, optimizer=opt_b).restore(path)
  lars_testing.train(opt_a, steps=2, model=model_a)
  lars_testing.train(opt_b, steps=2, model=model_b)
  assert int(opt_b.iterations) == 5
  lars_testing.assert_weights_close(model_b.get_weights(),
                                    model_a.get_weights(), rtol=0)


def test_model_garden_checkpoint_restores_into_ours(tmp_path):
  """Same slot names and meaning: a drop-in replacement resumes MG runs."""
  model_mg = lars_testing.parity_model()
  opt_mg = mg_lars.LARS(learning_rate=0.4, weight_decay_rate=1e-3)
  lars_testing.train(opt_mg, steps=3, model=model_mg)
  path = tf.train.Checkpoint(model=model_mg, optimizer=opt_mg).save(
      str(tmp_path / 'ckpt'))
  model_ours = lars_testing.parity_model()
  opt_ours = lars.LARS(learning_rate=0.4, weight_decay_rate=1e-3)
  tf.train.Checkpoint(model=model_ours, optimizer=opt_ours).restore(path)
  lars_testing.train(opt_mg, steps=2, model=model_mg)
  lars_testing.train(opt_ours, steps=2, model=model_ours)
  lars_testing.assert_weights_close(model_ours.get_weights(),
                                    model_mg.get_weights())


# ----------------------------------------------------- exclusion semantics


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


# ------------------------------------------------------------------ sparse


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
  lars_testing.assert_weights_close(sparse, dense)


def test_sparse_gradients_in_model_fit():
  kwargs = dict(learning_rate=0.5, weight_decay_rate=1e-3, eeta=0.01)
  model = _embedding_model()
  model.compile(optimizer=lars.LARS(**kwargs),
                loss=tf_keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  model.fit(_TOKENS, _TOKEN_LABELS, batch_size=16, epochs=3, verbose=0,
            shuffle=False)
  dense = _train_embedding(mg_lars.LARS(**kwargs), True, True, steps=3)
  lars_testing.assert_weights_close(model.get_weights(), dense, rtol=1e-5)


# ------------------------------------------------------------ distribution


@pytest.mark.parametrize('cls', BOTH_CLASSES)
def test_anchored_exclusions_under_mirrored_strategy(cls):
  devices = ['/cpu:0', '/cpu:1']
  x = np.random.RandomState(6).randn(8, 5).astype(np.float32)
  y = np.random.RandomState(7).randint(0, 3, size=8)
  kwargs = dict(learning_rate=0.5, weight_decay_rate=0.01, eeta=0.01,
                nesterov=True, exclude_from_weight_decay=[r'kernel:0$'])

  strategy = tf.distribute.MirroredStrategy(devices)
  with strategy.scope():
    model = lars_testing.dense_model()
    optimizer = cls(**kwargs)
  for _ in range(3):
    lars_testing.mirrored_step(strategy, optimizer, model, x, y)

  reference_model = lars_testing.dense_model()
  reference_optimizer = lars.LARS(**kwargs)
  for _ in range(3):
    lars_testing.mirrored_step(tf.distribute.get_strategy(),
                               reference_optimizer, reference_model, x, y)

  for var, expected in zip(model.trainable_variables,
                           reference_model.get_weights()):
    replicas = [v.numpy() for v in var.values]
    assert len(replicas) == 2
    np.testing.assert_array_equal(replicas[0], replicas[1])
    lars_testing.assert_weights_close([replicas[0]], [expected])


# -------------------------------------------------------------- validation


@pytest.mark.parametrize('kwargs,error,field,value', [
    ({'learning_rate': -0.1}, ValueError, 'learning_rate', '-0.1'),
    ({'learning_rate': 'fast'}, TypeError, 'learning_rate', 'fast'),
] + lars_testing.BAD_MODEL_GARDEN_OPTIONS)
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


def test_name_is_validated():
  with pytest.raises(TypeError, match=r'^LARS: name must be a string, got 3'):
    lars.LARS(name=3)


def test_options_are_validated_by_the_constructor():
  with pytest.raises(ValueError, match="^LARS: trust_ratio_denominator .*"
                     "'papers'"):
    lars.LARS(trust_ratio_denominator='papers')


# ------------------------------------------------------- Keras integration


@pytest.mark.parametrize('file_name', ['model.keras', 'saved_model'])
def test_model_fit_save_and_load_restores_a_working_lars(tmp_path, file_name):
  x = np.random.RandomState(8).randn(64, 5).astype(np.float32)
  y = np.random.RandomState(9).randint(0, 3, size=64)
  schedule = lr_schedule.LinearWarmup(
      tf_keras.optimizers.schedules.PolynomialDecay(0.5, 40, 0.01),
      warmup_steps=4, warmup_learning_rate=0.0)
  model = lars_testing.dense_model()
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
  config = loaded.optimizer.get_config()
  expected = dict(weight_decay_rate=1e-4, exclude_from_weight_decay=['bias'],
                  exclude_from_layer_adaptation=[], momentum=0.9, eeta=0.001)
  assert {key: config[key] for key in expected} == expected
  restored = lars.LARS.from_config(config)._get_hyper('learning_rate')  # pylint: disable=protected-access
  # Warmup from 0 to PolynomialDecay(4) = 0.49·(1 − 4/40) + 0.01, then decay.
  np.testing.assert_allclose([float(restored(step)) for step in (0, 2, 4, 24)],
                             [0.0, 0.2255, 0.451, 0.49 * (1 - 24 / 40) + 0.01],
                             rtol=1e-6)
  # Like every tf_keras legacy optimizer (legacy SGD included), the slots are
  # not restored by load_model: resume training state with tf.train.Checkpoint.
  before = loaded.get_weights()
  loaded.fit(x, y, batch_size=16, epochs=1, verbose=0)
  assert not np.allclose(before[0], loaded.get_weights()[0])


# ------------------------------------------------------------- XLA, dtypes


@pytest.mark.parametrize('classic', [True, False])
def test_jit_compiled_train_step_matches_model_garden(classic):
  kwargs = dict(learning_rate=0.4, weight_decay_rate=1e-3, nesterov=True,
                classic_momentum=classic,
                exclude_from_weight_decay=['batch_normalization'])
  model, optimizer = lars_testing.parity_model(), lars.LARS(**kwargs)

  @tf.function(jit_compile=True)
  def step():
    with tf.GradientTape() as tape:
      logits = model(lars_testing.PARITY_X, training=True)
      loss = tf.reduce_mean(tf_keras.losses.sparse_categorical_crossentropy(
          lars_testing.PARITY_Y, logits, from_logits=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))

  for _ in range(5):
    step()
  expected = lars_testing.train(mg_lars.LARS(**kwargs), steps=5).get_weights()
  lars_testing.assert_weights_close(model.get_weights(), expected, rtol=1e-5)


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
  expected, _ = lars_testing.numpy_lars_step(
      w_cast, g_cast, np.zeros_like(w0), lr=0.5, momentum=0.9,
      weight_decay_rate=1e-2, eeta=0.01, nesterov=False,
      classic_momentum=True, decay=True, adapt=True)
  tolerance = {tf.float16: 2e-3, tf.bfloat16: 2e-2, tf.float64: 1e-12}[dtype]
  np.testing.assert_allclose(
      tf.cast(var, tf.float64).numpy(), expected, rtol=tolerance,
      atol=tolerance)
