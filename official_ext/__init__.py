"""official_ext: first-class LARS for TensorFlow Model Garden.

`use_lars(task)` makes a Model Garden task build official_ext's LARS for
`optimizer.type: lars`; see `official_ext.launcher.task_optimizer.use_lars`
and docs/model_garden.md.
"""
from typing import Any


def __getattr__(name: str) -> Any:
  # Resolved on first use, so that importing a framework-neutral module such
  # as `official_ext.modeling.optimization.lars_options` (which imports this
  # package first) does not load TensorFlow and Model Garden.
  if name == 'use_lars':
    from official_ext.launcher import task_optimizer  # pylint: disable=g-import-not-at-top
    return task_optimizer.use_lars
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
