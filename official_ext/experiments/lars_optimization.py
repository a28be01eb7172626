"""The optimization config shared by official_ext's LARS experiments."""
from official_ext.modeling.optimization.configs import optimization_config

# Variables named like these get neither weight decay nor layer adaptation.
BATCH_NORM_AND_BIAS = ('batch_normalization', 'bias')


def lars_with_warmup_and_polynomial_decay(
    base_learning_rate: float,
    warmup_steps: int,
    decay_steps: int,
    weight_decay_rate: float,
    end_learning_rate: float = 1e-4,
    power: float = 2.0,
    momentum: float = 0.9,
    eeta: float = 0.001) -> optimization_config.OptimizationConfig:
  """LARS with linear warmup from 0, then polynomial decay.

  The learning rate rises linearly from 0 to `base_learning_rate` over
  `warmup_steps`, then decays as
  `(base - end) * (1 - (step - warmup_steps) / decay_steps)**power + end`.
  Batch normalization and bias variables get neither weight decay nor layer
  adaptation. LARS telemetry is on, so that the trust ratio, norms and local
  learning rate of every variable are in TensorBoard (`lars/...` under
  `model_dir/train`) without a flag.

  Args:
    base_learning_rate: the learning rate at the end of the warmup.
    warmup_steps: length of the linear warmup.
    decay_steps: length of the polynomial decay, which starts after warmup.
    weight_decay_rate: LARS weight decay.
    end_learning_rate: the learning rate once the decay is over.
    power: the decay's polynomial power.
    momentum: LARS momentum.
    eeta: LARS trust coefficient.

  Returns:
    An official_ext OptimizationConfig with `optimizer.type: lars`.
  """
  return optimization_config.OptimizationConfig({
      'optimizer': {
          'type': 'lars',
          'lars': {
              'momentum': momentum,
              'eeta': eeta,
              'weight_decay_rate': weight_decay_rate,
              'exclude_from_weight_decay': list(BATCH_NORM_AND_BIAS),
              'exclude_from_layer_adaptation': list(BATCH_NORM_AND_BIAS),
              'telemetry': True,
          },
      },
      'learning_rate': {
          'type': 'polynomial',
          'polynomial': {
              'initial_learning_rate': base_learning_rate,
              'decay_steps': decay_steps,
              'end_learning_rate': end_learning_rate,
              'power': power,
              'offset': warmup_steps,
          },
      },
      'warmup': {
          'type': 'linear',
          'linear': {
              'warmup_steps': warmup_steps,
              'warmup_learning_rate': 0.0,
          },
      },
  })
