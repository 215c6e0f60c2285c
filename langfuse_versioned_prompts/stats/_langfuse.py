"""``from_langfuse``: pull an experiment's traces and a score from Langfuse, join, and analyse.

The reads (``_langfuse_read``) are paged and streamed, but not constant in memory: the join keeps a
trace id -> (variant, unit) map with one entry per trace of the experiment in the window (roughly
150-250 bytes each: the trace id string and a dict slot; the (variant, unit) pairs are shared), and
the collector keeps per-user partial sums (one per user when analysing per user). So memory grows
with the traces in the window, which ``since``/``until`` bound; observations and scores themselves
are not kept. Traces are chosen by start time; their scores count whenever they were given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .._errors import ConfigurationError
from ..variants import Experiment, Rollout
from ._analyze import build_report, check_weights, default_control
from ._collect import ScoreCollector, check_metric, check_per
from ._errors import ExperimentNotFoundError, ScoreNotFoundError, check_confidence
from ._langfuse_read import Assignments, Progress, read_assignments, read_scores
from ._report import Report

__all__ = ["from_langfuse", "parse_time"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(
    value: datetime | timedelta | str | None, *, now: Callable[[], datetime] | None = None
) -> datetime | None:
    """A point in time from a datetime, a timedelta ago, ``"7d"``/``"12h"``/``"30m"``, or ISO 8601.

    >>> parse_time("2025-01-31T00:00:00Z").isoformat()
    '2025-01-31T00:00:00+00:00'
    """
    if value is None:
        return None
    current = (now or (lambda: datetime.now(UTC)))()
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, timedelta):
        return current - value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return current - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    raise ConfigurationError(f"expected a duration such as '7d', '12h', '30m', or an ISO 8601 date, got {value!r}")


def from_langfuse(
    experiment: str | Experiment,
    score: str,
    *,
    client: Any = None,
    since: datetime | timedelta | str | None = None,
    until: datetime | timedelta | str | None = None,
    per: str = "user",
    weights: Mapping[str, float] | None = None,
    progress: Progress | None = None,
    control: str | None = None,
    confidence: float = 0.95,
    metric: str = "auto",
    higher_is_better: bool = True,
    now: Callable[[], datetime] | None = None,
) -> Report:
    """Analyse score ``score`` per variant of ``experiment``, read from Langfuse.

    ``client`` is a ``langfuse.Langfuse`` (default: ``langfuse.get_client()``) or its ``.api``.
    Passing an ``Experiment`` (or ``weights``) fixes the variant names, their expected split and
    the control; only then is the sample ratio checked, on the users (or sessions, for traces
    without a user) assigned to each variant, scored or not, whatever ``per`` is. Raises
    ExperimentNotFoundError when no trace carries the experiment and ScoreNotFoundError when no
    score has that name. Memory grows with the number of traces in the window (see the module).

    >>> report = from_langfuse("analyzer-v2", "helpfulness", since="7d")  # doctest: +SKIP
    """
    name, weights, control = _experiment_parts(experiment, weights, control)
    if not isinstance(score, str) or not score:
        raise ConfigurationError(f"score must be a non-empty score name, got {score!r}")
    confidence = check_confidence(confidence)
    unit = check_per(per)
    chosen = check_metric(metric)
    start, end = parse_time(since, now=now), parse_time(until, now=now)
    if start is not None and end is not None and start >= end:
        raise ConfigurationError(f"since ({start.isoformat()}) must be before until ({end.isoformat()})")
    if weights is not None:
        check_weights(weights, list(weights))
    api = _api(client)
    variants = list(weights) if weights is not None else None
    traces, read_warnings = read_assignments(api, name, variants, start, end, progress)
    if not traces:
        hint = (
            ""
            if variants
            else "; if its traces carry only tags, give the variant names as weights "
            "(weights={'A': 1, 'B': 1}, or --weights A=1,B=1)"
        )
        raise ExperimentNotFoundError(
            f"no Langfuse trace{_window(start, end)} carries experiment {name!r} "
            f"(trace tag 'ab:{name}=<variant>' or metadata ab_experiment={name!r}){hint}"
        )
    names = variants or sorted({variant for variant, _ in traces.values()})
    if control is not None and control not in names:
        raise ConfigurationError(f"control {control!r} is not one of the variants {names}")
    control = control or default_control(names)
    collector = ScoreCollector(names, per=unit)
    counts = read_scores(api, score, start, traces, collector, progress)
    if counts["scores_read"] == 0:
        raise ScoreNotFoundError(
            f"no Langfuse score named {score!r}{_window(start, None)}: check the score name "
            f"(the experiment {name!r} has {len(traces)} traces)"
        )
    collected = collector.collect(chosen)
    warnings = list(read_warnings)
    if counts["scores_joined"] == 0:
        warnings.append(
            f"none of the {counts['scores_read']} {score!r} scores belongs to a trace of experiment {name!r}"
        )
    if counts["scores_skipped"]:
        warnings.append(
            f"{counts['scores_skipped']} {score!r} score(s) were not numeric or boolean, or not "
            "attached to a trace, and were skipped"
        )
    anonymous = sum(1 for _, who in traces.values() if who is None)
    if unit == "user" and anonymous:
        warnings.append(f"{anonymous} trace(s) had no user or session id: each was counted as its own unit")
    assigned = _assigned_users(traces, names)
    warnings.extend(_coverage_warnings(assigned, {n: collected.stats[n].n for n in names}, unit))
    source = {"traces": len(traces), **counts}
    source.update({f"assigned_users:{n}": assigned[n] for n in names})
    report = build_report(
        collected,
        control=control,
        weights=check_weights(weights, names),
        confidence=confidence,
        higher_is_better=higher_is_better,
        score=score,
        experiment=name,
        source=source,
        warnings=warnings,
        srm_counts=assigned,
        srm_note=(
            "the sample-ratio check counts every assigned user (the unit of assignment; a session, "
            "or the trace, when there is no user id), scored or not"
        ),
    )
    return report


def _experiment_parts(
    experiment: str | Experiment, weights: Mapping[str, float] | None, control: str | None
) -> tuple[str, Mapping[str, float] | None, str | None]:
    if isinstance(experiment, Experiment):
        if weights is None:
            weights = experiment.weights
        if control is None:
            control = experiment.baseline if isinstance(experiment, Rollout) else experiment.variants[0].name
        return experiment.name, weights, control
    if not isinstance(experiment, str) or not experiment:
        raise ConfigurationError(f"experiment must be a non-empty name, got {experiment!r}")
    return experiment, weights, control


def _window(start: datetime | None, end: datetime | None) -> str:
    parts = []
    if start is not None:
        parts.append(f"since {start.isoformat()}")
    if end is not None:
        parts.append(f"until {end.isoformat()}")
    return f" ({', '.join(parts)})" if parts else ""


def _api(client: Any) -> Any:
    if client is None:
        if not (os.environ.get("LANGFUSE_PUBLIC_KEY") and os.environ.get("LANGFUSE_SECRET_KEY")):
            raise ConfigurationError(
                "no Langfuse client: pass client= or set LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY "
                "and LANGFUSE_BASE_URL (or LANGFUSE_HOST)"
            )
        from langfuse import get_client

        client = get_client()
    return getattr(client, "api", client)


def _assigned_users(traces: Assignments, names: list[str]) -> dict[str, int]:
    """Distinct users assigned to each variant, scored or not, whatever the analysis unit.

    Users are the unit of assignment; a trace without a user counts its session, and a trace
    with neither counts as its own unit.
    """
    units: dict[str, set[Hashable]] = {n: set() for n in names}
    for trace_id, (variant, unit) in traces.items():
        units.setdefault(variant, set()).add(unit or ("trace", trace_id))
    return {n: len(u) for n, u in units.items()}


def _coverage_warnings(assigned: Mapping[str, int], scored: Mapping[str, int], per: str) -> list[str]:
    if per != "user":
        return []
    shares = {n: scored[n] / assigned[n] for n in assigned if assigned[n]}
    if len(shares) < 2 or max(shares.values()) - min(shares.values()) <= 0.1:
        return []
    text = ", ".join(f"{n} {s:.0%}" for n, s in shares.items())
    return [
        f"the share of users with a score differs between variants ({text}): missing scores may bias the comparison"
    ]
