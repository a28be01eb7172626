"""Variable sets that the optimizer-step benchmark updates.

A workload is a list of `VariableSpec`s: the names and shapes of a real
model's trainable variables. Names follow Keras conventions (`.../kernel:0`,
`.../bias:0`, `.../gamma:0`, `.../beta:0`, `LayerNorm`) so that LARS's
exclusion regexes select the same variables they would in training. Values
and gradients are seeded random numbers; only their shapes and names matter
for speed.
"""

import dataclasses
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

# `--quick` keeps this many variables of a workload and clips every dimension
# to `QUICK_MAX_DIM`: names and kinds survive, the work becomes negligible.
QUICK_NUM_VARIABLES = 20
QUICK_MAX_DIM = 8

_INITIAL_VALUE_SCALE = 0.05
_GRADIENT_SCALE = 1e-3


@dataclasses.dataclass(frozen=True)
class VariableSpec:
  """Name (without the `:0` suffix) and shape of one trainable variable."""
  name: str
  shape: Tuple[int, ...]

  @property
  def num_elements(self) -> int:
    return int(np.prod(self.shape, dtype=np.int64))


def resnet50_specs() -> List[VariableSpec]:
  """The trainable variables of `tf_keras.applications.ResNet50`.

  Built with `weights=None` (nothing is downloaded): 214 variables, about
  25.6M parameters, conv kernels and biases plus BatchNorm gamma and beta.

  Returns:
    One spec per trainable variable, in model order.
  """
  model = tf_keras.applications.ResNet50(weights=None)
  specs = [
      VariableSpec(v.name.removesuffix(':0'), tuple(v.shape))
      for v in model.trainable_variables
  ]
  tf_keras.backend.clear_session()
  return specs


def many_small_specs(num_variables: int = 1000,
                     size: int = 32) -> List[VariableSpec]:
  """`num_variables` dense kernels of `size`×`size`: per-variable overhead.

  Args:
    num_variables: how many variables.
    size: each kernel is `size`×`size`.

  Returns:
    The specs, named `dense_<i>/kernel`.
  """
  return [
      VariableSpec(f'dense_{i}/kernel', (size, size))
      for i in range(num_variables)
  ]


def _dense_specs(scope: str, fan_in: int,
                 fan_out: int) -> List[VariableSpec]:
  return [
      VariableSpec(f'{scope}/kernel', (fan_in, fan_out)),
      VariableSpec(f'{scope}/bias', (fan_out,)),
  ]


def _layer_norm_specs(scope: str, width: int) -> List[VariableSpec]:
  return [
      VariableSpec(f'{scope}/LayerNorm/gamma', (width,)),
      VariableSpec(f'{scope}/LayerNorm/beta', (width,)),
  ]


def bert_base_specs(vocab_size: int = 30522,
                    max_positions: int = 512,
                    type_vocab_size: int = 2,
                    hidden: int = 768,
                    intermediate: int = 3072,
                    num_layers: int = 12) -> List[VariableSpec]:
  """BERT-base's trainable variables, named as in Google's BERT checkpoints.

  Embeddings (word, position, token type) and their LayerNorm; per layer the
  query/key/value/output projections, attention LayerNorm, the feed-forward
  pair and output LayerNorm; the pooler. 199 variables, about 109.5M
  parameters.

  Args:
    vocab_size: word-embedding rows.
    max_positions: position-embedding rows.
    type_vocab_size: token-type-embedding rows.
    hidden: model width.
    intermediate: feed-forward width.
    num_layers: transformer layers.

  Returns:
    The specs, in checkpoint order.
  """
  specs = [
      VariableSpec('bert/embeddings/word_embeddings', (vocab_size, hidden)),
      VariableSpec('bert/embeddings/position_embeddings',
                   (max_positions, hidden)),
      VariableSpec('bert/embeddings/token_type_embeddings',
                   (type_vocab_size, hidden)),
      *_layer_norm_specs('bert/embeddings', hidden),
  ]
  for layer in range(num_layers):
    scope = f'bert/encoder/layer_{layer}'
    for projection in ('query', 'key', 'value'):
      specs += _dense_specs(f'{scope}/attention/self/{projection}', hidden,
                            hidden)
    specs += _dense_specs(f'{scope}/attention/output/dense', hidden, hidden)
    specs += _layer_norm_specs(f'{scope}/attention/output', hidden)
    specs += _dense_specs(f'{scope}/intermediate/dense', hidden, intermediate)
    specs += _dense_specs(f'{scope}/output/dense', intermediate, hidden)
    specs += _layer_norm_specs(f'{scope}/output', hidden)
  specs += _dense_specs('bert/pooler/dense', hidden, hidden)
  return specs


WORKLOADS: Dict[str, Callable[[], List[VariableSpec]]] = {
    'resnet50': resnet50_specs,
    'many_small': many_small_specs,
    'bert_base': bert_base_specs,
}


def shrink(specs: Sequence[VariableSpec]) -> List[VariableSpec]:
  """The `--quick` version of a workload: its first few variables, tiny.

  Args:
    specs: a full workload.

  Returns:
    The first `QUICK_NUM_VARIABLES` specs, every dimension clipped to
    `QUICK_MAX_DIM`, names unchanged.
  """
  return [
      VariableSpec(s.name, tuple(min(d, QUICK_MAX_DIM) for d in s.shape))
      for s in specs[:QUICK_NUM_VARIABLES]
  ]


def workload_specs(workload: str, quick: bool) -> List[VariableSpec]:
  """Looks up a workload by name, shrunk for `--quick`.

  Args:
    workload: a key of `WORKLOADS`.
    quick: whether to shrink it with `shrink`.

  Returns:
    The workload's variable specs.

  Raises:
    ValueError: for an unknown workload name.
  """
  if workload not in WORKLOADS:
    raise ValueError(f'workload={workload!r} is not one of {sorted(WORKLOADS)}')
  specs = WORKLOADS[workload]()
  return shrink(specs) if quick else specs


def _seeded_normal(shape: Tuple[int, ...], seed: Tuple[int, int],
                   scale: float) -> tf.Tensor:
  # Drawn in NumPy and scaled in place: TensorFlow's allocator never holds a
  # temporary that, once freed, a later allocation could silently reuse,
  # which keeps the memory probe's RSS growth honest.
  values = np.random.default_rng(seed).standard_normal(shape, np.float32)
  values *= scale
  return tf.constant(values)


def make_variables(specs: Sequence[VariableSpec]) -> List[tf.Variable]:
  """One optimizer's own copy of the workload's variables.

  Every copy gets the same seeded values. Each variable's initial tensor is
  made inside it and owned by it alone, so the first in-place update needs no
  copy-on-write that a memory measurement would blame on the optimizer.

  Args:
    specs: the workload.

  Returns:
    Trainable variables named `<spec.name>:0`.
  """
  return [
      tf.Variable(
          lambda s=spec, i=index: _seeded_normal(s.shape, (i, 0),
                                                 _INITIAL_VALUE_SCALE),
          name=spec.name, trainable=True)
      for index, spec in enumerate(specs)
  ]


def gradients(specs: Sequence[VariableSpec]) -> List[tf.Tensor]:
  """Deterministic gradients, fixed for every step of every optimizer."""
  return [
      _seeded_normal(s.shape, (i, 1), _GRADIENT_SCALE)
      for i, s in enumerate(specs)
  ]
