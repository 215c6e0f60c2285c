"""Paged, streamed reads from the Langfuse public API: experiment assignments and scores.

1. ``api.observations.get_many`` filtered on the trace tags ``ab:<experiment>=<variant>`` (when
   the variant names are known; then only the field groups core, basic and trace_context are
   asked for) or on the metadata key ``ab_experiment`` (plus the metadata group): builds the map
   trace id -> (variant, unit). Observations are not kept, but that map is: one entry per trace of
   the experiment in the window, so memory is O(traces), not O(users). Each entry is the trace id
   string and a dict slot (roughly 150-250 bytes); the (variant, unit) values are shared between
   the traces of a user. Every observation of a matching trace is transferred and parsed (the tag
   filter matches all of a trace's observations), so the transfer is O(observations).
2. ``GET /api/public/v3/scores?name=<score>&fields=subject`` (``api.scores.get_many``): each score
   joined to a variant goes straight into a ``ScoreCollector`` (O(users) per-user sums). The page
   is read as JSON through the SDK's own HTTP client (same auth, base URL, timeout and retries)
   because the SDK's model parsing of v3 scores costs milliseconds per score. That client is a
   private attribute (``api._client_wrapper.httpx_client``): when it is missing, or calling it
   raises TypeError/AttributeError (the SDK changed), the public ``api.scores.get_many`` is used.

SDK and transport errors become ``SourceAuthError`` / ``SourceUnavailableError`` in ``_call``,
naming the failing call; so do TypeError/AttributeError from an SDK call (an incompatible SDK) and
pages that fail the SDK's pydantic validation.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Hashable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from .._errors import SourceAuthError, SourceUnavailableError
from ._collect import ScoreCollector

logger = logging.getLogger(__name__)

__all__ = ["OBSERVATIONS_PAGE", "SCORES_PAGE", "Assignments", "Progress", "read_assignments", "read_scores"]

Progress = Callable[[str, int], None]
"""Called after each page with the stage (``"traces"`` or ``"scores"``) and items read so far."""

Assignments = dict[str, tuple[str, Hashable | None]]
"""trace id -> (variant, unit); the unit is ``("user", id)``, ``("session", id)`` or None."""

OBSERVATIONS_PAGE = 1000
SCORES_PAGE = 100
_SCORES_PATH = "api/public/v3/scores"
_OBSERVATIONS_CALL = "api.observations.get_many"
_SCORES_CALL = "api.scores.get_many"
_SCORES_HTTP_CALL = f"GET /{_SCORES_PATH} (through the SDK's api._client_wrapper.httpx_client.request)"


class _Score(NamedTuple):
    name: str | None
    value: Any
    data_type: str
    trace_id: str | None


class _PrivateClientChanged(Exception):
    """The SDK's private HTTP client no longer answers as expected: use the public call."""


def _call(what: str, call: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """One API call (``call`` names it), with SDK and transport errors mapped to the library's errors."""
    import httpx
    from langfuse.api.core.api_error import ApiError
    from pydantic import ValidationError

    try:
        return fn(**kwargs)
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(part) for part in errors[0]["loc"]) if errors else "?"
        message = errors[0]["msg"] if errors else str(exc)
        raise SourceUnavailableError(
            f"Langfuse's answer to {call} while reading {what} did not validate "
            f"({len(errors)} error(s), first at {where}: {message}); "
            "the server and the langfuse SDK may not match"
        ) from exc
    except (TypeError, AttributeError) as exc:
        raise SourceUnavailableError(
            f"the langfuse SDK call {call} failed while reading {what} "
            f"({type(exc).__name__}: {_short(exc)}): this langfuse SDK version may be incompatible"
        ) from exc
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
    except httpx.HTTPError as exc:
        raise SourceUnavailableError(f"could not reach Langfuse while reading {what}: {exc}") from exc


def _short(body: Any) -> str:
    text = body.get("message", body) if isinstance(body, Mapping) else body
    return " ".join(str(text).split())[:200]


def _pages(
    fetch: Callable[[str | None], tuple[list[Any], str | None]], progress: Progress | None, stage: str
) -> Iterator[Any]:
    """Items of every page of a cursor-paged endpoint; ``fetch(cursor)`` gives (items, next cursor)."""
    cursor: str | None = None
    read = 0
    while True:
        data, next_cursor = fetch(cursor)
        yield from data
        read += len(data)
        if progress is not None:
            progress(stage, read)
        if not next_cursor or not data or next_cursor == cursor:
            return
        cursor = next_cursor


def _text(value: Any) -> str | None:
    """A metadata value as text; JSON-encoded strings (as the OTel attributes carry) decoded."""
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


def observation_filter(name: str, variants: list[str] | None, start: datetime | None, end: datetime | None) -> str:
    """The JSON ``filter`` of the observations request."""
    conditions: list[dict[str, Any]] = []
    if variants:
        tags = [f"ab:{name}={variant}" for variant in variants]
        conditions.append({"type": "arrayOptions", "column": "traceTags", "operator": "any of", "value": tags})
    else:
        conditions.append(
            {"type": "stringObject", "column": "metadata", "key": "ab_experiment", "operator": "=", "value": name}
        )
    if start is not None:
        conditions.append({"type": "datetime", "column": "startTime", "operator": ">=", "value": start.isoformat()})
    if end is not None:
        conditions.append({"type": "datetime", "column": "startTime", "operator": "<", "value": end.isoformat()})
    return json.dumps(conditions)


def read_assignments(
    api: Any,
    name: str,
    variants: list[str] | None,
    start: datetime | None,
    end: datetime | None,
    progress: Progress | None,
) -> tuple[Assignments, list[str]]:
    """trace id -> (variant, unit) for every trace of the experiment; conflicting traces dropped."""
    what = f"the traces of experiment {name!r}"
    # tags carry the variant when its name is known: the metadata (often the largest group) is not needed
    query = {
        "fields": "core,basic,trace_context" if variants else "core,basic,metadata,trace_context",
        "limit": OBSERVATIONS_PAGE,
        "filter": observation_filter(name, variants, start, end),
    }

    def fetch(cursor: str | None) -> tuple[list[Any], str | None]:
        page = _call(what, _OBSERVATIONS_CALL, lambda **kw: api.observations.get_many(**kw), cursor=cursor, **query)
        return list(page.data or []), getattr(page.meta, "cursor", None)

    prefix = f"ab:{name}="
    traces: Assignments = {}
    shared: dict[tuple[str, Hashable | None], tuple[str, Hashable | None]] = {}  # one tuple per (variant, unit)
    conflicted: set[str] = set()
    outside = 0
    for obs in _pages(fetch, progress, "traces"):
        trace_id = getattr(obs, "trace_id", None)
        if not trace_id or trace_id in conflicted:
            continue
        variant = next((t[len(prefix) :] for t in (obs.tags or []) if t.startswith(prefix)), None)
        metadata = getattr(obs, "metadata", None)
        metadata = metadata if isinstance(metadata, Mapping) else {}
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
        pair = shared.setdefault((variant, unit), (variant, unit))
        known = traces.get(trace_id)
        if known is None:
            traces[trace_id] = pair
        elif known[0] != variant:
            conflicted.add(trace_id)
            del traces[trace_id]
        elif known[1] is None and unit is not None:
            traces[trace_id] = pair
    warnings = []
    if conflicted:
        warnings.append(f"{len(conflicted)} trace(s) carried two variants and were left out")
    if outside:
        warnings.append(f"{outside} observation(s) named a variant outside {variants} and were left out")
    return traces, warnings


def _score_fetcher(
    api: Any, what: str, name: str, start: datetime | None
) -> Callable[[str | None], tuple[list[_Score], str | None]]:
    """Reads one page of scores: JSON through the SDK's HTTP client, else ``api.scores.get_many``.

    The SDK's HTTP client is private; when it is missing, or calling it raises TypeError or
    AttributeError, this page and every later one are read through the public call (same
    endpoint, same cursor).
    """

    def fetch_models(cursor: str | None) -> tuple[list[_Score], str | None]:
        page = _call(
            what,
            _SCORES_CALL,
            lambda **kw: api.scores.get_many(**kw),
            cursor=cursor,
            name=name,
            fields="subject",
            limit=SCORES_PAGE,
            from_timestamp=start,
        )
        return [_score_from_model(item) for item in page.data or []], getattr(page.meta, "cursor", None)

    http = getattr(getattr(api, "_client_wrapper", None), "httpx_client", None)
    if http is None or not callable(getattr(http, "request", None)):
        return fetch_models

    from langfuse.api.core.api_error import ApiError

    params: dict[str, Any] = {"name": name, "fields": "subject", "limit": SCORES_PAGE}
    if start is not None:
        params["fromTimestamp"] = _timestamp(start)

    def get(cursor: str | None) -> Any:
        try:
            response = http.request(_SCORES_PATH, method="GET", params={**params, "cursor": cursor})
            status, ok = response.status_code, 200 <= response.status_code < 300
            content = response.content
        except (TypeError, AttributeError) as exc:
            raise _PrivateClientChanged(f"{type(exc).__name__}: {exc}") from exc
        try:
            body: Any = json.loads(content)
        except ValueError:
            if ok:
                raise SourceUnavailableError(
                    f"Langfuse answered {_SCORES_HTTP_CALL} while reading {what} with a body that is not "
                    f"JSON (HTTP {status}): {_short(response.text)}"
                ) from None
            body = response.text
        if not ok:
            raise ApiError(status_code=status, headers=dict(response.headers), body=body)
        return body

    use_private = True

    def fetch_json(cursor: str | None) -> tuple[list[_Score], str | None]:
        nonlocal use_private
        if use_private:
            try:
                page = _call(what, _SCORES_HTTP_CALL, get, cursor=cursor)
            except _PrivateClientChanged as exc:
                use_private = False
                logger.warning(
                    "the langfuse SDK's private HTTP client failed (%s): reading scores through %s instead",
                    exc,
                    _SCORES_CALL,
                )
            else:
                if not isinstance(page, Mapping):
                    raise SourceUnavailableError(
                        f"Langfuse answered {_SCORES_HTTP_CALL} while reading {what} with "
                        f"{type(page).__name__}, not an object"
                    )
                rows = page.get("data") or []
                meta = page.get("meta")
                cursor_out = meta.get("cursor") if isinstance(meta, Mapping) else None
                return [_score_from_json(row) for row in rows if isinstance(row, Mapping)], cursor_out
        return fetch_models(cursor)

    return fetch_json


def _timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as the SDK serialises datetimes."""
    aware = value if value.tzinfo is not None else value.astimezone()
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _score_from_json(row: Mapping[str, Any]) -> _Score:
    subject = row.get("subject")
    trace_id: Any = None
    if isinstance(subject, Mapping):
        if subject.get("kind") == "trace":
            trace_id = subject.get("id")
        elif subject.get("kind") == "observation":
            trace_id = subject.get("traceId")
    else:
        trace_id = row.get("traceId")
    return _Score(row.get("name"), row.get("value"), str(row.get("dataType") or "").upper(), trace_id and str(trace_id))


def _score_from_model(item: Any) -> _Score:
    subject = getattr(item, "subject", None)
    trace_id: Any = None
    if subject is not None:
        kind = getattr(subject, "kind", None)
        if kind == "trace":
            trace_id = subject.id
        elif kind == "observation":
            trace_id = getattr(subject, "trace_id", None)
    else:
        trace_id = getattr(item, "trace_id", None) or (getattr(item, "model_extra", None) or {}).get("traceId")
    data_type = str(getattr(item, "data_type", "") or "").upper()
    return _Score(getattr(item, "name", None), getattr(item, "value", None), data_type, trace_id and str(trace_id))


def read_scores(
    api: Any,
    score: str,
    start: datetime | None,
    traces: Assignments,
    collector: ScoreCollector,
    progress: Progress | None,
) -> dict[str, int]:
    """Stream the scores named ``score`` into ``collector``; returns counts of what was read."""
    counts = {"scores_read": 0, "scores_joined": 0, "scores_unjoined": 0, "scores_skipped": 0}
    fetch = _score_fetcher(api, f"the scores named {score!r}", score, start)
    for item in _pages(fetch, progress, "scores"):
        if item.name is not None and item.name != score:
            continue
        counts["scores_read"] += 1
        value = item.value
        usable = item.data_type in ("NUMERIC", "BOOLEAN") and (
            isinstance(value, bool) or (isinstance(value, (int, float)) and math.isfinite(value))
        )
        if not usable or item.trace_id is None:
            counts["scores_skipped"] += 1
            continue
        assignment = traces.get(item.trace_id)
        if assignment is None:
            counts["scores_unjoined"] += 1
            continue
        variant, unit = assignment
        value = bool(value) if item.data_type == "BOOLEAN" else value
        collector.add(variant, value, user=unit or ("trace", item.trace_id))
        counts["scores_joined"] += 1
    return counts
