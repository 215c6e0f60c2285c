"""Scores of the Langfuse stand-in: POST /api/public/scores (one object or the SDK's batches) and
GET /api/public/v3/scores with its filters, field groups and cursor paging."""

from __future__ import annotations

import copy
import math
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._langfuse_common import (
    ApiError,
    Clock,
    IdFactory,
    Query,
    decode_cursor,
    encode_cursor,
    first,
    invalid_data,
    invalid_request,
    iso,
    issue,
    parse_iso,
    query_int,
    split_csv,
    type_issue,
)

DATA_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL", "TEXT", "CORRECTION")
_FIELD_GROUPS = ("details", "subject", "annotation")
_MAX_LIMIT = 100


@dataclass
class _Score:
    id: str
    name: str
    value: float | bool | str
    data_type: str
    source: str
    timestamp: datetime
    environment: str
    created_at: datetime
    updated_at: datetime
    comment: str | None
    config_id: str | None
    metadata: Any
    trace_id: str | None
    observation_id: str | None
    session_id: str | None
    dataset_run_id: str | None
    queue_id: str | None


def _score_value(body: dict[str, Any], data_type: str) -> float | bool | str:
    value = body.get("value")
    if data_type in ("NUMERIC", "BOOLEAN"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise invalid_data([type_issue(["value"], "number", value)])
        if data_type == "BOOLEAN":
            if value not in (0, 1):
                raise invalid_request("Boolean score value must equal either 1 or 0")
            return value == 1
        return float(value)
    if not isinstance(value, str):
        raise invalid_data([type_issue(["value"], "string", value)])
    if data_type == "TEXT" and not 1 <= len(value) <= 500:
        raise invalid_request("Text score value must be between 1 and 500 characters")
    return value


class ScoreStore:
    """The scores of one project. Thread-safe: every public method holds the store's lock."""

    def __init__(self, *, project_id: str, clock: Clock, new_id: IdFactory) -> None:
        self._project_id = project_id
        self._clock = clock
        self._new_id = new_id
        self._lock = threading.Lock()
        self._scores: dict[str, _Score] = {}

    def create(self, body: Any) -> str:
        """Store (or replace, by id) one score body; returns its id. Raises 400s as ApiError."""
        if not isinstance(body, dict):
            raise invalid_data([type_issue([], "object", body)])
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_data([type_issue(["name"], "string", name, present="name" in body)])
        if "value" not in body:
            raise invalid_data([issue("invalid_union", ["value"], "Invalid input")])
        given = body.get("dataType")
        data_type = (given or ("CATEGORICAL" if isinstance(body["value"], str) else "NUMERIC")).upper()
        if data_type not in DATA_TYPES:
            raise invalid_data([issue("invalid_value", ["dataType"], "Invalid option", values=list(DATA_TYPES))])
        source = str(body.get("source") or "API").upper()
        if source not in ("API", "ANNOTATION"):
            raise invalid_data([issue("invalid_value", ["source"], "Invalid option", values=["API", "ANNOTATION"])])
        value = _score_value(body, data_type)
        if not any(body.get(key) for key in ("traceId", "sessionId", "datasetRunId")):
            raise invalid_request("A score must reference a traceId, sessionId or datasetRunId")
        raw_time = body.get("timestamp")
        now = self._clock()
        timestamp = parse_iso(raw_time, "timestamp") if isinstance(raw_time, str) else now
        score_id = str(body.get("id") or self._new_id())
        with self._lock:
            created_at = self._scores[score_id].created_at if score_id in self._scores else now
            self._scores[score_id] = _Score(
                id=score_id, name=name, value=value, data_type=data_type, source=source,
                timestamp=timestamp, environment=str(body.get("environment") or "default"),
                created_at=created_at, updated_at=now, comment=body.get("comment"),
                config_id=body.get("configId"), metadata=copy.deepcopy(body.get("metadata")),
                trace_id=body.get("traceId"), observation_id=body.get("observationId"),
                session_id=body.get("sessionId"), dataset_run_id=body.get("datasetRunId"),
                queue_id=body.get("queueId"),
            )
        return score_id

    def create_many(self, bodies: list[Any]) -> tuple[int, list[str]]:
        """Store a batch; returns (accepted, error messages of the rejected ones)."""
        errors: list[str] = []
        for index, body in enumerate(bodies):
            try:
                self.create(body)
            except ApiError as exc:
                errors.append(f"Score {index}: {_describe(exc)}")
        return len(bodies) - len(errors), errors

    def query(self, query: Query) -> dict[str, Any]:
        """GET /api/public/v3/scores."""
        limit = query_int(query, "limit", default=50, minimum=1, maximum=_MAX_LIMIT) or 50
        groups = split_csv(first(query, "fields"))
        unknown = [group for group in groups if group not in _FIELD_GROUPS]
        if unknown:
            raise invalid_request(
                f"Invalid fields: {', '.join(unknown)}. Allowed: {', '.join(_FIELD_GROUPS)}"
            )
        trace_ids = split_csv(first(query, "traceId"))
        observation_ids = split_csv(first(query, "observationId"))
        if observation_ids and not trace_ids:
            raise invalid_request("observationId requires traceId")
        exclusive = [k for k in ("traceId", "sessionId", "experimentId") if first(query, k)]
        if len(exclusive) > 1:
            raise invalid_request(f"{' and '.join(exclusive)} are mutually exclusive")
        data_types = [t.upper() for t in split_csv(first(query, "dataType"))]
        value_min, value_max = _float(query, "valueMin"), _float(query, "valueMax")
        if (value_min is not None or value_max is not None) and data_types != ["NUMERIC"]:
            raise invalid_request("valueMin and valueMax require dataType=NUMERIC")
        values = split_csv(first(query, "value"))
        if values and (len(data_types) != 1 or data_types[0] not in ("NUMERIC", "BOOLEAN", "CATEGORICAL")):
            raise invalid_request("value requires a single dataType of NUMERIC, BOOLEAN or CATEGORICAL")
        since, until = first(query, "fromTimestamp"), first(query, "toTimestamp")
        since_at = parse_iso(since, "fromTimestamp") if since else None
        until_at = parse_iso(until, "toTimestamp") if until else None
        wanted = {
            "id": split_csv(first(query, "id")), "name": split_csv(first(query, "name")),
            "source": [s.upper() for s in split_csv(first(query, "source"))],
            "data_type": data_types, "environment": split_csv(first(query, "environment")),
            "config_id": split_csv(first(query, "configId")), "queue_id": split_csv(first(query, "queueId")),
            "trace_id": trace_ids, "observation_id": observation_ids,
            "session_id": split_csv(first(query, "sessionId")),
            "dataset_run_id": split_csv(first(query, "experimentId")),
        }
        with self._lock:
            scores = list(self._scores.values())
        selected = [
            s for s in scores
            if all(not allowed or getattr(s, attr) in allowed for attr, allowed in wanted.items())
            and (since_at is None or s.timestamp >= since_at)
            and (until_at is None or s.timestamp < until_at)
            and (value_min is None or (isinstance(s.value, float) and s.value >= value_min))
            and (value_max is None or (isinstance(s.value, float) and s.value <= value_max))
            and (not values or _value_text(s.value) in {_normal(v, data_types[0]) for v in values})
        ]
        selected.sort(key=lambda s: (s.timestamp, s.id), reverse=True)
        offset = decode_cursor(first(query, "cursor"))
        page = selected[offset : offset + limit]
        meta: dict[str, Any] = {"limit": limit}
        if offset + limit < len(selected):
            meta["cursor"] = encode_cursor(offset + limit)
        return {"data": [self.view(s, groups) for s in page], "meta": meta}

    def rows(self) -> list[dict[str, Any]]:
        """Every score with every field group plus the ids it references, oldest first."""
        with self._lock:
            scores = sorted(self._scores.values(), key=lambda s: (s.timestamp, s.id))
        rows = []
        for score in scores:
            row = self.view(score, _FIELD_GROUPS)
            row.update(traceId=score.trace_id, observationId=score.observation_id,
                       sessionId=score.session_id, datasetRunId=score.dataset_run_id)
            rows.append(row)
        return rows

    def for_trace(self, trace_id: str) -> list[dict[str, Any]]:
        """The scores of one trace in the v1 shape used inside GET /api/public/traces/{id}."""
        with self._lock:
            scores = [s for s in self._scores.values() if s.trace_id == trace_id]
        scores.sort(key=lambda s: s.timestamp, reverse=True)
        rows = []
        for s in scores:
            if isinstance(s.value, bool):
                value, text = (1.0 if s.value else 0.0), ("True" if s.value else "False")
            elif isinstance(s.value, float):
                value, text = s.value, None
            else:
                value, text = None, s.value
            rows.append({
                "id": s.id, "traceId": s.trace_id, "name": s.name, "source": s.source,
                "observationId": s.observation_id, "timestamp": iso(s.timestamp),
                "createdAt": iso(s.created_at), "updatedAt": iso(s.updated_at),
                "authorUserId": None, "comment": s.comment, "metadata": copy.deepcopy(s.metadata),
                "configId": s.config_id, "queueId": s.queue_id, "environment": s.environment,
                "dataType": s.data_type, "value": value, "stringValue": text,
            })
        return rows

    def view(self, score: _Score, groups: tuple[str, ...] | list[str]) -> dict[str, Any]:
        """One score in the v3 shape with the field groups asked."""
        row: dict[str, Any] = {
            "id": score.id, "projectId": self._project_id, "name": score.name,
            "value": score.value, "dataType": score.data_type, "source": score.source,
            "timestamp": iso(score.timestamp), "environment": score.environment,
            "createdAt": iso(score.created_at), "updatedAt": iso(score.updated_at),
        }
        if "details" in groups:
            row.update(comment=score.comment, configId=score.config_id,
                       metadata=copy.deepcopy(score.metadata))
        if "subject" in groups:
            row["subject"] = _subject(score)
        if "annotation" in groups:
            row.update(authorUserId=None, queueId=score.queue_id)
        return row


def _describe(exc: ApiError) -> str:
    body = exc.response.body
    if not isinstance(body, dict):
        return str(body)
    details = body.get("error")
    if isinstance(details, list):
        paths = "; ".join(f"{'.'.join(map(str, i.get('path', [])))}: {i.get('message')}" for i in details)
        return f"{body.get('message')} ({paths})"
    return str(body.get("message"))


def _subject(score: _Score) -> dict[str, Any] | None:
    if score.observation_id:
        return {"kind": "observation", "id": score.observation_id, "traceId": score.trace_id}
    if score.trace_id:
        return {"kind": "trace", "id": score.trace_id}
    if score.session_id:
        return {"kind": "session", "id": score.session_id}
    if score.dataset_run_id:
        return {"kind": "experiment", "id": score.dataset_run_id}
    return None


def _float(query: Query, key: str) -> float | None:
    raw = first(query, key)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise invalid_data([type_issue([key], "number", raw)]) from None


def _value_text(value: float | bool | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return value


def _normal(text: str, data_type: str) -> str:
    if data_type == "NUMERIC":
        try:
            return repr(float(text))
        except ValueError:
            raise invalid_request(f"Invalid NUMERIC value: {text}") from None
    if data_type == "BOOLEAN":
        if text.lower() not in ("true", "false"):
            raise invalid_request(f"Invalid BOOLEAN value: {text}")
        return text.lower()
    return text
