"""Tests for lars_exclusion: ExclusionRules, the selectors as the optimizer
applies them, and the deprecated `use_model` path."""

import re

import numpy as np
import pytest
import tensorflow as tf

from official_ext.modeling.optimization import lars
from official_ext.modeling.optimization import lars_exclusion
from official_ext.modeling.optimization import lars_options
from official_ext.modeling.optimization import normalization_layers
from tests.modeling.optimization import lars_testing



# ------------------------------------------------------------ ExclusionRules


def _rules(purpose, **options):
  return lars_exclusion.ExclusionRules.from_options(
      lars_options.check_options(options), purpose)


def test_rules_from_options():
  assert _rules('weight_decay', weight_decay_rate=0.1,
                exclude_from_weight_decay=['bias'],
                exclude_variables_from_weight_decay=['a:0'],
                exclude_one_dimensional_from_layer_adaptation=True,
                exclude_normalization_from_weight_decay=True) == (
                    lars_exclusion.ExclusionRules(
                        'weight_decay', patterns=('bias',),
                        variable_names=('a:0',), normalization=True))
  # Model Garden's fallback: None means the weight decay regexes.
  assert _rules('layer_adaptation', exclude_from_weight_decay=['bias'],
                exclude_one_dimensional_from_layer_adaptation=True) == (
                    lars_exclusion.ExclusionRules(
                        'layer_adaptation', patterns=('bias',),
                        patterns_inherited=True, one_dimensional=True))
  assert _rules('layer_adaptation', exclude_from_weight_decay=['bias'],
                exclude_from_layer_adaptation=[]) == (
                    lars_exclusion.ExclusionRules('layer_adaptation'))
  assert _rules('weight_decay').excludes_every_variable == (
      'weight_decay_rate = 0')
  with pytest.raises(ValueError, match="'momentum'"):
    _rules('momentum')


def test_reason_is_the_first_setting_that_selects():
  rules = lars_exclusion.ExclusionRules(
      'layer_adaptation', patterns=('^dense', 'kernel'),
      variable_names=('conv/kernel', 'dense/bias:0'), one_dimensional=True,
      normalization=True)
  norm = frozenset(['bn/gamma:0', 'conv/kernel:0'])
  assert rules.reason('dense/kernel:0', 2, norm) == (
      "exclude_from_layer_adaptation '^dense'")
  assert rules.reason('conv/kernel:0', 4, norm) == (
      "exclude_from_layer_adaptation 'kernel'")
  assert rules.reason('conv/bias:0', 1, norm) == (
      'exclude_one_dimensional_from_layer_adaptation')
  assert rules.reason('bn/gamma:0', 1, norm) == (
      'exclude_one_dimensional_from_layer_adaptation')
  assert rules.reason('bn/gamma:0', None, norm) == (
      'exclude_normalization_from_layer_adaptation')
  assert rules.reason('other/scale:0', 3, norm) is None


def test_exact_names_match_with_or_without_output_index_only():
  rules = lars_exclusion.ExclusionRules(
      'weight_decay', variable_names=('conv/kernel', 'dense/bias:0'))
  for name in ('conv/kernel:0', 'conv/kernel', 'dense/bias:0', 'dense/bias'):
    assert rules.reason(name, 2, None) == (
        'exclude_variables_from_weight_decay'), name
  for name in ('conv/kernel_1:0', 'my/conv/kernel:0', 'dense/bias:1x'):
    assert rules.reason(name, 2, None) is None, name


def test_normalization_selector_without_the_model_is_an_error():
  rules = lars_exclusion.ExclusionRules('weight_decay', normalization=True)
  with pytest.raises(ValueError, match='exclude_normalization_from_weight_'
                     'decay=True.*use_model'):
    rules.reason('bn/gamma:0', 1, None)
  assert rules.reason('bn/gamma:0', 1, frozenset()) is None


def test_unmatched_settings_warn_once_each():
  rules = lars_exclusion.ExclusionRules(
      'weight_decay', patterns=('kernel', 'BatchNorm'),
      variable_names=('dense/kernel:0', 'Dense/kernel'), one_dimensional=True,
      normalization=True)
  assert rules.unmatched_settings(
      [('dense/kernel:0', 2)], frozenset(), ['BatchNormalization']) == [
          "LARS exclude_from_weight_decay pattern 'BatchNorm' matches no "
          'trainable variable.',
          "LARS exclude_variables_from_weight_decay names 'Dense/kernel', "
          'which is no trainable variable.',
          'LARS exclude_one_dimensional_from_weight_decay is on, but no '
          'trainable variable has rank <= 1.',
          'LARS exclude_normalization_from_weight_decay is on, but the model '
          'has no trainable variable in a normalization layer '
          '(BatchNormalization; add others with '
          'normalization_layers.register_normalization_layer).']
  inherited = lars_exclusion.ExclusionRules(
      'layer_adaptation', patterns=('BatchNorm',), patterns_inherited=True)
  assert inherited.unmatched_settings([('dense/kernel:0', 2)], None) == []


def test_importing_needs_no_framework():
  lars_testing.assert_imports_no_framework(
      'official_ext.modeling.optimization.lars_exclusion')


# ----------------------------------------- selectors through the optimizer


def _selector_variables():
  return {
      'conv/kernel': tf.Variable(tf.fill([2, 2, 1, 3], 2.0),
                                 name='conv/kernel'),
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
  by_selector = lars_testing.parity_model()
  by_regex = lars_testing.parity_model()
  opt = lars.LARS(
      exclude_one_dimensional_from_weight_decay=True,
      exclude_normalization_from_layer_adaptation=True,
      exclude_variables_from_layer_adaptation=[
          by_selector.layers[-1].kernel.name],
      **kwargs)
  opt.set_normalization_variables(
      by_selector.layers[1].trainable_variables +
      by_selector.layers[4].trainable_variables)
  lars_testing.train(opt, steps=4, model=by_selector)
  lars_testing.train(lars.LARS(
      exclude_from_weight_decay=['batch_normalization', 'layer_normalization',
                                 'bias'],
      exclude_from_layer_adaptation=[
          'batch_normalization', 'layer_normalization',
          re.escape(by_regex.layers[-1].kernel.name)],
      **kwargs), steps=4, model=by_regex)
  lars_testing.assert_weights_close(by_selector.get_weights(),
                                    by_regex.get_weights(), rtol=0)


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
    model = lars_testing.dense_model()
    optimizer = lars.LARS(**selectors)
  for _ in range(3):
    lars_testing.mirrored_step(strategy, optimizer, model, x, y)
  reference_model = lars_testing.dense_model()
  reference = lars.LARS(exclude_from_weight_decay=['d1/kernel'],
                        exclude_from_layer_adaptation=['bias'], **common)
  for _ in range(3):
    lars_testing.mirrored_step(tf.distribute.get_strategy(), reference,
                               reference_model, x, y)
  for var, expected in zip(model.trainable_variables,
                           reference_model.get_weights()):
    lars_testing.assert_weights_close([var.values[1].numpy()], [expected])


def test_deprecated_use_model_path_forwards_with_a_warning():
  with pytest.warns(DeprecationWarning, match='normalization_layers.use_model'):
    use_model = lars_exclusion.use_model
  assert use_model is normalization_layers.use_model
  with pytest.raises(AttributeError, match='no_such_name'):
    lars_exclusion.no_such_name  # pylint: disable=pointless-statement
