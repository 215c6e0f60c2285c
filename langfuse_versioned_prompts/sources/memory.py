"""L1: an in-process, bounded LRU of resolved prompts with TTLs on a monotonic clock."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import NamedTuple

from .._errors import ConfigurationError
from .._prompt import PromptKey, ResolvedPrompt
from .._settings import MEMORY_MAX_ENTRIES, MEMORY_TTL_SECONDS


class Lookup(NamedTuple):
    """A cache read: the prompt and whether it is within its TTL."""

    prompt: ResolvedPrompt
    fresh: bool


class CacheEntry(NamedTuple):
    """A cached prompt with its two possible reads, built once so a hit allocates nothing.

    The stale read carries a copy of the prompt flagged ``is_stale``.
    """

    fresh: Lookup
    stale: Lookup
    expires_at: float
    """Monotonic time after which the entry is stale (``inf``: never)."""


class MemoryCache:
    """Bounded LRU of ``PromptKey -> ResolvedPrompt`` with a TTL per entry.

    Expired entries are kept (and reported as stale) until evicted or replaced, so the resolver can
    serve them at once while it refreshes them in the background. Version-pinned prompts that
    reference no other prompt never expire. Reads take no lock; writes are serialised by one.

    >>> ticks = iter([0.0, 0.0, 301.0])
    >>> cache = MemoryCache(ttl=300, timer=lambda: next(ticks))
    >>> key = PromptKey.create("greet")
    >>> cache.set(key, ResolvedPrompt(name="greet", version=1, type="text", template="Hi"))
    >>> cache.get(key).fresh, cache.get(key).fresh
    (True, False)
    """

    def __init__(
        self,
        maxsize: int = MEMORY_MAX_ENTRIES,
        ttl: float = MEMORY_TTL_SECONDS,
        *,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ConfigurationError(f"MemoryCache maxsize must be a positive integer, got {maxsize!r}")
        check_ttl(ttl, "MemoryCache ttl")
        self.maxsize = maxsize
        self.ttl = float(ttl)
        self.timer = timer
        self._data: OrderedDict[PromptKey, CacheEntry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: PromptKey) -> Lookup | None:
        """The entry for ``key`` with whether it is still fresh, or ``None``."""
        entry = self._data.get(key)
        if entry is None:
            return None
        try:  # noqa: SIM105 - contextlib.suppress would cost a context manager on every hit
            self._data.move_to_end(key)
        except KeyError:  # evicted by another thread between the two calls
            pass
        return entry[0] if entry[2] > self.timer() else entry[1]

    def set(self, key: PromptKey, prompt: ResolvedPrompt, ttl: float | None = None) -> None:
        """Store ``prompt`` under ``key`` for ``ttl`` seconds (default: the cache's TTL).

        Without a ``ttl``, pinned versions that embed no other prompt never expire.
        """
        if ttl is None and key.pinned and prompt.is_pinned_immutable:
            expires_at = math.inf
        else:
            expires_at = self.timer() + (self.ttl if ttl is None else ttl)
        stale = prompt if prompt.is_stale else prompt.replace(is_stale=True)
        entry = CacheEntry(Lookup(prompt, True), Lookup(stale, False), expires_at)
        with self._lock:
            self._data[key] = entry
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def invalidate(self, key: PromptKey) -> bool:
        """Drop exactly ``key``; True if it was cached."""
        with self._lock:
            return self._data.pop(key, None) is not None

    def invalidate_prompt(self, name: str) -> list[PromptKey]:
        """Drop every key of prompt ``name`` and of cached prompts that reference it."""
        with self._lock:  # readers reorder the dict without the lock: iterate over a snapshot
            doomed = [
                key
                for key, entry in list(self._data.items())
                if key.name == name or name in referenced_names(entry.fresh.prompt)
            ]
            for key in doomed:
                self._data.pop(key, None)
        return doomed

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._data.clear()

    def keys(self) -> list[PromptKey]:
        """A snapshot of the cached keys, least recently used first."""
        with self._lock:
            return list(self._data.copy())

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[PromptKey]:
        return iter(self.keys())


def referenced_names(prompt: ResolvedPrompt) -> frozenset[str]:
    """Names of the prompts that ``prompt`` embeds (Langfuse composability), from its resolution graph."""
    graph = prompt.resolution_graph
    if not graph:
        return frozenset()
    dependencies = graph.get("dependencies") or {}
    return frozenset(
        str(dep.get("name"))
        for deps in dependencies.values()
        for dep in deps or ()
        if isinstance(dep, dict) and dep.get("name")
    )


def check_ttl(ttl: object, what: str) -> float:
    """Return ``ttl`` as a float if it is a finite number > 0, else raise ``ConfigurationError``."""
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
        raise ConfigurationError(f"{what} must be a finite number of seconds > 0, got {ttl!r}")
    return float(ttl)
