"""``from_langfuse``: pull an experiment's traces and a score from Langfuse, join, and analyse.

Two paged reads through the Langfuse SDK's API client, both streamed:

1. ``api.observations.get_many`` filtered on the trace tags ``ab:<experiment>=<variant>`` (when
   the variant names are known) or on the metadata key ``ab_experiment``; this builds a map
   trace id -> (variant, user). Only that map is kept.
2. ``api.scores.get_many(name=score)`` with the ``subject`` field group (which carries the
   trace id); each score joined to a variant goes straight into a ``ScoreCollector``.

Traces are chosen by start time (``since``/``until``); their scores count whenever given.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Hashable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from .._errors import ConfigurationError, SourceAuthError, SourceUnavailableError
from ..variants import Experiment, Rollout
from ._analyze import build_report, check_weights, default_control
from ._collect import ScoreCollector, check_metric, check_per
from ._errors import ExperimentNotFoundError, ScoreNotFoundError, check_confidence
from ._report import Report

__all__ = ["from_langfuse", "parse_time"]

Progress = Callable[[str, int], None]
"""Called after each page with the stage (``"traces"`` or ``"scores"``) and items read so far."""

OBSERVATIONS_PAGE = 1000
SCORES_PAGE = 100
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
    current = (now or (lambda: datetime.now(timezone.utc)))()
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
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
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)
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
    the control. Raises ExperimentNotFoundError when no trace carries the experiment and
    ScoreNotFoundError when no score has that name.

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
    traces, read_warnings = _read_assignments(api, name, variants, start, end, progress)
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
    counts = _read_scores(api, score, start, traces, collector, progress)
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
    assigned = _assigned_units(traces, names, unit)
    warnings.extend(_coverage_warnings(assigned, {n: collected.stats[n].n for n in names}, unit))
    source = {"traces": len(traces), **counts}
    source.update({f"assigned_{unit}s:{n}": assigned[n] for n in names})
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


def _call(what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """One API call, with SDK and transport errors mapped to the library's errors."""
    from langfuse.api.core.api_error import ApiError

    try:
        return fn(**kwargs)
    except ApiError as exc:
        status = exc.status_code
        if status in (401, 403):
            raise SourceAuthError(
                f"Langfuse refused the credentials while reading {what} (HTTP {status}): "
                "check the public/secret keys and the host"
            ) from exc
        raise SourceUnavailableError(
            f"Langfuse answered HTTP {status} while reading {what}: {_short(exc.body)}"
        ) from exc
    except (OSError, ImportError):
        raise
    except Exception as exc:
        import httpx

        if isinstance(exc, httpx.HTTPError):
            raise SourceUnavailableError(f"could not reach Langfuse while reading {what}: {exc}") from exc
        raise


def _short(body: Any) -> str:
    text = body.get("message", body) if isinstance(body, Mapping) else body
    return str(text)[:200]


def _pages(what: str, fn: Callable[..., Any], progress: Progress | None, stage: str, **kwargs: Any) -> Any:
    """Yield items of every page of a cursor-paged endpoint."""
    cursor: str | None = None
    read = 0
    while True:
        page = _call(what, fn, cursor=cursor, **kwargs)
        data = list(page.data or [])
        yield from data
        read += len(data)
        if progress is not None:
            progress(stage, read)
        next_cursor = getattr(page.meta, "cursor", None)
        if not next_cursor or not data or next_cursor == cursor:
            return
        cursor = next_cursor


def _text(value: Any) -> str | None:
    """A metadata value as text; JSON-encoded strings (as the OTel attributes carry) decoded."""
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                decoded = json.loads(value)
            except ValueError:
                return value
            return decoded if isinstance(decoded, str) else value
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _observation_filter(name: str, variants: list[str] | None, start: datetime | None, end: datetime | None) -> str:
    conditions: list[dict[str, Any]] = []
    if variants:
        tags = [f"ab:{name}={variant}" for variant in variants]
        conditions.append({"type": "arrayOptions", "column": "traceTags", "operator": "any of", "value": tags})
    else:
        conditions.append(
            {
                "type": "stringObject",
                "column": "metadata",
                "key": "ab_experiment",
                "operator": "=",
                "value": name,
            }
        )
    if start is not None:
        conditions.append(
            {
                "type": "datetime",
                "column": "startTime",
                "operator": ">=",
                "value": start.isoformat(),
            }
        )
    if end is not None:
        conditions.append({"type": "datetime", "column": "startTime", "operator": "<", "value": end.isoformat()})
    return json.dumps(conditions)


def _read_assignments(
    api: Any,
    name: str,
    variants: list[str] | None,
    start: datetime | None,
    end: datetime | None,
    progress: Progress | None,
) -> tuple[dict[str, tuple[str, Hashable | None]], list[str]]:
    """trace id -> (variant, unit) for every trace of the experiment; conflicting traces dropped."""
    prefix = f"ab:{name}="
    traces: dict[str, tuple[str, Hashable | None]] = {}
    conflicted: set[str] = set()
    outside = 0
    pages = _pages(
        f"the traces of experiment {name!r}",
        api.observations.get_many,
        progress,
        "traces",
        fields="core,basic,metadata,trace_context",
        limit=OBSERVATIONS_PAGE,
        filter=_observation_filter(name, variants, start, end),
    )
    for obs in pages:
        trace_id = getattr(obs, "trace_id", None)
        if not trace_id or trace_id in conflicted:
            continue
        variant = next((t[len(prefix) :] for t in (obs.tags or []) if t.startswith(prefix)), None)
        metadata = obs.metadata if isinstance(obs.metadata, Mapping) else {}
        if variant is None and _text(metadata.get("ab_experiment")) == name:
            variant = _text(metadata.get("ab_variant"))
        if not variant:
            continue
        if variants is not None and variant not in variants:
            outside += 1
            continue
        unit: Hashable | None = None
        if obs.user_id:
            unit = ("user", obs.user_id)
        elif obs.session_id:
            unit = ("session", obs.session_id)
        known = traces.get(trace_id)
        if known is None:
            traces[trace_id] = (variant, unit)
        elif known[0] != variant:
            conflicted.add(trace_id)
            del traces[trace_id]
        elif known[1] is None and unit is not None:
            traces[trace_id] = (variant, unit)
    warnings = []
    if conflicted:
        warnings.append(f"{len(conflicted)} trace(s) carried two variants and were left out")
    if outside:
        warnings.append(f"{outside} observation(s) named a variant outside {variants} and were left out")
    return traces, warnings


def _score_trace_id(score: Any) -> str | None:
    subject = getattr(score, "subject", None)
    if subject is not None:
        kind = getattr(subject, "kind", None)
        if kind == "trace":
            return str(subject.id)
        if kind == "observation":
            trace_id = getattr(subject, "trace_id", None)
            return str(trace_id) if trace_id else None
        return None
    extra = getattr(score, "model_extra", None) or {}
    trace_id = getattr(score, "trace_id", None) or extra.get("traceId")
    return str(trace_id) if trace_id else None


def _read_scores(
    api: Any,
    score: str,
    start: datetime | None,
    traces: Mapping[str, tuple[str, Hashable | None]],
    collector: ScoreCollector,
    progress: Progress | None,
) -> dict[str, int]:
    counts = {"scores_read": 0, "scores_joined": 0, "scores_unjoined": 0, "scores_skipped": 0}
    kwargs: dict[str, Any] = {"name": score, "fields": "subject", "limit": SCORES_PAGE}
    if start is not None:
        kwargs["from_timestamp"] = start
    for item in _pages(f"the scores named {score!r}", api.scores.get_many, progress, "scores", **kwargs):
        if getattr(item, "name", score) != score:
            continue
        counts["scores_read"] += 1
        value = getattr(item, "value", None)
        data_type = str(getattr(item, "data_type", "NUMERIC")).upper()
        trace_id = _score_trace_id(item)
        usable = data_type in ("NUMERIC", "BOOLEAN") and (
            isinstance(value, bool) or (isinstance(value, (int, float)) and math.isfinite(value))
        )
        if not usable or trace_id is None:
            counts["scores_skipped"] += 1
            continue
        assignment = traces.get(trace_id)
        if assignment is None:
            counts["scores_unjoined"] += 1
            continue
        variant, unit = assignment
        collector.add(
            variant,
            bool(value) if data_type == "BOOLEAN" else value,
            user=unit or ("trace", trace_id),
        )
        counts["scores_joined"] += 1
    return counts


def _assigned_units(traces: Mapping[str, tuple[str, Hashable | None]], names: list[str], per: str) -> dict[str, int]:
    """Units assigned to each variant, scored or not: users (per user) or traces."""
    if per == "observation":
        counts = dict.fromkeys(names, 0)
        for variant, _ in traces.values():
            counts[variant] = counts.get(variant, 0) + 1
        return counts
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
