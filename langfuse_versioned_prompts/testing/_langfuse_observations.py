"""GET /api/public/v2/observations of the Langfuse stand-in: query filters, the JSON ``filter``,
field groups and cursor paging.

When the JSON ``filter`` names a column, the query parameter for that column is ignored (the filter
takes precedence); query parameters for other columns still apply.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ._langfuse_common import (
    Query,
    decode_cursor,
    encode_cursor,
    first,
    invalid_request,
    json_text,
    parse_iso,
    query_int,
    split_csv,
)
from ._langfuse_traces import Observation

GROUPS: dict[str, tuple[str, ...]] = {
    "core": ("id", "traceId", "startTime", "endTime", "projectId", "parentObservationId", "type"),
    "basic": ("name", "level", "statusMessage", "version", "environment", "bookmarked", "public",
              "userId", "sessionId", "isRootObservation"),
    "time": ("completionStartTime", "createdAt", "updatedAt"),
    "io": ("input", "output"),
    "metadata": ("metadata",),
    "model": ("providedModelName", "internalModelId", "modelParameters"),
    "usage": ("usageDetails", "costDetails", "totalCost", "usagePricingTierName"),
    "prompt": ("promptId", "promptName", "promptVersion"),
    "metrics": ("latency", "timeToFirstToken"),
    "trace_context": ("tags", "release", "traceName"),
}
_ALWAYS = ("modelId", "inputPrice", "outputPrice", "totalPrice")
_MAX_LIMIT = 1000
_METADATA_TRUNCATE = 200

_OPERATORS: dict[str, tuple[str, ...]] = {
    "datetime": (">", "<", ">=", "<="),
    "string": ("=", "contains", "does not contain", "starts with", "ends with", "matches"),
    "stringOptions": ("any of", "none of"),
    "categoryOptions": ("any of", "none of"),
    "arrayOptions": ("any of", "none of", "all of"),
    "number": ("=", ">", "<", ">=", "<="),
    "stringObject": ("=", "contains", "does not contain", "starts with", "ends with", "matches"),
    "numberObject": ("=", ">", "<", ">=", "<="),
    "boolean": ("=", "<>"),
    "null": ("is null", "is not null"),
}


def _usage(key: str) -> Callable[[Observation], Any]:
    return lambda o: o.row["usageDetails"].get(key)


def _cost(key: str) -> Callable[[Observation], Any]:
    return lambda o: o.row["costDetails"].get(key)


def _row(key: str) -> Callable[[Observation], Any]:
    return lambda o: o.row[key]


_COLUMNS: dict[str, Callable[[Observation], Any]] = {
    **{key: _row(key) for key in (
        "id", "type", "name", "traceId", "environment", "level", "statusMessage", "version",
        "userId", "sessionId", "isRootObservation", "traceName", "latency", "timeToFirstToken",
        "providedModelName", "promptName", "promptVersion", "input", "output",
        "parentObservationId", "totalCost",
    )},
    "startTime": lambda o: o.start,
    "endTime": lambda o: o.end,
    "traceTags": _row("tags"),
    "tags": _row("tags"),
    "model": _row("providedModelName"),
    "metadata": lambda o: o.metadata,
    "inputTokens": _usage("input"),
    "outputTokens": _usage("output"),
    "totalTokens": _usage("total"),
    "tokens": _usage("total"),
    "inputCost": _cost("input"),
    "outputCost": _cost("output"),
}

Condition = Callable[[Observation], bool]


def _compare(actual: Any, operator: str, expected: Any) -> bool:
    if actual is None:
        return False
    try:
        if operator == "=":
            return bool(actual == expected)
        if operator == ">":
            return bool(actual > expected)
        if operator == "<":
            return bool(actual < expected)
        if operator == ">=":
            return bool(actual >= expected)
        return bool(actual <= expected)
    except TypeError:
        return False


def _text_match(actual: str | None, operator: str, expected: str, *, case: bool) -> bool:
    if actual is None:
        return operator == "does not contain"
    if operator == "=":
        return actual == expected
    if operator == "contains":
        return expected in actual
    if operator == "does not contain":
        return expected not in actual
    if operator == "starts with":
        return actual.startswith(expected)
    if operator == "ends with":
        return actual.endswith(expected)
    return expected in actual if case else expected.lower() in actual.lower()


def _condition(raw: Any) -> tuple[str, Condition]:
    """One JSON filter condition as (column, predicate); a 400 when it is malformed."""
    if not isinstance(raw, dict):
        raise invalid_request("Invalid filter: each condition must be an object")
    kind, column, operator = str(raw.get("type")), str(raw.get("column")), str(raw.get("operator"))
    if kind not in _OPERATORS:
        raise invalid_request(f"Invalid filter: unknown type {kind!r}")
    if column not in _COLUMNS:
        raise invalid_request(f"Invalid filter: unknown column {column!r}")
    if operator not in _OPERATORS[kind]:
        raise invalid_request(f"Invalid filter: operator {operator!r} is not valid for type {kind!r}")
    value, key = raw.get("value"), raw.get("key")
    if kind in ("stringObject", "numberObject") and not isinstance(key, str):
        raise invalid_request(f"Invalid filter: type {kind!r} needs a 'key'")
    get = _COLUMNS[column]

    def actual(o: Observation) -> Any:
        found = get(o)
        if isinstance(key, str) and isinstance(found, dict):
            return found.get(key)
        return found

    if kind == "null":
        return column, lambda o: (actual(o) in (None, "")) == (operator == "is null")
    if kind == "boolean":
        return column, lambda o: (actual(o) == value) == (operator == "=")
    if kind in ("number", "numberObject"):
        number = float(value) if isinstance(value, (int, float, str)) and value != "" else None
        return column, lambda o: _compare(_to_float(actual(o)), operator, number)
    if kind == "datetime":
        moment = parse_iso(str(value), "filter")
        return column, lambda o: _compare(actual(o), operator, moment)
    if kind in ("string", "stringObject"):
        case = kind == "stringObject"
        return column, lambda o: _text_match(_text(actual(o)), operator, str(value), case=case)
    options = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if kind == "arrayOptions":
        def has(o: Observation) -> bool:
            present = {str(v) for v in (actual(o) or [])}
            if operator == "all of":
                return set(options) <= present
            return bool(present & set(options)) == (operator == "any of")
        return column, has
    return column, lambda o: (_text(actual(o)) in options) == (operator == "any of")


def _to_float(value: Any) -> float | None:
    try:
        return float(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return None if value is None else json_text(value)


def _equals(column: str, wanted: Any) -> Condition:
    return lambda o: bool(o.row[column] == wanted)


def _started(moment: datetime, *, before: bool) -> Condition:
    if before:
        return lambda o: o.start < moment
    return lambda o: o.start >= moment


def _param_conditions(query: Query) -> list[tuple[str, Condition]]:
    found: list[tuple[str, Condition]] = []
    for param, column in (("name", "name"), ("userId", "userId"), ("sessionId", "sessionId"),
                          ("type", "type"), ("traceId", "traceId"), ("level", "level"),
                          ("version", "version")):
        wanted = first(query, param)
        if wanted is not None:
            found.append((column, _equals(column, wanted)))
    parent = first(query, "parentObservationId")
    if parent is not None:
        found.append(("parentObservationId",
                      lambda o: o.row["parentObservationId"] == (parent or None)))
    root = first(query, "isRootObservation")
    if root is not None:
        found.append(("isRootObservation",
                      lambda o: o.row["isRootObservation"] == (root.lower() == "true")))
    environments = [e for e in query.get("environment", []) if e]
    if environments:
        found.append(("environment", lambda o: o.row["environment"] in environments))
    for param, before in (("fromStartTime", False), ("toStartTime", True)):
        raw = first(query, param)
        if raw:
            found.append(("startTime", _started(parse_iso(raw, param), before=before)))
    return found


def _project(observation: Observation, groups: list[str], expand: set[str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for group in groups:
        for key in GROUPS[group]:
            row[key] = observation.row[key]
    if "metadata" in row:
        row["metadata"] = {
            key: text if key in expand or len(text) <= _METADATA_TRUNCATE else text[:_METADATA_TRUNCATE]
            for key, text in ((k, json_text(v)) for k, v in observation.metadata.items())
        }
    for key in _ALWAYS:
        row[key] = None
    return row


def query_observations(observations: list[Observation], query: Query) -> dict[str, Any]:
    """Answer GET /api/public/v2/observations over ``observations``."""
    if (first(query, "parseIoAsJson") or "").lower() == "true":
        raise invalid_request(
            "parseIoAsJson is deprecated and no longer supported; input/output are returned "
            "as raw strings. Remove the parameter or set it to false."
        )
    limit = query_int(query, "limit", default=50, minimum=1, maximum=_MAX_LIMIT) or 50
    groups = split_csv(first(query, "fields")) or ["core", "basic"]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise invalid_request(f"Invalid fields: {', '.join(unknown)}. Allowed: {', '.join(GROUPS)}")
    groups = ["core", *[g for g in groups if g != "core"]]
    raw_filter = first(query, "filter")
    conditions: list[tuple[str, Condition]] = []
    if raw_filter:
        try:
            parsed = json.loads(raw_filter)
        except ValueError:
            raise invalid_request("Invalid filter: not valid JSON") from None
        if not isinstance(parsed, list):
            raise invalid_request("Invalid filter: expected a JSON array of conditions")
        conditions = [_condition(item) for item in parsed]
    filtered_columns = {column for column, _ in conditions}
    aliases = {"traceTags": "tags", "model": "providedModelName"}
    filtered_columns |= {aliases.get(c, c) for c in filtered_columns}
    conditions += [c for c in _param_conditions(query) if c[0] not in filtered_columns]
    selected = [o for o in observations if all(check(o) for _column, check in conditions)]
    selected.sort(key=lambda o: (o.start, o.row["id"]), reverse=True)
    offset = decode_cursor(first(query, "cursor"))
    expand = set(split_csv(first(query, "expandMetadata")))
    page = [_project(o, groups, expand) for o in selected[offset : offset + limit]]
    meta: dict[str, Any] = {}
    if offset + limit < len(selected):
        meta["cursor"] = encode_cursor(offset + limit)
    return {"data": page, "meta": meta}
