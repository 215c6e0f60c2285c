"""The four layers for real: the langfuse SDK over HTTP to the stand-in server, a real redis-server."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from langfuse_versioned_prompts import (
    ConfigurationError,
    LangfuseSource,
    LocalPromptStore,
    MemoryCache,
    PromptFormatError,
    PromptKey,
    PromptNotFoundError,
    PromptResolver,
    RedisCache,
    ResolvedPrompt,
)
from langfuse_versioned_prompts.testing import Fault, LangfuseTestServer, RedisTestServer

PROMPTS = "/api/public/v2/prompts"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def local(tmp_path: Any) -> LocalPromptStore:
    store = LocalPromptStore(tmp_path / "prompts")
    store.save(
        "support",
        [ResolvedPrompt(name="support", version=1, type="text", template="local {{x}}", labels=("production",))],
    )
    return store


@pytest.fixture
def served(langfuse_server: LangfuseTestServer) -> LangfuseTestServer:
    langfuse_server.create_prompt("support", "v1 {{x}}", labels=["production"])
    langfuse_server.create_prompt("support", 'v2 {{x}} {"json": true}', labels=["staging"])
    return langfuse_server


def make_resolver(
    client: Any, local: LocalPromptStore, clock: Clock, redis_url: str | None = None, **kwargs: Any
) -> PromptResolver:
    return PromptResolver(
        memory=MemoryCache(ttl=300, timer=clock),
        redis=RedisCache.from_url(redis_url, retry_after=1, timer=clock) if redis_url else None,
        langfuse=LangfuseSource(client, timeout=0.5),
        local=local,
        **kwargs,
    )


@pytest.fixture
def executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


def test_label_move_served_after_ttl_and_at_once_after_invalidate(
    served: LangfuseTestServer,
    langfuse_client: Any,
    local: LocalPromptStore,
    clock: Clock,
    redis_url: str,
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    resolver = make_resolver(langfuse_client, local, clock, redis_url, executor=executor)
    first = resolver.get("support", label="production")
    assert (first.version, first.source, first.render(x="!")) == (1, "langfuse", "v1 !")
    assert resolver.get("support", label="production").source == "memory"

    served.move_labels("support", 2, ["production"])
    resolver.invalidate("support", label="production")
    assert resolver.get("support", label="production").version == 2

    served.move_labels("support", 1, ["production"])
    RedisCache.from_url(redis_url).client.delete(resolver.redis.key(PromptKey.create("support")) + ":fresh")  # type: ignore[union-attr]
    clock.now = 301
    stale = resolver.get("support", label="production")
    assert (stale.version, stale.is_stale) == (2, True)
    executor.shutdown(wait=True)
    assert resolver.get("support", label="production").version == 1


def test_stale_is_served_while_the_refresh_hangs(
    served: LangfuseTestServer,
    langfuse_client: Any,
    local: LocalPromptStore,
    clock: Clock,
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    resolver = make_resolver(langfuse_client, local, clock, executor=executor)
    resolver.get("support")
    served.move_labels("support", 2, ["production"])
    clock.now = 1000
    with served.inject(Fault.hang()) as hang:
        for _ in range(20):
            prompt = resolver.get("support")
            assert (prompt.version, prompt.is_stale) == (1, True)
        for _ in range(500):  # bounded wait for the refresh thread's request to arrive
            if hang.hits:
                break
            threading.Event().wait(0.01)
        assert resolver.get("support").is_stale, "still stale while the refresh hangs"
        served.clear_faults()  # release the hung refresh
        assert hang.hits == 1, "exactly one refresh went out"
    executor.shutdown(wait=True)
    assert resolver.stats()["memory"]["stale_served"] == 21


FAULTS = {
    "500": Fault.status(500),
    "429": Fault.rate_limited(1),
    "hang": Fault.hang(),
    "malformed-json": Fault.malformed_json(),
    "dropped-connection": Fault.drop_connection(),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_langfuse_failing_serves_stale_then_redis_then_local(
    fault: Fault,
    served: LangfuseTestServer,
    langfuse_client: Any,
    local: LocalPromptStore,
    clock: Clock,
    redis_url: str,
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    resolver = make_resolver(langfuse_client, local, clock, redis_url, executor=executor)
    assert resolver.get("support").source == "langfuse"
    served.reset_counts()
    with served.inject(fault):
        clock.now = 1000
        from_memory = resolver.get("support")
        assert (from_memory.source, from_memory.is_stale, from_memory.is_fallback) == ("memory", True, False)

        key = PromptKey.create("support")
        raw = RedisCache.from_url(redis_url)
        raw.client.delete(raw.key(key) + ":fresh")  # the L2 copy has expired too
        other_process = make_resolver(langfuse_client, local, Clock(), redis_url)
        from_redis = other_process.get("support")
        assert (from_redis.source, from_redis.is_stale, from_redis.version) == ("redis", True, 1)

        raw.client.flushall()
        third_process = make_resolver(langfuse_client, local, Clock(), redis_url)
        from_local = third_process.get("support")
        assert (from_local.source, from_local.is_fallback, from_local.render(x="?")) == ("local", True, "local ?")
        assert third_process.stats()["local"]["fallbacks"] == 1
        served.clear_faults()
    assert served.count("GET", PROMPTS) <= 4, "one request per attempt, no retry storm"


def test_redis_killed_and_restarted_mid_run_never_reaches_the_caller(
    served: LangfuseTestServer,
    langfuse_client: Any,
    local: LocalPromptStore,
    clock: Clock,
) -> None:
    with RedisTestServer() as redis_server:
        resolver = make_resolver(langfuse_client, local, clock, redis_server.url)
        versions = []
        for step in range(30):
            if step == 10:
                redis_server.stop()
            if step == 20:
                redis_server.restart()
            resolver.invalidate("support") if step % 3 == 0 else None
            versions.append(resolver.get("support").version)
        assert versions == [1] * 30
        assert resolver.stats()["redis"]["errors"] >= 1
        clock.now += 10_000  # past the L1 TTL and past the pause after the last Redis failure
        resolver.memory.clear()
        assert resolver.get("support").version == 1
        assert RedisCache.from_url(redis_server.url).get(PromptKey.create("support")) is not None


def test_fifty_threads_one_cold_key_one_langfuse_request(
    served: LangfuseTestServer, langfuse_client: Any, local: LocalPromptStore, clock: Clock, redis_url: str
) -> None:
    resolver = make_resolver(langfuse_client, local, clock, redis_url)
    served.reset_counts()
    barrier = threading.Barrier(50)
    results: list[int] = []

    def worker() -> None:
        barrier.wait()
        results.append(resolver.get("support").version)

    with served.inject(Fault.latency(0.2)):
        threads = [threading.Thread(target=worker) for _ in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [1] * 50
    assert served.count("GET", PROMPTS) == 1


def test_five_hundred_tasks_one_cold_key_one_langfuse_request(
    served: LangfuseTestServer, langfuse_client: Any, local: LocalPromptStore, clock: Clock, redis_url: str
) -> None:
    resolver = make_resolver(langfuse_client, local, clock, redis_url)
    served.reset_counts()

    async def main() -> list[int]:
        prompts = await asyncio.gather(*(resolver.aget("support") for _ in range(500)))
        return [p.version for p in prompts]

    with served.inject(Fault.latency(0.2)):
        assert asyncio.run(main()) == [1] * 500
    assert served.count("GET", PROMPTS) == 1


def test_fleet_single_flight_across_resolvers_sharing_redis(
    served: LangfuseTestServer, langfuse_client: Any, local: LocalPromptStore, redis_url: str
) -> None:
    fleet = [make_resolver(langfuse_client, local, Clock(), redis_url) for _ in range(8)]
    served.reset_counts()
    barrier = threading.Barrier(len(fleet))

    def ask(resolver: PromptResolver) -> int:
        barrier.wait()
        return resolver.get("support").version

    with served.inject(Fault.latency(0.2)), concurrent.futures.ThreadPoolExecutor(len(fleet)) as pool:
        assert list(pool.map(ask, fleet)) == [1] * len(fleet)
    assert served.count("GET", PROMPTS) == 1


def test_corrupt_redis_entry_is_replaced(
    served: LangfuseTestServer, langfuse_client: Any, local: LocalPromptStore, clock: Clock, redis_url: str
) -> None:
    cache = RedisCache.from_url(redis_url)
    key = PromptKey.create("support")
    cache.client.set(cache.key(key), b"\x00not json")
    cache.client.set(cache.key(key) + ":fresh", b"1")
    resolver = make_resolver(langfuse_client, local, clock, redis_url)
    prompt = resolver.get("support")
    assert (prompt.source, prompt.version) == ("langfuse", 1)
    assert resolver.stats()["redis"]["corrupt"] == 1
    assert cache.get(key).prompt.version == 1  # type: ignore[union-attr]


def test_async_path_through_every_layer(
    served: LangfuseTestServer, langfuse_client: Any, local: LocalPromptStore, clock: Clock, redis_url: str
) -> None:
    async def main() -> list[str]:
        first = make_resolver(langfuse_client, local, clock, redis_url)
        sources = [(await first.aget("support")).source, (await first.aget("support")).source]
        second = make_resolver(langfuse_client, local, Clock(), redis_url)
        sources.append((await second.aget("support")).source)
        with served.inject(Fault.status(503)):
            third = make_resolver(langfuse_client, local, Clock(), None)
            sources.append((await third.aget("support")).source)
        return sources

    assert asyncio.run(main()) == ["langfuse", "memory", "redis", "local"]


def test_bad_input_gives_typed_errors_naming_the_problem(
    served: LangfuseTestServer, langfuse_client: Any, local: LocalPromptStore, clock: Clock
) -> None:
    resolver = make_resolver(langfuse_client, local, clock)
    with pytest.raises(PromptNotFoundError, match="Prompt not found: 'unknown'"):
        resolver.get("unknown")
    with pytest.raises(PromptNotFoundError, match="with label 'canary'"):
        resolver.get("support", label="canary")
    with pytest.raises(ConfigurationError, match="invalid label 'Production'"):
        resolver.get("support", label="Production")
    with pytest.raises(ConfigurationError, match="not both"):
        resolver.get("support", label="production", version=1)
    local.path.joinpath("broken.yaml").write_text("name: broken\nversions: [\n")
    with pytest.raises(PromptFormatError, match=r"broken\.yaml"):
        local.get(PromptKey.create("broken"))
