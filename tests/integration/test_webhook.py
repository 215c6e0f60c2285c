"""The webhook receiver over HTTP with a real Redis, the pub/sub subscriber, and ``lvp webhook serve``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from langfuse_versioned_prompts import (
    LocalPromptStore,
    MemoryCache,
    PromptKey,
    PromptResolver,
    RedisCache,
    ResolvedPrompt,
)
from langfuse_versioned_prompts._invalidation import InvalidationSubscriber, publish_invalidation
from langfuse_versioned_prompts.testing import RedisTestServer
from langfuse_versioned_prompts.webhook import MAX_BODY_BYTES, WebhookServer, sign, webhook_app

pytestmark = pytest.mark.redis
SECRET = "lf-whsec_" + "5e" * 32
NAME = "support/triage"


def event(name: str = NAME, action: str = "updated") -> bytes:
    return json.dumps(
        {
            "id": "evt",
            "timestamp": "2026-01-01T00:00:00.000Z",
            "type": "prompt-version",
            "apiVersion": "v1",
            "action": action,
            "prompt": {"id": "p", "name": name, "version": 2, "labels": ["production"], "type": "text"},
        }
    ).encode()


def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``condition`` (pub/sub delivery is asynchronous) until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def cache(redis_url: str) -> Iterator[RedisCache]:
    cache = RedisCache.from_url(redis_url, ttl=600)
    prompt = ResolvedPrompt(name=NAME, version=1, type="text", template="v1")
    cache.set(PromptKey.create(NAME, label="production"), prompt)
    cache.set(PromptKey.create(NAME, version=1), prompt)
    yield cache
    cache.close()


@pytest.fixture
def resolver(tmp_path: object, redis_url: str) -> Iterator[PromptResolver]:
    store = LocalPromptStore(str(tmp_path))
    store.save(NAME, [ResolvedPrompt(name=NAME, version=1, type="text", template="v1", labels=("production",))])
    resolver = PromptResolver(memory=MemoryCache(ttl=600), local=store)
    resolver.get(NAME)
    yield resolver
    resolver.close()


@pytest.fixture
def subscriber(resolver: PromptResolver, redis_url: str) -> Iterator[InvalidationSubscriber]:
    with InvalidationSubscriber(resolver, redis_url, backoff=0.05, max_backoff=0.2) as subscriber:
        assert subscriber.wait_ready(5)
        yield subscriber


@pytest.fixture
def url(cache: RedisCache) -> Iterator[str]:
    server = WebhookServer(webhook_app(SECRET, cache, path="/hooks/langfuse")).start()
    yield f"{server.url}/hooks/langfuse"
    server.stop()


def post(url: str, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"content-type": "application/json", "user-agent": "Langfuse/1.0"}
    if signature is not None:
        headers["x-langfuse-signature"] = signature
    return httpx.post(url, content=body, headers=headers, timeout=5)


def payload_keys(cache: RedisCache) -> list[bytes]:
    return sorted(k for k in cache.client.keys(cache.tag(NAME) + "*") if not k.endswith(b":keys"))


def test_signed_webhook_invalidates_redis_and_every_subscribed_l1(
    url: str, cache: RedisCache, resolver: PromptResolver, subscriber: InvalidationSubscriber
) -> None:
    assert len(payload_keys(cache)) == 4  # payload + fresh marker, for the label and the version
    body = event()
    response = post(url, body, sign(SECRET, body))
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "prompt": NAME, "action": "updated", "deleted_keys": 2, "receivers": 1}
    assert payload_keys(cache) == []
    assert eventually(lambda: len(resolver.memory) == 0)
    assert subscriber.received == 1


@pytest.mark.parametrize(
    "signature",
    [None, "t=1,v1=00", "forged", "replayed", "wrong-secret"],
)
def test_unsigned_forged_or_replayed_change_nothing(
    url: str,
    cache: RedisCache,
    resolver: PromptResolver,
    subscriber: InvalidationSubscriber,
    signature: str | None,
) -> None:
    body = event()
    if signature == "forged":
        signature = sign(SECRET, event("other"))  # a real signature of another body
    elif signature == "replayed":
        signature = sign(SECRET, body, timestamp=int(time.time()) - 600)
    elif signature == "wrong-secret":
        signature = sign("lf-whsec_" + "00" * 32, body)
    before = payload_keys(cache)
    response = post(url, body, signature)
    assert response.status_code == 401 and "invalid signature" in response.json()["error"]
    assert payload_keys(cache) == before
    assert not eventually(lambda: subscriber.received > 0, timeout=0.2)
    assert len(resolver.memory) == 1


def test_replaying_an_accepted_delivery_is_refused(url: str, cache: RedisCache) -> None:
    body = event()
    signature = sign(SECRET, body)
    assert post(url, body, signature).status_code == 200
    assert post(url, body, signature).status_code == 401


def test_http_errors(url: str, cache: RedisCache) -> None:
    body = b"{not json"
    assert post(url, body, sign(SECRET, body)).status_code == 400
    assert httpx.get(url, timeout=5).status_code == 405
    assert post(url.replace("/hooks/langfuse", "/elsewhere"), event(), sign(SECRET, event())).status_code == 404
    assert len(payload_keys(cache)) == 4


def exchange(url: str, *messages: bytes, timeout: float = 5.0) -> list[bytes]:
    """Send each message on one connection and read what arrives after it (all of it after the last)."""
    parts = urlsplit(url)
    answers = []
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        for index, message in enumerate(messages):
            sock.sendall(message)
            received = b""
            while True:
                chunk = sock.recv(65536)
                received += chunk
                if not chunk or (index < len(messages) - 1 and received.endswith(b"\r\n\r\n")):
                    break
            answers.append(received)
    return answers


def head(url: str, *lines: str) -> bytes:
    path = urlsplit(url).path
    return "\r\n".join([f"POST {path} HTTP/1.1", "Host: localhost", *lines, "", ""]).encode("latin-1")


def test_server_listens_on_loopback_by_default_and_stops_cleanly(cache: RedisCache) -> None:
    server = WebhookServer(webhook_app(SECRET, cache))
    assert server.host == "127.0.0.1"
    server.start()
    assert server.url.startswith("http://127.0.0.1:") and server.port > 0
    assert post(server.url, event(), sign(SECRET, event())).status_code == 200
    server.stop()
    assert server.wait(0)  # the serving thread ended
    with pytest.raises(httpx.ConnectError):
        httpx.post(server.url, content=event(), timeout=2)  # the port is closed
    server.stop()  # stopping twice is harmless


def test_server_limits_bodies_to_content_length_and_max_size(url: str, cache: RedisCache) -> None:
    before = payload_keys(cache)
    (too_large,) = exchange(url, head(url, f"Content-Length: {MAX_BODY_BYTES + 1}"))
    assert too_large.startswith(b"HTTP/1.1 413 ") and b"body larger than" in too_large
    (chunked,) = exchange(url, head(url, "Transfer-Encoding: chunked") + b"2\r\n{}\r\n0\r\n\r\n")
    assert chunked.startswith(b"HTTP/1.1 411 ")
    (bad,) = exchange(url, head(url, "Content-Length: 1_0") + b"x" * 10)
    assert bad.startswith(b"HTTP/1.1 400 ")
    assert payload_keys(cache) == before


def test_server_answers_non_ascii_signatures_with_401(url: str, cache: RedisCache) -> None:
    body = event()
    for raw in (b"t=\xb2,v1=" + b"0" * 64, b"t=" + str(int(time.time())).encode() + b",v1=\xc3\xa9"):
        message = head(url, f"Content-Length: {len(body)}").replace(
            b"\r\n\r\n", b"\r\nx-langfuse-signature: " + raw + b"\r\n\r\n"
        )
        (answer,) = exchange(url, message + body)
        assert answer.startswith(b"HTTP/1.1 401 ") and b"invalid signature" in answer, answer
    assert len(payload_keys(cache)) == 4


def test_server_sends_100_continue_before_the_body(url: str, cache: RedisCache) -> None:
    body = event()
    interim, final = exchange(
        url,
        head(
            url, f"Content-Length: {len(body)}", "Expect: 100-continue", f"x-langfuse-signature: {sign(SECRET, body)}"
        ),
        body,
        timeout=3,
    )
    assert interim.startswith(b"HTTP/1.1 100 "), interim
    assert final.startswith(b"HTTP/1.1 200 ") and payload_keys(cache) == []


def test_subscriber_reconnects_after_redis_restarts_and_clears_l1(
    redis_server: RedisTestServer,
    redis_url: str,
    resolver: PromptResolver,
    subscriber: InvalidationSubscriber,
) -> None:
    redis_server.stop()
    assert eventually(lambda: not subscriber.ready)
    resolver.get(NAME)  # the app keeps serving meanwhile
    redis_server.restart()
    assert eventually(lambda: subscriber.ready, timeout=10)
    assert subscriber.reconnects == 1
    assert len(resolver.memory) == 0  # invalidations sent while away may be lost: L1 cleared
    resolver.get(NAME)
    client = redis.Redis.from_url(redis_url)
    try:
        assert publish_invalidation(client, NAME) == 1
    finally:
        client.close()
    assert eventually(lambda: len(resolver.memory) == 0)


def test_subscriber_survives_a_missing_redis_and_stops(resolver: PromptResolver) -> None:
    subscriber = InvalidationSubscriber(resolver, "redis://127.0.0.1:9/0", backoff=0.01, max_backoff=0.05).start()
    assert not subscriber.wait_ready(0.3)
    subscriber.stop()
    assert resolver.get(NAME).version == 1


def test_lvp_webhook_serve(redis_url: str, cache: RedisCache) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "REDIS_URL"))}
    process = subprocess.Popen(
        [
            sys.executable,
            "-u",
            "-c",
            "from langfuse_versioned_prompts.cli import main; main()",
            "webhook",
            "serve",
            "--port",
            "0",
            "--path",
            "/hook",
            "--redis-url",
            redis_url,
        ],
        env={**env, "LVP_WEBHOOK_SECRET": SECRET},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        url = line.split()[2]
        assert url.endswith("/hook")
        assert post(url, event(), None).status_code == 401
        assert post(url, event(), sign(SECRET, event())).status_code == 200
        assert payload_keys(cache) == []
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err
