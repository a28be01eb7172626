"""official_ext: first-class LARS for TensorFlow Model Garden.

`use_lars(task)` makes a Model Garden task build official_ext's LARS for
`optimizer.type: lars`; see `official_ext.launcher.task_optimizer.use_lars`
and docs/model_garden.md.
"""
from official_ext.launcher import task_optimizer

use_lars = task_optimizer.use_lars
