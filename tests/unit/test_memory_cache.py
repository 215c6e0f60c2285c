"""MemoryCache: bounded LRU, TTL on an injected clock, pinned entries never expire."""

from __future__ import annotations

import pytest

from langfuse_versioned_prompts import ConfigurationError, MemoryCache, PromptKey, ResolvedPrompt


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def prompt(name: str = "p", version: int = 1, graph: dict[str, object] | None = None) -> ResolvedPrompt:
    return ResolvedPrompt(name=name, version=version, type="text", template="x", resolution_graph=graph)


def test_ttl_on_the_injected_clock() -> None:
    clock = Clock()
    cache = MemoryCache(ttl=300, timer=clock)
    key = PromptKey.create("p")
    cache.set(key, prompt())
    clock.now += 299.9
    hit = cache.get(key)
    assert hit is not None and hit.fresh
    clock.now += 0.2
    hit = cache.get(key)
    assert hit is not None and not hit.fresh, "expired entries stay readable as stale"


def test_pinned_versions_never_expire_unless_they_reference_other_prompts() -> None:
    clock = Clock()
    cache = MemoryCache(ttl=1, timer=clock)
    pinned, composed = PromptKey.create("p", version=1), PromptKey.create("q", version=1)
    cache.set(pinned, prompt())
    cache.set(composed, prompt("q", graph={"root": {}, "dependencies": {"r": [{"name": "base"}]}}))
    clock.now += 10**9
    assert cache.get(pinned).fresh  # type: ignore[union-attr]
    assert not cache.get(composed).fresh  # type: ignore[union-attr]


def test_lru_bound_drops_least_recently_used() -> None:
    cache = MemoryCache(maxsize=2, timer=Clock())
    a, b, c = (PromptKey.create(n) for n in "abc")
    cache.set(a, prompt("a"))
    cache.set(b, prompt("b"))
    cache.get(a)
    cache.set(c, prompt("c"))
    assert a in cache and c in cache and b not in cache
    assert len(cache) == 2


def test_invalidation_is_exact() -> None:
    cache = MemoryCache(timer=Clock())
    qa, qa_text = PromptKey.create("qa"), PromptKey.create("qa-text")
    qa_staging = PromptKey.create("qa", label="staging")
    for key in (qa, qa_text, qa_staging):
        cache.set(key, prompt(key.name))
    assert cache.invalidate(qa)
    assert qa not in cache and qa_text in cache and qa_staging in cache
    assert not cache.invalidate(qa)


def test_invalidate_prompt_takes_its_labels_and_its_dependents_only() -> None:
    cache = MemoryCache(timer=Clock())
    graph = {"root": {"name": "composed"}, "dependencies": {"id1": [{"id": "x", "name": "base", "version": 1}]}}
    keys = {
        "base": PromptKey.create("base"),
        "base-v2": PromptKey.create("base", version=2),
        "base-x": PromptKey.create("base-x"),
        "composed": PromptKey.create("composed"),
    }
    for key in keys.values():
        cache.set(key, prompt(key.name, graph=graph if key.name == "composed" else None))
    dropped = cache.invalidate_prompt("base")
    assert set(dropped) == {keys["base"], keys["base-v2"], keys["composed"]}
    assert keys["base-x"] in cache


@pytest.mark.parametrize("bad", [{"maxsize": 0}, {"ttl": 0}, {"ttl": float("nan")}, {"maxsize": 1.5}])
def test_bad_settings(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        MemoryCache(**bad)  # type: ignore[arg-type]
