"""Errors of the statistics package, and the validation helpers that raise them.

::

    LVPError
    ├── ConfigurationError (also ValueError)       bad input: unknown control, weights, confidence
    ├── ExperimentNotFoundError (also LookupError) no trace carries the experiment tag or metadata
    └── ScoreNotFoundError (also LookupError)      no score of that name in the time window
"""

from __future__ import annotations

import math

from .._errors import ConfigurationError, LVPError

__all__ = [
    "ConfigurationError",
    "ExperimentNotFoundError",
    "ScoreNotFoundError",
    "check_confidence",
    "check_probability",
]


class ExperimentNotFoundError(LVPError, LookupError):
    """No Langfuse trace carries the experiment (tag ``ab:<experiment>=<variant>`` or metadata)."""


class ScoreNotFoundError(LVPError, LookupError):
    """No Langfuse score of the asked name exists in the time window."""


def check_probability(name: str, value: object) -> float:
    """Return ``value`` as a float strictly between 0 and 1, else raise ConfigurationError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number between 0 and 1, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and 0.0 < number < 1.0):
        raise ConfigurationError(f"{name} must be strictly between 0 and 1, got {value!r}")
    return number


def check_confidence(value: object) -> float:
    """Return the confidence level (e.g. 0.95) after checking it lies in (0, 1)."""
    return check_probability("confidence", value)
