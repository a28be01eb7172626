"""Which variables LARS excludes, resolved on a model and reported.

Regexes on variable names silently match nothing when names differ between
frameworks, Keras versions or distribution strategies. Besides them, LARS has
selectors that do not depend on names: variables of rank ≤ 1, and the
variables of the model's normalization layers. The second needs the model:
`use_model(optimizer, model)` finds the normalization layers by type (the
classes in `normalization_layer_classes()`) and hands their variables to the
LARS inside any optimizer wrappers. `exclusion_report` then says, for every
trainable variable, whether it gets weight decay and layer adaptation and
which setting decided it, and warns about every setting that matched nothing.
"""
import dataclasses
from typing import List, Optional, Sequence, Tuple

import tensorflow as tf
import tf_keras

from official.nlp.modeling.layers import mobile_bert_layers
from official.nlp.modeling.layers import transformer_encoder_block
from official_ext.modeling.optimization import lars

# Layer classes whose variables `exclude_normalization_from_*` select,
# subclasses included. Model Garden's vision models use Keras' batch
# normalization (synchronized or not); its NLP models, LayerNormalization,
# RMSNorm and MobileBERT's NoNorm.
_NORMALIZATION_LAYERS: List[type] = [
    tf_keras.layers.BatchNormalization,
    tf_keras.layers.experimental.SyncBatchNormalization,
    tf_keras.layers.LayerNormalization,
    tf_keras.layers.GroupNormalization,
    transformer_encoder_block.RMSNorm,
    mobile_bert_layers.NoNorm,
]


def register_normalization_layer(layer_cls: type):
  """Adds a layer class (and its subclasses) to the normalization layers.

  Args:
    layer_cls: a `tf_keras.layers.Layer` subclass.

  Raises:
    TypeError: if `layer_cls` is not a Keras layer class.
  """
  if not (isinstance(layer_cls, type) and
          issubclass(layer_cls, tf_keras.layers.Layer)):
    raise TypeError(f'register_normalization_layer needs a tf_keras Layer '
                    f'subclass, got {layer_cls!r}.')
  if layer_cls not in _NORMALIZATION_LAYERS:
    _NORMALIZATION_LAYERS.append(layer_cls)


def normalization_layer_classes() -> Tuple[type, ...]:
  """The layer classes whose variables count as normalization variables."""
  return tuple(_NORMALIZATION_LAYERS)


def normalization_variables(model: tf.Module) -> List[tf.Variable]:
  """The trainable variables of `model`'s normalization layers.

  Args:
    model: a built Keras model (or any `tf.Module` holding Keras layers).

  Returns:
    The variables, in the order `model.submodules` lists the layers.

  Raises:
    ValueError: if a normalization layer is not built yet, so that its
      variables do not exist.
  """
  variables = []
  for module in model.submodules:
    if isinstance(module, normalization_layer_classes()):
      if not module.built:
        raise ValueError(
            f'Normalization layer {module.name!r} of the model is not built, '
            f'so LARS cannot exclude its variables: build the model (call it '
            f'once) before training.')
      variables += module.trainable_variables
  return variables


def find_lars(optimizer) -> Optional[lars.LARS]:
  """The official_ext LARS inside optimizer wrappers, or None.

  Args:
    optimizer: an optimizer, possibly a LossScaleOptimizer or Model Garden's
      ExponentialMovingAverage around LARS.

  Returns:
    The LARS, or None if the innermost optimizer is something else.
  """
  while optimizer is not None and not isinstance(optimizer, lars.LARS):
    optimizer = (getattr(optimizer, 'inner_optimizer', None) or
                 getattr(optimizer, '_optimizer', None))
  return optimizer


def use_model(optimizer, model: tf.Module) -> Optional[lars.LARS]:
  """Tells the LARS inside `optimizer` which variables are normalization's.

  Call it once the model is built and before the first training step; only
  `exclude_normalization_from_*` need it, so it does nothing for a LARS
  without them (or for another optimizer).

  Args:
    optimizer: an optimizer, possibly wrapping LARS.
    model: the model it will train.

  Returns:
    The LARS found, or None.
  """
  found = find_lars(optimizer)
  if found is not None and (
      found.exclude_normalization_from_weight_decay or
      found.exclude_normalization_from_layer_adaptation):
    found.set_normalization_variables(normalization_variables(model))
  return found


@dataclasses.dataclass(frozen=True)
class VariableDecision:
  """What LARS does with one variable.

  Attributes:
    name: the variable's name.
    shape: its shape.
    weight_decay_exclusion: None if it gets weight decay, else the setting
      that excludes it.
    layer_adaptation_exclusion: None if it gets layer adaptation, else the
      setting that excludes it.
  """
  name: str
  shape: tf.TensorShape
  weight_decay_exclusion: Optional[str]
  layer_adaptation_exclusion: Optional[str]


_HEADER = ('variable', 'shape', 'weight decay', 'layer adaptation')


def _decision_text(exclusion: Optional[str]) -> str:
  return 'yes' if exclusion is None else f'no ({exclusion})'


@dataclasses.dataclass(frozen=True)
class ExclusionReport:
  """Every trainable variable's LARS treatment, and unmatched settings.

  Attributes:
    variables: one decision per trainable variable, in the model's order.
    warnings: one message per exclusion setting that matched no variable.
  """
  variables: Sequence[VariableDecision]
  warnings: Sequence[str]

  def table(self) -> str:
    """The decisions as an aligned text table, with a summary line."""
    rows = [_HEADER] + [
        (d.name, str(d.shape), _decision_text(d.weight_decay_exclusion),
         _decision_text(d.layer_adaptation_exclusion))
        for d in self.variables
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = ['  '.join(cell.ljust(width)
                       for cell, width in zip(row, widths)).rstrip()
             for row in rows]
    lines.insert(1, '  '.join('-' * width for width in widths))
    decayed = sum(d.weight_decay_exclusion is None for d in self.variables)
    adapted = sum(d.layer_adaptation_exclusion is None for d in self.variables)
    lines.append(f'{len(self.variables)} trainable variables: {decayed} get '
                 f'weight decay, {adapted} get layer adaptation.')
    return '\n'.join(lines)

  def text(self) -> str:
    """The table followed by the warnings."""
    return '\n'.join([self.table()] +
                     [f'WARNING: {warning}' for warning in self.warnings])


def _unmatched_setting_warnings(optimizer: lars.LARS,
                                variables: Sequence[tf.Variable]
                               ) -> List[str]:
  """A warning for each exclusion setting that selects no variable."""
  names = [lars.variable_name(v) for v in variables]
  short_names = {lars.without_output_index(n) for n in names}
  config = optimizer.get_config()
  warnings = []
  for field in ('exclude_from_weight_decay', 'exclude_from_layer_adaptation'):
    # None for layer adaptation means "the weight decay list", checked above.
    for pattern in config[field] or ():
      if not any(lars.first_match([pattern], name) for name in names):
        warnings.append(f'LARS {field} pattern {pattern!r} matches no '
                        f'trainable variable.')
  for field in ('exclude_variables_from_weight_decay',
                'exclude_variables_from_layer_adaptation'):
    for name in config[field] or ():
      if lars.without_output_index(name) not in short_names:
        warnings.append(f'LARS {field} names {name!r}, which is no '
                        f'trainable variable.')
  for purpose in ('weight_decay', 'layer_adaptation'):
    field = f'exclude_one_dimensional_from_{purpose}'
    if config[field] and not any(
        v.shape.rank is not None and v.shape.rank <= 1 for v in variables):
      warnings.append(f'LARS {field} is on, but no trainable variable has '
                      f'rank <= 1.')
    field = f'exclude_normalization_from_{purpose}'
    if config[field] and not set(names) & (
        optimizer.normalization_variable_names or set()):
      classes = ', '.join(c.__name__ for c in normalization_layer_classes())
      warnings.append(
          f'LARS {field} is on, but the model has no trainable variable in a '
          f'normalization layer ({classes}; add others with '
          f'lars_exclusion.register_normalization_layer).')
  return warnings


def _exclusion(optimizer: lars.LARS, var: tf.Variable,
               purpose: str) -> Optional[str]:
  if purpose == 'weight_decay':
    return optimizer.weight_decay_exclusion(var)
  return optimizer.layer_adaptation_exclusion(var)


def exclusion_report(variables: Sequence[tf.Variable],
                     optimizer) -> ExclusionReport:
  """What the LARS inside `optimizer` does with each of `variables`.

  Args:
    variables: the model's trainable variables.
    optimizer: a LARS, possibly wrapped; with normalization selectors on,
      `use_model` must have been called.

  Returns:
    The report.

  Raises:
    ValueError: if `optimizer` holds no official_ext LARS.
  """
  found = find_lars(optimizer)
  if found is None:
    raise ValueError(f'The exclusion report describes official_ext LARS; the '
                     f'optimizer is {type(optimizer).__name__}.')
  decisions = [
      VariableDecision(
          name=lars.variable_name(var),
          shape=var.shape,
          weight_decay_exclusion=_exclusion(found, var, 'weight_decay'),
          layer_adaptation_exclusion=_exclusion(found, var,
                                                'layer_adaptation'))
      for var in variables
  ]
  return ExclusionReport(decisions,
                         _unmatched_setting_warnings(found, variables))
