"""Tests for official_ext/benchmarks/workloads.py."""

import re

import numpy as np
import pytest

from official.modeling.optimization import lars as model_garden_lars
from official_ext.benchmarks import optimizer_runs
from official_ext.benchmarks import workloads

# Keras documents ResNet-50 at 25,636,712 parameters, 53,120 of which are
# BatchNorm moving statistics; BERT-base (with pooler) has 109,482,240.
_RESNET50_TRAINABLE_PARAMETERS = 25_636_712 - 53_120
_BERT_BASE_PARAMETERS = 109_482_240


def _num_parameters(specs):
  return sum(s.num_elements for s in specs)


def _decayed_names(specs):
  """Names Model Garden's LARS decays under the benchmark's exclusions."""
  optimizer = model_garden_lars.LARS(
      weight_decay_rate=optimizer_runs.WEIGHT_DECAY_RATE,
      exclude_from_weight_decay=list(optimizer_runs.EXCLUDE_FROM_WEIGHT_DECAY))
  decays = optimizer._use_weight_decay  # pylint: disable=protected-access
  return [s.name for s in specs if decays(s.name + ':0')]


def test_resnet50_matches_keras_and_decays_only_kernels():
  specs = workloads.resnet50_specs()
  assert len(specs) == 214
  assert _num_parameters(specs) == _RESNET50_TRAINABLE_PARAMETERS
  decayed = _decayed_names(specs)
  assert decayed == [s.name for s in specs if s.name.endswith('/kernel')]
  assert len(decayed) == 54  # 53 convolutions and the classifier.


def test_bert_base_has_bert_shapes_and_decays_only_kernels_and_embeddings():
  specs = workloads.bert_base_specs()
  assert len(specs) == 199
  assert _num_parameters(specs) == _BERT_BASE_PARAMETERS
  assert specs[0].shape == (30522, 768)
  decayed = _decayed_names(specs)
  assert decayed == [
      s.name for s in specs
      if re.search(r'(/kernel|_embeddings)$', s.name)
  ]
  assert len(decayed) == 3 + 12 * 6 + 1
  assert sum('LayerNorm' in s.name for s in specs) == 2 * (1 + 12 * 2)


def test_many_small_is_a_thousand_32x32_kernels():
  specs = workloads.many_small_specs()
  assert len(specs) == 1000
  assert {s.shape for s in specs} == {(32, 32)}
  assert len({s.name for s in specs}) == 1000


def test_quick_keeps_names_and_shrinks_shapes():
  full = workloads.bert_base_specs()
  quick = workloads.workload_specs('bert_base', quick=True)
  assert [s.name for s in quick] == [s.name for s in full[:20]]
  assert quick[0].shape == (8, 8)
  assert max(max(s.shape) for s in quick) == 8


def test_unknown_workload_is_named():
  with pytest.raises(ValueError, match="workload='bogus'"):
    workloads.workload_specs('bogus', quick=True)


def test_copies_share_values_and_carry_keras_names():
  specs = workloads.workload_specs('resnet50', quick=True)
  first, second = (workloads.make_variables(specs) for _ in range(2))
  assert [v.name for v in first] == [s.name + ':0' for s in specs]
  for a, b, spec in zip(first, second, specs):
    assert a is not b and a.shape == spec.shape
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  first[0].assign_add(np.ones(specs[0].shape, np.float32))
  assert not np.array_equal(first[0].numpy(), second[0].numpy())
  grads = workloads.gradients(specs)
  np.testing.assert_array_equal(grads[3].numpy(),
                                workloads.gradients(specs)[3].numpy())
  assert not np.array_equal(grads[0].numpy(), first[0].numpy())
