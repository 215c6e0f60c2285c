"""``LangfuseTestServer``: an in-process HTTP server that answers the Langfuse public API.

The real ``langfuse`` SDK talks to it over HTTP on 127.0.0.1. Data lives in memory and survives
``stop()``/``start()`` (same port), so a test can take "Langfuse" down and bring it back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from .._errors import ConfigurationError, PromptNotFoundError
from ._langfuse_api import LangfuseApi
from ._langfuse_common import ApiError, ApiResponse, Clock, IdFactory, new_uuid, utc_now
from ._langfuse_faults import PROMPTS_PREFIX, Fault, FaultBoard, FaultHandle, fault_response
from ._langfuse_observations import GROUPS
from ._langfuse_otel import SpanRecord
from ._langfuse_traces import legacy_observation

logger = logging.getLogger(__name__)
_T = TypeVar("_T")
_MALFORMED_BODY = b'{"id": "truncated'


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stand-in received; ``status`` is ``None`` while unanswered or if dropped.

    >>> RecordedRequest("GET", "/api/public/v2/prompts/qa", {"label": ["staging"]}, 200).status
    200
    """

    method: str
    path: str
    query: Mapping[str, Sequence[str]]
    status: int | None


class _HTTPServer(ThreadingHTTPServer):
    """Tracks open connections so that ``stop()`` can close kept-alive ones too."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: LangfuseTestServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints tracebacks to stderr; a client that went away is routine here.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lvp-langfuse-stand-in"
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid 40 ms stalls
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.owner._serve(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)


class LangfuseTestServer:
    """A stand-in for Langfuse's public API on 127.0.0.1, for tests.

    Prompts (v2), scores (POST and v3 reads), OTLP trace intake, traces and v2 observations,
    answered as a real Langfuse 4.x answers, errors included. Thread-safe.

    >>> from langfuse_versioned_prompts.testing import Fault, LangfuseTestServer
    >>> with LangfuseTestServer() as server:
    ...     _ = server.create_prompt("greeting", "Hello {{name}}", labels=["production"])
    ...     with server.inject(Fault.status(500), times=1):
    ...         pass  # the next prompt request would get a 500
    ...     server.url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(
        self, *, public_key: str | None = None, secret_key: str | None = None,
        port: int = 0, project_id: str = "lvp-test-project", clock: Clock = utc_now,
        new_id: IdFactory = new_uuid,
    ) -> None:
        # A distinct key per instance: the langfuse SDK keeps one resource manager per public key.
        self.public_key = public_key or f"pk-lf-test-{secrets.token_hex(8)}"
        self.secret_key = secret_key or f"sk-lf-test-{secrets.token_hex(8)}"
        self._api = LangfuseApi(
            public_key=self.public_key, secret_key=self.secret_key, project_id=project_id,
            project_name="lvp test project", clock=clock, new_id=new_id,
        )
        self._faults = FaultBoard()
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()
        self._ledger_lock = threading.Lock()
        self._ledger: list[RecordedRequest] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LangfuseTestServer:
        """Listen on 127.0.0.1 (the port of the previous run after a ``stop()``)."""
        with self._lifecycle:
            if self._httpd is not None:
                return self
            self._stopping.clear()
            self._faults.open()
            httpd = _HTTPServer(("127.0.0.1", self._port), self)
            self._port = httpd.server_address[1]
            self._httpd = httpd
            self._thread = threading.Thread(
                target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                name=f"lvp-langfuse-stand-in:{self._port}", daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, drop held (hung) requests and close open connections.

        Data and injected faults are kept: ``start()`` serves them again on the same port.
        """
        with self._lifecycle:
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
            if httpd is None:
                return
            self._stopping.set()
            self._faults.close()
            httpd.shutdown()
            httpd.server_close()
            httpd.close_connections()
            if thread is not None:
                thread.join(timeout=5)

    def __enter__(self) -> LangfuseTestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port (known once started)."""
        if not self._port:
            raise ConfigurationError("LangfuseTestServer is not started: call start() or use `with`")
        return self._port

    @property
    def url(self) -> str:
        """The base URL to give the SDK as ``base_url``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._httpd is not None

    # -- request accounting ------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received since the last ``reset_counts()``, oldest first."""
        with self._ledger_lock:
            return list(self._ledger)

    def count(
        self, method: str | None = None, path_prefix: str = "", *, status: int | None = None
    ) -> int:
        """How many requests matched: method (any if ``None``), path prefix, status.

        Paths are as sent, percent-encoded: ``folder/x`` is ``/api/public/v2/prompts/folder%2Fx``.
        """
        return sum(
            1 for r in self.requests
            if (method is None or r.method == method.upper()) and r.path.startswith(path_prefix)
            and (status is None or r.status == status)
        )

    def reset_counts(self) -> None:
        """Forget the recorded requests (data and faults stay)."""
        with self._ledger_lock:
            self._ledger.clear()

    # -- faults ------------------------------------------------------------------------------

    def inject(
        self, fault: Fault, *, times: int | None = None, path_prefix: str = PROMPTS_PREFIX,
        method: str | None = None,
    ) -> FaultHandle:
        """Apply ``fault`` to the next ``times`` matching requests (``None``: until removed)."""
        return self._faults.add(fault, times=times, path_prefix=path_prefix, method=method)

    def clear_faults(self) -> None:
        """Remove every fault and release requests held by a hang."""
        self._faults.clear()

    # -- arranging data without HTTP ---------------------------------------------------------

    def create_prompt(
        self, name: str, prompt: str | list[dict[str, Any]], *, type: str | None = None,
        labels: Sequence[str] = (), config: Any = None, tags: Sequence[str] | None = None,
        commit_message: str | None = None,
    ) -> dict[str, Any]:
        """Create a prompt version as POST /api/public/v2/prompts would; returns its API row."""
        body = {
            "name": name, "prompt": prompt, "type": type or ("text" if isinstance(prompt, str) else "chat"),
            "labels": list(labels), "config": config,
            "tags": list(tags) if tags is not None else None, "commitMessage": commit_message,
        }
        return self._call(lambda: self._api.prompts.create(body))

    def move_labels(self, name: str, version: int, labels: Sequence[str]) -> dict[str, Any]:
        """Move ``labels`` to ``version`` as PATCH .../versions/{version} would; returns its row."""
        body = {"newLabels": list(labels)}
        return self._call(lambda: self._api.prompts.update_labels(name, str(version), body))

    def get_prompt(
        self, name: str, *, version: int | None = None, label: str | None = None,
        resolve: bool = True,
    ) -> dict[str, Any]:
        """The prompt as GET /api/public/v2/prompts/{name} would answer it."""
        query: dict[str, list[str]] = {"resolve": ["true" if resolve else "false"]}
        if version is not None:
            query["version"] = [str(version)]
        if label is not None:
            query["label"] = [label]
        return self._call(lambda: self._api.prompts.get(name, query))

    def delete_prompt(self, name: str, *, version: int | None = None, label: str | None = None) -> None:
        """Delete versions as DELETE /api/public/v2/prompts/{name} would."""
        query = {k: [str(v)] for k, v in (("version", version), ("label", label)) if v is not None}
        self._call(lambda: self._api.prompts.delete(name, query))

    @staticmethod
    def _call(action: Callable[[], _T]) -> _T:
        try:
            return action()
        except ApiError as exc:
            raise _helper_error(exc) from exc

    # -- captured telemetry ------------------------------------------------------------------

    @property
    def spans(self) -> list[SpanRecord]:
        """Every OTLP span received, in arrival order."""
        return self._api.traces.spans()

    @property
    def traces(self) -> list[dict[str, Any]]:
        """Every trace as GET /api/public/traces/{id} answers it (observations and scores included)."""
        return [self._api.full_trace(trace, observations) for trace, observations in self._api.traces.traces()]

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """One trace as GET /api/public/traces/{id} answers it, or ``None``."""
        try:
            return self._api.trace_view(trace_id, {})
        except ApiError:
            return None

    @property
    def observations(self) -> list[dict[str, Any]]:
        """Every observation with every v2 field group (metadata values decoded), by start time."""
        found = sorted(self._api.traces.observations(), key=lambda o: o.start)
        return [{key: o.row[key] for keys in GROUPS.values() for key in keys} for o in found]

    def legacy_observations(self) -> list[dict[str, Any]]:
        """Every observation in the v1 shape of GET /api/public/traces/{id}, by start time."""
        return [legacy_observation(o) for o in sorted(self._api.traces.observations(), key=lambda o: o.start)]

    @property
    def scores(self) -> list[dict[str, Any]]:
        """Every score (v3 shape, all field groups, plus traceId/observationId/sessionId)."""
        return self._api.scores.rows()

    # -- HTTP --------------------------------------------------------------------------------

    def _record(self, entry: RecordedRequest) -> int:
        with self._ledger_lock:
            self._ledger.append(entry)
            return len(self._ledger) - 1

    def _settle(self, index: int, entry: RecordedRequest, status: int | None) -> None:
        with self._ledger_lock:
            if index < len(self._ledger) and self._ledger[index] is entry:
                self._ledger[index] = replace(entry, status=status)

    def _serve(self, handler: _Handler) -> None:
        method = handler.command.upper()
        split = urlsplit(handler.path)
        query = parse_qs(split.query, keep_blank_values=True)
        body = _read_body(handler)
        entry = RecordedRequest(method, split.path, query, None)
        index = self._record(entry)
        plan = self._faults.plan(method, split.path)
        if plan.delay and self._stopping.wait(plan.delay):
            return self._drop(handler)
        fault = plan.fault
        if fault is not None and fault.kind == "hang" and plan.release is not None:
            plan.release.wait()
            self._faults.done_holding(plan.release)
            if self._stopping.is_set():
                return self._drop(handler)
            fault = None
        if fault is not None and fault.kind == "drop_connection":
            return self._drop(handler)
        if fault is not None and fault.kind == "malformed_json":
            self._settle(index, entry, 200)
            return self._write(handler, 200, _MALFORMED_BODY, ())
        if fault is not None:
            response = fault_response(fault)
        else:
            headers = {key.lower(): value for key, value in handler.headers.items()}
            try:
                response = self._api.handle(method, split.path, query, headers, body)
            except Exception:  # a bug in the stand-in must answer 500, not kill the connection
                logger.exception("stand-in failed on %s %s", method, handler.path)
                response = ApiResponse(500, {"message": "Internal Server Error", "error": "stand-in bug"})
        self._settle(index, entry, response.status)
        raw = b"" if response.body is None else json.dumps(response.body).encode()
        self._write(handler, response.status, raw, response.headers)

    @staticmethod
    def _write(handler: _Handler, status: int, raw: bytes, headers: Sequence[tuple[str, str]]) -> None:
        handler.send_response(status)
        if status != 204:
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(raw)))
        for key, value in headers:
            handler.send_header(key, value)
        handler.end_headers()
        if status != 204:
            handler.wfile.write(raw)

    @staticmethod
    def _drop(handler: _Handler) -> None:
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)


def _read_body(handler: _Handler) -> bytes:
    """The request body, by Content-Length or chunked transfer encoding."""
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def _helper_error(exc: ApiError) -> Exception:
    """The library error for a helper call the API would refuse (404 -> not found, else invalid)."""
    body = exc.response.body
    message = str(body.get("message")) if isinstance(body, dict) else str(body)
    if isinstance(body, dict) and isinstance(body.get("error"), list):
        message += ": " + "; ".join(
            f"{'.'.join(map(str, i.get('path', [])))} {i.get('message')}" for i in body["error"]
        )
    if exc.response.status == 404:
        return PromptNotFoundError(message)
    return ConfigurationError(message)
