"""Fixtures of the `lvp` command tests: a clean environment and a stand-in server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langfuse_versioned_prompts.testing import LangfuseTestServer

ENV = (
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
    "LANGFUSE_BASE_URL",
    "LANGFUSE_HOST",
    "REDIS_URL",
    "LVP_DEFAULT_LABEL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No connection settings leak in from the shell; label moves are recorded as by `alice`."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LVP_USER", "alice")


@pytest.fixture
def server(langfuse_server: LangfuseTestServer) -> Iterator[LangfuseTestServer]:
    """The stand-in; afterwards the SDK's per-key client (made by the command) is shut down."""
    yield langfuse_server
    from langfuse._client.resource_manager import LangfuseResourceManager

    with LangfuseResourceManager._lock:  # the SDK keeps one per public key
        manager = LangfuseResourceManager._instances.pop(langfuse_server.public_key, None)
    if manager is not None:
        manager.shutdown()
