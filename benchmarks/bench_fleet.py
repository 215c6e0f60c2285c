"""A cold fleet against Langfuse, and serving through Langfuse outages."""

from __future__ import annotations

import multiprocessing
import statistics
import time
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from langfuse_versioned_prompts import LangfuseSource, MemoryCache, PromptResolver, RedisCache
from langfuse_versioned_prompts.testing import Fault, LangfuseTestServer, RedisTestServer

PROCESSES = 8
NAMES = [f"prompt-{i:02d}" for i in range(50)]
PROMPTS = "/api/public/v2/prompts"


def _client(server: dict[str, str]) -> Any:
    from langfuse import Langfuse

    return Langfuse(
        public_key=server["public_key"],
        secret_key=server["secret_key"],
        base_url=server["url"],
        tracing_enabled=False,
        tracer_provider=TracerProvider(),
    )


def _info(server: LangfuseTestServer) -> dict[str, str]:
    return {"url": server.url, "public_key": server.public_key, "secret_key": server.secret_key}


def _ours(server: dict[str, str], redis_url: str, start: Any) -> None:
    resolver = PromptResolver(langfuse=LangfuseSource(_client(server)), redis=RedisCache.from_url(redis_url))
    start.wait()
    for name in NAMES:
        resolver.get(name)


def _sdk_alone(server: dict[str, str], redis_url: str, start: Any) -> None:
    client = _client(server)
    start.wait()
    for name in NAMES:
        client.get_prompt(name)


def _fleet(target: Any, server: LangfuseTestServer, redis_url: str) -> int:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    info = _info(server)
    processes = [context.Process(target=target, args=(info, redis_url, start)) for _ in range(PROCESSES)]
    for process in processes:
        process.start()
    time.sleep(3)  # let every process import and build its client before the start signal
    server.reset_counts()
    start.set()
    for process in processes:
        process.join(120)
    return server.count("GET", PROMPTS)


def bench_cold_fleet() -> None:
    with LangfuseTestServer() as server, RedisTestServer() as redis_server:
        for name in NAMES:
            server.create_prompt(name, f"{name}: {{{{question}}}}", labels=["production"])
        server.inject(Fault.latency(0.02))
        sdk = _fleet(_sdk_alone, server, redis_server.url)
        ours = _fleet(_ours, server, redis_server.url)
        server.clear_faults()
        verdict = "met" if ours <= 50 else "NOT met"
        print(
            f"cold fleet of {PROCESSES} processes x {len(NAMES)} prompts: Langfuse requests "
            f"{ours} with us vs {sdk} with the langfuse SDK alone (target <= 50: {verdict})"
        )


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def _calls(resolver: PromptResolver, rounds: int) -> tuple[float, list[float]]:
    served, latencies = 0, []
    for _ in range(rounds):
        for name in NAMES:
            start = time.perf_counter()
            try:
                resolver.get(name)
                served += 1
            except Exception:
                pass
            latencies.append(time.perf_counter() - start)
    return served / (rounds * len(NAMES)), latencies


def bench_outages() -> None:
    with LangfuseTestServer() as server, RedisTestServer() as redis_server:
        for name in NAMES:
            server.create_prompt(name, f"{name}: {{{{question}}}}", labels=["production"])
        resolver = PromptResolver(
            memory=MemoryCache(ttl=0.005),
            redis=RedisCache.from_url(redis_server.url, ttl=0.01),
            langfuse=LangfuseSource(_client(_info(server)), timeout=0.5),
        )
        resolver.warm(NAMES)
        _, healthy = _calls(resolver, 200)
        for label, fault in (("500", Fault.status(500)), ("hang", Fault.hang())):
            with server.inject(fault):
                share, latencies = _calls(resolver, 200)
                server.clear_faults()
            ratio = _p99(latencies) / _p99(healthy)
            verdict = "met" if share == 1 and ratio <= 2 else "NOT met"
            print(
                f"Langfuse answering {label} after warm-up: {share:.2%} of {len(latencies)} calls served, "
                f"p99 {_p99(latencies) * 1e6:.0f} us vs healthy {_p99(healthy) * 1e6:.0f} us = {ratio:.2f}x "
                f"(targets 100% and <= 2x: {verdict})"
            )
        resolver.close()


if __name__ == "__main__":
    bench_cold_fleet()
    bench_outages()
