"""Trains a small Keras 3 model with LARS under a distribution; saves the result.

The Keras backend, the number of (logical) devices and the cluster are fixed
when the process starts, so `tests/keras/distribution_test.py` runs each
command below in its own process and compares what they save:

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=4 \\
      python -m tests.keras.distribution_cases jax_devices OUT.npz SAVE_DIR
    KERAS_BACKEND=jax XLA_FLAGS=... \\
      python -m tests.keras.distribution_cases jax_resume OUT.npz SAVE_DIR
    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
      python -m tests.keras.distribution_cases jax_process OUT.npz \\
      127.0.0.1:PORT PROCESS_ID
    KERAS_BACKEND=tensorflow python -m tests.keras.distribution_cases \\
      tf_mirrored OUT.npz SAVE_DIR            # also tf_resume
    KERAS_BACKEND=tensorflow TF_CONFIG=... python -m \\
      tests.keras.distribution_cases tf_worker OUT.npz
    KERAS_BACKEND=torch python -m tests.keras.distribution_cases \\
      torch_process OUT.npz 127.0.0.1:PORT PROCESS_ID

Every run trains the same model (an embedding, two dense layers and a layer
normalization) from the same initial weights on the same global batches, for
each of `OPTIONS` (classic and popular momentum, weight decay and exclusions).
OUT.npz holds `<case>/<options>/<kind>/<path>`: `weights` (after training),
`slots` (the momentum of each weight), `first_step` (the weights after one
step), plus `initial/<path>` and, on JAX, `layout/<path>` (the sharding).
PyTorch and MultiWorkerMirroredStrategy step in a loop instead of `fit`
(see `torch_process` and `tf_worker` for why).
"""

import contextlib
import os
import sys
from typing import Any, Callable, ContextManager, Dict, Mapping, Sequence

import numpy as np

VOCABULARY, SEQUENCE, EMBEDDING, HIDDEN, CLASSES = 32, 4, 8, 16, 5
GLOBAL_BATCH = 16
STEPS = 12
# Resumed runs stop after RESUME_AT steps, save, and continue in a new process.
RESUME_AT = 6
LEARNING_RATE = 1.0
# Weight decay, the bias out of it, the layer normalization out of layer
# adaptation (found by `use_model`); classic and popular momentum.
_COMMON = dict(momentum=0.9, weight_decay_rate=0.01, eeta=0.02,
               exclude_from_weight_decay=['bias'],
               exclude_normalization_from_layer_adaptation=True)
OPTIONS: Dict[str, Dict[str, Any]] = {
    'classic': dict(_COMMON),
    'popular': dict(_COMMON, classic_momentum=False, nesterov=True),
}
# ModelParallel: rows of the hidden kernel and columns of the embedding table
# are split over the mesh's 'model' axis; the batch over 'batch'.
MESH_SHAPE = (2, 2)
MESH_AXES = ('batch', 'model')
# LayoutMap keys must match a whole variable path, which starts with the
# model's name when Keras builds the model and not when it loads one.
SHARDED_LAYOUTS = {
    '(.*/)?embedding/embeddings': (None, 'model'),
    '(.*/)?hidden/kernel': ('model', None),
}


def data() -> Dict[str, np.ndarray]:
  """`STEPS` global batches of token ids and labels, in order."""
  rng = np.random.default_rng(11)
  count = STEPS * GLOBAL_BATCH
  return {'x': rng.integers(0, VOCABULARY, (count, SEQUENCE), dtype=np.int32),
          'y': rng.integers(0, CLASSES, count, dtype=np.int32)}


def build_model(keras) -> Any:
  """The model, with deterministic initial weights."""
  model = keras.Sequential([
      keras.Input((SEQUENCE,), dtype='int32'),
      keras.layers.Embedding(VOCABULARY, EMBEDDING, name='embedding'),
      keras.layers.Flatten(name='flatten'),
      keras.layers.Dense(HIDDEN, activation='tanh', name='hidden'),
      keras.layers.LayerNormalization(name='norm'),
      keras.layers.Dense(CLASSES, name='logits'),
  ])
  rng = np.random.default_rng(5)
  model.set_weights([
      (0.5 * rng.standard_normal(w.shape) + (w.path.endswith('norm/gamma'))
      ).astype(np.float32) for w in model.weights])
  return model


def compile_model(keras, model, options: Mapping[str, Any]) -> None:
  """Compiles `model` with a LARS of `options`."""
  from official_ext.keras import LARS, use_model  # pylint: disable=g-import-not-at-top
  optimizer = LARS(LEARNING_RATE, **options)
  use_model(optimizer, model)
  model.compile(
      optimizer=optimizer,
      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def _numpy(keras, variable) -> np.ndarray:
  return np.asarray(keras.ops.convert_to_numpy(variable))


def weight_keys(model) -> Dict[int, str]:
  """`<layer>/<variable>` of each weight, by `id`: the same after loading."""
  return {id(w): f'{layer.name}/{w.name}'
          for layer in model.layers for w in layer.weights}


def weight_values(keras, model, kind: str) -> Dict[str, np.ndarray]:
  """`<kind>/<layer>/<variable>` of each weight."""
  keys = weight_keys(model)
  return {f'{kind}/{keys[id(w)]}': _numpy(keras, w) for w in model.weights}


def slots(model) -> Dict[str, Any]:
  """The LARS momentum slot of each weight, by `<layer>/<variable>`."""
  keys = weight_keys(model)
  optimizer = model.optimizer
  return {keys[id(weight)]: slot for weight, slot in zip(
      optimizer._trainable_variables, optimizer._momentums)}  # pylint: disable=protected-access


def model_state(keras, model) -> Dict[str, np.ndarray]:
  """`weights/<path>` and `slots/<path>` (the momentum of each weight)."""
  state = weight_values(keras, model, 'weights')
  state.update({f'slots/{key}': _numpy(keras, slot)
                for key, slot in slots(model).items()})
  return state


def fit(keras, model, x: np.ndarray, y: np.ndarray,
        batch_size: int = GLOBAL_BATCH) -> Dict[str, np.ndarray]:
  """Trains one epoch over `x` in order; the weights after the first step."""
  first_step = {}

  class FirstStep(keras.callbacks.Callback):

    def on_train_batch_end(self, batch, logs=None):
      if batch == 0:
        # JAX keeps the training state out of the variables during `fit`.
        getattr(self.model, 'jax_state_sync', lambda: None)()
        first_step.update(weight_values(keras, self.model, 'first_step'))

  model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
            callbacks=[FirstStep()])
  return first_step


def train(keras, scope: Callable[[], ContextManager[Any]],
          options: Mapping[str, Any], x: np.ndarray, y: np.ndarray,
          batch_size: int = GLOBAL_BATCH) -> Dict[str, np.ndarray]:
  """Builds, compiles and trains the model inside `scope()`; its state."""
  with scope():
    model = build_model(keras)
    compile_model(keras, model, options)
    first_step = fit(keras, model, x, y, batch_size)
  return {**model_state(keras, model), **first_step}


def prefixed(prefix: str,
             arrays: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """`arrays` with keys `<prefix>/<key>`."""
  return {f'{prefix}/{key}': value for key, value in arrays.items()}


def train_all_options(keras, case: str,
                      scope: Callable[[], ContextManager[Any]],
                      results: Dict[str, np.ndarray], **data_arrays) -> None:
  """`train` for each of `OPTIONS`, into `results[<case>/<options>/...]`."""
  arrays = data_arrays or data()
  results.update(weight_values(keras, build_model(keras), 'initial'))
  for name, options in OPTIONS.items():
    results.update(prefixed(f'{case}/{name}',
                            train(keras, scope, options, **arrays)))


def _jax_model_parallel(keras) -> Any:
  mesh = keras.distribution.DeviceMesh(
      MESH_SHAPE, MESH_AXES, keras.distribution.list_devices())
  layout_map = keras.distribution.LayoutMap(mesh)
  for path, layout in SHARDED_LAYOUTS.items():
    layout_map[path] = layout
  return keras.distribution.ModelParallel(layout_map=layout_map,
                                          batch_dim_name='batch')


def _jax_layouts(model) -> Dict[str, np.ndarray]:
  """`layout/<path>` and `slot_layout/<path>`: the sharding of each."""
  keys = weight_keys(model)
  layouts = {f'layout/{keys[id(w)]}': w.value.sharding.spec
             for w in model.weights}
  layouts.update({f'slot_layout/{key}': slot.value.sharding.spec
                  for key, slot in slots(model).items()})
  return {key: np.array(str(spec)) for key, spec in layouts.items()}


def _resume_path(save_dir: str, backend: str) -> str:
  return os.path.join(save_dir, f'{backend}_resume.keras')


def _train_and_save(keras, scope: Callable[[], ContextManager[Any]],
                    save_dir: str) -> Any:
  """The classic options for `RESUME_AT` steps, saved with `model.save`."""
  arrays = data()
  cut = RESUME_AT * GLOBAL_BATCH
  with scope():
    model = build_model(keras)
    compile_model(keras, model, OPTIONS['classic'])
    fit(keras, model, arrays['x'][:cut], arrays['y'][:cut])
  model.save(_resume_path(save_dir, keras.backend.backend()))
  return model


def _load_and_continue(keras, scope: Callable[[], ContextManager[Any]],
                       save_dir: str,
                       results: Dict[str, np.ndarray]) -> Any:
  """Loads what `_train_and_save` saved and trains the remaining steps."""
  import official_ext.keras  # pylint: disable=g-import-not-at-top,unused-import
  arrays = data()
  cut = RESUME_AT * GLOBAL_BATCH
  with scope():
    model = keras.saving.load_model(
        _resume_path(save_dir, keras.backend.backend()))
    official_ext.keras.use_model(model.optimizer, model)
    results['resumed_at'] = _numpy(keras, model.optimizer.iterations)
    fit(keras, model, arrays['x'][cut:], arrays['y'][cut:])
  results.update(prefixed('resumed/classic', model_state(keras, model)))
  return model


def jax_devices(keras, save_dir: str) -> Dict[str, np.ndarray]:
  """One device, DataParallel over 4 and ModelParallel on 2×2, in turn."""
  results = {}
  train_all_options(keras, 'one_device', contextlib.nullcontext, results)
  data_parallel = keras.distribution.DataParallel(
      devices=keras.distribution.list_devices())
  train_all_options(keras, 'data_parallel', data_parallel.scope, results)
  model_parallel = _jax_model_parallel(keras)
  train_all_options(keras, 'model_parallel', model_parallel.scope, results)
  results.update(_jax_layouts(
      _train_and_save(keras, model_parallel.scope, save_dir)))
  return results


def jax_resume(keras, save_dir: str) -> Dict[str, np.ndarray]:
  """The saved ModelParallel run, loaded under ModelParallel, trained on."""
  results = {}
  model = _load_and_continue(keras, _jax_model_parallel(keras).scope,
                             save_dir, results)
  results.update(_jax_layouts(model))
  return results


def _process_half(arrays: Mapping[str, np.ndarray],
                  index: int) -> Dict[str, np.ndarray]:
  """Process `index`'s half of every global batch, of 2 processes."""
  return {key: value.reshape(STEPS, 2, GLOBAL_BATCH // 2, *value.shape[1:])[
      :, index].reshape(-1, *value.shape[1:]) for key, value in arrays.items()}


def jax_process(keras, process_id: str) -> Dict[str, np.ndarray]:
  """One of two JAX processes: DataParallel over both processes' devices.

  Each process feeds its half of every global batch, as NumPy arrays (hence
  `auto_shard_dataset=False`; Keras assembles the global batch with
  `jax.make_array_from_process_local_data`).
  """
  local = _process_half(data(), int(process_id))
  distribution = keras.distribution.DataParallel(
      devices=keras.distribution.list_devices(), auto_shard_dataset=False)
  import jax  # pylint: disable=g-import-not-at-top
  results = {'devices': np.array([distribution.device_mesh.devices.size,
                                  jax.local_device_count()])}
  train_all_options(keras, 'multi_process', distribution.scope, results,
                    batch_size=GLOBAL_BATCH // 2, **local)
  return results


def torch_process(keras, process_id: str) -> Dict[str, np.ndarray]:
  """One of two PyTorch processes: DistributedDataParallel, LARS's `apply`.

  Keras 3 has no `keras.distribution` on PyTorch and its `fit` does not
  all-reduce; Keras' PyTorch guide wraps the model in torch's
  DistributedDataParallel and steps it in a loop. So does this, with LARS:
  DDP averages the gradients over the processes in `backward`, and every
  process applies the same averaged gradients.
  """
  import torch  # pylint: disable=g-import-not-at-top
  local = _process_half(data(), int(process_id))
  results = {'world_size': np.array(torch.distributed.get_world_size())}
  try:
    keras.distribution.list_devices()
  except AttributeError as error:  # No distribution library on PyTorch.
    results['distribution_error'] = np.array(str(error))
  results.update(weight_values(keras, build_model(keras), 'initial'))
  loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  for name, options in OPTIONS.items():
    model = build_model(keras)
    compile_model(keras, model, options)
    replicated = torch.nn.parallel.DistributedDataParallel(model)
    batch = GLOBAL_BATCH // 2
    for step in range(STEPS):
      rows = slice(step * batch, (step + 1) * batch)
      model.zero_grad()
      loss(torch.as_tensor(local['y'][rows]),
           replicated(torch.as_tensor(local['x'][rows]))).backward()
      model.optimizer.apply([v.value.grad for v in model.trainable_variables],
                            model.trainable_variables)
    results.update(prefixed(f'torch_ddp/{name}', model_state(keras, model)))
  torch.distributed.destroy_process_group()
  return results


def _tf_mirrored(tf):
  return tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])


def tf_mirrored(keras, save_dir: str) -> Dict[str, np.ndarray]:
  """One device and MirroredStrategy over 2 logical CPUs, in turn."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  results = {}
  train_all_options(keras, 'one_device', contextlib.nullcontext, results)
  strategy = _tf_mirrored(tf)
  results['replicas'] = np.array(strategy.num_replicas_in_sync)
  train_all_options(keras, 'mirrored', strategy.scope, results)
  _train_and_save(keras, strategy.scope, save_dir)
  return results


def tf_resume(keras, save_dir: str) -> Dict[str, np.ndarray]:
  """The saved Mirrored run, loaded under MirroredStrategy, trained on."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  results = {}
  _load_and_continue(keras, _tf_mirrored(tf).scope, save_dir, results)
  return results


def tf_worker(keras) -> Dict[str, np.ndarray]:
  """One of the workers of TF_CONFIG's MultiWorkerMirroredStrategy.

  Keras 3.15's `fit` cannot run under this strategy (its first-batch build
  all-reduces the input structure, which the collective ops refuse:
  keras-team/keras#20585), so each step is Keras' own `model.train_step`,
  what `fit` runs, under `strategy.run`.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  strategy = tf.distribute.MultiWorkerMirroredStrategy()
  results = {'replicas': np.array(strategy.num_replicas_in_sync)}
  arrays = data()
  for name, options in OPTIONS.items():
    # A dataset of global batches: tf.distribute gives each worker its half.
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(
            (arrays['x'], arrays['y'])).batch(GLOBAL_BATCH))
    with strategy.scope():
      model = build_model(keras)
      compile_model(keras, model, options)
      model.optimizer.build(model.trainable_variables)
    train_step = tf.function(
        lambda batch, model=model: strategy.run(model.train_step, (batch,)))
    for batch in dataset:
      train_step(batch)
    results.update(prefixed(f'multi_worker/{name}',
                            model_state(keras, model)))
  return results


def _setup_backend(command: str, argv: Sequence[str]) -> Sequence[str]:
  """What must happen before Keras is imported; the command's arguments."""
  if command.startswith('tf_') and command != 'tf_worker':
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  if command == 'jax_process':
    import jax  # pylint: disable=g-import-not-at-top
    # Cross-process collectives on CPU: gloo, jax 0.10's default, named so
    # that the processes do not depend on it.
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    import keras  # pylint: disable=g-import-not-at-top
    coordinator, process_id = argv
    keras.distribution.initialize(job_addresses=coordinator, num_processes=2,
                                  process_id=int(process_id))
    return [process_id]
  if command == 'torch_process':
    import torch  # pylint: disable=g-import-not-at-top
    coordinator, process_id = argv
    torch.distributed.init_process_group(
        'gloo', init_method=f'tcp://{coordinator}', rank=int(process_id),
        world_size=2)
    return [process_id]
  return argv


COMMANDS = {
    'jax_devices': jax_devices, 'jax_resume': jax_resume,
    'jax_process': jax_process, 'tf_mirrored': tf_mirrored,
    'tf_resume': tf_resume, 'tf_worker': tf_worker,
    'torch_process': torch_process,
}


def main(argv: Sequence[str]) -> None:
  command, out_path, *arguments = argv[1:]
  arguments = _setup_backend(command, arguments)
  import keras  # pylint: disable=g-import-not-at-top
  results = COMMANDS[command](keras, *arguments)
  results['backend'] = np.array(keras.backend.backend())
  np.savez(out_path, **results)


if __name__ == '__main__':
  main(sys.argv)
