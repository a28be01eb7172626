"""Says the Python object reprs in error messages in words.

Gin appends its call context to an error raised inside a configurable as
`In call to configurable 'build_optimizer' (<function
OptimizerFactory.build_optimizer at 0x7f57ab2f76a0>)`; a one-line error for a
user says `Raised in gin's call to configurable 'build_optimizer' (function
OptimizerFactory.build_optimizer).` instead. Any other `<... at 0x...>` repr
keeps what it names and loses its address, which differs from run to run and
tells a user nothing.
"""
import re

# Gin's `str(fn_or_cls)`: a function's repr, or a class's `<class 'x.Y'>`.
_GIN_CONTEXT = re.compile(
    r"In call to configurable '(?P<name>[^']+)' "
    r"\(<(?:class '(?P<cls>[^']+)'|(?P<fn>[^<>]*?) at 0x[0-9a-fA-F]+)>\)"
    r"(?P<scope> in scope '[^']*')?")
_OBJECT_REPR = re.compile(r'<(?P<what>[^<>]*?) at 0x[0-9a-fA-F]+>')


def _gin_context(match: re.Match) -> str:
  target = (f"class {match['cls']}" if match['cls'] else match['fn'])
  return (f"Raised in gin's call to configurable '{match['name']}' "
          f"({target}){match['scope'] or ''}.")


def in_words(message: str) -> str:
  """`message` with gin's call context and object reprs said in words.

  Args:
    message: an error message.

  Returns:
    The message without `<... at 0x...>` reprs.
  """
  message = _GIN_CONTEXT.sub(_gin_context, message)
  return _OBJECT_REPR.sub(lambda match: match['what'], message)
