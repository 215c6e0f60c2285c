"""RedisTestServer runs a real redis-server that tests can kill and bring back on the same port."""

from __future__ import annotations

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


def test_redis_url_fixture_starts_empty(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("left-behind", "1")
    client.close()


def test_redis_url_fixture_flushes_between_tests(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.get("left-behind") is None
    client.close()
