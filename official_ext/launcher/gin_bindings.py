"""Gin bindings of LARS hyperparameters: `LARS.<field> = value`.

Model Garden's optimizer factory passes every config field to the optimizer
explicitly, and explicit arguments silently win over gin bindings, so a binding
on the optimizer class itself would do nothing. Instead, `LARS.<field>`
bindings name fields of the experiment's `LARSConfig`; the launcher applies
them to the config after `--config_file` and `--params_override`, and the
factory then builds LARS from that config. This module owns the gin name
`LARS` and reads its bindings.
"""
from typing import Any, Dict

import gin

from official_ext.modeling.optimization.configs import optimizer_config

LARS_GIN_NAME = 'LARS'


@gin.configurable(LARS_GIN_NAME, module='official_ext')
def _bound_lars_hyperparameters(**bindings: Any) -> Dict[str, Any]:
  # Gin passes each `LARS.<name>` binding as a keyword argument; calling this
  # through gin also records the bindings in gin's operative config.
  return bindings


def lars_fields() -> frozenset:
  """Returns the names of the LARSConfig fields that gin may bind."""
  return frozenset(optimizer_config.LARSConfig().as_dict())


def lars_bindings() -> Dict[str, Any]:
  """Returns the parsed `LARS.<field>` gin bindings, field -> value.

  Raises:
    ValueError: if a bound name is not a LARSConfig field (LARS accepts
      **kwargs, so gin itself cannot reject a misspelt hyperparameter).
  """
  bindings = _bound_lars_hyperparameters()
  unknown = sorted(set(bindings) - lars_fields())
  if unknown:
    named = ', '.join(f'{LARS_GIN_NAME}.{name} = {bindings[name]!r}'
                      for name in unknown)
    raise ValueError(
        f'Unknown LARS hyperparameter(s) bound with gin: {named}. '
        f'Bindable fields: {sorted(lars_fields())}; the learning rate comes '
        f'from trainer.optimizer_config.learning_rate and .warmup.')
  return bindings
