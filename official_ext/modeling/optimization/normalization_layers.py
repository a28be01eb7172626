"""The model's normalization layers, whose variables LARS can exclude.

`exclude_normalization_from_*` select the trainable variables of layers of
the classes in `normalization_layer_classes()`, subclasses included, found by
type at any depth of the model (`normalization_variables`); add your own
with `register_normalization_layer`. `use_model(optimizer, model)` hands them
to the LARS inside any optimizer wrappers.
"""
from typing import Any, Iterable, List, Optional, Tuple

import tensorflow as tf
import tf_keras

from official.nlp.modeling.layers import mobile_bert_layers
from official.nlp.modeling.layers import transformer_encoder_block

from official_ext.modeling.optimization import optimizer_wrappers

# Model Garden's vision models use Keras' batch normalization (synchronized or
# not); its NLP models, LayerNormalization, RMSNorm and MobileBERT's NoNorm.
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
  return layer_variables(model.submodules, normalization_layer_classes())


def layer_variables(layers: Iterable[Any],
                    layer_classes: Tuple[type, ...]) -> List[Any]:
  """The trainable variables of those `layers` that are `layer_classes`.

  Shared by the tf_keras and Keras 3 classes, which walk their models'
  layers differently.

  Args:
    layers: every layer of a model, nested ones included.
    layer_classes: the layer types that count as normalization.

  Returns:
    The variables, in the order of `layers`.

  Raises:
    ValueError: if a normalization layer is not built yet, so that its
      variables do not exist.
  """
  variables = []
  for layer in layers:
    if isinstance(layer, layer_classes):
      if not layer.built:
        raise ValueError(
            f'Normalization layer {layer.name!r} of the model is not built, '
            f'so LARS cannot exclude its variables: build the model (call it '
            f'once) before training.')
      variables += layer.trainable_variables
  return variables


def use_model(optimizer: Any, model: tf.Module) -> Optional[Any]:
  """Tells the LARS inside `optimizer` which variables are normalization's.

  Call it once the model is built and before the first training step; only
  `exclude_normalization_from_*` need it, so it does nothing for a LARS
  without them (or for another optimizer).

  Args:
    optimizer: an optimizer, possibly wrapping official_ext's tf_keras LARS.
    model: the model it will train, a built tf_keras model.

  Returns:
    The LARS found: the first tf_keras optimizer in `optimizer`'s wrappers
    that takes normalization variables (official_ext's tf_keras LARS or a
    subclass; Keras 3 optimizers are not tf_keras ones). None if there is
    none.
  """
  found = next(
      (o for o in optimizer_wrappers.unwrap(optimizer)
       if isinstance(o, tf_keras.optimizers.legacy.Optimizer) and
       hasattr(o, 'set_normalization_variables')), None)
  if found is not None and any(
      rules.normalization for rules in found.exclusion_rules.values()):
    found.set_normalization_variables(normalization_variables(model))
  return found
