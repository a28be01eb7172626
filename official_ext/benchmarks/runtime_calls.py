r"""Does the runtime inline LARS's per-variable update function? Measured.

  python -m official_ext.benchmarks.runtime_calls

official_ext's LARS runs each variable's update through one traced function
(`lars_update.variable_update_function`) marked `_noinline`. Whether the
runtime inlines such calls anyway is settled here by looking at what runs:
one `apply_gradients` step on a few variables executes with run metadata on,
and the function call nodes of the step's graph are counted before and after
TensorFlow's graph optimizations (Grappler and function lowering), i.e. in the
graph the executor actually runs.
"""

import logging
from typing import Callable, Dict, Sequence

from absl import app
import tensorflow as tf
# Run metadata, the only record of the graph after optimization, has no
# public TF2 API.
from tensorflow.python.eager import context  # pylint: disable=g-direct-tensorflow-import

from official_ext.benchmarks import optimizer_runs
from official_ext.benchmarks import workloads

CALL_OPS = frozenset({'PartitionedCall', 'StatefulPartitionedCall'})
NUM_VARIABLES = 3


def call_counts(step: Callable[[], None]) -> Dict[str, int]:
  """Function calls in a `tf.function`'s graph before and after optimization.

  Args:
    step: a `tf.function` that calls other functions and was never called
      (its graphs are recorded when it is first instantiated).

  Returns:
    `{'traced': n, 'executed': m}`: call nodes in the step's graph as traced
    and as optimized for execution.

  Raises:
    ValueError: if no graph with function calls was recorded.
  """
  context.enable_run_metadata()
  try:
    step()
    metadata = context.export_run_metadata()
  finally:
    context.disable_run_metadata()
  graphs = [g for g in metadata.function_graphs
            if any(n.op in CALL_OPS for n in g.pre_optimization_graph.node)]
  if not graphs:
    raise ValueError('no function graph with calls was recorded: pass a '
                     'tf.function that calls functions and was never called')

  def calls(graph_def: tf.compat.v1.GraphDef) -> int:
    return sum(node.op in CALL_OPS for node in graph_def.node)

  return {
      'traced': sum(calls(g.pre_optimization_graph) for g in graphs),
      'executed': sum(calls(g.post_optimization_graph) for g in graphs),
  }


def lars_step_call_counts() -> Dict[str, int]:
  """`call_counts` of one official_ext LARS step on `NUM_VARIABLES` kernels."""
  specs = [workloads.VariableSpec(f'dense_{i}/kernel', (4, 4))
           for i in range(NUM_VARIABLES)]
  runner = optimizer_runs.make_runner(
      optimizer_runs.contender('official_ext_lars'), specs,
      workloads.gradients(specs), jit_compile=False)
  return call_counts(runner.step_function)


def main(argv: Sequence[str]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  tf.get_logger().setLevel(logging.ERROR)
  counts = lars_step_call_counts()
  print(f'official_ext LARS, one step on {NUM_VARIABLES} variables: '
        f'{counts["traced"]} function calls traced, {counts["executed"]} '
        f'left after graph optimization (executed as calls).')


if __name__ == '__main__':
  app.run(main)
