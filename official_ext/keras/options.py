"""Constructor arguments of the Keras 3 LARS: split, validated, explained.

The LARS options (their order, defaults and checks) are official_ext's,
declared once in `official_ext.modeling.optimization.lars_options` and shared
with the `tf_keras` class; this module only sorts a Keras 3 constructor call
into learning rate, LARS options and Keras 3's own optimizer arguments, and
refuses what would silently change the math on Keras 3.
"""

import inspect
from typing import Any, Dict, Mapping, Sequence, Tuple

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


def split_arguments(
    learning_rate: Any, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> Tuple[Any, Dict[str, Any], Dict[str, Any]]:
  """Sorts a constructor call into learning rate, options and Keras kwargs.

  Args:
    learning_rate: the first argument.
    args: the other positional arguments, in the order of the positional
      `lars_options.OPTIONS` (Model Garden's constructor order).
    kwargs: options and Keras 3 optimizer arguments by name.

  Returns:
    `(learning_rate, options, keras_kwargs)`: the checked learning rate,
    every LARS option (checked, defaults filled in) and the Keras 3
    arguments to pass on, `name` included.

  Raises:
    TypeError: too many positional arguments, an argument given twice or an
      unknown argument.
    ValueError: a value out of range, or a refused argument.
  """
  positional = [o.name for o in lars_options.OPTIONS if not o.keyword_only]
  if len(args) > len(positional):
    raise TypeError(f'LARS: takes at most {len(positional) + 1} positional '
                    f'arguments (learning_rate, {", ".join(positional)}), '
                    f'got {len(args) + 1}.')
  values = dict(zip(positional, args))
  keras_kwargs = {}
  for key, value in kwargs.items():
    if key in values:
      raise TypeError(f'LARS: got {key} both by position and by name.')
    if key in _REFUSED_KERAS_ARGUMENTS:
      if value is not None:
        raise ValueError(f'LARS: {key}={value!r} '
                         f'{_REFUSED_KERAS_ARGUMENTS[key]}.')
    elif key in KERAS_ARGUMENTS:
      if key in _NUMERIC_KERAS_ARGUMENTS and value is not None:
        value = lars_options.check_non_negative(key, value)
      keras_kwargs[key] = value
    else:
      values[key] = value
  options = lars_options.check_options(values)
  for key, why in _TF_KERAS_ONLY_OPTIONS.items():
    if options[key] != lars_options.OPTIONS[
        lars_options.OPTION_NAMES.index(key)].default:
      raise ValueError(f'LARS: {key}={options[key]!r} {why}.')
  keras_kwargs['name'] = options['name']
  return check_learning_rate(learning_rate), options, keras_kwargs


def constructor_signature(learning_rate_default: float) -> inspect.Signature:
  """The signature `help()` and IDEs should show for the constructor.

  The constructor takes `*args, **kwargs` so that the options are declared
  only in `lars_options.OPTIONS`; this spells them out again from there.

  Args:
    learning_rate_default: the constructor's default learning rate.

  Returns:
    `(self, learning_rate, <positional options>, *, <keyword-only options>,
    **kwargs)` with the options' defaults.
  """
  kinds = {False: inspect.Parameter.POSITIONAL_OR_KEYWORD,
           True: inspect.Parameter.KEYWORD_ONLY}
  return inspect.Signature([
      inspect.Parameter('self', inspect.Parameter.POSITIONAL_OR_KEYWORD),
      inspect.Parameter('learning_rate',
                        inspect.Parameter.POSITIONAL_OR_KEYWORD,
                        default=learning_rate_default),
      *(inspect.Parameter(o.name, kinds[o.keyword_only], default=o.default)
        for o in lars_options.OPTIONS),
      inspect.Parameter('kwargs', inspect.Parameter.VAR_KEYWORD),
  ])
