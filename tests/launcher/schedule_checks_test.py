"""Tests of the learning rate schedule checks against Model Garden's schedules.

Every schedule the checks refuse is also built with Model Garden's
OptimizerFactory and evaluated: it fails, or gives a learning rate that is not
finite, or negative, or growing without bound. Every schedule they accept
gives finite, non-negative rates.
"""
import numpy as np
import pytest

from official.modeling.optimization import optimizer_factory as mg_optimizer_factory
from official.modeling.optimization.configs import optimization_config as mg_optimization_config
from official_ext.launcher import schedule_checks

LR = 'trainer.optimizer_config.learning_rate'
WARMUP = 'trainer.optimizer_config.warmup'
STEPS = (0, 1, 3, 7, 12, 200, 10_000)
TRAIN_STEPS = 10_001


def _config(learning_rate, warmup=None):
  return mg_optimization_config.OptimizationConfig({
      'optimizer': {'type': 'sgd'}, 'learning_rate': learning_rate,
      'warmup': warmup or {}})


def _cosine(**fields):
  return {'type': 'cosine', 'cosine': {'initial_learning_rate': 0.1,
                                       'decay_steps': 100, **fields}}


def _rates(config, train_steps=TRAIN_STEPS):
  """Model Garden's schedule for `config` at the STEPS that training takes.

  Args:
    config: an OptimizationConfig.
    train_steps: the training length.

  Returns:
    The learning rates, or None if building or evaluating them fails.
  """
  try:
    schedule = mg_optimizer_factory.OptimizerFactory(
        config).build_learning_rate()
    return np.array([float(schedule(s)) if callable(schedule) else schedule
                     for s in STEPS if s < train_steps])
  except Exception:  # pylint: disable=broad-except
    return None


def _unusable(rates):
  return (rates is None or not np.all(np.isfinite(rates)) or
          np.any(rates < 0) or rates[-1] > 100 * rates[0])


def _step_cosine(boundaries, values):
  return _config({'type': 'step_cosine_with_offset',
                  'step_cosine_with_offset': {'boundaries': boundaries,
                                              'values': values}})


BAD = [
    pytest.param(_config({'type': None}),
                 (f'{LR}.type', 'must be one of', 'cosine', 'got None'),
                 id='unset-learning-rate-type'),
    pytest.param(_config(_cosine(decay_steps=0)),
                 (f'{LR}.cosine.decay_steps', 'positive int', 'got 0'),
                 id='cosine-zero-decay-steps'),
    pytest.param(_config({'type': 'polynomial', 'polynomial': {
        'initial_learning_rate': 0.1, 'decay_steps': 0}}),
                 (f'{LR}.polynomial.decay_steps', 'got 0'),
                 id='polynomial-zero-decay-steps'),
    pytest.param(_config({'type': 'exponential', 'exponential': {
        'initial_learning_rate': 0.1, 'decay_steps': -4, 'decay_rate': 0.9}}),
                 (f'{LR}.exponential.decay_steps', 'got -4'),
                 id='exponential-negative-decay-steps'),
    pytest.param(_config({'type': 'exponential', 'exponential': {
        'initial_learning_rate': 0.1, 'decay_steps': 10}}),
                 (f'{LR}.exponential.decay_rate', 'must be set'),
                 id='exponential-unset-decay-rate'),
    pytest.param(_config(_cosine(initial_learning_rate=None)),
                 (f'{LR}.cosine.initial_learning_rate', 'must be set'),
                 id='cosine-unset-learning-rate'),
    pytest.param(_config(_cosine(initial_learning_rate=float('nan'))),
                 (f'{LR}.cosine.initial_learning_rate', 'finite and >= 0'),
                 id='cosine-nan-learning-rate'),
    pytest.param(_config({'type': 'stepwise', 'stepwise': {
        'boundaries': [10, 5], 'values': [0.1, 0.01, 0.001]}}),
                 (f'{LR}.stepwise.boundaries', 'strictly increasing',
                  '[10, 5]'),
                 id='stepwise-decreasing-boundaries'),
    pytest.param(_config({'type': 'stepwise', 'stepwise': {
        'boundaries': [10], 'values': [0.1]}}),
                 (f'{LR}.stepwise.values', '2 learning rates', '[0.1]'),
                 id='stepwise-too-few-values'),
    pytest.param(_config({'type': 'stepwise', 'stepwise': {
        'boundaries': [10], 'values': [0.1, -0.01]}}),
                 (f'{LR}.stepwise.values', 'finite and >= 0'),
                 id='stepwise-negative-value'),
    pytest.param(_step_cosine([0, 10, 10], [0.1, 0.01, 0.001]),
                 (f'{LR}.step_cosine_with_offset.boundaries', '[0, 10, 10]',
                  'strictly increasing'),
                 id='step-cosine-repeated-boundary'),
    pytest.param(_step_cosine([0, 10], [0.1, 0.01]),
                 (f'{LR}.step_cosine_with_offset.boundaries', '[0, 10]',
                  f'the last >= {TRAIN_STEPS}'),
                 id='step-cosine-ending-before-training'),
    pytest.param(_config({'type': 'constant'},
                         {'type': 'linear', 'linear': {}}),
                 (f'{WARMUP}.linear.warmup_steps', 'must be set'),
                 id='linear-warmup-unset-steps'),
]

# Lengths that Model Garden's schedules accept silently but that are surely
# mistakes: a negative or zero warmup is no warmup, a non-positive
# power_linear length no linear decay. Refused to make the mistake visible.
REFUSED_THOUGH_HARMLESS = [
    pytest.param(_config({'type': 'constant'},
                         {'type': 'linear', 'linear': {'warmup_steps': 0}}),
                 (f'{WARMUP}.linear.warmup_steps', 'got 0'),
                 id='linear-warmup-zero-steps'),
    pytest.param(_config({'type': 'constant'}, {
        'type': 'polynomial', 'polynomial': {'warmup_steps': -5}}),
                 (f'{WARMUP}.polynomial.warmup_steps', 'got -5'),
                 id='polynomial-warmup-negative-steps'),
    pytest.param(_config({'type': 'power_linear', 'power_linear': {
        'initial_learning_rate': 0.1, 'total_decay_steps': 0}}),
                 (f'{LR}.power_linear.total_decay_steps', 'got 0'),
                 id='power-linear-zero-steps'),
]

GOOD = [
    pytest.param(_config(_cosine()), id='cosine'),
    pytest.param(_config(_cosine(), {'type': 'linear',
                                     'linear': {'warmup_steps': 5}}),
                 id='cosine-with-warmup'),
    pytest.param(_config({'type': 'stepwise', 'stepwise': {
        'boundaries': [5, 10], 'values': [0.1, 0.01, 0.001]}}),
                 id='stepwise'),
    pytest.param(_step_cosine([0, 100, TRAIN_STEPS], [0.1, 0.01, 0.0]),
                 id='step-cosine'),
    pytest.param(_config({'type': 'constant'}), id='constant'),
]


def _assert_refused(config, named):
  with pytest.raises(ValueError) as excinfo:
    schedule_checks.check_schedules(config, TRAIN_STEPS)
  message = str(excinfo.value)
  assert '\n' not in message
  for text in named:
    assert text in message, (text, message)


@pytest.mark.parametrize('config,named', BAD)
def test_a_schedule_model_garden_cannot_train_with_is_refused(config, named):
  assert _unusable(_rates(config))
  _assert_refused(config, named)


@pytest.mark.parametrize('config,named', REFUSED_THOUGH_HARMLESS)
def test_a_zero_or_negative_schedule_length_is_refused(config, named):
  _assert_refused(config, named)


@pytest.mark.parametrize('config', GOOD)
def test_a_usable_schedule_passes(config):
  assert not _unusable(_rates(config))
  schedule_checks.check_schedules(config, TRAIN_STEPS)
