"""Frozen, summable sufficient statistics: everything a test needs, in constant memory.

``MeanStats`` keeps the count, the mean and the sum of squared deviations (M2) instead of the raw
sum of squares, and merges with Chan et al.'s parallel formula, so scores far from zero (for
example ``1e9 + x``) keep their variance. ``sum`` and ``sum_squares`` are derived for callers that
want the gbstats-style triple.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

from ._errors import ConfigurationError

__all__ = ["MeanStats", "ProportionStats", "Stats", "as_number"]


def _check_count(name: str, value: object) -> int:
    """Return ``value`` as a non-negative int, else raise ConfigurationError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{name} must be a non-negative integer, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class MeanStats:
    """Count, mean and M2 (sum of squared deviations) of numeric scores; add two with ``+``.

    >>> s = MeanStats.of([1.0, 2.0, 3.0]) + MeanStats.of([4.0])
    >>> (s.n, s.mean, s.variance)
    (4, 2.5, 1.6666666666666667)
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def __post_init__(self) -> None:
        _check_count("n", self.n)
        for name in ("mean", "m2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigurationError(f"{name} must be a number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not (math.isfinite(self.mean) and math.isfinite(self.m2)):
            raise ConfigurationError(f"mean and m2 must be finite, got {self.mean!r}, {self.m2!r}")
        if self.m2 < 0:
            # Rounding in from_sums may leave a hair below zero; anything more is bad input.
            if self.m2 < -1e-9 * max(1.0, self.n * self.mean * self.mean):
                raise ConfigurationError(f"m2 must be >= 0, got {self.m2!r}")
            object.__setattr__(self, "m2", 0.0)
        if self.n == 0 and (self.mean != 0.0 or self.m2 != 0.0):
            raise ConfigurationError("empty MeanStats (n=0) must have mean=0 and m2=0")
        if self.n == 1 and self.m2 != 0.0:
            raise ConfigurationError("MeanStats with n=1 must have m2=0")

    @classmethod
    def of(cls, values: Iterable[float]) -> MeanStats:
        """Statistics of finite numbers, computed in two exact-sum passes (no NaN filtering)."""
        data = [float(v) for v in values]
        if not data:
            return cls()
        if not all(math.isfinite(v) for v in data):
            raise ConfigurationError("MeanStats.of needs finite numbers (drop NaN/inf first)")
        n = len(data)
        pivot = data[0]  # shifting by a data point keeps constant data exactly constant
        mean = pivot + math.fsum(v - pivot for v in data) / n
        m2 = math.fsum((v - mean) ** 2 for v in data) if n > 1 else 0.0
        return cls(n, mean, m2)

    @classmethod
    def from_sums(cls, n: int, sum: float, sum_squares: float) -> MeanStats:
        """From the gbstats triple (n, sum, sum of squares); loses precision at large offsets."""
        _check_count("n", n)
        if n == 0:
            return cls()
        mean = sum / n
        m2 = sum_squares - sum * sum / n if n > 1 else 0.0
        return cls(n, mean, max(m2, 0.0))

    def add(self, value: float) -> MeanStats:
        """These statistics with one more finite value (Welford's update)."""
        return self + MeanStats(1, float(value), 0.0)

    def __add__(self, other: object) -> MeanStats:
        if not isinstance(other, MeanStats):
            return NotImplemented
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        m2 = self.m2 + other.m2 + delta * delta * (self.n * other.n / n)
        return MeanStats(n, mean, m2)

    @property
    def sum(self) -> float:
        """Sum of the values."""
        return self.mean * self.n

    @property
    def sum_squares(self) -> float:
        """Sum of the squared values."""
        return self.m2 + self.n * self.mean * self.mean

    @property
    def variance(self) -> float | None:
        """Sample variance (n - 1 denominator); None below two values."""
        return self.m2 / (self.n - 1) if self.n >= 2 else None

    @property
    def sd(self) -> float | None:
        """Sample standard deviation; None below two values."""
        variance = self.variance
        return math.sqrt(variance) if variance is not None else None


@dataclasses.dataclass(frozen=True)
class ProportionStats:
    """Count and successes of boolean scores; add two with ``+``.

    >>> ProportionStats.of([True, False, True]) + ProportionStats(2, 1)
    ProportionStats(n=5, successes=3)
    """

    n: int = 0
    successes: int = 0

    def __post_init__(self) -> None:
        _check_count("n", self.n)
        _check_count("successes", self.successes)
        if self.successes > self.n:
            raise ConfigurationError(f"successes ({self.successes}) cannot exceed n ({self.n})")

    @classmethod
    def of(cls, values: Iterable[bool]) -> ProportionStats:
        """Statistics of booleans (anything truthy counts as a success)."""
        n = successes = 0
        for value in values:
            n += 1
            successes += bool(value)
        return cls(n, successes)

    def add(self, value: bool) -> ProportionStats:
        """These statistics with one more boolean."""
        return ProportionStats(self.n + 1, self.successes + bool(value))

    def __add__(self, other: object) -> ProportionStats:
        if not isinstance(other, ProportionStats):
            return NotImplemented
        return ProportionStats(self.n + other.n, self.successes + other.successes)

    @property
    def mean(self) -> float:
        """The success rate (0.0 when empty)."""
        return self.successes / self.n if self.n else 0.0

    @property
    def sum(self) -> float:
        """Number of successes, as a float."""
        return float(self.successes)

    @property
    def sum_squares(self) -> float:
        """Equal to the sum for 0/1 values."""
        return float(self.successes)

    @property
    def variance(self) -> float | None:
        """Bernoulli variance p(1 - p); None when empty."""
        return self.mean * (1.0 - self.mean) if self.n else None

    def to_mean_stats(self) -> MeanStats:
        """The same data seen as 0/1 numbers."""
        if self.n == 0:
            return MeanStats()
        p = self.mean
        return MeanStats(self.n, p, self.successes * (1.0 - p) if self.n > 1 else 0.0)


Stats = MeanStats | ProportionStats
"""Sufficient statistics of one variant."""


def as_number(value: object) -> float | bool | None:
    """A score as float or bool; None for missing/NaN/inf; ConfigurationError for non-numbers."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    dtype = getattr(value, "dtype", None)
    if dtype is not None and getattr(dtype, "kind", "") == "b":  # numpy.bool_
        return bool(value)
    if isinstance(value, (str, bytes)):
        raise ConfigurationError(f"scores must be numbers or booleans, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]  # int, float, numpy scalars, Decimal
    except (TypeError, ValueError):
        raise ConfigurationError(f"scores must be numbers or booleans, got {type(value).__name__} {value!r}") from None
    return number if math.isfinite(number) else None
