"""L1 and L2 hit cost against the bare operations they wrap."""

from __future__ import annotations

import time

from _timing import compare

from langfuse_versioned_prompts import MemoryCache, PromptKey, PromptResolver, RedisCache, ResolvedPrompt
from langfuse_versioned_prompts.testing import RedisTestServer

PROMPT = ResolvedPrompt(
    name="customer-support",
    version=3,
    type="text",
    template="You are a support agent. The customer's name is {{customer_name}}. " * 4,
    config={"model": "gpt-4o-mini", "temperature": 0.2},
    labels=("production", "latest"),
    tags=("support",),
)


def bench_memory() -> None:
    key = PromptKey.create("customer-support", label="production")
    cache = MemoryCache()
    cache.set(key, PROMPT)
    plain = {key: PROMPT}
    clock = time.monotonic

    def baseline() -> object:
        value = plain[key]
        clock()
        return value

    compare(
        "L1 hit (MemoryCache.get) vs dict lookup + clock read",
        lambda: cache.get(key),
        baseline,
        number=200_000,
        target=3.0,
    )
    resolver = PromptResolver(memory=cache, local=_NoLocal())
    compare(
        "L1 hit through PromptResolver.get vs dict lookup + clock read",
        lambda: resolver.get("customer-support", label="production"),
        baseline,
        number=200_000,
    )


def bench_redis() -> None:
    with RedisTestServer() as server:
        cache = RedisCache.from_url(server.url)
        key = PromptKey.create("customer-support", label="production")
        cache.set(key, PROMPT)
        raw_client = cache.client
        data_key = cache.key(key)
        compare(
            "L2 hit (RedisCache.get, decoded) vs raw redis GET of the payload",
            lambda: cache.get(key),
            lambda: raw_client.get(data_key),
            number=5_000,
            target=1.3,
        )
        cache.close()


class _NoLocal:
    """A local store that is never reached (every read in the benchmark is an L1 hit)."""

    def get(self, key: PromptKey) -> ResolvedPrompt:
        raise AssertionError("not reached")

    async def aget(self, key: PromptKey) -> ResolvedPrompt:
        raise AssertionError("not reached")


if __name__ == "__main__":
    bench_memory()
    bench_redis()
