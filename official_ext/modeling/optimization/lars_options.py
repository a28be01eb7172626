"""Every LARS option, declared once, and its validation.

`OPTIONS` lists the constructor arguments of official_ext's LARS besides the
learning rate and Keras' own keyword arguments (`clipnorm`, `clipvalue`,
`global_clipnorm`, `decay`), in constructor order, each with its default, a
one-sentence description and its checker. `check_options` validates a set of
values and fills in the defaults; the LARS classes, `LARSConfig`, `get_config`
and docs/options.md are checked against `OPTIONS` by tests.

Framework-neutral: nothing here imports TensorFlow or Keras, so every LARS
implementation can share it. Errors are one line, start with `LARS: ` and name
the field and the bad value.
"""

import dataclasses
import math
import numbers
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

# `trust_ratio_denominator` values: ‖g + λw‖ (Model Garden, optax) or
# ‖g‖ + λ‖w‖ (the paper, MLPerf, Apex LARC, timm).
MODEL_GARDEN_DENOMINATOR = 'model_garden'
PAPER_DENOMINATOR = 'paper'
TRUST_RATIO_DENOMINATORS = (MODEL_GARDEN_DENOMINATOR, PAPER_DENOMINATOR)


def check_number(field: str, value: Any) -> float:
  """Returns a finite real number as a float.

  Args:
    field: the argument's name, for the error message.
    value: any real number (Python or numpy), but not a bool.

  Returns:
    `float(value)`.

  Raises:
    TypeError: if `value` is not a real number.
    ValueError: if it is infinite or NaN.
  """
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise TypeError(f'LARS: {field} must be a number, got {value!r} '
                    f'({type(value).__name__}).')
  value = float(value)
  if not math.isfinite(value):
    raise ValueError(f'LARS: {field} must be finite, got {value!r}.')
  return value


def check_range(field: str, value: Any, low: float, high: float,
                low_inclusive: bool, high_inclusive: bool = False) -> float:
  """Returns `value` as a float after checking it lies in the given interval.

  Args:
    field: the argument's name, for the error message.
    value: a real number.
    low: the interval's lower end.
    high: the interval's upper end.
    low_inclusive: whether `low` itself is allowed.
    high_inclusive: whether `high` itself is allowed.

  Returns:
    `float(value)`.

  Raises:
    TypeError: if `value` is not a real number.
    ValueError: if it is not finite or lies outside the interval.
  """
  value = check_number(field, value)
  above_low = value >= low if low_inclusive else value > low
  below_high = value <= high if high_inclusive else value < high
  if not (above_low and below_high):
    interval = (('[' if low_inclusive else '(') + f'{low}, {high}' +
                (']' if high_inclusive else ')'))
    raise ValueError(f'LARS: {field} must be in {interval}, got {value!r}.')
  return value


def check_non_negative(field: str, value: Any) -> float:
  """A finite number >= 0: a learning rate, `clipnorm`, `decay`, ..."""
  return check_range(field, value, 0.0, math.inf, low_inclusive=True)


def check_positive(field: str, value: Any) -> float:
  """A finite number > 0."""
  return check_range(field, value, 0.0, math.inf, low_inclusive=False)


def check_optional_positive(field: str, value: Any) -> Optional[float]:
  """None, or a finite number > 0."""
  return None if value is None else check_positive(field, value)


def check_fraction(field: str, value: Any) -> float:
  """A number in [0, 1)."""
  return check_range(field, value, 0.0, 1.0, low_inclusive=True)


def check_bool(field: str, value: Any) -> bool:
  """Exactly True or False (no truthy stand-ins such as 1 or 'yes')."""
  if not isinstance(value, bool):
    raise TypeError(f'LARS: {field} must be True or False, got {value!r}.')
  return value


def check_name(field: str, value: Any) -> str:
  """A string."""
  if not isinstance(value, str):
    raise TypeError(f'LARS: {field} must be a string, got {value!r}.')
  return value


def _check_strings(field: str, values: Any, what: str) -> Optional[List[str]]:
  """None, or a list of strings; a bare string is refused."""
  if values is None:
    return None
  if isinstance(values, (str, bytes)):
    raise TypeError(
        f'LARS: {field} must be a list of {what}, got the bare string '
        f'{values!r} (which would be read character by character); '
        f'did you mean [{values!r}]?')
  if not isinstance(values, (list, tuple)):
    raise TypeError(f'LARS: {field} must be a list of {what}, got '
                    f'{values!r} ({type(values).__name__}).')
  for value in values:
    if not isinstance(value, str):
      raise TypeError(f'LARS: {field} must hold only strings, got {value!r} '
                      f'({type(value).__name__}) in {list(values)!r}.')
  return list(values)


def check_variable_names(field: str, values: Any) -> Optional[List[str]]:
  """None, or a list of exact variable names."""
  return _check_strings(field, values, 'variable names')


def check_patterns(field: str, values: Any) -> Optional[List[str]]:
  """None, or a list of regexes that compile."""
  patterns = _check_strings(field, values, 'regex strings')
  for pattern in patterns or ():
    try:
      re.compile(pattern)
    except re.error as e:
      raise ValueError(f'LARS: {field} holds an invalid regex {pattern!r}: '
                       f'{e}.') from e
  return patterns


def check_denominator(field: str, value: Any) -> str:
  """One of `TRUST_RATIO_DENOMINATORS`."""
  if value not in TRUST_RATIO_DENOMINATORS:
    raise ValueError(f'LARS: {field} must be one of '
                     f'{TRUST_RATIO_DENOMINATORS}, got {value!r}.')
  return value


@dataclasses.dataclass(frozen=True)
class Option:
  """One LARS constructor argument.

  Attributes:
    name: the argument's (and config field's) name.
    default: its default value.
    doc: one user-facing sentence saying what it does.
    check: `check(name, value)` returns the normalized value or raises
      TypeError/ValueError with a one-line `LARS: ` message.
    keyword_only: True for the options official_ext adds beyond Model
      Garden's constructor, which take no position.
  """
  name: str
  default: Any
  doc: str
  check: Callable[[str, Any], Any]
  keyword_only: bool = False


OPTIONS: Tuple[Option, ...] = (
    Option('momentum', 0.9, 'Momentum coefficient m, in [0, 1).',
           check_fraction),
    Option('weight_decay_rate', 0.0,
           'L2 weight decay rate λ (>= 0): λ·w is added to the gradient '
           'before the trust ratio is computed.', check_non_negative),
    Option('eeta', 0.001,
           'LARS trust coefficient η (> 0) of the trust ratio '
           'η‖w‖/‖g + λw‖.', check_positive),
    Option('nesterov', False, 'Whether to use Nesterov momentum.', check_bool),
    Option('classic_momentum', True,
           'Apply the learning rate inside the momentum update (classic) '
           'rather than after it (popular).', check_bool),
    Option('exclude_from_weight_decay', None,
           'Regexes; a variable whose name any of them matches (re.search) '
           'gets no weight decay.', check_patterns),
    Option('exclude_from_layer_adaptation', None,
           'Regexes for variables that get the global learning rate '
           'unscaled; None means the exclude_from_weight_decay list, [] '
           'adapts every variable.', check_patterns),
    Option('name', 'LARS',
           'Name for the operations created when applying gradients.',
           check_name),
    Option('trust_ratio_denominator', MODEL_GARDEN_DENOMINATOR,
           "'model_garden' for η‖w‖/‖g + λw‖ (Model Garden, optax) or 'paper' "
           'for η‖w‖/(‖g‖ + λ‖w‖) (You et al. 2017, MLPerf, Apex LARC, timm; '
           'classic momentum only).', check_denominator, keyword_only=True),
    Option('epsilon', 0.0, 'ε (>= 0) added to the trust ratio\'s denominator.',
           check_non_negative, keyword_only=True),
    Option('trust_clip', False,
           'LARC clipping (Apex LARC(clip=True), timm trust_clip): the local '
           'learning rate is min(trust ratio, learning rate).', check_bool,
           keyword_only=True),
    Option('max_trust_ratio', None,
           'Upper bound (> 0) on the factor that multiplies the learning '
           'rate, applied last; None for none.', check_optional_positive,
           keyword_only=True),
    Option('exclude_one_dimensional_from_weight_decay', False,
           'No weight decay for variables of rank <= 1 (biases, '
           'normalization scales and offsets), whatever their names.',
           check_bool, keyword_only=True),
    Option('exclude_one_dimensional_from_layer_adaptation', False,
           'No layer adaptation for variables of rank <= 1.', check_bool,
           keyword_only=True),
    Option('exclude_normalization_from_weight_decay', False,
           "No weight decay for the variables of the model's normalization "
           'layers, found by layer type (needs use_model).',
           check_bool, keyword_only=True),
    Option('exclude_normalization_from_layer_adaptation', False,
           "No layer adaptation for the variables of the model's "
           'normalization layers.', check_bool, keyword_only=True),
    Option('exclude_variables_from_weight_decay', None,
           "Exact variable names (with or without ':0') that get no weight "
           'decay.', check_variable_names, keyword_only=True),
    Option('exclude_variables_from_layer_adaptation', None,
           'Exact variable names that get no layer adaptation.',
           check_variable_names, keyword_only=True),
    Option('telemetry', False,
           "Record each variable's trust ratio, weight norm, gradient norm "
           'and local learning rate at every step.', check_bool,
           keyword_only=True),
)

OPTION_NAMES: Tuple[str, ...] = tuple(option.name for option in OPTIONS)


def check_options(values: Mapping[str, Any]) -> Dict[str, Any]:
  """Validates option values and fills in the defaults of the missing ones.

  Args:
    values: option values by name; any subset of `OPTION_NAMES`.

  Returns:
    Every option's normalized value (numbers as floats, sequences as lists),
    in `OPTIONS` order.

  Raises:
    TypeError: a name is no option, or a value has the wrong type.
    ValueError: a value is out of range, a regex does not compile, or
      options contradict each other.
  """
  unknown = [name for name in values if name not in OPTION_NAMES]
  if unknown:
    raise TypeError(f'LARS: unexpected argument {unknown[0]!r}; the options '
                    f'are {", ".join(OPTION_NAMES)}.')
  checked = {
      option.name: option.check(option.name,
                                values.get(option.name, option.default))
      for option in OPTIONS
  }
  if (checked['trust_ratio_denominator'] == PAPER_DENOMINATOR and
      not checked['classic_momentum']):
    raise ValueError(
        "LARS: trust_ratio_denominator='paper' needs classic_momentum=True: "
        'the paper and its reference implementations define it for the '
        'gradient, not for a popular-momentum update.')
  return checked
