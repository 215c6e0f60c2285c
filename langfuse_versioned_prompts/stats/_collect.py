"""Streaming scores into per-variant sufficient statistics, per user or per observation.

A ``ScoreCollector`` holds one count and one sum per user when analysing per user (O(users)), and
a constant amount per variant when analysing per observation. That is the collector only: reading
from Langfuse (``from_langfuse``) also keeps a trace -> (variant, user) map to join scores to
variants, which is O(traces in the window) whatever the analysis unit (see ``_langfuse_read``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Iterable
from typing import Literal

from ._errors import ConfigurationError
from ._model import MetricKind, Per
from ._sufficient import MeanStats, ProportionStats, Stats, as_number

__all__ = ["Collected", "MetricChoice", "ScoreCollector", "check_per"]

MetricChoice = Literal["auto", "continuous", "boolean"]

MAX_MAGNITUDE = 1e100
"""Scores larger than this in magnitude are dropped: their squares would overflow the sums."""


def check_per(per: object) -> Per:
    """Validate the analysis unit."""
    if per == "user":
        return "user"
    if per == "observation":
        return "observation"
    raise ConfigurationError(f"per must be 'user' or 'observation', got {per!r}")


def check_metric(metric: object) -> MetricChoice:
    """Validate the metric choice."""
    if metric in ("auto", "continuous", "boolean"):
        return metric
    raise ConfigurationError(f"metric must be 'auto', 'continuous' or 'boolean', got {metric!r}")


@dataclasses.dataclass(frozen=True)
class Collected:
    """Per-variant statistics ready for testing, and what was done to get them."""

    kind: MetricKind
    per: Per
    stats: dict[str, Stats]
    observations: dict[str, int]
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class _Arm:
    """Running totals of one variant."""

    __slots__ = (
        "anonymous",
        "anonymous_successes",
        "dropped",
        "huge",
        "observed",
        "successes",
        "users",
    )

    def __init__(self) -> None:
        self.observed = MeanStats()
        self.successes = 0
        self.dropped = 0
        self.huge = 0
        self.users: dict[Hashable, list[float]] = {}  # user -> [count, sum]
        self.anonymous = MeanStats()
        self.anonymous_successes = 0


class ScoreCollector:
    """Adds scores one at a time into per-variant sufficient statistics (not thread-safe).

    >>> c = ScoreCollector(per="user")
    >>> for variant, value, user in [("A", 1.0, "u1"), ("A", 3.0, "u1"), ("B", 4.0, "u2")]:
    ...     c.add(variant, value, user=user)
    >>> c.collect().stats["A"]
    MeanStats(n=1, mean=2.0, m2=0.0)
    """

    def __init__(self, variants: Iterable[str] = (), *, per: Per = "user") -> None:
        self.per = check_per(per)
        self._arms: dict[str, _Arm] = {}
        self._all_bool = True
        self._all_binary = True
        self._first_non_binary: tuple[str, float] | None = None
        for name in variants:
            self._arm(name)

    def _arm(self, variant: str) -> _Arm:
        arm = self._arms.get(variant)
        if arm is None:
            if not isinstance(variant, str) or not variant:
                raise ConfigurationError(f"variant names must be non-empty strings, got {variant!r}")
            arm = self._arms[variant] = _Arm()
        return arm

    @property
    def variants(self) -> list[str]:
        """Variant names in the order first seen."""
        return list(self._arms)

    def add(self, variant: str, value: object, *, user: Hashable | None = None) -> None:
        """Add one score; NaN, inf and None are counted as dropped and reported."""
        arm = self._arm(variant)
        number = as_number(value)
        if number is None:
            arm.dropped += 1
            return
        if isinstance(number, bool):
            x = float(number)
        elif abs(number) > MAX_MAGNITUDE:
            arm.huge += 1
            return
        else:
            self._all_bool = False
            x = number
            if x not in (0.0, 1.0) and self._first_non_binary is None:
                self._all_binary = False
                self._first_non_binary = (variant, x)
        arm.observed = arm.observed.add(x)
        arm.successes += int(x == 1.0)
        if self.per == "observation":
            return
        if user is None:
            arm.anonymous = arm.anonymous.add(x)
            arm.anonymous_successes += int(x == 1.0)
            return
        slot = arm.users.get(user)
        if slot is None:
            arm.users[user] = [1.0, x]
        else:
            slot[0] += 1.0
            slot[1] += x

    def collect(self, metric: MetricChoice = "auto") -> Collected:
        """The per-variant statistics; ``metric`` forces continuous or boolean analysis."""
        metric = check_metric(metric)
        seen_any = any(arm.observed.n for arm in self._arms.values())
        if metric == "boolean" and not self._all_binary:
            variant, x = self._first_non_binary or ("?", math.nan)
            raise ConfigurationError(
                f"metric='boolean' needs 0/1 or true/false scores, but variant {variant!r} has {x!r}"
            )
        boolean = metric == "boolean" or (metric == "auto" and self._all_bool and seen_any)
        warnings: list[str] = []
        notes: list[str] = []
        for name, arm in self._arms.items():
            if arm.dropped:
                warnings.append(f"{arm.dropped} missing or non-finite score(s) in {name!r} were dropped")
            if arm.huge:
                warnings.append(
                    f"{arm.huge} score(s) in {name!r} larger than {MAX_MAGNITUDE:g} in magnitude were dropped"
                )
        if self.per == "observation":
            stats: dict[str, Stats] = {}
            for name, arm in self._arms.items():
                stats[name] = ProportionStats(arm.observed.n, arm.successes) if boolean else arm.observed
            notes.append("analysed per observation: every score is its own unit")
            return self._done("boolean" if boolean else "continuous", stats, warnings, notes)
        return self._collect_per_user(boolean, warnings, notes)

    def _collect_per_user(self, boolean: bool, warnings: list[str], notes: list[str]) -> Collected:
        repeated = any(slot[0] > 1 for arm in self._arms.values() for slot in arm.users.values())
        if boolean and repeated:
            boolean = False
            notes.append(
                "boolean scores with several scores per user: each user's success rate is the "
                "unit, compared with a Welch t-test"
            )
        stats: dict[str, Stats] = {}
        for name, arm in self._arms.items():
            means = [total / count for count, total in arm.users.values()]
            if boolean:
                successes = sum(1 for m in means if m == 1.0) + arm.anonymous_successes
                stats[name] = ProportionStats(len(means) + arm.anonymous.n, successes)
            else:
                stats[name] = MeanStats.of(means) + arm.anonymous
        anonymous = sum(arm.anonymous.n for arm in self._arms.values())
        if anonymous:
            warnings.append(f"{anonymous} score(s) had no user id: each was counted as its own user")
        owners: dict[Hashable, int] = {}
        for arm in self._arms.values():
            for user in arm.users:
                owners[user] = owners.get(user, 0) + 1
        shared = sum(1 for count in owners.values() if count > 1)
        if shared:
            warnings.append(
                f"{shared} user(s) were seen in more than one variant (assignment not sticky, "
                "or the experiment changed): they count in each"
            )
        notes.append("analysed per user: each user's scores are averaged first")
        return self._done("boolean" if boolean else "continuous", stats, warnings, notes)

    def _done(self, kind: MetricKind, stats: dict[str, Stats], warnings: list[str], notes: list[str]) -> Collected:
        observations = {name: arm.observed.n for name, arm in self._arms.items()}
        return Collected(kind, self.per, stats, observations, tuple(warnings), tuple(notes))
