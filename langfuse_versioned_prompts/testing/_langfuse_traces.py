"""Traces and observations of the Langfuse stand-in, built from the spans received over OTLP.

Trace-level attributes (``langfuse.trace.name``, ``user.id``, ``session.id``, ``langfuse.trace.tags``,
``langfuse.trace.metadata.<key>``) set on ANY span of a trace are merged into the trace, as the
real server does: tags as a union, metadata key by key, scalars last-writer-wins in arrival order.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._langfuse_common import Clock, iso
from ._langfuse_otel import SpanRecord

TRACE_NAME = "langfuse.trace.name"
TRACE_USER_ID = "user.id"
TRACE_SESSION_ID = "session.id"
TRACE_TAGS = "langfuse.trace.tags"
TRACE_PUBLIC = "langfuse.trace.public"
TRACE_METADATA = "langfuse.trace.metadata"
TRACE_INPUT = "langfuse.trace.input"
TRACE_OUTPUT = "langfuse.trace.output"
OBS = "langfuse.observation"
PromptIdLookup = Callable[[str, int], "str | None"]


def decode_json(value: Any) -> Any:
    """A JSON-encoded attribute value decoded; anything else as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    decoded = decode_json(value)
    if isinstance(decoded, list):
        return [str(item) for item in decoded]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return []


def _metadata(attributes: dict[str, Any], prefix: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    whole = decode_json(attributes.get(prefix))
    if isinstance(whole, dict):
        found.update(whole)
    elif whole is not None:
        found["metadata"] = whole
    for key, value in attributes.items():
        if key.startswith(prefix + "."):
            found[key[len(prefix) + 1 :]] = decode_json(value)
    return found


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if end is not None else None


@dataclass(frozen=True)
class Observation:
    """One observation: its API row (every field group, metadata decoded) plus typed times."""

    row: dict[str, Any]
    start: datetime
    end: datetime | None
    metadata: dict[str, Any]


class TraceStore:
    """Spans received over OTLP, keyed by (trace id, span id); a re-sent span replaces the old one.

    Thread-safe: the span map is guarded by a lock and views are computed from a copy.
    """

    def __init__(self, *, project_id: str, clock: Clock, prompt_id: PromptIdLookup) -> None:
        self._project_id = project_id
        self._clock = clock
        self._prompt_id = prompt_id
        self._lock = threading.Lock()
        self._spans: dict[tuple[str, str], tuple[SpanRecord, datetime, datetime]] = {}

    def ingest(self, spans: list[SpanRecord]) -> None:
        """Store exported spans."""
        now = self._clock()
        with self._lock:
            for span in spans:
                key = (span.trace_id, span.span_id)
                created = self._spans[key][1] if key in self._spans else now
                self._spans[key] = (span, created, now)

    def spans(self) -> list[SpanRecord]:
        """Every span received, in arrival order."""
        with self._lock:
            return [entry[0] for entry in self._spans.values()]

    def _by_trace(self) -> dict[str, list[tuple[SpanRecord, datetime, datetime]]]:
        with self._lock:
            entries = list(self._spans.values())
        grouped: dict[str, list[tuple[SpanRecord, datetime, datetime]]] = {}
        for entry in entries:
            grouped.setdefault(entry[0].trace_id, []).append(entry)
        return grouped

    def observations(self) -> list[Observation]:
        """Every observation with its trace context, in arrival order."""
        found: list[Observation] = []
        for trace_id, entries in self._by_trace().items():
            trace = self._trace(trace_id, entries)
            found += [self._observation(entry, trace) for entry in entries]
        return found

    def traces(self) -> list[tuple[dict[str, Any], list[Observation]]]:
        """Every merged trace with its observations, in order of first arrival."""
        found = []
        for trace_id, entries in self._by_trace().items():
            trace = self._trace(trace_id, entries)
            found.append((trace, [self._observation(entry, trace) for entry in entries]))
        return found

    def trace(self, trace_id: str) -> tuple[dict[str, Any], list[Observation]] | None:
        """The merged trace and its observations, or ``None`` when no span of it arrived."""
        entries = self._by_trace().get(trace_id)
        if not entries:
            return None
        trace = self._trace(trace_id, entries)
        return trace, [self._observation(entry, trace) for entry in entries]

    def _trace(self, trace_id: str, entries: list[tuple[SpanRecord, datetime, datetime]]) -> dict[str, Any]:
        name = user_id = session_id = release = version = None
        environment = "default"
        tags: list[str] = []
        metadata: dict[str, Any] = {}
        public = False
        trace_input = trace_output = None
        root: SpanRecord | None = None
        for span, _created, _updated in entries:
            attrs = {**span.resource_attributes, **span.attributes}
            if span.parent_span_id is None and root is None:
                root = span
            name = attrs.get(TRACE_NAME) or name
            user_id = attrs.get(TRACE_USER_ID) or user_id
            session_id = attrs.get(TRACE_SESSION_ID) or session_id
            release = attrs.get("langfuse.release") or release
            version = attrs.get("langfuse.version") or version
            environment = attrs.get("langfuse.environment") or environment
            tags += [tag for tag in _tags(attrs.get(TRACE_TAGS)) if tag not in tags]
            metadata.update(_metadata(span.attributes, TRACE_METADATA))
            public = public or attrs.get(TRACE_PUBLIC) in (True, "true")
            trace_input = decode_json(attrs[TRACE_INPUT]) if TRACE_INPUT in attrs else trace_input
            trace_output = decode_json(attrs[TRACE_OUTPUT]) if TRACE_OUTPUT in attrs else trace_output
        if root is not None:
            name = name or root.name
            if trace_input is None and f"{OBS}.input" in root.attributes:
                trace_input = decode_json(root.attributes[f"{OBS}.input"])
            if trace_output is None and f"{OBS}.output" in root.attributes:
                trace_output = decode_json(root.attributes[f"{OBS}.output"])
        starts = [span.start_time for span, _c, _u in entries]
        ends = [span.end_time for span, _c, _u in entries if span.end_time is not None]
        return {
            "id": trace_id, "timestamp": iso(min(starts)), "name": name, "input": trace_input,
            "output": trace_output, "sessionId": session_id, "release": release,
            "version": version, "userId": user_id, "metadata": metadata, "tags": tags,
            "public": public, "environment": environment, "projectId": self._project_id,
            "createdAt": iso(min(created for _s, created, _u in entries)),
            "updatedAt": iso(max(updated for _s, _c, updated in entries)),
            "latency": (max(ends) - min(starts)).total_seconds() if ends else None,
        }

    def _observation(
        self, entry: tuple[SpanRecord, datetime, datetime], trace: dict[str, Any]
    ) -> Observation:
        span, created, updated = entry
        attrs = {**span.resource_attributes, **span.attributes}
        kind = str(attrs.get(f"{OBS}.type") or "span").upper()
        prompt_name = attrs.get(f"{OBS}.prompt.name")
        prompt_version = _int(attrs.get(f"{OBS}.prompt.version"))
        completion = decode_json(attrs.get(f"{OBS}.completion_start_time"))
        completion_at = _parse_time(completion)
        usage = decode_json(attrs.get(f"{OBS}.usage_details")) or {}
        cost = decode_json(attrs.get(f"{OBS}.cost_details")) or {}
        metadata = _metadata(span.attributes, f"{OBS}.metadata")
        level = attrs.get(f"{OBS}.level") or ("ERROR" if span.status_error else "DEFAULT")
        row: dict[str, Any] = {
            "id": span.span_id, "traceId": span.trace_id, "startTime": iso(span.start_time),
            "endTime": iso(span.end_time) if span.end_time else None,
            "projectId": self._project_id, "parentObservationId": span.parent_span_id,
            "type": kind, "name": span.name, "level": level,
            "statusMessage": attrs.get(f"{OBS}.status_message") or span.status_message or None,
            "version": attrs.get("langfuse.version"),
            "environment": attrs.get("langfuse.environment") or "default",
            "bookmarked": False, "public": trace["public"], "userId": trace["userId"],
            "sessionId": trace["sessionId"],
            "isRootObservation": span.parent_span_id is None
            or attrs.get("langfuse.internal.is_app_root") in (True, "true"),
            "completionStartTime": iso(completion_at) if completion_at else None,
            "createdAt": iso(created), "updatedAt": iso(updated),
            "input": attrs.get(f"{OBS}.input"), "output": attrs.get(f"{OBS}.output"),
            "metadata": copy.deepcopy(metadata),
            "providedModelName": attrs.get(f"{OBS}.model.name"), "internalModelId": None,
            "modelParameters": decode_json(attrs.get(f"{OBS}.model.parameters")),
            "usageDetails": usage if isinstance(usage, dict) else {},
            "costDetails": cost if isinstance(cost, dict) else {},
            "totalCost": _total(cost), "usagePricingTierName": None,
            "promptId": self._prompt_id(prompt_name, prompt_version)
            if prompt_name and prompt_version is not None else None,
            "promptName": prompt_name, "promptVersion": prompt_version,
            "latency": _seconds(span.start_time, span.end_time),
            "timeToFirstToken": _seconds(span.start_time, completion_at) if completion_at else None,
            "tags": list(trace["tags"]), "release": trace["release"], "traceName": trace["name"],
            "modelId": None, "inputPrice": None, "outputPrice": None, "totalPrice": None,
        }
        return Observation(row=row, start=span.start_time, end=span.end_time, metadata=metadata)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _total(cost: Any) -> float | None:
    if not isinstance(cost, dict) or not cost:
        return None
    if isinstance(cost.get("total"), (int, float)):
        return float(cost["total"])
    return float(sum(v for v in cost.values() if isinstance(v, (int, float))))


def legacy_observation(observation: Observation) -> dict[str, Any]:
    """An observation in the v1 ``ObservationsView`` shape used by GET /api/public/traces/{id}."""
    row = observation.row
    usage = row["usageDetails"]
    cost = row["costDetails"]
    return {
        "id": row["id"], "traceId": row["traceId"], "projectId": row["projectId"],
        "type": row["type"], "name": row["name"], "startTime": row["startTime"],
        "endTime": row["endTime"], "completionStartTime": row["completionStartTime"],
        "model": row["providedModelName"], "modelParameters": row["modelParameters"],
        "input": decode_json(row["input"]), "output": decode_json(row["output"]),
        "version": row["version"], "metadata": copy.deepcopy(observation.metadata),
        "usage": {"input": usage.get("input", 0), "output": usage.get("output", 0),
                  "total": usage.get("total", usage.get("input", 0) + usage.get("output", 0)),
                  "unit": None},
        "level": row["level"], "statusMessage": row["statusMessage"],
        "parentObservationId": row["parentObservationId"], "promptId": row["promptId"],
        "usageDetails": usage, "costDetails": cost, "environment": row["environment"],
        "promptName": row["promptName"], "promptVersion": row["promptVersion"],
        "modelId": None, "inputPrice": None, "outputPrice": None, "totalPrice": None,
        "calculatedInputCost": cost.get("input"), "calculatedOutputCost": cost.get("output"),
        "calculatedTotalCost": row["totalCost"], "latency": row["latency"],
        "timeToFirstToken": row["timeToFirstToken"],
    }
