"""Fault injection for the Langfuse stand-in: latency, error statuses, hangs, bad bodies, drops."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Literal

from ._langfuse_common import ApiResponse

FaultKind = Literal["latency", "status", "hang", "malformed_json", "drop_connection"]
PROMPTS_PREFIX = "/api/public/v2/prompts"


@dataclass(frozen=True)
class Fault:
    """One way for the stand-in to misbehave; build it with the class methods.

    >>> Fault.status(429).retry_after
    1
    >>> Fault.latency(0.2).seconds
    0.2
    """

    kind: FaultKind
    seconds: float = 0.0
    status_code: int = 0
    retry_after: int | None = None

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        """Answer normally, ``seconds`` late."""
        if seconds < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {seconds}")
        return cls("latency", seconds=seconds)

    @classmethod
    def status(cls, code: int = 500, *, retry_after: int | None = None) -> Fault:
        """Answer with this HTTP status and a Langfuse-style error body.

        A 429 carries ``Retry-After`` (1 second unless given).
        """
        if not 400 <= code <= 599:
            raise ValueError(f"a fault status must be 4xx or 5xx, got {code}")
        if code == 429 and retry_after is None:
            retry_after = 1
        return cls("status", status_code=code, retry_after=retry_after)

    @classmethod
    def rate_limited(cls, retry_after: int = 1) -> Fault:
        """429 Too Many Requests with ``Retry-After``."""
        return cls.status(429, retry_after=retry_after)

    @classmethod
    def hang(cls) -> Fault:
        """Hold the request without answering until the fault is cleared or the server stops.

        Cleared: the request then gets its normal answer. Server stopped: the connection is closed.
        """
        return cls("hang")

    @classmethod
    def malformed_json(cls) -> Fault:
        """Answer 200 with a body that is not valid JSON."""
        return cls("malformed_json")

    @classmethod
    def drop_connection(cls) -> Fault:
        """Close the connection without sending any response."""
        return cls("drop_connection")


class FaultHandle:
    """An injected fault: ``remove()`` it, read ``hits``, or use it as a context manager.

    >>> from langfuse_versioned_prompts.testing import LangfuseTestServer
    >>> with LangfuseTestServer() as server, server.inject(Fault.status(500), times=2) as fault:
    ...     fault.active
    True
    """

    def __init__(
        self, board: FaultBoard, fault: Fault, *, times: int | None, path_prefix: str,
        method: str | None,
    ) -> None:
        self.fault = fault
        self.path_prefix = path_prefix
        self.method = method.upper() if method else None
        self._board = board
        self._remaining = times
        self._hits = 0

    @property
    def hits(self) -> int:
        """How many requests this fault has hit so far."""
        with self._board.lock:
            return self._hits

    @property
    def active(self) -> bool:
        """Whether the fault still applies to new requests."""
        with self._board.lock:
            return self in self._board.handles

    def remove(self) -> None:
        """Stop applying the fault and release requests it holds (hang)."""
        self._board.remove(self)

    def __enter__(self) -> FaultHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def _matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path_prefix) and self.method in (None, method)

    def _consume(self) -> None:
        self._hits += 1
        if self._remaining is not None:
            self._remaining -= 1
            if self._remaining <= 0:
                self._board.handles.remove(self)


@dataclass(frozen=True)
class Planned:
    """What to do with one request: wait ``delay`` seconds, then ``fault`` (or answer normally)."""

    delay: float
    fault: Fault | None
    release: threading.Event | None


class FaultBoard:
    """The faults of one server. Thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.handles: list[FaultHandle] = []
        self._holding: dict[threading.Event, FaultHandle] = {}
        self._closed = False

    def add(self, fault: Fault, *, times: int | None, path_prefix: str, method: str | None) -> FaultHandle:
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 or None (until cleared), got {times}")
        handle = FaultHandle(self, fault, times=times, path_prefix=path_prefix, method=method)
        with self.lock:
            self.handles.append(handle)
        return handle

    def plan(self, method: str, path: str) -> Planned:
        """Consume the faults that apply to this request: every latency, then the first other one.

        A hang gets its own release event, set when its fault is removed or cleared, or by
        ``close()``; while closed (the server stopping) it is set at once.
        """
        delay = 0.0
        chosen: FaultHandle | None = None
        with self.lock:
            for handle in list(self.handles):
                if not handle._matches(method, path):
                    continue
                if handle.fault.kind == "latency":
                    delay += handle.fault.seconds
                    handle._consume()
                elif chosen is None:
                    chosen = handle
                    handle._consume()
            release = None
            if chosen is not None and chosen.fault.kind == "hang":
                release = threading.Event()
                if self._closed:
                    release.set()
                else:
                    self._holding[release] = chosen
        return Planned(delay, chosen.fault if chosen else None, release)

    def done_holding(self, release: threading.Event) -> None:
        with self.lock:
            self._holding.pop(release, None)

    def remove(self, handle: FaultHandle) -> None:
        """Stop applying ``handle`` and release the requests it holds."""
        with self.lock:
            if handle in self.handles:
                self.handles.remove(handle)
            held = [event for event, owner in self._holding.items() if owner is handle]
        for event in held:
            event.set()

    def clear(self) -> None:
        """Remove every fault and release every held request."""
        with self.lock:
            self.handles = []
            held = list(self._holding)
        for event in held:
            event.set()

    def close(self) -> None:
        """Release every held request and hold no new one until ``open()``; the faults stay.

        Used when the server stops: a request that arrives on a kept-alive connection while it
        stops must not be held for ever.
        """
        with self.lock:
            self._closed = True
            held = list(self._holding)
        for event in held:
            event.set()

    def open(self) -> None:
        """Hold requests again (the server started)."""
        with self.lock:
            self._closed = False


def fault_response(fault: Fault) -> ApiResponse:
    """The Langfuse-style answer of a ``status`` fault."""
    code = fault.status_code
    headers: tuple[tuple[str, str], ...] = ()
    if fault.retry_after is not None:
        headers = (("Retry-After", str(fault.retry_after)),)
    if code == 429:
        return ApiResponse(429, {"message": "Rate limit exceeded", "error": "TooManyRequestsError"}, headers)
    phrase = HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else "Error"
    return ApiResponse(code, {"message": phrase, "error": phrase.replace(" ", "") + "Error"}, headers)
