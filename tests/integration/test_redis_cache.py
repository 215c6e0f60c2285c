"""RedisCache against a real redis-server: keys, payloads, a slow Redis; Langfuse errors and the breaker."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from redis.crc import key_slot

from langfuse_versioned_prompts import (
    LangfuseSource,
    PromptKey,
    PromptNotFoundError,
    PromptResolver,
    RedisCache,
    ResolvedPrompt,
    SourceAuthError,
    SourceUnavailableError,
)
from langfuse_versioned_prompts._breaker import CircuitBreaker
from langfuse_versioned_prompts.testing import Fault, LangfuseTestServer

PROMPT = ResolvedPrompt(name="folder/a {b}:c", version=2, type="text", template="{{x}} {json}", config={"k": [1]})


def test_keys_share_one_cluster_slot_per_prompt_and_escape_the_name(redis_url: str) -> None:
    cache = RedisCache.from_url(redis_url, prefix="app")
    keys = [PromptKey.create(PROMPT.name, label=label) for label in ("production", "staging")]
    keys.append(PromptKey.create(PROMPT.name, version=2))
    redis_keys = [cache.key(k) for k in keys]
    assert redis_keys[0] == "app:{folder%2Fa%20%7Bb%7D%3Ac}:label:production"
    slots = {
        key_slot(k.encode())
        for k in [*redis_keys, *(k + ":fresh" for k in redis_keys), cache.tag(PROMPT.name) + ":keys"]
    }
    assert len(slots) == 1
    other = RedisCache.from_url(redis_url, prefix="app").key(PromptKey.create("folder/a"))
    assert other != redis_keys[0]


def test_payload_is_versioned_json_and_round_trips(redis_url: str) -> None:
    cache = RedisCache.from_url(redis_url)
    key = PromptKey.create(PROMPT.name, label="production")
    assert cache.set(key, PROMPT)
    stored = json.loads(cache.client.get(cache.key(key)))
    assert stored["schema"] == 1 and stored["prompt"]["prompt"] == "{{x}} {json}"
    hit = cache.get(key)
    assert hit is not None and hit.fresh and hit.prompt.replace(source="local", label=None) == PROMPT
    assert 0 < cache.client.pttl(cache.key(key) + ":fresh") <= 900_000
    assert cache.client.pttl(cache.key(key)) > 900_000, "the payload outlives freshness, to serve stale"
    pinned = PromptKey.create(PROMPT.name, version=2)
    cache.set(pinned, PROMPT)
    assert cache.client.pttl(cache.key(pinned)) == -1, "a self-contained pinned version never expires"


def test_schema_mismatch_and_foreign_payloads_are_misses(redis_url: str) -> None:
    cache = RedisCache.from_url(redis_url)
    key = PromptKey.create("p")
    for payload in (
        json.dumps({"schema": 99, "prompt": {}}),
        json.dumps({"schema": 1, "prompt": PROMPT.to_dict()}),
        "[]",
    ):
        cache.client.set(cache.key(key), payload)
        assert cache.get(key) is None
    assert cache.corrupt == 3


def test_a_slow_redis_is_skipped_not_waited_for(redis_url: str) -> None:
    cache = RedisCache.from_url(redis_url, socket_timeout=0.05, retry_after=60)
    key = PromptKey.create("p")
    cache.set(key, PROMPT.replace(name="p"))
    admin = RedisCache.from_url(redis_url).client
    admin.client_pause(500)
    assert cache.get(key) is None and cache.errors == 1
    assert not cache.available
    assert cache.get(key) is None and cache.errors == 1, "skipped without another timeout"


def test_invalidate_prompt_drops_every_key_of_that_name_only(redis_url: str) -> None:
    cache = RedisCache.from_url(redis_url)
    for key in (PromptKey.create("qa"), PromptKey.create("qa", version=1), PromptKey.create("qa-text")):
        cache.set(key, ResolvedPrompt(name=key.name, version=1, type="text", template="x"))
    assert cache.invalidate_prompt("qa") == 2
    assert cache.get(PromptKey.create("qa")) is None and cache.get(PromptKey.create("qa-text")) is not None


def test_async_twins(redis_url: str) -> None:
    cache = RedisCache.from_url(redis_url)
    key = PromptKey.create("p")

    async def main() -> tuple[Any, ...]:
        stored = await cache.aset(key, PROMPT.replace(name="p"))
        hit = await cache.aget(key)
        token = await cache.aacquire(key)
        again = await cache.aacquire(key)
        await cache.arelease(key, token or "")
        after = await cache.aacquire(key)
        await cache.arelease(key, after or "")
        await cache.adelete(key)
        return stored, hit, token, again, after, await cache.aget(key)

    for _ in range(2):  # a new event loop each time: the async client is per loop
        stored, hit, token, again, after, gone = asyncio.run(main())
        assert stored and hit.fresh and token and again is None and after and gone is None


@pytest.fixture
def served(langfuse_server: LangfuseTestServer) -> LangfuseTestServer:
    langfuse_server.create_prompt("p", "v1", labels=["production"])
    return langfuse_server


def test_langfuse_errors_map_to_ours(served: LangfuseTestServer, langfuse_client: Any) -> None:
    source = LangfuseSource(langfuse_client, timeout=0.3)
    with pytest.raises(PromptNotFoundError, match="with label 'nope'"):
        source.fetch(PromptKey.create("p", label="nope"))
    for fault, error in (
        (Fault.status(500), "HTTP 500"),
        (Fault.rate_limited(3), "HTTP 429"),
        (Fault.hang(), "Timeout"),
        (Fault.malformed_json(), "unreadable response"),
        (Fault.drop_connection(), "Disconnected|Protocol|Connect|Read"),
    ):
        with served.inject(fault, times=1), pytest.raises(SourceUnavailableError, match=error) as info:
            source.fetch(PromptKey.create("p"))
        assert info.value.__cause__ is not None
        served.clear_faults()
    wrong = type(langfuse_client)(
        public_key="pk-lf-wrong",
        secret_key="wrong",
        base_url=served.url,
        tracing_enabled=False,
        tracer_provider=TracerProvider(),
    )
    with pytest.raises(SourceAuthError, match="401"):
        LangfuseSource(wrong).fetch(PromptKey.create("p"))
    wrong.shutdown()


def test_circuit_breaker_stops_calling_a_failing_langfuse(served: LangfuseTestServer, langfuse_client: Any) -> None:
    now = [0.0]
    source = LangfuseSource(langfuse_client, breaker=CircuitBreaker(failures=3, reset_after=30, timer=lambda: now[0]))
    served.reset_counts()
    with served.inject(Fault.status(503)):
        for _ in range(10):
            with pytest.raises(SourceUnavailableError):
                source.fetch(PromptKey.create("p"))
    assert served.count("GET", "/api/public/v2/prompts") == 3
    with pytest.raises(SourceUnavailableError, match="circuit is open"):
        source.fetch(PromptKey.create("p"))
    now[0] = 30
    assert source.fetch(PromptKey.create("p")).version == 1, "one trial call closes it"
    assert not source.breaker.is_open


def test_404_evicts_the_key_from_memory_and_redis(
    served: LangfuseTestServer, langfuse_client: Any, redis_url: str
) -> None:
    resolver = PromptResolver(langfuse=LangfuseSource(langfuse_client), redis=RedisCache.from_url(redis_url))
    resolver.get("p")
    served.delete_prompt("p")
    resolver.invalidate("p")
    with pytest.raises(PromptNotFoundError):
        resolver.get("p")
    key = PromptKey.create("p")
    assert key not in resolver.memory and resolver.redis.get(key) is None  # type: ignore[union-attr]


def test_a_change_to_a_prompt_invalidates_the_prompts_embedding_it(
    langfuse_server: LangfuseTestServer, langfuse_client: Any, redis_url: str
) -> None:
    langfuse_server.create_prompt("base", "be brief", labels=["production"])
    langfuse_server.create_prompt(
        "composed", "Rules: @@@langfusePrompt:name=base|label=production@@@", labels=["production"]
    )
    resolver = PromptResolver(langfuse=LangfuseSource(langfuse_client), redis=RedisCache.from_url(redis_url))
    composed = resolver.get("composed", version=1)
    assert composed.render() == "Rules: be brief" and composed.resolution_graph
    assert not composed.is_pinned_immutable, "a pinned version embedding a label can change"
    langfuse_server.create_prompt("base", "be thorough", labels=["production"])
    other_process = PromptResolver(langfuse=LangfuseSource(langfuse_client), redis=RedisCache.from_url(redis_url))
    assert other_process.get("composed", version=1).render() == "Rules: be brief", "served from L2 until invalidated"
    resolver.invalidate_prompt("base")  # what the webhook receiver does for a change to `base`
    assert other_process.redis.get(PromptKey.create("composed", version=1)) is None  # type: ignore[union-attr]
    other_process.memory.clear()
    assert other_process.get("composed", version=1).render() == "Rules: be thorough"


def test_from_env_listens_for_fleet_invalidations(
    langfuse_server: LangfuseTestServer, langfuse_client: Any, redis_url: str, tmp_path: Any
) -> None:
    from langfuse_versioned_prompts._invalidation import publish_invalidation

    env = {"REDIS_URL": redis_url, "LVP_PROMPTS_DIR": str(tmp_path), "LVP_MEMORY_TTL": "600"}
    resolver = PromptResolver.from_env(env, langfuse=LangfuseSource(langfuse_client))
    quiet = PromptResolver.from_env(
        {**env, "LVP_INVALIDATION_CHANNEL": "off"}, langfuse=LangfuseSource(langfuse_client)
    )
    try:
        assert resolver._subscriber is not None and resolver._subscriber.wait_ready(5)
        assert quiet._subscriber is None
        langfuse_server.create_prompt("p", "v1", labels=["production"])
        assert resolver.get("p").version == 1
        langfuse_server.create_prompt("p", "v2", labels=["production"])
        resolver.redis.invalidate_prompt("p")  # type: ignore[union-attr]
        publish_invalidation(resolver.redis.client, "p")  # type: ignore[union-attr]
        for _ in range(200):  # the listener thread drops the L1 entry within milliseconds
            if PromptKey.create("p") not in resolver.memory:
                break
            threading.Event().wait(0.01)
        assert resolver.get("p").version == 2
    finally:
        resolver.close()
        quiet.close()
