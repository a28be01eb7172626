r"""How many times an XLA-compiled optimizer step reads and writes a variable.

  python -m official_ext.benchmarks.xla_passes

Large-tensor updates are memory-bound, so their cost is roughly the number of
full-size arrays each step reads and writes. This program compiles each
contender's step (`optimizer_runs.CONTENDERS`) for one `SHAPE` kernel with
`tf.function(jit_compile=True)`, takes XLA's optimized HLO, and counts, over
the kernels (fusions and other instructions) of the entry computation, the
full-size operands read and the full-size results written. Bitcasts,
parameters and the output tuple move no data and are not counted.
"""

import dataclasses
import logging
import re
from typing import Dict, List, Sequence

from absl import app
import tensorflow as tf

from official_ext.benchmarks import optimizer_runs
from official_ext.benchmarks import workloads

SHAPE = (256, 1024)
_FREE_OPCODES = frozenset(
    {'parameter', 'tuple', 'bitcast', 'constant', 'get-tuple-element'})
# `%name = f32[256,1024]{1,0} opcode(%a, %b), attributes`
_INSTRUCTION = re.compile(
    r'^\s*(?:ROOT )?%(?P<name>[\w.\-]+) = (?P<type>\w+)\[(?P<dims>[\d,]*)\]'
    r'\S* (?P<opcode>[\w\-]+)\((?P<operands>[^)]*)\)')


@dataclasses.dataclass(frozen=True)
class ArrayPasses:
  """Full-size array traffic of one compiled step."""
  kernels: int  # Entry instructions touching a full-size array.
  reads: int
  writes: int

  @property
  def passes(self) -> int:
    return self.reads + self.writes


def count_passes(hlo_text: str, num_elements: int) -> ArrayPasses:
  """Counts full-size reads and writes in an HLO module's entry computation.

  Args:
    hlo_text: `experimental_get_compiler_ir()(stage='optimized_hlo')` output.
    num_elements: how many elements a full-size array has.

  Returns:
    The counts; see the module docstring.
  """
  entry = hlo_text[hlo_text.index('\nENTRY'):]
  full_size = set()
  kernels = reads = writes = 0
  for line in entry.splitlines():
    match = _INSTRUCTION.match(line)
    if match is None:
      continue
    dims = [int(d) for d in match['dims'].split(',') if d]
    size = 1
    for dim in dims:
      size *= dim
    if size == num_elements:
      full_size.add(match['name'])
    if match['opcode'] in _FREE_OPCODES:
      continue
    operands = set(re.findall(r'%([\w.\-]+)', match['operands']))
    read = len(operands & full_size)
    written = int(match['name'] in full_size)
    if read or written:
      kernels += 1
      reads += read
      writes += written
  return ArrayPasses(kernels, reads, writes)


def compiled_step_hlo(candidate: optimizer_runs.Contender) -> str:
  """Optimized HLO of `candidate`'s step on one `SHAPE` kernel."""
  specs = [workloads.VariableSpec('dense/kernel', SHAPE)]
  runner = optimizer_runs.make_runner(candidate, specs,
                                      workloads.gradients(specs),
                                      jit_compile=True)
  runner.first_call()
  return runner.step_function.experimental_get_compiler_ir()(
      stage='optimized_hlo')


def measure() -> Dict[str, ArrayPasses]:
  """`count_passes` of every contender's compiled step, by table label."""
  num_elements = SHAPE[0] * SHAPE[1]
  return {
      c.label: count_passes(compiled_step_hlo(c), num_elements)
      for c in optimizer_runs.CONTENDERS
  }


def format_table(passes: Dict[str, ArrayPasses]) -> str:
  """A markdown table, passes also as a ratio to the last (baseline) row."""
  baseline = list(passes.values())[-1].passes
  rows: List[str] = [
      '| optimizer | kernels | full-size reads | full-size writes | '
      'passes | passes / SGD |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
  ]
  rows += [
      f'| {label} | {p.kernels} | {p.reads} | {p.writes} | {p.passes} | '
      f'{p.passes / baseline:.2f}× |' for label, p in passes.items()
  ]
  return '\n'.join(rows)


def main(argv: Sequence[str]):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  tf.get_logger().setLevel(logging.ERROR)
  print(f'XLA step on one {SHAPE[0]}×{SHAPE[1]} kernel (weight decay and '
        f'layer adaptation on), TensorFlow {tf.__version__}:\n')
  print(format_table(measure()))


if __name__ == '__main__':
  app.run(main)
