"""Receive Langfuse prompt webhooks and invalidate L1 and L2 across the fleet.

Langfuse (server) sends a signed POST when a prompt version is created, updated (labels moved) or
deleted. ``webhook_app`` is a plain ASGI application (no framework needed; mount it in FastAPI or
Starlette, or run it with ``lvp webhook serve``) that:

1. verifies ``x-langfuse-signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``
   (constant-time compare; older than ``tolerance`` seconds, or seen before, is a replay);
2. deletes the prompt's L2 keys (``RedisCache.invalidate_prompt``);
3. publishes the prompt name on the Redis channel, so every ``InvalidationSubscriber`` drops it
   from its process's L1 (``PromptResolver.from_env()`` with REDIS_URL starts one; otherwise call
   ``resolver.subscribe_invalidations()``).

Answers: 200 JSON on success (and for events that are not about prompts), 401 unsigned, forged or
replayed, 400 malformed body, 404 other paths, 405 other methods, 413 body too large, 503 when
Redis fails (Langfuse retries the delivery).

>>> app = webhook_app("lf-whsec_...", "redis://127.0.0.1:6379/0")          # doctest: +SKIP
>>> starlette_app.mount("/hooks/langfuse", app)                             # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

from ._errors import ConfigurationError, LVPError
from ._invalidation import DEFAULT_CHANNEL, InvalidationSubscriber, publish_invalidation
from .sources.redis import RedisCache

__all__ = [
    "DEFAULT_CHANNEL",
    "SIGNATURE_HEADER",
    "InvalidationSubscriber",
    "WebhookApp",
    "WebhookServer",
    "WebhookSignatureError",
    "publish_invalidation",
    "sign",
    "verify_signature",
    "webhook_app",
]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-langfuse-signature"
TOLERANCE_SECONDS = 300
"""Signatures older (or further in the future) than this are rejected as replays."""
MAX_BODY_BYTES = 1 << 20

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class WebhookSignatureError(LVPError):
    """A webhook's signature is missing, malformed, wrong or too old."""


def _digest(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                    hashlib.sha256).hexdigest()


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def sign(secret: str, body: bytes | str, *, timestamp: int | None = None) -> str:
    """The ``x-langfuse-signature`` value Langfuse would send for ``body`` (for tests and tools).

    >>> sign("lf-whsec_x", b"{}", timestamp=1700000000)[:14]
    't=1700000000,v'
    """
    t = str(int(time.time()) if timestamp is None else int(timestamp))
    return f"t={t},v1={_digest(secret, t, _as_bytes(body))}"


def verify_signature(
    secret: str, header: str | None, body: bytes | str, *, now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> int:
    """Check a Langfuse webhook signature; returns its timestamp, raises ``WebhookSignatureError``.

    ``body`` must be the raw request body, byte for byte. Several ``v1=`` entries are accepted
    (any may match). ``now`` (unix seconds) defaults to the current time.

    >>> header = sign("s3cret", b'{"a":1}', timestamp=1000)
    >>> verify_signature("s3cret", header, b'{"a":1}', now=1010)
    1000
    >>> verify_signature("s3cret", header, b'{"a":2}', now=1010)
    Traceback (most recent call last):
    ...
    langfuse_versioned_prompts.webhook.WebhookSignatureError: signature does not match the body
    """
    if not secret:
        raise ConfigurationError("the webhook secret must be a non-empty string")
    if not header:
        raise WebhookSignatureError(f"missing {SIGNATURE_HEADER} header")
    timestamp: str | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = value.strip()
        elif key == "v1":
            signatures.append(value.strip().lower())
    if timestamp is None or not timestamp.isdigit():
        raise WebhookSignatureError(f"{SIGNATURE_HEADER} has no valid t=<unix seconds> part")
    if not signatures:
        raise WebhookSignatureError(f"{SIGNATURE_HEADER} has no v1=<signature> part")
    expected = _digest(secret, timestamp, _as_bytes(body))
    matched = False
    for candidate in signatures:  # compare all: no early exit that would leak which one matched
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookSignatureError("signature does not match the body")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > tolerance:
        raise WebhookSignatureError(
            f"signature timestamp is {abs(age):.0f}s {'old' if age > 0 else 'in the future'} "
            f"(tolerance {tolerance:.0f}s): replayed or clock skew"
        )
    return int(timestamp)


class WebhookApp:
    """ASGI app receiving Langfuse prompt webhooks; see the module docstring. Build it with
    ``webhook_app``. Thread-safe; Redis calls run in worker threads, never on the event loop."""

    def __init__(
        self, secret: str, redis: str | RedisCache, *, channel: str = DEFAULT_CHANNEL,
        path: str | None = "/", tolerance: float = TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(secret, str) or not secret:
            raise ConfigurationError("webhook_app needs the webhook secret (a non-empty string)")
        if not channel:
            raise ConfigurationError("webhook_app channel must be a non-empty string")
        self.secret = secret
        self.cache = RedisCache.from_url(redis) if isinstance(redis, str) else redis
        self.channel = channel
        self.path = _normalize(path) if path is not None else None
        self.tolerance = tolerance
        self.clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        status, payload, headers = await self._respond(scope, receive)
        body = json.dumps(payload).encode("utf-8")
        await send({
            "type": "http.response.start", "status": status,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()), *headers],
        })
        await send({"type": "http.response.body", "body": body})

    async def _respond(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any], list[Any]]:
        path = scope.get("path", "/")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if self.path is not None and _normalize(path) != self.path:
            return 404, {"error": "not found"}, []
        if scope.get("method") != "POST":
            return 405, {"error": "method not allowed: use POST"}, [(b"allow", b"POST")]
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 400, {"error": "client disconnected"}, []
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                return 413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"}, []
            if not message.get("more_body", False):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        return await asyncio.to_thread(self.handle, headers.get(SIGNATURE_HEADER), bytes(body))

    def handle(self, signature: str | None, body: bytes) -> tuple[int, dict[str, Any], list[Any]]:
        """Verify and act on one delivery: ``(status, JSON payload, extra headers)``. Blocking."""
        try:
            verify_signature(self.secret, signature, body, now=self.clock(), tolerance=self.tolerance)
            self._check_fresh(signature or "")
        except WebhookSignatureError as exc:
            logger.warning("Rejected a Langfuse webhook: %s", exc)
            return 401, {"error": f"invalid signature: {exc}"}, []
        try:
            event = json.loads(body)
            if not isinstance(event, dict):
                raise ValueError("expected a JSON object")
            kind = event.get("type", "prompt-version")
            if kind != "prompt-version":
                return 200, {"ok": True, "ignored": f"event type {kind!r}"}, []
            prompt = event.get("prompt")
            name = prompt.get("name") if isinstance(prompt, dict) else None
            if not isinstance(name, str) or not name:
                raise ValueError("no prompt.name")
        except ValueError as exc:
            return 400, {"error": f"not a Langfuse prompt webhook: {exc}"}, []
        try:
            deleted, receivers = self.invalidate(name)
        except Exception as exc:  # Redis down or refusing: ask Langfuse to retry
            logger.warning("Webhook for prompt %r: Redis failed: %s", name, exc)
            return 503, {"error": f"Redis unavailable: {type(exc).__name__}"}, [(b"retry-after", b"5")]
        logger.info("Webhook %s for prompt %r: %d L2 keys dropped, %d processes told",
                    event.get("action"), name, deleted, receivers)
        return 200, {"ok": True, "prompt": name, "action": event.get("action"),
                     "deleted_keys": deleted, "receivers": receivers}, []

    def invalidate(self, name: str) -> tuple[int, int]:
        """Drop ``name``'s L2 keys, then publish it: ``(keys dropped, processes told)``."""
        errors = self.cache.errors
        deleted = self.cache.invalidate_prompt(name)
        if self.cache.errors != errors:
            raise ConnectionError(f"could not delete the Redis keys of prompt {name!r}")
        return deleted, publish_invalidation(self.cache.client, name, self.channel)

    def _check_fresh(self, signature: str) -> None:
        """Reject a delivery seen before (within the tolerance window) as a replay."""
        now = self.clock()
        with self._lock:
            self._seen = {k: t for k, t in self._seen.items() if t > now}
            if signature in self._seen:
                raise WebhookSignatureError("this exact delivery was already received (replay)")
            self._seen[signature] = now + 2 * self.tolerance


def webhook_app(
    secret: str, redis: str | RedisCache, channel: str = DEFAULT_CHANNEL, *, path: str | None = "/",
    tolerance: float = TOLERANCE_SECONDS,
) -> WebhookApp:
    """The ASGI app receiving Langfuse prompt webhooks at ``path`` (``None``: any path).

    ``redis`` is a URL or the fleet's ``RedisCache`` (same prefix as the resolvers').
    """
    return WebhookApp(secret, redis, channel=channel, path=path, tolerance=tolerance)


def _normalize(path: str) -> str:
    return "/" + path.strip("/")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class WebhookServer:
    """A minimal HTTP/1.1 server (stdlib asyncio) for one ASGI app, e.g. ``lvp webhook serve``.

    One request per connection, ``Content-Length`` bodies only; enough for webhooks, not a general
    web server (put a real one in front for TLS).

    >>> server = WebhookServer(app, host="127.0.0.1", port=0).start()          # doctest: +SKIP
    >>> server.url                                                              # doctest: +SKIP
    'http://127.0.0.1:54321'
    >>> server.stop()                                                           # doctest: +SKIP
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (the real port once started)."""
        return f"http://{self.host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop()`` or KeyboardInterrupt."""
        asyncio.run(self._main())

    def start(self, timeout: float = 5.0) -> WebhookServer:
        """Serve in a daemon thread; returns once listening (raises if it cannot listen)."""
        self._thread = threading.Thread(target=self._run, name="lvp-webhook-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise ConfigurationError(f"webhook server could not listen on {self.url}: {self._error}")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (from any thread)."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server started by ``start()`` ends (or ``timeout``); True if it ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopping.wait()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await asyncio.wait_for(self._exchange(reader, writer), 30)
            if status:
                await _write_response(writer, status, [], json.dumps(body).encode())
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            logger.exception("Webhook server failed on a request")
        finally:
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                        ) -> tuple[int, dict[str, str]]:
        """Read one request, run the app; ``(status, body)`` of an error to send, else ``(0, {})``."""
        parts = (await reader.readline()).decode("latin-1").split()
        if len(parts) != 3:
            return 400, {"error": "bad request line"}
        method, target, _ = parts
        headers: list[tuple[bytes, bytes]] = []
        while len(headers) < 100:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
        fields = dict(headers)
        if b"chunked" in fields.get(b"transfer-encoding", b""):
            return 411, {"error": "send a Content-Length body"}
        try:
            length = int(fields.get(b"content-length", b"0"))
        except ValueError:
            return 400, {"error": "bad Content-Length"}
        if not 0 <= length <= MAX_BODY_BYTES:
            return 413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"}
        body = await reader.readexactly(length)
        path, _, query = target.partition("?")
        peer = writer.get_extra_info("peername")
        scope: Scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": method.upper(), "scheme": "http",
            "path": unquote(path), "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"), "root_path": "", "headers": headers,
            "client": tuple(peer[:2]) if peer else None, "server": (self.host, self.port),
        }
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        response: dict[str, Any] = {}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                response.setdefault("body", bytearray()).extend(message.get("body", b""))
                if not message.get("more_body", False):
                    await _write_response(writer, response.get("status", 500),
                                          response.get("headers", []), bytes(response["body"]))

        await self.app(scope, receive, send)
        return 0, {}


async def _write_response(writer: asyncio.StreamWriter, status: int, headers: list[Any],
                          body: bytes) -> None:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    names = set()
    for name, value in headers:
        name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if name.lower() in ("content-length", "connection"):
            continue
        names.add(name.lower())
        lines.append(f"{name}: {value}")
    if "content-type" not in names:
        lines.append("content-type: application/json")
    lines += [f"content-length: {len(body)}", "connection: close", "", ""]
    writer.write("\r\n".join(lines).encode("latin-1") + body)
    await writer.drain()


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 411: "Length Required", 413: "Payload Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}
