"""Runs the Keras 3 LARS on one Keras backend and saves what it computed.

KERAS_BACKEND is fixed when `keras` is imported, so each backend runs in its
own process:

    KERAS_BACKEND=jax python -m tests.keras.backend_trajectory IN.npz OUT.npz

IN.npz holds the problem (`problem_arrays`), OUT.npz the result:
* `trajectory/<case>/<variable>`: `[steps, *shape]`, the variable after each
  `optimizer.apply` of the given gradients, for each case's LARS options;
* `fit/<variable>`: the weights of a linear model after `model.fit` with
  `jit_compile` on (Keras' default on JAX, `True` on TensorFlow, off on
  PyTorch where it would mean `torch.compile`).
"""

import json
import sys
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

# Variables of the trajectory problem: (Keras 3 path, shape). The bias starts
# at zero, which exercises the trust ratio's guard on the first step.
VARIABLES: Tuple[Tuple[str, Tuple[int, ...]], ...] = (
    ('dense/kernel', (4, 3)),
    ('dense/bias', (3,)),
    ('norm/gamma', (3,)),
)
NORMALIZATION_PATHS = ('norm/gamma',)
NUM_STEPS = 10
LEARNING_RATE = 0.5

# The linear regression model that `fit` trains: `y = x·W + b`, MSE loss.
FIT_FEATURES, FIT_OUTPUTS, FIT_BATCH, FIT_STEPS = 5, 2, 8, 6


def problem_arrays(seed: int = 0) -> Dict[str, np.ndarray]:
  """Initial values, gradients and the regression data, all float32."""
  rng = np.random.default_rng(seed)
  arrays = {}
  for path, shape in VARIABLES:
    initial = rng.standard_normal(shape).astype(np.float32)
    if path.endswith('bias'):
      initial[:] = 0
    arrays[f'initial/{path}'] = initial
    arrays[f'gradients/{path}'] = rng.standard_normal(
        (NUM_STEPS,) + shape).astype(np.float32)
  arrays['fit/x'] = rng.standard_normal(
      (FIT_STEPS * FIT_BATCH, FIT_FEATURES)).astype(np.float32)
  arrays['fit/y'] = rng.standard_normal(
      (FIT_STEPS * FIT_BATCH, FIT_OUTPUTS)).astype(np.float32)
  arrays['fit/kernel'] = rng.standard_normal(
      (FIT_FEATURES, FIT_OUTPUTS)).astype(np.float32)
  arrays['fit/bias'] = np.zeros(FIT_OUTPUTS, np.float32)
  return arrays


def keras_variables(keras, arrays: Mapping[str, np.ndarray]) -> List[Any]:
  """The problem's variables as Keras 3 variables with their paths."""
  variables = []
  for path, _ in VARIABLES:
    scope, name = path.split('/')
    with keras.name_scope(scope):
      variables.append(keras.Variable(arrays[f'initial/{path}'], name=name))
  return variables


def trajectory(keras, arrays: Mapping[str, np.ndarray],
               options: Mapping[str, Any]) -> List[np.ndarray]:
  """Each variable after each step, as `[steps, *shape]` arrays."""
  from official_ext.keras import LARS  # pylint: disable=g-import-not-at-top
  variables = keras_variables(keras, arrays)
  optimizer = LARS(LEARNING_RATE, **options)
  optimizer.set_normalization_variables(
      [v for v in variables if v.path in NORMALIZATION_PATHS])
  steps = [[] for _ in variables]
  for step in range(NUM_STEPS):
    optimizer.apply(
        [arrays[f'gradients/{path}'][step] for path, _ in VARIABLES],
        variables)
    for values, variable in zip(steps, variables):
      values.append(keras.ops.convert_to_numpy(variable))
  return [np.stack(values) for values in steps]


def fit_weights(keras, arrays: Mapping[str, np.ndarray],
                options: Mapping[str, Any]) -> List[np.ndarray]:
  """The linear model's kernel and bias after `FIT_STEPS` fit steps."""
  from official_ext.keras import LARS  # pylint: disable=g-import-not-at-top
  dense = keras.layers.Dense(FIT_OUTPUTS)
  model = keras.Sequential([keras.Input((FIT_FEATURES,)), dense])
  dense.set_weights([arrays['fit/kernel'], arrays['fit/bias']])
  jit_compile = {'tensorflow': True, 'jax': 'auto', 'torch': False}
  model.compile(optimizer=LARS(LEARNING_RATE, **options), loss='mse',
                jit_compile=jit_compile[keras.backend.backend()])
  model.fit(arrays['fit/x'], arrays['fit/y'], batch_size=FIT_BATCH,
            shuffle=False, epochs=1, verbose=0)
  return [keras.ops.convert_to_numpy(w) for w in dense.weights]


def main(argv: Sequence[str]) -> None:
  import keras  # pylint: disable=g-import-not-at-top
  in_path, out_path = argv[1:]
  with np.load(in_path) as data:
    arrays = dict(data)
  cases = json.loads(str(arrays.pop('cases')))
  fit_options = json.loads(str(arrays.pop('fit_options')))
  results = {}
  for index, options in enumerate(cases):
    for (path, _), values in zip(VARIABLES,
                                 trajectory(keras, arrays, options)):
      results[f'trajectory/{index}/{path}'] = values
  kernel, bias = fit_weights(keras, arrays, fit_options)
  results.update({'fit/kernel': kernel, 'fit/bias': bias,
                  'backend': np.array(keras.backend.backend())})
  np.savez(out_path, **results)


if __name__ == '__main__':
  main(sys.argv)
