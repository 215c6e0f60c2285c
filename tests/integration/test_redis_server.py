"""RedisTestServer runs a real redis-server that tests can kill and bring back on the same port."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from langfuse_versioned_prompts import ConfigurationError
from langfuse_versioned_prompts.testing import RedisTestServer, find_redis_server

pytestmark = pytest.mark.redis


def test_kill_and_restart_on_the_same_port() -> None:
    with RedisTestServer() as server:
        port, url = server.port, server.url
        client = redis.Redis.from_url(url, socket_timeout=2)
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}

        server.stop()
        assert not server.running
        with pytest.raises(redis.ConnectionError):
            client.ping()

        server.restart()
        assert (server.port, server.url, server.running) == (port, url, True)
        assert client.ping() is True
        assert client.get("k") is None, "no persistence: a restarted server is empty"
        client.close()
    assert not server.running


def test_missing_executable_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="install Redis"):
        RedisTestServer(executable="/nonexistent/redis-server").start()

    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr("langfuse_versioned_prompts.testing._redis_server._FALLBACK_PATHS", ())
    with pytest.raises(ConfigurationError, match=r"redis-server was not found.*apt-get install"):
        find_redis_server()


def test_start_after_a_crash_reaps_the_dead_process() -> None:
    with RedisTestServer() as server:
        crashed = server._process
        assert crashed is not None and crashed.stderr is not None
        os.kill(crashed.pid, signal.SIGKILL)
        crashed.wait(timeout=10)
        assert not server.running

        server.start()

        assert server.running and server._process is not crashed
        assert crashed.stderr.closed, "the dead process's pipe is closed, not leaked"


def test_a_failed_start_says_why_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'bad config' >&2\nexit 3\n")
    fake.chmod(0o755)
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))

    failed = pytest.raises(ConfigurationError, match=r"exited with code 3 before answering PING.*bad config")
    with failed, RedisTestServer(executable=str(fake)):
        pass

    assert list(temp_root.iterdir()) == [], "the temporary directory is removed"


@pytest.fixture
def leftover_key(redis_server: RedisTestServer) -> Iterator[str]:
    """A key written into the session Redis before ``redis_url`` is set up (requested first)."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.set("left-behind", "1")
        assert client.get("left-behind") == b"1"
    finally:
        client.close()
    yield "left-behind"


def test_redis_url_fixture_starts_empty(leftover_key: str, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.get(leftover_key) is None
        assert client.dbsize() == 0
    finally:
        client.close()


def test_redis_url_fixture_restarts_a_killed_server(
    redis_server: RedisTestServer, request: pytest.FixtureRequest
) -> None:
    redis_server.stop()
    url = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url)
    try:
        assert client.ping() is True
    finally:
        client.close()
