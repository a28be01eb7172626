"""Constructor arguments of the Keras 3 LARS: validated, explained.

The LARS options (their order, defaults and checks) are official_ext's,
declared once in `official_ext.modeling.optimization.lars_options` and shared
with the `tf_keras` class; this module checks a Keras 3 constructor call's
learning rate, LARS options and Keras 3's own optimizer arguments, and
refuses what would silently change the math on Keras 3.
"""

from typing import Any, Dict, Mapping, Tuple

from official_ext.modeling.optimization import lars_options

# Keras 3 optimizer arguments that LARS passes on; the clipping ones are
# checked here as the tf_keras class checks them, the others by Keras.
_NUMERIC_KERAS_ARGUMENTS = ('clipnorm', 'clipvalue', 'global_clipnorm')
KERAS_ARGUMENTS = _NUMERIC_KERAS_ARGUMENTS + (
    'use_ema', 'ema_momentum', 'ema_overwrite_frequency', 'loss_scale_factor',
    'gradient_accumulation_steps')

# Keras 3 arguments LARS refuses, with why and what to use instead.
_REFUSED_KERAS_ARGUMENTS = {
    'weight_decay': (
        "is Keras' decoupled weight decay (w ← w − lr·wd·w, outside the trust "
        'ratio); LARS adds λ·w to the gradient before the trust ratio: use '
        'weight_decay_rate'),
    'decay': (
        'is ignored by Keras 3 optimizers; use a '
        'keras.optimizers.schedules.InverseTimeDecay learning rate'),
}

# Options of the tf_keras class that the Keras 3 class cannot honor.
_TF_KERAS_ONLY_OPTIONS = {
    'telemetry': (
        "records into tf_keras optimizer variables and official_ext's "
        'TensorBoard hooks; it is tf_keras-only'),
}


def check_learning_rate(value: Any) -> Any:
  """A number ≥ 0 (as a float), a schedule or a callable.

  Args:
    value: the `learning_rate` argument.

  Returns:
    `value`, numbers as floats (Keras 3 accepts no ints).

  Raises:
    TypeError, ValueError: for anything else.
  """
  if callable(value):
    return value
  return lars_options.check_non_negative('learning_rate', value)


def check_arguments(
    learning_rate: Any, option_values: Mapping[str, Any],
    keras_arguments: Mapping[str, Any], other_kwargs: Mapping[str, Any]
) -> Tuple[Any, Dict[str, Any], Dict[str, Any]]:
  """Checks a constructor call's learning rate, options and Keras arguments.

  Args:
    learning_rate: the `learning_rate` argument.
    option_values: every `lars_options.OPTIONS` argument by name.
    keras_arguments: every `KERAS_ARGUMENTS` argument by name.
    other_kwargs: the constructor's `**kwargs`: a refused Keras argument or
      an unknown one.

  Returns:
    `(learning_rate, options, keras_kwargs)`: the checked learning rate,
    every LARS option (checked, in `OPTIONS` order) and the Keras 3
    arguments to pass on, `name` included.

  Raises:
    TypeError: an unknown argument, or a value of the wrong type.
    ValueError: a value out of range, or a refused argument.
  """
  values = dict(option_values)
  for key, value in other_kwargs.items():
    if key in _REFUSED_KERAS_ARGUMENTS:
      if value is not None:
        raise ValueError(f'LARS: {key}={value!r} '
                         f'{_REFUSED_KERAS_ARGUMENTS[key]}.')
    else:
      # Not an option either: `check_options` names it as unexpected.
      values[key] = value
  options = lars_options.check_options(values)
  for key, why in _TF_KERAS_ONLY_OPTIONS.items():
    if options[key] != lars_options.OPTIONS[
        lars_options.OPTION_NAMES.index(key)].default:
      raise ValueError(f'LARS: {key}={options[key]!r} {why}.')
  keras_kwargs = {
      key: (lars_options.check_non_negative(key, value)
            if key in _NUMERIC_KERAS_ARGUMENTS and value is not None
            else value)
      for key, value in keras_arguments.items()}
  keras_kwargs['name'] = options['name']
  return check_learning_rate(learning_rate), options, keras_kwargs
