"""Sizes of a traced graph, counting the functions it calls.

`concrete_function.graph.get_operations()` lists only the top-level nodes: an
optimizer that wraps its per-variable update in a nested `tf.function` shows
one call node per variable there, however much the function does. Two counts
close that gap:

- traced ops: top-level nodes plus the nodes of every distinct function they
  reach, each function once, as it was traced once (what tracing builds);
- expanded ops: every call expanded at every call site, recursively: every op
  that runs each step, inside a function call or not (the runtime inlines
  ordinary calls but keeps official_ext's `_noinline` per-variable update as
  one call per variable; `runtime_calls` shows it).
"""

import dataclasses
import functools
from typing import Iterable, Iterator, Mapping, Set

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class GraphSize:
  """Node counts of a traced graph; see the module docstring."""
  traced_ops: int
  expanded_ops: int


def _called_functions(node: tf.compat.v1.NodeDef) -> Iterator[str]:
  """Names of the functions a node calls through function-valued attrs."""
  for attr in node.attr.values():
    if attr.func.name:
      yield attr.func.name
    for function in attr.list.func:
      yield function.name


def graph_size(graph_def: tf.compat.v1.GraphDef) -> GraphSize:
  """Counts a graph's traced and expanded ops.

  Args:
    graph_def: a traced graph with its function library, e.g.
      `concrete_function.graph.as_graph_def()`.

  Returns:
    The counts. A function counts as many ops as its own traced graph
    (`get_operations()`, argument Placeholders included); call nodes count
    themselves as well as their function.
  """
  functions: Mapping[str, tf.compat.v1.FunctionDef] = {
      function.signature.name: function
      for function in graph_def.library.function
  }

  def own_ops(name: str) -> int:
    # A FunctionDef lists its arguments in the signature, not as nodes; its
    # traced graph has one Placeholder for each.
    function = functions[name]
    return len(function.node_def) + len(function.signature.input_arg)

  @functools.cache
  def expanded_function_ops(name: str) -> int:
    return (len(functions[name].signature.input_arg) +
            expanded_ops(functions[name].node_def))

  def expanded_ops(nodes: Iterable[tf.compat.v1.NodeDef]) -> int:
    return sum(1 + sum(expanded_function_ops(name)
                       for name in _called_functions(node))
               for node in nodes)

  reached: Set[str] = set()
  pending = [
      name for node in graph_def.node for name in _called_functions(node)
  ]
  while pending:
    name = pending.pop()
    if name not in reached:
      reached.add(name)
      pending += [callee for node in functions[name].node_def
                  for callee in _called_functions(node)]

  return GraphSize(
      traced_ops=len(graph_def.node) + sum(own_ops(n) for n in reached),
      expanded_ops=expanded_ops(graph_def.node))
