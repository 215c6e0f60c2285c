"""Routing and authentication of the Langfuse stand-in's public API (no sockets here)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from ._langfuse_common import (
    ApiError,
    ApiResponse,
    Clock,
    IdFactory,
    Query,
    error_response,
    first,
    invalid_request,
    not_found,
    split_csv,
)
from ._langfuse_observations import query_observations
from ._langfuse_otel import decode_export
from ._langfuse_prompts import PromptStore
from ._langfuse_scores import ScoreStore
from ._langfuse_traces import Observation, TraceStore, legacy_observation

_HOST_HINT = ". Confirm that you've configured the correct host."
_PROMPTS = "/api/public/v2/prompts"
_VERSION_ROUTE = re.compile(r"^(?P<name>.+)/versions/(?P<version>[^/]+)$")
_TRACE_FIELDS = ("core", "io", "scores", "observations", "metrics")


def _unauthorized(message: str) -> ApiResponse:
    return error_response(401, message, "UnauthorizedError")


def _method_not_allowed() -> ApiResponse:
    return error_response(405, "Method not allowed", "MethodNotAllowedError")


def _json_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise invalid_request("Invalid JSON in request body") from None


class LangfuseApi:
    """The stand-in's public API: stores for prompts, scores and traces behind Basic auth."""

    def __init__(
        self, *, public_key: str, secret_key: str, project_id: str, project_name: str,
        clock: Clock, new_id: IdFactory,
    ) -> None:
        self.public_key = public_key
        self.secret_key = secret_key
        self.project_id = project_id
        self.project_name = project_name
        self.prompts = PromptStore(project_id=project_id, clock=clock, new_id=new_id)
        self.scores = ScoreStore(project_id=project_id, clock=clock, new_id=new_id)
        self.traces = TraceStore(project_id=project_id, clock=clock, prompt_id=self.prompts.prompt_id)

    def handle(
        self, method: str, path: str, query: Query, headers: Mapping[str, str], body: bytes
    ) -> ApiResponse:
        """Answer one request. ``path`` is the raw (still percent-encoded) path."""
        if path in ("/api/public/health", "/api/public/ready"):
            return ApiResponse(200, {"status": "OK", "version": "lvp-stand-in"})
        if not path.startswith("/api/public/"):
            return error_response(404, "Not found", "NotFoundError")
        refused = self._authenticate(headers.get("authorization"))
        if refused is not None:
            return refused
        try:
            return self._route(method, path, query, headers, body)
        except ApiError as exc:
            return exc.response

    def _authenticate(self, header: str | None) -> ApiResponse | None:
        if not header:
            return _unauthorized("No authorization header")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return _unauthorized("Invalid authorization header")
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return _unauthorized("Invalid authorization header" + _HOST_HINT)
        if not user or not password:
            return _unauthorized("Invalid authorization header" + _HOST_HINT)
        if (user, password) != (self.public_key, self.secret_key):
            return _unauthorized("Invalid credentials" + _HOST_HINT)
        return None

    def _route(
        self, method: str, path: str, query: Query, headers: Mapping[str, str], body: bytes
    ) -> ApiResponse:
        if path == _PROMPTS:
            if method == "GET":
                return ApiResponse(200, self.prompts.list_prompts(query))
            if method == "POST":
                return ApiResponse(201, self.prompts.create(_json_body(body)))
            return _method_not_allowed()
        if path.startswith(_PROMPTS + "/"):
            rest = path[len(_PROMPTS) + 1 :]
            route = _VERSION_ROUTE.match(rest)
            if route and method == "PATCH":
                name = unquote(route["name"])
                return ApiResponse(200, self.prompts.update_labels(name, route["version"], _json_body(body)))
            if method == "GET":
                return ApiResponse(200, self.prompts.get(unquote(rest), query))
            if method == "DELETE":
                self.prompts.delete(unquote(rest), query)
                return ApiResponse(204)
            return _method_not_allowed()
        if path == "/api/public/scores":
            return self._post_scores(method, body)
        if path == "/api/public/v3/scores":
            return ApiResponse(200, self.scores.query(query)) if method == "GET" else _method_not_allowed()
        if path == "/api/public/ingestion":
            return self._ingestion(method, body)
        if path == "/api/public/otel/v1/traces":
            if method != "POST":
                return _method_not_allowed()
            spans = decode_export(
                body, content_type=headers.get("content-type", ""),
                content_encoding=headers.get("content-encoding", ""),
            )
            self.traces.ingest(spans)
            return ApiResponse(200, {})
        if path == "/api/public/v2/observations":
            if method != "GET":
                return _method_not_allowed()
            return ApiResponse(200, query_observations(self.traces.observations(), query))
        if path.startswith("/api/public/traces/"):
            if method != "GET":
                return _method_not_allowed()
            return ApiResponse(200, self.trace_view(unquote(path.rsplit("/", 1)[1]), query))
        if path == "/api/public/projects":
            if method != "GET":
                return _method_not_allowed()
            return ApiResponse(200, {"data": [{
                "id": self.project_id, "name": self.project_name,
                "organization": {"id": "lvp-test-org", "name": "lvp test organization"},
                "metadata": {},
            }]})
        return error_response(404, "Not found", "NotFoundError")

    def _post_scores(self, method: str, body: bytes) -> ApiResponse:
        if method != "POST":
            return _method_not_allowed()
        payload = _json_body(body)
        if isinstance(payload, list):
            accepted, errors = self.scores.create_many(payload)
            if errors:
                return ApiResponse(207, {"accepted": accepted, "rejected": len(errors),
                                         "errors": [{"message": m} for m in errors]})
            return ApiResponse(202, {"message": "Accepted"})
        return ApiResponse(200, {"id": self.scores.create(payload)})

    def _ingestion(self, method: str, body: bytes) -> ApiResponse:
        """The legacy batch endpoint; only ``score-create`` events are stored."""
        if method != "POST":
            return _method_not_allowed()
        payload = _json_body(body)
        events = payload.get("batch") if isinstance(payload, dict) else None
        if not isinstance(events, list):
            raise invalid_request("Expected a body {\"batch\": [...]}")
        successes: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for event in events:
            event_id = event.get("id") if isinstance(event, dict) else None
            if not isinstance(event, dict) or event.get("type") != "score-create":
                errors.append({"id": event_id, "status": 400,
                               "message": "The stand-in stores only score-create events"})
                continue
            try:
                self.scores.create(event.get("body"))
            except ApiError as exc:
                errors.append({"id": event_id, "status": exc.response.status,
                               "message": str(exc.response.body)})
                continue
            successes.append({"id": event_id, "status": 201})
        return ApiResponse(207, {"successes": successes, "errors": errors})

    def trace_view(self, trace_id: str, query: Query) -> dict[str, Any]:
        """GET /api/public/traces/{traceId}: the merged trace with observations and scores."""
        found = self.traces.trace(trace_id)
        if found is None:
            raise not_found("Trace not found within authorized project")
        fields = split_csv(first(query, "fields")) or list(_TRACE_FIELDS)
        unknown = [f for f in fields if f not in _TRACE_FIELDS]
        if unknown:
            raise invalid_request(f"Invalid fields: {', '.join(unknown)}")
        return self.full_trace(*found, fields=fields)

    def full_trace(
        self, trace: dict[str, Any], observations: list[Observation],
        fields: Sequence[str] = _TRACE_FIELDS,
    ) -> dict[str, Any]:
        """One merged trace in the ``TraceWithFullDetails`` shape."""
        trace_id = trace["id"]
        view = dict(trace)
        if "io" not in fields:
            view.update(input=None, output=None, metadata=None)
        observations = sorted(observations, key=lambda o: o.start)
        view["observations"] = (
            [legacy_observation(o) for o in observations] if "observations" in fields else []
        )
        view["scores"] = self.scores.for_trace(trace_id) if "scores" in fields else []
        costs = [o.row["totalCost"] for o in observations if o.row["totalCost"] is not None]
        if "metrics" in fields:
            view["totalCost"] = sum(costs) if costs else 0.0
        else:
            view.update(totalCost=-1, latency=-1)
        view.update(htmlPath=f"/project/{self.project_id}/traces/{trace_id}", bookmarked=False,
                    externalId=None)
        return view
