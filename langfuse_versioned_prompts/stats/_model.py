"""Immutable results: one variant's summary, one comparison against control, the SRM check.

Fields that cannot be computed from the data are ``None`` (never NaN) and a note says why.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["Comparison", "Interval", "MetricKind", "Per", "SRMCheck", "VariantSummary", "jsonable"]

Interval = tuple[float, float]
MetricKind = Literal["continuous", "boolean"]
Per = Literal["user", "observation"]


@dataclasses.dataclass(frozen=True)
class VariantSummary:
    """One variant: units analysed, scores read, mean and its confidence interval.

    ``n`` counts analysis units (users when analysing per user), ``observations`` the scores used.
    """

    name: str
    n: int
    observations: int
    mean: float | None
    sd: float | None
    ci: Interval | None
    successes: int | None = None
    expected_share: float | None = None
    is_control: bool = False


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One variant against control: difference, relative lift, test, effect size, each with a CI.

    ``difference`` is variant minus control; ``lift`` is ``difference / control mean`` (so with a
    negative control mean its sign is opposite to the difference's; a note then says so).
    ``effect_size`` is Hedges' g (continuous) or Cohen's h (boolean). ``mde`` is the smallest
    difference this sample detects with 80% power at the report's confidence level.
    """

    variant: str
    control: str
    test: Literal["welch_t", "two_proportion_z"]
    difference: float | None = None
    ci: Interval | None = None
    lift: float | None = None
    lift_ci: Interval | None = None
    statistic: float | None = None
    df: float | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    significant: bool = False
    effect_size: float | None = None
    effect_size_ci: Interval | None = None
    effect_size_name: Literal["hedges_g", "cohens_h"] = "hedges_g"
    se: float | None = None
    mde: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def tested(self) -> bool:
        """Whether a p-value could be computed."""
        return self.p_value is not None


@dataclasses.dataclass(frozen=True)
class SRMCheck:
    """Sample ratio mismatch: chi-square of observed units against the configured split."""

    observed: Mapping[str, int]
    expected_share: Mapping[str, float]
    chi2: float | None
    df: int | None
    p_value: float | None
    threshold: float
    flagged: bool
    notes: tuple[str, ...] = ()


def jsonable(value: Any) -> Any:
    """``value`` with dataclasses, tuples and mappings turned into JSON types; NaN/inf to None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
