"""``PromptResolver``: memory (L1) -> Redis (L2) -> Langfuse (L3) -> local files (L4).

Policy, in the order a request meets it:

1. L1 fresh: served. L1 expired: served at once, flagged ``is_stale``, refreshed in the background
   (one refresh per key at a time, none again for ``refresh_backoff`` seconds after a failure).
2. L1 miss: one caller per key loads (threads and asyncio tasks wait for it). L2 fresh: served and
   written to L1. L2 expired or missing: the fleet lock decides which process asks Langfuse; the
   others serve the expired L2 copy or wait briefly for the holder to write L2.
3. Langfuse answers: written to L2 and L1. Langfuse says 404: the key is evicted from L1 and L2 and
   ``PromptNotFoundError`` raised. Langfuse fails (5xx, 429, timeout, open circuit): the expired L2
   copy is served, else the local file as a fallback (``is_fallback``), else
   ``PromptUnavailableError``.
4. With no Langfuse configured, local files are the backend: served as primary, not as fallbacks.

Fallbacks are never written to Redis and stay in L1 only ``fallback_ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import _settings as settings
from ._counters import Counters
from ._errors import (
    ConfigurationError,
    LVPError,
)
from ._layers import Executor, LayerWalk
from ._prompt import PromptKey, ResolvedPrompt, check_label
from ._settings import (
    LANGFUSE_TIMEOUT_SECONDS,
    LOCAL_PROMPTS_DIR,
    MEMORY_MAX_ENTRIES,
    MEMORY_TTL_SECONDS,
    REDIS_TTL_SECONDS,
    REDIS_WAIT_SECONDS,
)
from .sources.langfuse import LangfuseSource
from .sources.local import LocalPromptStore
from .sources.memory import MemoryCache, check_ttl
from .sources.redis import RedisCache

if TYPE_CHECKING:
    from ._invalidation import InvalidationSubscriber

logger = logging.getLogger(__name__)


class PromptResolver(LayerWalk):
    """Resolve ``(name, label | version)`` to a ``ResolvedPrompt`` through the layers.

    >>> resolver = PromptResolver(local=LocalPromptStore("examples/prompts"))
    >>> prompt = resolver.get("customer-support", label="production")
    >>> prompt.source, prompt.is_fallback
    ('local', False)
    """

    def __init__(
        self,
        *,
        memory: MemoryCache | None = None,
        redis: RedisCache | None = None,
        langfuse: LangfuseSource | None = None,
        local: LocalPromptStore | None = None,
        default_label: str | None = None,
        fallback_ttl: float = 5.0,
        refresh_backoff: float = 1.0,
        redis_wait: float = REDIS_WAIT_SECONDS,
        executor: Executor | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if langfuse is None and local is None:
            raise ConfigurationError("PromptResolver needs a Langfuse source, a local prompt store, or both")
        self.memory = memory if memory is not None else MemoryCache()
        self.redis = redis
        self.langfuse = langfuse
        self.local = local
        self.default_label = check_label(default_label or settings.default_label())
        self.fallback_ttl = check_ttl(fallback_ttl, "PromptResolver fallback_ttl")
        self.refresh_backoff = _non_negative(refresh_backoff, "PromptResolver refresh_backoff")
        self.redis_wait = _non_negative(redis_wait, "PromptResolver redis_wait")
        self.counters = Counters()
        self._sleep = sleep
        self._executor = executor
        self._keys: dict[tuple[str, str | None, int | None, type], PromptKey] = {}
        self._flights: dict[PromptKey, concurrent.futures.Future[ResolvedPrompt]] = {}
        self._aflights: dict[tuple[int, PromptKey], asyncio.Task[ResolvedPrompt]] = {}
        self._generations: dict[str, int] = {}
        self._refreshing: set[PromptKey] = set()
        self._refresh_failed: dict[PromptKey, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscriber: InvalidationSubscriber | None = None
        self._lock = threading.Lock()

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> PromptResolver:
        """Build from the environment: LANGFUSE_* for Langfuse, REDIS_URL for Redis, LVP_* settings.

        With Redis, the resolver listens for fleet-wide invalidations on ``LVP_INVALIDATION_CHANNEL``
        (default ``lvp:invalidate``; set it to ``off`` to disable). Keyword arguments replace any
        layer or setting (``redis=None`` turns Redis off).
        """
        env = os.environ if environ is None else environ
        layers: dict[str, Any] = {
            "memory": MemoryCache(
                maxsize=_env_number(env, "LVP_MEMORY_MAX_ENTRIES", MEMORY_MAX_ENTRIES, int),
                ttl=_env_number(env, "LVP_MEMORY_TTL", MEMORY_TTL_SECONDS, float),
            ),
            "local": LocalPromptStore(env.get("LVP_PROMPTS_DIR") or LOCAL_PROMPTS_DIR),
            "default_label": settings.default_label(env),
        }
        if env.get("REDIS_URL"):
            layers["redis"] = RedisCache.from_url(
                env["REDIS_URL"], ttl=_env_number(env, "LVP_REDIS_TTL", REDIS_TTL_SECONDS, float)
            )
        if env.get("LANGFUSE_PUBLIC_KEY") and env.get("LANGFUSE_SECRET_KEY"):
            layers["langfuse"] = LangfuseSource.from_env(
                environ, timeout=_env_number(env, "LVP_LANGFUSE_TIMEOUT", LANGFUSE_TIMEOUT_SECONDS, float)
            )
        layers.update(overrides)
        resolver = cls(**layers)
        channel = env.get("LVP_INVALIDATION_CHANNEL")
        if resolver.redis is not None and resolver.redis.url and channel != "off":
            resolver.subscribe_invalidations(channel or None)
        return resolver

    # -- public API ---------------------------------------------------------------------------

    def key(self, name: str, label: str | None = None, version: int | None = None) -> PromptKey:
        """The validated key for a request (no label and no version: the default label)."""
        memo = (name, label, version, type(version))  # True and 1.0 must not pass as version 1
        try:
            return self._keys[memo]
        except (KeyError, TypeError):
            pass
        key = PromptKey.create(name, label, version, default_label=self.default_label)
        if len(self._keys) < 4096:
            self._keys[memo] = key
        return key

    def get(self, name: str, label: str | None = None, version: int | None = None) -> ResolvedPrompt:
        """The prompt version this request resolves to now."""
        return self.resolve(self.key(name, label, version))

    async def aget(self, name: str, label: str | None = None, version: int | None = None) -> ResolvedPrompt:
        """Async twin of ``get``; never blocks the event loop."""
        return await self.aresolve(self.key(name, label, version))

    def resolve(self, key: PromptKey) -> ResolvedPrompt:
        """Resolve a prepared key (see ``key``)."""
        hit = self.memory.get(key)
        if hit is not None:
            if hit.fresh:
                self.counters.add("memory", "hits")
                return hit.prompt
            self.counters.add("memory", "stale_served")
            self._schedule_refresh(key)
            return hit.prompt
        self.counters.add("memory", "misses")
        return self._single_flight(key)

    async def aresolve(self, key: PromptKey) -> ResolvedPrompt:
        """Async twin of ``resolve``."""
        hit = self.memory.get(key)
        if hit is not None:
            if hit.fresh:
                self.counters.add("memory", "hits")
                return hit.prompt
            self.counters.add("memory", "stale_served")
            self._schedule_arefresh(key)
            return hit.prompt
        self.counters.add("memory", "misses")
        loop = asyncio.get_running_loop()
        flight_key = (id(loop), key)
        flight = self._aflights.get(flight_key)
        if flight is None:  # the load runs as its own task: cancelling one caller cancels no other
            flight = loop.create_task(self._aload(key, generation=self._generation(key)))
            self._aflights[flight_key] = flight
            flight.add_done_callback(lambda done: self._flight_done(flight_key, done))
        return await asyncio.shield(flight)

    def invalidate(self, name: str, label: str | None = None, version: int | None = None) -> PromptKey:
        """Drop exactly this key from L1 and L2; the next request fetches it again."""
        key = self.key(name, label, version)
        self._bump(name)
        self.memory.invalidate(key)
        if self.redis is not None:
            self.redis.delete(key)
        return key

    def invalidate_prompt(self, name: str, *, redis: bool = True) -> None:
        """Drop every cached key of prompt ``name`` (and prompts embedding it) from L1 and L2."""
        self._bump(name)
        for key in self.memory.invalidate_prompt(name):
            self._bump(key.name)
            if redis and self.redis is not None and key.name != name:
                self.redis.delete(key)
        if redis and self.redis is not None:
            self.redis.invalidate_prompt(name)

    def warm(
        self, names: Iterable[str], *, label: str | None = None, version: int | None = None
    ) -> dict[PromptKey, ResolvedPrompt | LVPError]:
        """Resolve each name now so later calls hit memory; errors are returned, not raised."""
        results: dict[PromptKey, ResolvedPrompt | LVPError] = {}
        for name in names:
            key = self.key(name, label, version)
            try:
                results[key] = self.resolve(key)
            except LVPError as exc:
                results[key] = exc
        return results

    def subscribe_invalidations(self, channel: str | None = None) -> InvalidationSubscriber:
        """Drop prompts from L1 when their names are published on Redis (webhook, ``lvp cache``).

        Starts (once) a daemon thread on this resolver's Redis; ``close()`` stops it.
        """
        from ._invalidation import DEFAULT_CHANNEL, InvalidationSubscriber

        with self._lock:
            if self._subscriber is None:
                self._subscriber = InvalidationSubscriber(self, channel=channel or DEFAULT_CHANNEL)
            subscriber = self._subscriber
        return subscriber.start()

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters per layer: hits, misses, stale_served, errors, refreshes, refresh_errors, fallbacks."""
        counts = self.counters.snapshot()
        if self.redis is not None:
            counts["redis"]["errors"] = self.redis.errors
            counts["redis"]["corrupt"] = self.redis.corrupt
        return counts

    def close(self) -> None:
        """Stop background refreshes and the invalidation listener; close the Redis client."""
        if self._subscriber is not None:
            self._subscriber.stop()
        if isinstance(self._executor, concurrent.futures.ThreadPoolExecutor):
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self.redis is not None:
            self.redis.close()


def _non_negative(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise ConfigurationError(f"{what} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


def _env_number(env: Mapping[str, str], name: str, default: float, kind: type) -> Any:
    raw = env.get(name)
    if raw is None or raw == "":
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    if not value > 0:
        raise ConfigurationError(f"{name}={raw!r} must be > 0")
    return value


_default: PromptResolver | None = None
_default_lock = threading.Lock()


def default_resolver() -> PromptResolver:
    """The process-wide resolver used by templates that are given none (``PromptResolver.from_env()``)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = PromptResolver.from_env()
    return _default


def set_default_resolver(resolver: PromptResolver | None) -> None:
    """Replace (or with ``None`` reset) the process-wide default resolver."""
    global _default
    with _default_lock:
        _default = resolver
