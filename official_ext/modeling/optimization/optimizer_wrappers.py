"""Sees through the optimizer wrappers Model Garden and Keras put around LARS.

Loss scaling (`LossScaleOptimizer`, tf_keras and Keras 3) keeps the optimizer
it wraps in `inner_optimizer`; Model Garden's `ExponentialMovingAverage` in
`_optimizer`. Nothing here imports TensorFlow or Keras.
"""
from typing import Any, List, Optional, Type, TypeVar

_WRAPPED_ATTRIBUTES = ('inner_optimizer', '_optimizer')

OptimizerT = TypeVar('OptimizerT')


def unwrap(optimizer: Any) -> List[Any]:
  """The optimizer and the optimizers it wraps, outermost first.

  Args:
    optimizer: an optimizer, possibly wrapped any number of times.

  Returns:
    A list starting with `optimizer` and ending with the innermost optimizer.
  """
  chain = [optimizer]
  while True:
    inner = next((getattr(chain[-1], name) for name in _WRAPPED_ATTRIBUTES
                  if getattr(chain[-1], name, None) is not None), None)
    if inner is None or any(inner is seen for seen in chain):
      return chain
    chain.append(inner)


def find(optimizer: Any, cls: Type[OptimizerT]) -> Optional[OptimizerT]:
  """The outermost optimizer of class `cls` in `optimizer`'s wrappers.

  Args:
    optimizer: an optimizer, possibly wrapped.
    cls: the class looked for, e.g. a LARS class.

  Returns:
    The instance of `cls`, or None if neither `optimizer` nor any optimizer
    it wraps is one.
  """
  return next((o for o in unwrap(optimizer) if isinstance(o, cls)), None)
