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
import json
import logging
import math
import re
import socket
import socketserver
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from ._errors import ConfigurationError
from ._invalidation import DEFAULT_CHANNEL, InvalidationSubscriber, publish_invalidation
from ._signature import (
    SIGNATURE_HEADER,
    TOLERANCE_SECONDS,
    WebhookSignatureError,
    check_delivery,
    sign,
    verify_signature,
)
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

MAX_BODY_BYTES = 1 << 20
_LENGTH = re.compile(r"[0-9]{1,12}")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Response = tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]
"""Status, JSON payload and extra headers of an answer."""


class WebhookApp:
    """ASGI app receiving Langfuse prompt webhooks; see the module docstring. Build it with
    ``webhook_app``. Thread-safe; Redis calls run in worker threads, never on the event loop.

    A delivery is identified by its timestamp and the digest that matched (not by the header's
    spelling), and counts as received once its invalidation succeeded: a delivery answered 503 can
    be sent again, a received one is refused as a replay for twice the tolerance.
    """

    def __init__(
        self,
        secret: str,
        redis: str | RedisCache,
        *,
        channel: str = DEFAULT_CHANNEL,
        path: str | None = "/",
        tolerance: float = TOLERANCE_SECONDS,
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
        self._seen: dict[tuple[int, str], float] = {}
        """Deliveries received (or being processed: expiry ``inf``) -> when they may be forgotten."""
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        status, payload, headers = await self._respond(scope, receive)
        body = json.dumps(payload).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        path = scope.get("path", "/")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        refused = self.route(scope.get("method", ""), path)
        if refused is not None:
            return refused
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

    def route(self, method: str, path: str) -> Response | None:
        """The 404 or 405 answer for a request to ``path`` (mount-relative) with ``method``, else None."""
        if self.path is not None and _normalize(path) != self.path:
            return 404, {"error": "not found"}, []
        if method != "POST":
            return 405, {"error": "method not allowed: use POST"}, [(b"allow", b"POST")]
        return None

    def handle(self, signature: str | None, body: bytes) -> Response:
        """Verify and act on one delivery: ``(status, JSON payload, extra headers)``. Blocking."""
        try:
            delivery = check_delivery(self.secret, signature, body, now=self.clock(), tolerance=self.tolerance)
        except WebhookSignatureError as exc:
            return _unauthorized(exc)
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
            self._claim(delivery)
        except WebhookSignatureError as exc:
            return _unauthorized(exc)
        try:
            deleted, receivers = self.invalidate(name)
        except Exception as exc:  # Redis down or refusing: ask Langfuse to retry
            self._settle(delivery, received=False)
            logger.warning("Webhook for prompt %r: Redis failed: %s", name, exc)
            return 503, {"error": f"Redis unavailable: {type(exc).__name__}"}, [(b"retry-after", b"5")]
        self._settle(delivery, received=True)
        logger.info(
            "Webhook %s for prompt %r: %d L2 keys dropped, %d processes told",
            event.get("action"),
            name,
            deleted,
            receivers,
        )
        return (
            200,
            {
                "ok": True,
                "prompt": name,
                "action": event.get("action"),
                "deleted_keys": deleted,
                "receivers": receivers,
            },
            [],
        )

    def invalidate(self, name: str) -> tuple[int, int]:
        """Drop ``name``'s L2 keys, then publish it: ``(keys dropped, processes told)``."""
        errors = self.cache.errors
        deleted = self.cache.invalidate_prompt(name)
        if self.cache.errors != errors:
            raise ConnectionError(f"could not delete the Redis keys of prompt {name!r}")
        return deleted, publish_invalidation(self.cache.client, name, self.channel)

    def _claim(self, delivery: tuple[int, str]) -> None:
        """Mark a delivery as being processed; a replay if it was received or is being processed."""
        now = self.clock()
        with self._lock:
            self._seen = {k: until for k, until in self._seen.items() if until > now}
            if delivery in self._seen:
                raise WebhookSignatureError("this delivery was already received (replay)")
            self._seen[delivery] = math.inf

    def _settle(self, delivery: tuple[int, str], *, received: bool) -> None:
        """Record a processed delivery as received (until it is too old anyway), or forget it."""
        with self._lock:
            if received:
                self._seen[delivery] = self.clock() + 2 * self.tolerance
            else:  # its invalidation failed: Langfuse may send it again
                self._seen.pop(delivery, None)


def _unauthorized(exc: WebhookSignatureError) -> Response:
    logger.warning("Rejected a Langfuse webhook: %s", exc)
    return 401, {"error": f"invalid signature: {exc}"}, []


def webhook_app(
    secret: str,
    redis: str | RedisCache,
    channel: str = DEFAULT_CHANNEL,
    *,
    path: str | None = "/",
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
    """An HTTP server for one ``WebhookApp`` (stdlib ``ThreadingHTTPServer``), e.g. ``lvp webhook serve``.

    Each request runs ``WebhookApp.handle`` in a thread of its own; ``Content-Length`` bodies of at
    most ``MAX_BODY_BYTES``, one request per connection. Enough for webhooks, not a general web
    server (put a real one in front for TLS).

    >>> server = WebhookServer(app, host="127.0.0.1", port=0).start()          # doctest: +SKIP
    >>> server.url                                                              # doctest: +SKIP
    'http://127.0.0.1:54321'
    >>> server.stop()                                                           # doctest: +SKIP
    """

    def __init__(self, app: WebhookApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (the real port once started)."""
        return f"http://{f'[{self.host}]' if ':' in self.host else self.host}:{self.port}"

    def start(self) -> WebhookServer:
        """Listen, then serve in a daemon thread; ``ConfigurationError`` if it cannot listen."""
        try:
            httpd = _HTTPServer((self.host, self.port), self.app)
        except OSError as exc:
            raise ConfigurationError(f"webhook server could not listen on {self.url}: {exc}") from exc
        self._httpd, self.port = httpd, int(httpd.server_address[1])
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="lvp-webhook-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting requests and close the socket (requests in progress finish)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        if self._thread is not None and self._thread.is_alive():
            httpd.shutdown()  # returns once serve_forever has returned
            self._thread.join(timeout)
        httpd.server_close()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server started by ``start()`` ends (or ``timeout``); True if it ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()


class _HTTPServer(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], app: WebhookApp) -> None:
        self.app = app
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def server_bind(self) -> None:  # without HTTPServer's reverse DNS lookup of the host
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client that went away
        logger.debug("Webhook server: connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """One request: ``WebhookApp.route``, then the body read and ``WebhookApp.handle``."""

    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "lvp-webhook"
    timeout = 30  # seconds a client may take to send its request

    def _serve(self) -> None:
        try:
            target = unquote(urlsplit(self.path).path or "/")
            answer = self.server.app.route(self.command, target) or self._deliver()
        except Exception:
            logger.exception("Webhook server failed on a request")
            answer = 500, {"error": "internal error"}, []
        status, payload, headers = answer
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name.decode("latin-1"), value.decode("latin-1"))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    def _deliver(self) -> Response:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return 411, {"error": "send a Content-Length body"}, []
        length = self.headers.get("content-length", "0").strip()
        if not _LENGTH.fullmatch(length):
            return 400, {"error": "bad Content-Length"}, []
        if int(length) > MAX_BODY_BYTES:
            return 413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"}, []
        body = self.rfile.read(int(length))
        if len(body) < int(length):
            return 400, {"error": "client disconnected"}, []
        return self.server.app.handle(self.headers.get(SIGNATURE_HEADER), body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("Webhook server: " + format, *args)
