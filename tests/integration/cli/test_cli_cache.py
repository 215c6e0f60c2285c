"""``lvp cache warm / invalidate`` against the Langfuse stand-in and a real redis-server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from typer.testing import CliRunner, Result

from langfuse_versioned_prompts import (
    LangfuseSource,
    MemoryCache,
    PromptKey,
    PromptResolver,
    RedisCache,
)
from langfuse_versioned_prompts._invalidation import InvalidationSubscriber
from langfuse_versioned_prompts.cli import app
from langfuse_versioned_prompts.testing import LangfuseTestServer

pytestmark = pytest.mark.redis


@pytest.fixture
def name(server: LangfuseTestServer) -> str:
    prompt = f"t{uuid.uuid4().hex[:8]}/greet"
    server.create_prompt(prompt, "v1 {{x}}", labels=["production"])
    server.create_prompt(prompt, "v2 {{x}}", labels=["staging"])
    return prompt


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


def lvp(server: LangfuseTestServer, redis_url: str, *args: str) -> Result:
    """Run lvp with the connection flags given to the root command (they apply to every command)."""
    return CliRunner().invoke(
        app,
        [
            "--redis-url",
            redis_url,
            "--langfuse-url",
            server.url,
            "--public-key",
            server.public_key,
            "--secret-key",
            server.secret_key,
            *args,
        ],
    )


def failed(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message and "Traceback" not in result.output
    for needle in needles:
        assert needle in message, message


def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``condition`` (pub/sub delivery is asynchronous) until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def redis_key(name: str, label: str) -> str:
    return RedisCache(url="redis://unused").key(PromptKey.create(name, label=label))


def test_warm_fetches_into_redis_then_finds_it_cached(
    server: LangfuseTestServer, redis_url: str, client: redis.Redis, name: str
) -> None:
    result = lvp(server, redis_url, "cache", "warm", name)
    assert result.exit_code == 0, result.output
    assert "v1" in result.stdout and "langfuse" in result.stdout
    assert client.exists(redis_key(name, "production"))
    gets = server.count("GET")
    again = lvp(server, redis_url, "cache", "warm", name)
    assert again.exit_code == 0 and "already cached" in again.stdout
    assert server.count("GET") == gets


def test_warm_a_label_and_report_unknown_prompts(
    server: LangfuseTestServer, redis_url: str, client: redis.Redis, name: str
) -> None:
    result = lvp(server, redis_url, "cache", "warm", name, "nope", "--label", "staging")
    failed(result, "'nope'")
    assert "v2" in result.stdout  # the known prompt was warmed all the same
    assert client.exists(redis_key(name, "staging")) and not client.exists(redis_key("nope", "staging"))


def test_invalidate_drops_redis_keys_and_tells_subscribed_processes(
    server: LangfuseTestServer, langfuse_client: object, redis_url: str, client: redis.Redis, name: str
) -> None:
    assert lvp(server, redis_url, "cache", "warm", name).exit_code == 0
    assert lvp(server, redis_url, "cache", "warm", name, "--label", "staging").exit_code == 0
    resolver = PromptResolver(
        memory=MemoryCache(ttl=600), redis=RedisCache.from_url(redis_url), langfuse=LangfuseSource(langfuse_client)
    )  # type: ignore[arg-type]
    with InvalidationSubscriber(resolver, channel="lvp:invalidate") as subscriber:
        assert subscriber.wait_ready(5)
        assert resolver.get(name).version == 1 and len(resolver.memory) == 1

        result = lvp(server, redis_url, "cache", "invalidate", name)
        assert result.exit_code == 0, result.output
        assert f"dropped 2 Redis entries of {name}; told 1 process on lvp:invalidate" in result.stdout
        assert not client.exists(redis_key(name, "production"), redis_key(name, "staging"))
        assert eventually(lambda: len(resolver.memory) == 0)
        assert subscriber.received == 1
    resolver.close()


def test_invalidate_one_label(server: LangfuseTestServer, redis_url: str, client: redis.Redis, name: str) -> None:
    lvp(server, redis_url, "cache", "warm", name)
    lvp(server, redis_url, "cache", "warm", name, "--label", "staging")
    result = lvp(server, redis_url, "cache", "invalidate", name, "--label", "staging", "--channel", "custom")
    assert result.exit_code == 0 and f"{name}@staging" in result.stdout and "custom" in result.stdout
    assert client.exists(redis_key(name, "production")) and not client.exists(redis_key(name, "staging"))


def test_invalidate_one_label_also_drops_the_prompts_embedding_it(
    server: LangfuseTestServer, redis_url: str, client: redis.Redis, name: str
) -> None:
    composite = name.replace("/greet", "/composite")
    server.create_prompt(composite, f"Say @@@langfusePrompt:name={name}|label=production@@@", labels=["production"])
    assert lvp(server, redis_url, "cache", "warm", name, composite).exit_code == 0
    assert lvp(server, redis_url, "cache", "warm", name, "--label", "staging").exit_code == 0
    assert client.exists(redis_key(composite, "production"))
    result = lvp(server, redis_url, "cache", "invalidate", name, "--label", "production")
    assert result.exit_code == 0, result.output
    assert not client.exists(redis_key(name, "production"), redis_key(composite, "production"))
    assert client.exists(redis_key(name, "staging"))  # only that label of the prompt itself
    assert f"{name}@production and 1 cached prompt embedding {name}" in result.stdout
    warmed = lvp(server, redis_url, "cache", "warm", composite)  # refetched, with base's new text
    assert warmed.exit_code == 0 and "langfuse" in warmed.stdout


def test_cache_needs_a_reachable_redis(server: LangfuseTestServer, name: str) -> None:
    no_redis = CliRunner().invoke(app, ["cache", "invalidate", name])
    failed(no_redis, "REDIS_URL", "--redis-url")
    failed(
        lvp(server, "redis://127.0.0.1:9/0", "cache", "invalidate", name), "cannot reach Redis at redis://127.0.0.1:9/0"
    )
    failed(lvp(server, "redis://:hunter2@127.0.0.1:9/0", "cache", "warm", name), "***")
    result = lvp(server, "redis://:hunter2@127.0.0.1:9/0", "cache", "warm", name)
    assert "hunter2" not in result.output  # the password is never printed


def test_cache_warm_needs_langfuse_keys(redis_url: str, name: str) -> None:
    failed(CliRunner().invoke(app, ["cache", "warm", name, "--redis-url", redis_url]), "LANGFUSE_PUBLIC_KEY")
