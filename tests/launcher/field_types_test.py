"""Tests for the check of config field types against their annotations."""
import dataclasses
from typing import List, Optional, Union

import pytest

from official.core import exp_factory
from official.modeling import hyperparams
from official.vision import registry_imports  # pylint: disable=unused-import
from official_ext import experiments  # pylint: disable=unused-import
from official_ext.launcher import field_types


@dataclasses.dataclass
class Inner(hyperparams.Config):
  rate: float = 0.5
  name: Optional[str] = None


@dataclasses.dataclass
class Outer(hyperparams.Config):
  steps: int = 1
  flag: bool = False
  scale: Union[str, float] = 'dynamic'
  sizes: List[int] = dataclasses.field(default_factory=lambda: [1, 2])
  inner: Inner = dataclasses.field(default_factory=Inner)
  inners: List[Inner] = dataclasses.field(default_factory=list)


@pytest.mark.parametrize('override,field,value', [
    ({'steps': 'abc'}, 'steps', "'abc'"),
    ({'steps': 1.5}, 'steps', '1.5'),
    ({'steps': True}, 'steps', 'True'),
    ({'flag': 1}, 'flag', '1'),
    ({'scale': True}, 'scale', 'True'),
    ({'inner': {'rate': 'fast'}}, 'inner.rate', "'fast'"),
    ({'inner': {'name': 3}}, 'inner.name', '3'),
    ({'inners': [{'rate': 0.1}, {'rate': 'x'}]}, 'inners[1].rate', "'x'"),
])
def test_wrong_types_name_field_and_value(override, field, value):
  config = Outer()
  config.override(override, is_strict=False)
  with pytest.raises(ValueError) as excinfo:
    field_types.check_field_types(config)
  assert f'{field} must be' in str(excinfo.value)
  assert f'got {value} (' in str(excinfo.value)


def test_right_types_none_and_non_scalar_fields_pass():
  config = Outer()
  config.override({'steps': None, 'scale': 128.0, 'sizes': ['not', 'checked'],
                   'inner': {'name': 'x'}}, is_strict=False)
  field_types.check_field_types(config)


def test_ints_in_float_fields_become_floats():
  config = Outer()
  config.override({'inner': {'rate': 2}, 'scale': 3}, is_strict=False)
  field_types.check_field_types(config)
  assert config.inner.rate == 2.0 and isinstance(config.inner.rate, float)
  assert config.scale == 3 and isinstance(config.scale, int)  # Union: kept.


def _registered_names(registry, prefix=''):
  """Experiment names of Model Garden's nested registry ('bert/…' is nested)."""
  for key, value in registry.items():
    if isinstance(value, dict):
      yield from _registered_names(value, f'{prefix}{key}/')
    else:
      yield f'{prefix}{key}'


def test_every_registered_experiment_passes():
  # No false alarms on Model Garden's and official_ext's own defaults.
  names = sorted(_registered_names(exp_factory._REGISTERED_CONFIGS))  # pylint: disable=protected-access
  assert 'lars_digits' in names and 'resnet_imagenet' in names
  for name in names:
    field_types.check_field_types(exp_factory.get_exp_config(name))
