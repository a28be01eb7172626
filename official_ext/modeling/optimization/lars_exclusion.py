"""Which variables LARS excludes from weight decay and layer adaptation.

Regexes on variable names silently match nothing when names differ between
frameworks, Keras versions or distribution strategies. Besides them, LARS has
selectors that do not depend on names: exact names, variables of rank ≤ 1,
and the variables of the model's normalization layers. `ExclusionRules`, built
from the checked options for one purpose, decides for a variable given its
name, rank and the model's normalization variable names; the optimizer and the
exclusion report both ask it. It is framework-neutral: nothing here imports
TensorFlow or Keras at import time, so every LARS implementation can share it.

The normalization selectors need the model: `normalization_layers.use_model`
(tf_keras) and `official_ext.keras.use_model` (Keras 3) hand the LARS the
variables of the model's normalization layers.
"""

import dataclasses
import re
from typing import (Any, FrozenSet, List, Mapping, Optional, Sequence, Tuple)

WEIGHT_DECAY = 'weight_decay'
LAYER_ADAPTATION = 'layer_adaptation'
PURPOSES = (WEIGHT_DECAY, LAYER_ADAPTATION)

# (name, rank) of a variable; rank None when unknown.
NameAndRank = Tuple[str, Optional[int]]


def first_match(patterns: Sequence[str], name: str) -> Optional[str]:
  """The first regex of `patterns` that `re.search` finds in `name`."""
  for pattern in patterns:
    if re.search(pattern, name):
      return pattern
  return None


def without_output_index(name: str) -> str:
  """`'dense/kernel:0'` → `'dense/kernel'`: names as users write them."""
  return re.sub(r':\d+$', '', name)


@dataclasses.dataclass(frozen=True)
class ExclusionRules:
  """The settings that exclude variables from one purpose.

  Attributes:
    purpose: `'weight_decay'` or `'layer_adaptation'`.
    patterns: regexes searched in the variable's name.
    patterns_inherited: True when `patterns` are `exclude_from_weight_decay`'s,
      because `exclude_from_layer_adaptation` is None (Model Garden's
      fallback); the report then checks them once, for weight decay.
    variable_names: exact names, with or without the `:0` suffix.
    one_dimensional: whether variables of rank ≤ 1 are excluded.
    normalization: whether the model's normalization variables are excluded.
    excludes_every_variable: the setting that excludes every variable
      (`'weight_decay_rate = 0'`), or None.
  """
  purpose: str
  patterns: Tuple[str, ...] = ()
  patterns_inherited: bool = False
  variable_names: Tuple[str, ...] = ()
  one_dimensional: bool = False
  normalization: bool = False
  excludes_every_variable: Optional[str] = None

  @classmethod
  def from_options(cls, options: Mapping[str, Any],
                   purpose: str) -> 'ExclusionRules':
    """The rules for `purpose` of checked options.

    Args:
      options: the output of `lars_options.check_options`.
      purpose: one of `PURPOSES`.

    Returns:
      The rules.

    Raises:
      ValueError: if `purpose` is not one of `PURPOSES`.
    """
    if purpose not in PURPOSES:
      raise ValueError(f'LARS: exclusion purpose must be one of {PURPOSES}, '
                       f'got {purpose!r}.')
    patterns = options[f'exclude_from_{purpose}']
    inherited = purpose == LAYER_ADAPTATION and patterns is None
    if inherited:
      patterns = options['exclude_from_weight_decay']
    no_decay = purpose == WEIGHT_DECAY and not options['weight_decay_rate']
    return cls(
        purpose=purpose,
        patterns=tuple(patterns or ()),
        patterns_inherited=inherited,
        variable_names=tuple(options[f'exclude_variables_from_{purpose}'] or
                             ()),
        one_dimensional=options[f'exclude_one_dimensional_from_{purpose}'],
        normalization=options[f'exclude_normalization_from_{purpose}'],
        excludes_every_variable='weight_decay_rate = 0' if no_decay else None)

  def _field(self, kind: str) -> str:
    return f'exclude_{kind}_{self.purpose}'

  def reason(self, name: str, rank: Optional[int],
             normalization_names: Optional[FrozenSet[str]]) -> Optional[str]:
    """The setting that excludes a variable, or None if none does.

    Args:
      name: the variable's name as every replica knows it, e.g.
        `'dense/kernel:0'`.
      rank: its rank, None if unknown.
      normalization_names: the names of the model's normalization variables,
        None if the model was never handed over (`use_model`).

    Returns:
      The first setting that excludes it, e.g.
      `"exclude_from_weight_decay 'bias'"`, or None.

    Raises:
      ValueError: if the normalization selector is on and
        `normalization_names` is None.
    """
    if self.excludes_every_variable:
      return self.excludes_every_variable
    pattern = first_match(self.patterns, name)
    if pattern is not None:
      return f'{self._field("from")} {pattern!r}'
    if without_output_index(name) in {
        without_output_index(n) for n in self.variable_names}:
      return self._field('variables_from')
    if self.one_dimensional and rank is not None and rank <= 1:
      return self._field('one_dimensional_from')
    if self.normalization:
      if normalization_names is None:
        raise ValueError(
            f'LARS: {self._field("normalization_from")}=True, but the '
            f"optimizer does not know the model's normalization variables: "
            f'before training, call use_model(optimizer, model) from '
            f'official_ext.modeling.optimization.normalization_layers '
            f"(tf_keras; official_ext's launcher does) or official_ext.keras "
            f"(Keras 3), or the optimizer's set_normalization_variables(...).")
      if name in normalization_names:
        return self._field('normalization_from')
    return None

  def unmatched_settings(
      self, variables: Sequence[NameAndRank],
      normalization_names: Optional[FrozenSet[str]],
      normalization_layers: Sequence[str] = ()) -> List[str]:
    """A warning for each setting that selects none of `variables`.

    Args:
      variables: (name, rank) of the model's trainable variables.
      normalization_names: the model's normalization variable names, or None.
      normalization_layers: the normalization layer class names, named in the
        warning of a normalization selector that selects nothing.

    Returns:
      One warning per setting, in the order `reason` tries them.
    """
    names = [name for name, _ in variables]
    short_names = {without_output_index(name) for name in names}
    warnings = []
    for pattern in () if self.patterns_inherited else self.patterns:
      if not any(first_match([pattern], name) for name in names):
        warnings.append(f'LARS {self._field("from")} pattern {pattern!r} '
                        f'matches no trainable variable.')
    for name in self.variable_names:
      if without_output_index(name) not in short_names:
        warnings.append(f'LARS {self._field("variables_from")} names '
                        f'{name!r}, which is no trainable variable.')
    if self.one_dimensional and not any(
        rank is not None and rank <= 1 for _, rank in variables):
      warnings.append(f'LARS {self._field("one_dimensional_from")} is on, but '
                      f'no trainable variable has rank <= 1.')
    if self.normalization and not set(names) & (normalization_names or set()):
      warnings.append(
          f'LARS {self._field("normalization_from")} is on, but the model has '
          f'no trainable variable in a normalization layer '
          f'({", ".join(normalization_layers)}; add others with '
          f'normalization_layers.register_normalization_layer).')
    return warnings


def __getattr__(name: str) -> Any:
  # `use_model` lived here; it needs the tf_keras LARS class, which imports
  # this module, so the old path forwards lazily.
  if name == 'use_model':
    import warnings  # pylint: disable=g-import-not-at-top
    from official_ext.modeling.optimization import normalization_layers  # pylint: disable=g-import-not-at-top
    warnings.warn(
        'official_ext.modeling.optimization.lars_exclusion.use_model is '
        'deprecated; use official_ext.modeling.optimization.'
        'normalization_layers.use_model.', DeprecationWarning, stacklevel=2)
    return normalization_layers.use_model
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
