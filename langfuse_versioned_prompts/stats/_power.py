"""Sample size planning: users per variant to detect a minimum effect.

Normal approximation as statsmodels' ``NormalIndPower`` (Cohen's h for rates); needs no scipy.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from ._errors import ConfigurationError, check_probability

__all__ = ["required_sample_size"]

_NORMAL = NormalDist()


def required_sample_size(
    mde: float,
    *,
    sd: float | None = None,
    base_rate: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    comparisons: int = 1,
) -> int:
    """Units (users) needed per variant to detect an absolute difference ``mde``.

    Give ``sd`` for continuous scores or ``base_rate`` for boolean ones. Two-sided test;
    ``comparisons > 1`` splits ``alpha`` Bonferroni-style (conservative for Holm).

    >>> required_sample_size(0.1, sd=1.0)
    1570
    >>> required_sample_size(0.05, base_rate=0.5)
    1565
    """
    alpha = check_probability("alpha", alpha)
    power = check_probability("power", power)
    if isinstance(comparisons, bool) or not isinstance(comparisons, int) or comparisons < 1:
        raise ConfigurationError(f"comparisons must be a positive integer, got {comparisons!r}")
    if isinstance(mde, bool) or not isinstance(mde, (int, float)) or not math.isfinite(mde) or mde == 0:
        raise ConfigurationError(f"mde must be a finite non-zero difference, got {mde!r}")
    if (sd is None) == (base_rate is None):
        raise ConfigurationError("give exactly one of sd= (continuous) or base_rate= (boolean)")
    z_sum = _NORMAL.inv_cdf(1.0 - alpha / comparisons / 2.0) + _NORMAL.inv_cdf(power)
    if sd is not None:
        if not (isinstance(sd, (int, float)) and math.isfinite(sd) and sd > 0):
            raise ConfigurationError(f"sd must be a positive number, got {sd!r}")
        n = 2.0 * (z_sum * sd / mde) ** 2
    else:
        p0 = check_probability("base_rate", base_rate)
        p1 = p0 + mde
        if not 0.0 <= p1 <= 1.0:
            raise ConfigurationError(f"base_rate + mde must lie in [0, 1], got {p1!r}")
        h = 2.0 * math.asin(math.sqrt(p1)) - 2.0 * math.asin(math.sqrt(p0))
        n = 2.0 * (z_sum / h) ** 2
    return max(2, math.ceil(n - 1e-9))
