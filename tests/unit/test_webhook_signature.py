"""Langfuse webhook signatures and the ASGI receiver's answers (no sockets: a fake Redis client)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import MutableMapping
from typing import Any

import pytest

from langfuse_versioned_prompts import RedisCache
from langfuse_versioned_prompts.webhook import (
    WebhookApp,
    WebhookSignatureError,
    sign,
    verify_signature,
    webhook_app,
)

SECRET = "lf-whsec_" + "ab" * 32
BODY = json.dumps(
    {
        "id": "evt-1",
        "timestamp": "2026-01-02T03:04:05.000Z",
        "type": "prompt-version",
        "apiVersion": "v1",
        "action": "updated",
        "prompt": {"id": "p1", "name": "support/triage", "version": 3, "labels": ["production"]},
    }
).encode()
T = 1_700_000_000


def langfuse_header(secret: str, body: bytes, t: int) -> str:
    """The header as Langfuse's server builds it (packages/shared/src/encryption/signature.ts)."""
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def test_sign_matches_langfuse_and_verifies() -> None:
    assert sign(SECRET, BODY, timestamp=T) == langfuse_header(SECRET, BODY, T)
    assert verify_signature(SECRET, langfuse_header(SECRET, BODY, T), BODY, now=T + 5) == T


def test_str_body_is_its_utf8_bytes() -> None:
    text = '{"prompt": {"name": "caf\u00e9"}}'
    header = sign(SECRET, text.encode(), timestamp=T)
    assert verify_signature(SECRET, header, text, now=T) == T


@pytest.mark.parametrize(
    ("header", "body", "reason"),
    [
        (None, BODY, "missing"),
        ("", BODY, "missing"),
        (f"v1={'0' * 64}", BODY, "t=<unix seconds>"),
        (f"t=abc,v1={'0' * 64}", BODY, "t=<unix seconds>"),
        (f"t={T}", BODY, "v1=<signature>"),
        (f"t={T},v1={'0' * 64}", BODY, "does not match"),
        (langfuse_header("lf-whsec_other", BODY, T), BODY, "does not match"),
        (langfuse_header(SECRET, BODY, T), BODY + b" ", "does not match"),
        (langfuse_header(SECRET, BODY, T + 1).replace(f"t={T + 1}", f"t={T}"), BODY, "does not match"),
    ],
    ids=["none", "empty", "no-t", "bad-t", "no-v1", "zeros", "other-secret", "tampered-body", "swapped-timestamp"],
)
def test_rejects_bad_signatures(header: str | None, body: bytes, reason: str) -> None:
    with pytest.raises(WebhookSignatureError, match=reason):
        verify_signature(SECRET, header, body, now=T)


@pytest.mark.parametrize(
    "header",
    [
        f"t=\u00b2,v1={'0' * 64}",  # superscript two: str.isdigit() says yes, ASCII says no
        f"t=\u0661\u0667\u0660\u0660,v1={'0' * 64}",  # Arabic-Indic digits: int() reads them
        f"t={T},v1=\u00e9",  # hmac.compare_digest refuses non-ASCII str
        f"t={T},v1=\u00e9{'0' * 63}",
        f"t={T},v1={'0' * 64},v1=\u00ff",
        "t=" + "9" * 5000 + f",v1={'0' * 64}",  # more digits than int() converts
        f"t=-{T},v1={'0' * 64}",
        f"t=+{T},v1={'0' * 64}",
        f"t={T}.5,v1={'0' * 64}",
        f"t={T},v1=,v1",
        "t=,v1=",
        ",,,=,=",
        "\x00",
    ],
    ids=[
        "superscript-t", "arabic-digits-t", "non-ascii-v1", "non-ascii-v1-long", "non-ascii-second-v1",
        "huge-t", "negative-t", "plus-t", "fraction-t", "empty-v1", "empty-parts", "only-commas", "nul",
    ],
)
def test_malformed_headers_raise_the_signature_error_only(header: str) -> None:
    with pytest.raises(WebhookSignatureError):
        verify_signature(SECRET, header, BODY, now=T)


def test_rejects_timestamps_outside_the_tolerance() -> None:
    header = langfuse_header(SECRET, BODY, T)
    assert verify_signature(SECRET, header, BODY, now=T + 300) == T
    with pytest.raises(WebhookSignatureError, match="301s old"):
        verify_signature(SECRET, header, BODY, now=T + 301)
    with pytest.raises(WebhookSignatureError, match="in the future"):
        verify_signature(SECRET, header, BODY, now=T - 301)
    assert verify_signature(SECRET, header, BODY, now=T + 1000, tolerance=1000) == T


def test_accepts_any_matching_v1_and_uppercase_hex() -> None:
    good = langfuse_header(SECRET, BODY, T).split("v1=")[1]
    assert verify_signature(SECRET, f"t={T}, v1={'0' * 64}, v1={good.upper()}", BODY, now=T) == T


def test_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="secret"):
        verify_signature("", langfuse_header(SECRET, BODY, T), BODY, now=T)


# -- the ASGI app, with a fake Redis client ---------------------------------------------------


class FakeRedis:
    """The few sync redis-py calls the receiver makes, over a dict; optionally broken."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.published: list[tuple[str, bytes]] = []
        self.broken = False

    def _check(self) -> None:
        if self.broken:
            raise ConnectionError("redis is down")

    def smembers(self, key: str) -> set[bytes]:
        self._check()
        return set(self.data.get(key, set()))

    def delete(self, *keys: str) -> int:
        self._check()
        return sum(self.data.pop(k, None) is not None for k in keys)

    def publish(self, channel: str, message: bytes) -> int:
        self._check()
        self.published.append((channel, message))
        return 2


@pytest.fixture
def fake() -> FakeRedis:
    redis = FakeRedis()
    cache = RedisCache(client=redis)
    key = cache.tag("support/triage") + ":label:production"
    redis.data = {key: b"payload", key + ":fresh": b"1", cache.tag("support/triage") + ":keys": {key.encode()}}
    return redis


def call(
    app: WebhookApp,
    method: str = "POST",
    path: str = "/",
    body: bytes = BODY,
    headers: dict[str, str] | None = None,
    raw_headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run the ASGI app on one request; returns status and JSON body. ``raw_headers``: bytes as sent."""
    sent: list[MutableMapping[str, Any]] = []
    chunks = [body[:10], body[10:]]

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()] + (raw_headers or []),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start"
    return sent[0]["status"], json.loads(sent[1]["body"])


def make_app(fake: FakeRedis, now: float = T) -> WebhookApp:
    app = webhook_app(SECRET, RedisCache(client=fake))
    app.clock = lambda: now
    return app


def signed(body: bytes = BODY, t: int = T) -> dict[str, str]:
    return {"x-langfuse-signature": langfuse_header(SECRET, body, t), "content-type": "application/json"}


def test_signed_webhook_drops_l2_keys_and_publishes(fake: FakeRedis) -> None:
    status, payload = call(make_app(fake), headers=signed())
    assert (status, payload["prompt"], payload["deleted_keys"], payload["receivers"]) == (200, "support/triage", 1, 2)
    assert fake.data == {}
    assert fake.published == [("lvp:invalidate", b"support/triage")]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-langfuse-signature": f"t={T},v1={'0' * 64}"},
        {"x-langfuse-signature": langfuse_header("lf-whsec_wrong", BODY, T)},
    ],
    ids=["unsigned", "forged", "wrong-secret"],
)
def test_unsigned_or_forged_is_401_and_changes_nothing(fake: FakeRedis, headers: dict[str, str]) -> None:
    before = dict(fake.data)
    status, payload = call(make_app(fake), headers=headers)
    assert status == 401 and "invalid signature" in payload["error"]
    assert fake.data == before and fake.published == []


@pytest.mark.parametrize(
    "raw",
    [
        b"t=\xb2,v1=" + b"0" * 64,
        b"t=1700000000,v1=\xc3\xa9",
        b"t=1700000000,v1=\xe9" + b"0" * 63,
        b"t=" + b"9" * 5000 + b",v1=00",
    ],
    ids=["latin1-superscript-t", "utf8-v1", "latin1-v1", "huge-t"],
)
def test_malformed_signature_headers_are_401_never_an_exception(fake: FakeRedis, raw: bytes) -> None:
    status, payload = call(make_app(fake), raw_headers=[(b"x-langfuse-signature", raw)])
    assert status == 401 and "invalid signature" in payload["error"]
    assert fake.published == []


def test_replays_are_401(fake: FakeRedis) -> None:
    status, _ = call(make_app(fake, now=T + 301), headers=signed())
    assert status == 401 and fake.published == []
    app = make_app(fake)
    assert call(app, headers=signed())[0] == 200
    status, payload = call(app, headers=signed())  # the same delivery again
    assert status == 401 and "replay" in payload["error"]
    assert len(fake.published) == 1


def test_a_reformatted_copy_of_an_accepted_delivery_is_a_replay(fake: FakeRedis) -> None:
    app = make_app(fake)
    header = langfuse_header(SECRET, BODY, T)
    assert call(app, headers={"x-langfuse-signature": header})[0] == 200
    digest = header.split("v1=")[1]
    for variant in (
        header + ",v1=00",  # an extra (wrong) signature
        f"v1=00,{header}",
        header.replace(",", " , "),  # spaces
        f" t={T},  v1={digest} ",
        f"t={T},v1={digest.upper()}",  # upper-case hex
        f"t={T},v1={digest},v1={digest}",
    ):
        status, payload = call(app, headers={"x-langfuse-signature": variant})
        assert status == 401 and "replay" in payload["error"], (variant, payload)
    assert len(fake.published) == 1


def test_a_delivery_answered_503_can_be_resent(fake: FakeRedis) -> None:
    app = make_app(fake)
    fake.broken = True
    assert call(app, headers=signed())[0] == 503
    fake.broken = False
    status, payload = call(app, headers=signed())  # Langfuse retries the same delivery
    assert status == 200, payload
    assert fake.published == [("lvp:invalidate", b"support/triage")]
    assert call(app, headers=signed())[0] == 401  # and now it has been received


def test_malformed_bodies_are_400_after_the_signature_check(fake: FakeRedis) -> None:
    for body in (b"not json", b"[1, 2]", b'{"type": "prompt-version", "prompt": {}}'):
        assert call(make_app(fake), body=body, headers=signed(body))[0] == 400
    assert call(make_app(fake), body=b"not json")[0] == 401  # unsigned garbage: 401, not 400
    assert fake.published == []


def test_other_event_types_are_acknowledged_and_ignored(fake: FakeRedis) -> None:
    body = json.dumps({"type": "trace", "id": "x"}).encode()
    status, payload = call(make_app(fake), body=body, headers=signed(body))
    assert status == 200 and "ignored" in payload and fake.published == []


def test_other_methods_and_paths(fake: FakeRedis) -> None:
    assert call(make_app(fake), method="GET", headers=signed())[0] == 405
    assert call(make_app(fake), path="/elsewhere", headers=signed())[0] == 404
    mounted = webhook_app(SECRET, RedisCache(client=fake), path="/hooks/langfuse")
    mounted.clock = lambda: T
    assert call(mounted, path="/hooks/langfuse/", headers=signed())[0] == 200


def test_redis_failure_is_503_so_langfuse_retries(fake: FakeRedis) -> None:
    fake.broken = True
    status, payload = call(make_app(fake), headers=signed())
    assert status == 503 and "Redis" in payload["error"]


def test_lifespan_is_answered() -> None:
    app = webhook_app(SECRET, RedisCache(client=FakeRedis()))
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message["type"])

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
