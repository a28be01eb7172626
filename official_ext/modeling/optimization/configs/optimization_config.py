"""Model Garden's optimization config schema with official_ext's LARS.

A drop-in for `official.modeling.optimization.configs.optimization_config`.
`OptimizationConfig` keeps Model Garden's schema (optimizer / learning_rate /
warmup / ema) and every Model Garden optimizer type; only the `lars` entry of
the optimizer one-of is official_ext's `LARSConfig`. Both classes subclass
Model Garden's, so they are accepted wherever Model Garden expects its own.
Model Garden's OptimizerFactory builds their `lars` only once
`optimizer_factory.route_lars` has routed it to official_ext's LARS: unrouted,
it would pass official_ext's options to Model Garden's LARS. `LrConfig` and
`WarmupConfig` are Model Garden's, re-exported.
"""
import dataclasses

from official.modeling.optimization.configs import optimization_config as mg_optimization_config

from official_ext.modeling.optimization.configs import optimizer_config as opt_cfg

LrConfig = mg_optimization_config.LrConfig
WarmupConfig = mg_optimization_config.WarmupConfig


@dataclasses.dataclass
class OptimizerConfig(mg_optimization_config.OptimizerConfig):
  """Model Garden's optimizer one-of whose `lars` is official_ext's LARS."""
  lars: opt_cfg.LARSConfig = dataclasses.field(
      default_factory=opt_cfg.LARSConfig)


@dataclasses.dataclass
class OptimizationConfig(mg_optimization_config.OptimizationConfig):
  """Model Garden's OptimizationConfig using official_ext's optimizer one-of."""
  optimizer: OptimizerConfig = dataclasses.field(
      default_factory=OptimizerConfig)
