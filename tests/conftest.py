"""Shared fixtures: one real Redis per session, a Langfuse stand-in per test.

Set LVP_TEST_LANGFUSE_URL, LVP_TEST_LANGFUSE_PUBLIC_KEY and LVP_TEST_LANGFUSE_SECRET_KEY to run the
``langfuse_server`` tests against your own Langfuse instead; tests that need the stand-in's own
features (fault injection, request counts, captured spans) then skip, saying why.
Mark a test ``@pytest.mark.langfuse_tracing`` to get a ``langfuse_client`` that exports spans and
scores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest

from langfuse_versioned_prompts.testing import LangfuseTestServer, RedisTestServer, RemoteLangfuse

if TYPE_CHECKING:
    from langfuse import Langfuse

_REAL_LANGFUSE_ENV = (
    "LVP_TEST_LANGFUSE_URL",
    "LVP_TEST_LANGFUSE_PUBLIC_KEY",
    "LVP_TEST_LANGFUSE_SECRET_KEY",
)
REAL_LANGFUSE = all(os.environ.get(name) for name in _REAL_LANGFUSE_ENV)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "langfuse_tracing: the langfuse_client fixture exports spans and scores")


class _RealLangfuse(RemoteLangfuse):
    """Your own Langfuse; touching a stand-in-only feature skips the test."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        pytest.skip(
            f"needs the in-process Langfuse stand-in (`{name}`: fault injection, request "
            "accounting or captured data); LVP_TEST_LANGFUSE_URL points at a real Langfuse"
        )


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisTestServer]:
    with RedisTestServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisTestServer) -> str:
    """The session Redis, emptied (and restarted if a test killed it)."""
    import redis

    redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
def langfuse_server() -> Iterator[LangfuseTestServer]:
    if REAL_LANGFUSE:
        yield cast(LangfuseTestServer, _RealLangfuse(*(os.environ[n] for n in _REAL_LANGFUSE_ENV)))
        return
    with LangfuseTestServer() as server:
        yield server


@pytest.fixture
def langfuse_client(request: pytest.FixtureRequest, langfuse_server: LangfuseTestServer) -> Iterator[Langfuse]:
    """A real SDK client on ``langfuse_server``, with its own TracerProvider (never the global)."""
    from langfuse import Langfuse
    from langfuse._client.resource_manager import LangfuseResourceManager
    from opentelemetry.sdk.trace import TracerProvider

    client = Langfuse(
        public_key=langfuse_server.public_key,
        secret_key=langfuse_server.secret_key,
        base_url=langfuse_server.url,
        tracer_provider=TracerProvider(),
        tracing_enabled=request.node.get_closest_marker("langfuse_tracing") is not None,
    )
    yield client
    client.shutdown()
    # The SDK keeps one resource manager per public key; drop it so the next client starts fresh.
    with LangfuseResourceManager._lock:
        LangfuseResourceManager._instances.pop(langfuse_server.public_key, None)
