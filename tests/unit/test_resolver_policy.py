"""PromptResolver policy with in-memory sources: no sockets, an injected clock, a manual executor."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from langfuse_versioned_prompts import (
    ConfigurationError,
    LocalPromptStore,
    MemoryCache,
    PromptKey,
    PromptNotFoundError,
    PromptResolver,
    PromptUnavailableError,
    ResolvedPrompt,
    SourceUnavailableError,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ManualExecutor:
    """Runs submitted refreshes only when told to."""

    def __init__(self) -> None:
        self.tasks: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> None:
        self.tasks.append((fn, args))

    def run_all(self) -> int:
        tasks, self.tasks = self.tasks, []
        for fn, args in tasks:
            fn(*args)
        return len(tasks)


class FakeLangfuse:
    """Stands in for LangfuseSource: versions per label, programmable failures, call counts."""

    def __init__(self) -> None:
        self.labels = {"production": 1}
        self.fail: Exception | None = None
        self.calls = 0
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.agate: asyncio.Event | None = None

    def _answer(self, key: PromptKey, version: int | None = None) -> ResolvedPrompt:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        version = key.version or version or self.labels.get(key.label or "")
        if version is None or key.name != "p":
            raise PromptNotFoundError(f"no {key}")
        return ResolvedPrompt(
            name=key.name,
            version=version,
            type="text",
            template=f"v{version} {{{{x}}}}",
            label=key.label,
            source="langfuse",
        )

    def fetch(self, key: PromptKey) -> ResolvedPrompt:
        seen = self.labels.get(key.label or "")  # what the server had when the request arrived
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(5)
        return self._answer(key, seen)

    async def afetch(self, key: PromptKey) -> ResolvedPrompt:
        await asyncio.sleep(0.01)
        if self.agate is not None:
            await self.agate.wait()
        return self._answer(key)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def langfuse() -> FakeLangfuse:
    return FakeLangfuse()


@pytest.fixture
def executor() -> ManualExecutor:
    return ManualExecutor()


@pytest.fixture
def resolver(clock: Clock, langfuse: FakeLangfuse, executor: ManualExecutor, tmp_path: Any) -> PromptResolver:
    local = LocalPromptStore(tmp_path)
    local.save("p", [ResolvedPrompt(name="p", version=1, type="text", template="local {{x}}", labels=("production",))])
    return PromptResolver(
        memory=MemoryCache(ttl=300, timer=clock),
        langfuse=langfuse,  # type: ignore[arg-type]
        local=local,
        executor=executor,
    )


def test_label_move_is_served_after_the_ttl(
    resolver: PromptResolver, langfuse: FakeLangfuse, clock: Clock, executor: ManualExecutor
) -> None:
    assert resolver.get("p").version == 1
    langfuse.labels["production"] = 2
    clock.now = 299
    assert resolver.get("p").version == 1 and langfuse.calls == 1
    clock.now = 301
    stale = resolver.get("p")
    assert (stale.version, stale.is_stale, stale.source) == (1, True, "memory")
    assert executor.run_all() == 1
    fresh = resolver.get("p")
    assert (fresh.version, fresh.is_stale) == (2, False)


def test_invalidate_serves_the_move_at_once_and_is_exact(resolver: PromptResolver, langfuse: FakeLangfuse) -> None:
    resolver.get("p")
    resolver.get("p", version=1)
    langfuse.labels["production"] = 2
    resolver.invalidate("p", label="production")
    assert resolver.get("p").version == 2
    assert PromptKey.create("p", version=1) in resolver.memory


def test_one_refresh_per_key_while_stale(resolver: PromptResolver, clock: Clock, executor: ManualExecutor) -> None:
    resolver.get("p")
    clock.now = 1000
    for _ in range(50):
        assert resolver.get("p").is_stale
    assert len(executor.tasks) == 1
    assert resolver.stats()["memory"]["stale_served"] == 50


def test_failed_refresh_keeps_serving_stale_and_counts(
    resolver: PromptResolver, langfuse: FakeLangfuse, clock: Clock, executor: ManualExecutor
) -> None:
    resolver.get("p")
    clock.now = 1000
    langfuse.fail = SourceUnavailableError("HTTP 500")
    resolver.get("p")
    executor.run_all()
    again = resolver.get("p")
    assert (again.version, again.is_stale) == (1, True)
    assert resolver.stats()["memory"]["refresh_errors"] == 1


def test_langfuse_down_with_nothing_cached_falls_back_to_local(
    resolver: PromptResolver, langfuse: FakeLangfuse
) -> None:
    langfuse.fail = SourceUnavailableError("timeout")
    prompt = resolver.get("p")
    assert (prompt.source, prompt.is_fallback, prompt.render(x="!")) == ("local", True, "local !")
    assert resolver.stats()["local"]["fallbacks"] == 1


def test_nothing_anywhere_is_a_clear_unavailable_error(resolver: PromptResolver, langfuse: FakeLangfuse) -> None:
    langfuse.fail = SourceUnavailableError("HTTP 503")
    with pytest.raises(PromptUnavailableError, match=r"cannot serve other@production: HTTP 503.*local store"):
        resolver.get("other")


def test_404_evicts_and_raises(
    resolver: PromptResolver, langfuse: FakeLangfuse, clock: Clock, executor: ManualExecutor
) -> None:
    resolver.get("p")
    del langfuse.labels["production"]
    clock.now = 1000
    resolver.get("p")
    executor.run_all()
    assert PromptKey.create("p") not in resolver.memory
    with pytest.raises(PromptNotFoundError):
        resolver.get("p")


def test_single_flight_across_threads(resolver: PromptResolver, langfuse: FakeLangfuse) -> None:
    langfuse.gate = threading.Event()
    results: list[int] = []
    barrier = threading.Barrier(51)

    def worker() -> None:
        barrier.wait()
        results.append(resolver.get("p").version)

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for thread in threads:
        thread.start()
    barrier.wait()
    time.sleep(0.05)  # let every thread reach the flight before the fetch may finish
    langfuse.gate.set()
    for thread in threads:
        thread.join()
    assert results == [1] * 50 and langfuse.calls == 1


def test_single_flight_across_tasks(resolver: PromptResolver, langfuse: FakeLangfuse) -> None:
    async def main() -> list[int]:
        prompts = await asyncio.gather(*(resolver.aget("p") for _ in range(500)))
        return [p.version for p in prompts]

    assert asyncio.run(main()) == [1] * 500 and langfuse.calls == 1


def test_errors_reach_every_waiter(resolver: PromptResolver, langfuse: FakeLangfuse) -> None:
    async def main() -> list[BaseException | ResolvedPrompt]:
        return await asyncio.gather(*(resolver.aget("missing") for _ in range(20)), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, PromptNotFoundError) for r in results) and langfuse.calls == 1


def test_no_langfuse_means_local_is_primary(tmp_path: Any) -> None:
    store = LocalPromptStore(tmp_path)
    store.save("p", [ResolvedPrompt(name="p", version=1, type="text", template="x", labels=("staging",))])
    resolver = PromptResolver(local=store, default_label="staging")
    prompt = resolver.get("p")
    assert (prompt.source, prompt.is_fallback, prompt.label) == ("local", False, "staging")
    with pytest.raises(PromptNotFoundError):
        resolver.get("p", label="production")


def test_from_env_reads_settings_and_rejects_bad_values(tmp_path: Any) -> None:
    resolver = PromptResolver.from_env(
        {"LVP_PROMPTS_DIR": str(tmp_path), "LVP_DEFAULT_LABEL": "development", "LVP_MEMORY_TTL": "60"}
    )
    assert resolver.default_label == "development" and resolver.memory.ttl == 60
    assert resolver.langfuse is None and resolver.redis is None
    with pytest.raises(ConfigurationError, match="LVP_MEMORY_TTL='soon' is not a valid float"):
        PromptResolver.from_env({"LVP_MEMORY_TTL": "soon"})
    with pytest.raises(ConfigurationError, match="invalid label 'Prod'"):
        PromptResolver.from_env({"LVP_DEFAULT_LABEL": "Prod"})


def test_warm_returns_errors_instead_of_raising(resolver: PromptResolver) -> None:
    results = resolver.warm(["p", "missing"])
    assert results[PromptKey.create("p")].version == 1  # type: ignore[union-attr]
    assert isinstance(results[PromptKey.create("missing")], PromptNotFoundError)


def test_cancelling_the_first_caller_cancels_no_other(resolver: PromptResolver, langfuse: FakeLangfuse) -> None:
    async def main() -> list[int]:
        langfuse.agate = asyncio.Event()
        first = asyncio.create_task(resolver.aget("p"))
        others = [asyncio.create_task(resolver.aget("p")) for _ in range(3)]
        await asyncio.sleep(0.02)
        first.cancel()
        langfuse.agate.set()
        results = await asyncio.gather(*others)
        assert first.cancelled()
        return [p.version for p in results]

    assert asyncio.run(main()) == [1, 1, 1] and langfuse.calls == 1


def test_a_fallback_for_a_pinned_version_is_retried_after_fallback_ttl(
    resolver: PromptResolver, langfuse: FakeLangfuse, clock: Clock, executor: ManualExecutor
) -> None:
    langfuse.fail = SourceUnavailableError("HTTP 502")
    assert resolver.get("p", version=1).is_fallback
    langfuse.fail = None
    clock.now += resolver.fallback_ttl + 1
    assert resolver.get("p", version=1).is_fallback, "served at once while it refreshes"
    executor.run_all()
    recovered = resolver.get("p", version=1)
    assert (recovered.is_fallback, recovered.render(x="!")) == (False, "v1 !")


def test_a_load_that_started_before_an_invalidation_does_not_write_back(
    resolver: PromptResolver, langfuse: FakeLangfuse
) -> None:
    langfuse.gate = threading.Event()
    slow = threading.Thread(target=resolver.get, args=("p",))
    slow.start()
    assert langfuse.entered.wait(5), "the fetch is under way with the old label"
    langfuse.labels["production"] = 2
    resolver.invalidate("p")
    langfuse.gate.set()
    slow.join()
    assert PromptKey.create("p") not in resolver.memory
    assert resolver.get("p").version == 2


def test_invalidate_prompt_while_readers_run(resolver: PromptResolver) -> None:
    resolver.get("p")
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                resolver.memory.get(PromptKey.create("p"))
            except BaseException as exc:  # pragma: no cover - the failure this test guards against
                errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(300):
            resolver.memory.set(PromptKey.create("p"), resolver.get("p"))
            resolver.memory.set(PromptKey.create("q"), resolver.get("p"))
            resolver.memory.invalidate_prompt("p")
    finally:
        stop.set()
        thread.join()
    assert not errors


@pytest.mark.parametrize("bad", [{"fallback_ttl": 0}, {"refresh_backoff": -1}, {"redis_wait": float("nan")}])
def test_bad_timings_name_the_setting(bad: dict[str, float], tmp_path: Any) -> None:
    (name,) = bad
    with pytest.raises(ConfigurationError, match=name):
        PromptResolver(local=LocalPromptStore(tmp_path), **bad)  # type: ignore[arg-type]


def test_a_bad_version_is_refused_even_after_a_good_one(resolver: PromptResolver) -> None:
    assert resolver.get("p", version=1).version == 1
    for bad in (True, 1.0):
        with pytest.raises(ConfigurationError, match="positive integer"):
            resolver.get("p", version=bad)  # type: ignore[arg-type]
