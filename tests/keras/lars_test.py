"""Tests of the Keras 3 LARS: numbers on every backend, and Keras behaviour.

Numbers: the same variables and gradients go through official_ext's
`tf_keras` LARS (in this process), an independent NumPy implementation (here)
and the Keras 3 LARS on each backend (one subprocess per backend running
every case, all started at once: `tests/keras/backend_trajectory.py`); all
must agree to float32 rounding.
"""

import functools
import json
import os
import pathlib
import subprocess
import sys
from typing import (Any, Dict, Iterator, List, Mapping, Optional, Sequence,
                    Tuple)

import keras
import numpy as np
import pytest
import tensorflow as tf

from official_ext.keras import LARS
from official_ext.modeling.optimization import lars as tf_keras_lars
from tests import required_or_skipped
from tests.keras import backend_trajectory as driver
from tests.modeling.optimization import lars_testing

REPO = pathlib.Path(__file__).resolve().parents[2]
# ‖keras − reference‖ / ‖reference − initial‖ per variable and step: float32
# rounding of 10 steps, relative to how far the variable moved.
RELATIVE_TOLERANCE = 1e-5

# Every momentum kind × Nesterov × weight decay (none, or decay with regex
# and rank exclusions) × trust-ratio variant; then each exclusion selector.
_MOMENTA = [dict(classic_momentum=classic, nesterov=nesterov)
            for classic in (True, False) for nesterov in (False, True)]
_DECAYS = [dict(weight_decay_rate=0.0),
           dict(weight_decay_rate=0.05, exclude_from_weight_decay=['bias'],
                exclude_one_dimensional_from_layer_adaptation=True)]
_VARIANTS = [dict(eeta=0.3), dict(eeta=0.3, trust_ratio_denominator='paper'),
             dict(eeta=0.3, epsilon=0.5), dict(eeta=2.0, trust_clip=True),
             dict(eeta=0.3, max_trust_ratio=0.1)]
_SELECTORS = [
    dict(exclude_from_weight_decay=['bias'],
         exclude_from_layer_adaptation=['gamma']),
    dict(classic_momentum=False, exclude_from_weight_decay=['bias', 'gamma']),
    dict(exclude_one_dimensional_from_weight_decay=True,
         exclude_one_dimensional_from_layer_adaptation=True),
    dict(nesterov=True, exclude_variables_from_weight_decay=['dense/kernel'],
         exclude_variables_from_layer_adaptation=['norm/gamma:0']),
    dict(classic_momentum=False, exclude_normalization_from_weight_decay=True,
         exclude_normalization_from_layer_adaptation=True),
]
CASES: List[Dict[str, Any]] = [
    {**momentum, **decay, **variant}
    for momentum in _MOMENTA for decay in _DECAYS for variant in _VARIANTS
    # The paper's denominator is defined for classic momentum only.
    if momentum['classic_momentum'] or 'trust_ratio_denominator' not in variant
] + [dict(weight_decay_rate=0.05, eeta=0.3, **selector)
     for selector in _SELECTORS]
FIT_OPTIONS = dict(weight_decay_rate=0.05, eeta=0.3, nesterov=True,
                   exclude_from_weight_decay=['bias'])
PATHS = [path for path, _ in driver.VARIABLES]


def _case_id(options: Mapping[str, Any]) -> str:
  return ','.join(f'{k}={v}' for k, v in options.items())


def numpy_lars(arrays: Mapping[str, np.ndarray], options: Mapping[str, Any],
               gradients: Optional[Any] = None,
               learning_rates: Optional[Sequence[float]] = None
              ) -> Dict[str, List[np.ndarray]]:
  """The LARS trajectory in float64 NumPy, written from the paper's formulas.

  Args:
    arrays: `driver.problem_arrays()`.
    options: LARS options (missing ones take Model Garden's defaults).
    gradients: None for the problem's gradients, or `f(step, params)`
      returning `{path: gradient}` (for the regression model).
    learning_rates: the learning rate of each step; None for
      `driver.LEARNING_RATE` throughout.

  Returns:
    `{path: [value after step 1, ...]}`.
  """
  m = options.get('momentum', 0.9)
  wd = options.get('weight_decay_rate', 0.0)
  eeta = options.get('eeta', 0.001)
  nesterov = options.get('nesterov', False)
  classic = options.get('classic_momentum', True)
  paper = options.get('trust_ratio_denominator') == 'paper'
  eps = options.get('epsilon', 0.0)

  def excluded(path, shape, purpose):
    patterns = options.get(f'exclude_from_{purpose}')
    if purpose == 'layer_adaptation' and patterns is None:
      patterns = options.get('exclude_from_weight_decay')
    names = [n.removesuffix(':0') for n in
             options.get(f'exclude_variables_from_{purpose}') or ()]
    return (any(p in path for p in patterns or ()) or path in names or
            (options.get(f'exclude_one_dimensional_from_{purpose}') and
             len(shape) <= 1) or
            (options.get(f'exclude_normalization_from_{purpose}') and
             path in driver.NORMALIZATION_PATHS))

  params = {p: arrays[f'initial/{p}'].astype(np.float64)
            for p in arrays['paths']}
  velocity = {p: np.zeros_like(w) for p, w in params.items()}
  history = {p: [] for p in params}
  for step in range(len(next(iter(arrays['grads'].values())))
                    if gradients is None else gradients.steps):
    grads = ({p: g[step].astype(np.float64)
              for p, g in arrays['grads'].items()}
             if gradients is None else gradients(step, params))
    lr = driver.LEARNING_RATE if learning_rates is None else learning_rates[step]
    for p, w in params.items():
      g_raw = grads[p]
      decay = wd > 0 and not excluded(p, w.shape, 'weight_decay')
      g = g_raw + wd * w if decay else g_raw
      if classic:
        u = g
      else:
        v_next = m * velocity[p] + g
        u = m * v_next + g if nesterov else v_next
      t = 1.0
      if not excluded(p, w.shape, 'layer_adaptation'):
        w_norm = np.linalg.norm(w)
        other = np.linalg.norm(g_raw if paper else u)
        if w_norm > 0 and other > 0:
          t = eeta * w_norm / (other + (wd * w_norm if paper and decay
                                        else 0.0) + eps)
        if options.get('trust_clip'):
          t = min(t / lr, 1.0)
        if options.get('max_trust_ratio') is not None:
          t = min(t, options['max_trust_ratio'])
      if classic:
        v_next = m * velocity[p] + lr * t * g
        params[p] = w - (m * v_next + lr * t * g if nesterov else v_next)
      else:
        params[p] = w - lr * t * u
      velocity[p] = v_next
      history[p].append(params[p])
  return history


def _reference_arrays() -> Dict[str, Any]:
  arrays = driver.problem_arrays()
  return {'paths': PATHS,
          'grads': {p: arrays[f'gradients/{p}'] for p in PATHS},
          **{f'initial/{p}': arrays[f'initial/{p}'] for p in PATHS}}


def tf_keras_trajectory(options: Mapping[str, Any]) -> Dict[str, np.ndarray]:
  """The same steps with official_ext's tf_keras LARS, in this process."""
  arrays = driver.problem_arrays()
  variables = [tf.Variable(arrays[f'initial/{p}'], name=p) for p in PATHS]
  optimizer = tf_keras_lars.LARS(driver.LEARNING_RATE, **options)
  optimizer.set_normalization_variables(
      [v for p, v in zip(PATHS, variables) if p in driver.NORMALIZATION_PATHS])
  history = {p: [] for p in PATHS}
  for step in range(driver.NUM_STEPS):
    optimizer.apply_gradients(
        [(tf.constant(arrays[f'gradients/{p}'][step]), v)
         for p, v in zip(PATHS, variables)])
    for p, v in zip(PATHS, variables):
      history[p].append(v.numpy())
  return {p: np.stack(values) for p, values in history.items()}


def assert_same_trajectory(actual: Mapping[str, Sequence[np.ndarray]],
                           expected: Mapping[str, Sequence[np.ndarray]],
                           initial: Mapping[str, np.ndarray], what: str):
  """Relative error per variable and step, against how far it moved."""
  for path in expected:
    for step, (a, e) in enumerate(zip(actual[path], expected[path])):
      moved = np.linalg.norm(np.asarray(e, np.float64) - initial[path])
      error = np.linalg.norm(np.asarray(a, np.float64) - e) / moved
      assert error <= RELATIVE_TOLERANCE, (
          f'{what}: {path} differs after step {step + 1}: relative error '
          f'{error:.3g}')


BACKENDS = ('tensorflow', 'jax', 'torch')
TIMEOUT = 1200


@pytest.fixture(scope='module')
def backend_runs(tmp_path_factory) -> Iterator[Dict[str, Any]]:
  """Every installed backend's process, all started at once.

  Yields:
    backend -> (process, its output .npz path, its stderr file).
  """
  directory = tmp_path_factory.mktemp('backends')
  np.savez(directory / 'in.npz', cases=json.dumps(CASES),
           fit_options=json.dumps(FIT_OPTIONS), **driver.problem_arrays())
  runs = {}
  for backend in BACKENDS:
    if backend == 'torch' and not required_or_skipped.TORCH_INSTALLED:
      continue
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO),
               TF_CPP_MIN_LOG_LEVEL='2', JAX_PLATFORMS='cpu')
    stderr = open(  # pylint: disable=consider-using-with
        directory / f'{backend}.stderr', 'w+')
    process = subprocess.Popen(
        [sys.executable, '-m', 'tests.keras.backend_trajectory',
         str(directory / 'in.npz'), str(directory / f'{backend}.npz')],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    runs[backend] = (process, directory / f'{backend}.npz', stderr)
  yield runs
  for process, _, stderr in runs.values():
    if process.poll() is None:
      process.kill()
      process.wait()
    stderr.close()


@pytest.fixture(scope='module', params=BACKENDS)
def backend_result(request, backend_runs) -> Dict[str, np.ndarray]:
  """What the Keras 3 LARS computed on one backend, in its own process."""
  if request.param == 'torch':
    required_or_skipped.require_torch()
  process, out_path, stderr = backend_runs[request.param]
  process.wait(timeout=TIMEOUT)
  stderr.seek(0)
  assert process.returncode == 0, stderr.read()[-3000:]
  with np.load(out_path) as data:
    result = dict(data)
  assert str(result['backend']) == request.param
  return result


@functools.lru_cache(maxsize=None)
def _expected_trajectories(case: int) -> Tuple[Dict[str, np.ndarray],
                                               Dict[str, List[np.ndarray]]]:
  """The tf_keras LARS and NumPy trajectories of CASES[case], computed once."""
  return (tf_keras_trajectory(CASES[case]),
          numpy_lars(_reference_arrays(), CASES[case]))


@pytest.mark.slow
@pytest.mark.parametrize('case', range(len(CASES)),
                         ids=[_case_id(c) for c in CASES])
def test_backend_matches_tf_keras_lars_and_numpy(backend_result, case):
  reference = _reference_arrays()
  initial = {p: reference[f'initial/{p}'] for p in PATHS}
  keras3 = {p: backend_result[f'trajectory/{case}/{p}'] for p in PATHS}
  backend = str(backend_result['backend'])
  tf_keras_expected, numpy_expected = _expected_trajectories(case)
  assert_same_trajectory(keras3, tf_keras_expected, initial,
                         f'{backend} vs tf_keras LARS')
  assert_same_trajectory(keras3, numpy_expected, initial,
                         f'{backend} vs NumPy')


class _RegressionGradients:
  """MSE gradients of `y = x·W + b` on the fit data, batch by batch."""

  def __init__(self, arrays: Mapping[str, np.ndarray]):
    self.x = arrays['fit/x'].astype(np.float64)
    self.y = arrays['fit/y'].astype(np.float64)
    self.steps = driver.FIT_STEPS

  def __call__(self, step: int, params: Mapping[str, np.ndarray]):
    batch = slice(step * driver.FIT_BATCH, (step + 1) * driver.FIT_BATCH)
    x, y = self.x[batch], self.y[batch]
    residual = x @ params['dense/kernel'] + params['dense/bias'] - y
    scale = 2.0 / residual.size  # mean over batch and outputs
    return {'dense/kernel': scale * x.T @ residual,
            'dense/bias': scale * residual.sum(axis=0)}


@pytest.mark.slow
def test_backend_fit_with_jit_matches_numpy(backend_result):
  arrays = driver.problem_arrays()
  reference = {'paths': ['dense/kernel', 'dense/bias'],
               'initial/dense/kernel': arrays['fit/kernel'],
               'initial/dense/bias': arrays['fit/bias']}
  expected = numpy_lars(reference, FIT_OPTIONS,
                        _RegressionGradients(arrays))
  actual = {'dense/kernel': [backend_result['fit/kernel']],
            'dense/bias': [backend_result['fit/bias']]}
  assert_same_trajectory(
      actual, {p: [values[-1]] for p, values in expected.items()},
      {'dense/kernel': arrays['fit/kernel'], 'dense/bias': arrays['fit/bias']},
      f'{backend_result["backend"]} fit')


def _regression_model() -> keras.Model:
  arrays = driver.problem_arrays()
  model = keras.Sequential([keras.Input((driver.FIT_FEATURES,)),
                            keras.layers.Dense(driver.FIT_OUTPUTS)])
  model.layers[0].set_weights([arrays['fit/kernel'], arrays['fit/bias']])
  return model


def test_learning_rate_schedule_is_followed():
  schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
      [2, 5], [0.5, 0.1, 0.02])
  arrays = driver.problem_arrays()
  variables = [keras.Variable(arrays[f'initial/{p}']) for p in PATHS]
  optimizer = LARS(schedule, weight_decay_rate=0.05, eeta=0.3)
  for step in range(driver.NUM_STEPS):
    optimizer.apply([arrays[f'gradients/{p}'][step] for p in PATHS],
                    variables)
  reference = _reference_arrays()
  expected = numpy_lars(reference, dict(weight_decay_rate=0.05, eeta=0.3),
                        learning_rates=[float(schedule(s)) for s in
                                        range(driver.NUM_STEPS)])
  assert_same_trajectory(
      {p: [v.numpy()] for p, v in zip(PATHS, variables)},
      {p: [values[-1]] for p, values in expected.items()},
      {p: reference[f'initial/{p}'] for p in PATHS}, 'schedule')


def test_config_round_trip_is_lossless():
  schedule = keras.optimizers.schedules.CosineDecay(0.4, 100)
  optimizer = LARS(schedule, 0.8, 1e-4, 0.02, True, False, ['bias'], [],
                   'lars_1', trust_ratio_denominator='model_garden',
                   epsilon=1e-6, max_trust_ratio=3.0,
                   exclude_one_dimensional_from_layer_adaptation=True,
                   exclude_variables_from_weight_decay=['dense/kernel'],
                   clipnorm=1.0)
  config = optimizer.get_config()
  restored = keras.optimizers.deserialize(
      keras.optimizers.serialize(optimizer))
  assert type(restored) is LARS
  assert restored.get_config() == config
  assert config['momentum'] == 0.8 and config['clipnorm'] == 1.0
  assert config['exclude_from_layer_adaptation'] == []
  assert keras.saving.get_registered_name(LARS) == 'official_ext>LARS'


def test_save_and_load_restores_optimizer_state(tmp_path):
  arrays = driver.problem_arrays()
  x, y = arrays['fit/x'], arrays['fit/y']
  model = _regression_model()
  model.compile(optimizer=LARS(0.5, eeta=0.3, weight_decay_rate=0.05,
                               classic_momentum=False), loss='mse')
  model.fit(x, y, batch_size=driver.FIT_BATCH, shuffle=False, verbose=0)
  path = tmp_path / 'model.keras'
  model.save(path)
  loaded = keras.saving.load_model(path)  # no custom_objects
  assert type(loaded.optimizer) is LARS
  assert loaded.optimizer.get_config() == model.optimizer.get_config()
  slots = [v.numpy() for v in model.optimizer.variables]
  assert np.abs(slots[-1]).max() > 0  # the momentum slots hold state
  for saved, restored in zip(slots, loaded.optimizer.variables):
    np.testing.assert_array_equal(restored.numpy(), saved)
  # With the state restored, training continues exactly as it would have.
  for m in (model, loaded):
    m.fit(x, y, batch_size=driver.FIT_BATCH, shuffle=False, verbose=0)
  for a, b in zip(model.weights, loaded.weights):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_compile_and_fit_reduces_the_loss():
  arrays = driver.problem_arrays()
  x = arrays['fit/x']
  y = x @ arrays['fit/kernel'][:, ::-1] + 1.0
  model = _regression_model()
  model.compile(optimizer=LARS(1.0, eeta=0.05, momentum=0.5), loss='mse',
                jit_compile=True)
  history = model.fit(x, y, batch_size=driver.FIT_BATCH, epochs=20,
                      verbose=0)
  losses = history.history['loss']
  assert losses[-1] < 0.1 * losses[0]


def test_options_are_the_checked_arguments():
  optimizer = LARS(0.1, 0.7, exclude_from_weight_decay=('bias',))
  assert optimizer.options['momentum'] == 0.7
  assert optimizer.options['exclude_from_weight_decay'] == ['bias']
  assert optimizer.options['eeta'] == 0.001


def test_keras_decoupled_weight_decay_exclusion_is_refused():
  # Keras' own method would configure decay that LARS never applies.
  with pytest.raises(ValueError, match=r'^LARS: exclude_from_weight_decay\('):
    LARS(0.1).exclude_from_weight_decay(var_names=['bias'])


@pytest.mark.parametrize('kwargs', [
    kwargs for kwargs, *_ in lars_testing.BAD_MODEL_GARDEN_OPTIONS
] + [
    dict(trust_ratio_denominator='x'), dict(epsilon=-1.0),
    dict(classic_momentum=False, trust_ratio_denominator='paper'),
    dict(max_trust_ratio=0.0), dict(exclude_variables_from_weight_decay='k'),
])
def test_validation_is_the_tf_keras_classes(kwargs):
  with pytest.raises((TypeError, ValueError)) as expected:
    tf_keras_lars.LARS(0.1, **kwargs)
  with pytest.raises(type(expected.value)) as raised:
    LARS(0.1, **kwargs)
  assert str(raised.value) == str(expected.value)
  assert str(raised.value).startswith('LARS: ')


@pytest.mark.parametrize('kwargs,path,expected', [
    (dict(exclude_from_weight_decay=['bias']), 'dense/bias',
     "exclude_from_weight_decay 'bias'"),
    (dict(exclude_variables_from_weight_decay=['dense/kernel:0']),
     'dense/kernel', 'exclude_variables_from_weight_decay'),
    (dict(exclude_one_dimensional_from_weight_decay=True), 'dense/bias',
     'exclude_one_dimensional_from_weight_decay'),
    (dict(exclude_one_dimensional_from_weight_decay=True), 'dense/kernel',
     None),
    (dict(exclude_normalization_from_weight_decay=True), 'norm/gamma',
     'exclude_normalization_from_weight_decay'),
    (dict(exclude_normalization_from_weight_decay=True), 'dense/bias', None),
    (dict(weight_decay_rate=0.0), 'dense/kernel', 'weight_decay_rate = 0'),
])
def test_exclusions_see_keras_paths(kwargs, path, expected):
  variables = dict(zip(PATHS, driver.keras_variables(
      keras, driver.problem_arrays())))
  optimizer = LARS(0.1, **{'weight_decay_rate': 0.1, **kwargs})
  optimizer.set_normalization_variables([variables['norm/gamma']])
  assert optimizer.weight_decay_exclusion(variables[path]) == expected


def test_normalization_exclusion_needs_the_model():
  optimizer = LARS(0.1, exclude_normalization_from_layer_adaptation=True)
  variable = keras.Variable(np.ones(3, np.float32))
  with pytest.raises(ValueError, match='set_normalization_variables'):
    optimizer.layer_adaptation_exclusion(variable)


def test_sparse_gradient_is_applied_as_its_dense_sum():
  # TensorFlow hands an Embedding's gradient over as IndexedSlices; LARS's
  # norms are over the whole variable, duplicate rows added.
  values = np.arange(6, dtype=np.float32).reshape(3, 2) - 2.0
  indices = np.array([0, 2, 0])
  dense = np.zeros((4, 2), np.float32)
  np.add.at(dense, indices, values)
  initial = np.linspace(-1.0, 1.0, 8).reshape(4, 2)
  weights = {}
  for name, gradient in [
      ('sparse', tf.IndexedSlices(tf.constant(values), tf.constant(indices),
                                  tf.constant([4, 2]))),
      ('dense', tf.constant(dense))]:
    variable = keras.Variable(initial, dtype='float32')
    optimizer = LARS(0.5, weight_decay_rate=0.01)
    for _ in range(2):
      optimizer.apply([gradient], [variable])
    weights[name] = keras.ops.convert_to_numpy(variable)
  np.testing.assert_array_equal(weights['sparse'], weights['dense'])
  assert not np.allclose(weights['dense'], initial)
