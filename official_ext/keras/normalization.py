"""The variables of a Keras 3 model's normalization layers, for LARS.

`exclude_normalization_from_weight_decay` and
`exclude_normalization_from_layer_adaptation` select variables by the type of
the layer that owns them, which a Keras 3 variable does not record: the
model has to say. `use_model(optimizer, model)` hands the optimizer the
variables of the model's normalization layers.
"""

from typing import Any, List, Optional, Tuple

import keras

from official_ext import internals
from official_ext.keras import lars
from official_ext.modeling.optimization import normalization_layers
from official_ext.modeling.optimization import optimizer_wrappers

# Keras 3's normalization layers with trainable scales or offsets,
# subclasses included. (UnitNormalization has no variables;
# SpectralNormalization wraps another layer's kernel.)
NORMALIZATION_LAYERS: Tuple[type, ...] = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.RMSNormalization,
)


def normalization_variables(
    model: keras.Model,
    layer_classes: Tuple[type, ...] = NORMALIZATION_LAYERS) -> List[Any]:
  """The trainable variables of `model`'s normalization layers.

  Args:
    model: a built Keras 3 model.
    layer_classes: the layer types that count as normalization.

  Returns:
    The variables, in layer order.

  Raises:
    ValueError: if a normalization layer is not built yet.
  """
  # Keras 3 has no public recursive layer walk.
  return normalization_layers.layer_variables(
      internals.keras_nested_layers(model), layer_classes)


def use_model(optimizer: Any, model: keras.Model,
              layer_classes: Tuple[type, ...] = NORMALIZATION_LAYERS
             ) -> Optional[lars.LARS]:
  """Tells a Keras 3 LARS which variables are the model's normalization's.

  Call it once the model is built and before the first training step (again
  after `keras.saving.load_model`: the selection is not saved). It does
  nothing for another optimizer.

  Args:
    optimizer: the optimizer, e.g. `model.optimizer`.
    model: the model it trains.
    layer_classes: the layer types that count as normalization.

  Returns:
    The LARS, or None if neither `optimizer` nor an optimizer it wraps (e.g.
    in a `keras.optimizers.LossScaleOptimizer`) is one.
  """
  found = optimizer_wrappers.find(optimizer, lars.LARS)
  if found is not None:
    found.set_normalization_variables(
        normalization_variables(model, layer_classes))
  return found
