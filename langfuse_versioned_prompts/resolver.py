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
from typing import TYPE_CHECKING, Any, Protocol

from . import _settings as settings
from ._counters import Counters
from ._errors import (
    ConfigurationError,
    LVPError,
    PromptNotFoundError,
    PromptUnavailableError,
    SourceUnavailableError,
)
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
from .sources.memory import MemoryCache
from .sources.redis import RedisCache

if TYPE_CHECKING:
    from ._invalidation import InvalidationSubscriber

logger = logging.getLogger(__name__)


class Executor(Protocol):
    """Where background refreshes run (a ``ThreadPoolExecutor`` by default)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any: ...


class PromptResolver:
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
        self.fallback_ttl = fallback_ttl
        self.refresh_backoff = refresh_backoff
        self.redis_wait = redis_wait
        self.counters = Counters()
        self._sleep = sleep
        self._executor = executor
        self._keys: dict[tuple[str, str | None, int | None], PromptKey] = {}
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
                environ,
                timeout=_env_number(env, "LVP_LANGFUSE_TIMEOUT", LANGFUSE_TIMEOUT_SECONDS, float)
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
        memo = (name, label, version)
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

    def _flight_done(self, flight_key: tuple[int, PromptKey], flight: asyncio.Task[ResolvedPrompt]) -> None:
        if self._aflights.get(flight_key) is flight:
            del self._aflights[flight_key]
        if not flight.cancelled():
            flight.exception()  # retrieved: no warning when every caller was cancelled

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

    # -- invalidation generations --------------------------------------------------------------
    # A load that started before an invalidation of its prompt must not write what it fetched.

    def _generation(self, key: PromptKey) -> int:
        return self._generations.get(key.name, 0)

    def _bump(self, name: str) -> None:
        with self._lock:
            self._generations[name] = self._generations.get(name, 0) + 1

    # -- sync loading -------------------------------------------------------------------------

    def _single_flight(self, key: PromptKey) -> ResolvedPrompt:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = concurrent.futures.Future()
        if not leader:
            return flight.result()
        try:
            prompt = self._load(key, generation=self._generation(key))
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(prompt)
            return prompt
        finally:
            with self._lock:
                del self._flights[key]

    def _load(self, key: PromptKey, *, generation: int, refresh: bool = False) -> ResolvedPrompt:
        stale: ResolvedPrompt | None = None
        if self.redis is not None:
            hit = self.redis.get(key)
            if hit is not None and hit.fresh:
                return self._served_from_redis(key, hit.prompt, generation)
            stale = hit.prompt if hit is not None else None
            self.counters.add("redis", "misses")
        if self.langfuse is None:
            return self._from_local(key, None, generation)
        token = self.redis.acquire(key) if self.redis is not None else ""
        if token is None:  # another process is fetching this key
            if refresh:  # leave L1 as it is: the holder refreshes L2, the next stale read finds it
                return stale if stale is not None else self._keep(key)
            if stale is not None:
                return self._serve_stale(key, stale, generation)
            waited = self._wait_for_fleet(key, generation)
            if waited is not None:
                return waited
        try:
            prompt = self.langfuse.fetch(key)
        except PromptNotFoundError:
            self._evict(key)
            raise
        except SourceUnavailableError as exc:
            self.counters.add("langfuse", "errors")
            if refresh:
                raise
            if stale is not None:
                return self._serve_stale(key, stale, generation)
            return self._from_local(key, exc, generation)
        else:
            self.counters.add("langfuse", "hits")
            if self.redis is not None and self._generation(key) == generation:
                self.redis.set(key, prompt)  # before the lock is released, so waiters find it
        finally:
            if token and self.redis is not None:
                self.redis.release(key, token)
        return self._remember(key, prompt, generation)

    def _wait_for_fleet(self, key: PromptKey, generation: int) -> ResolvedPrompt | None:
        """Wait for the lock holder's L2 write; ``None``: fetch yourself (it gave up or is slow)."""
        assert self.redis is not None
        deadline = time.monotonic() + self.redis_wait
        while time.monotonic() < deadline:
            self._sleep(0.01)
            hit = self.redis.get(key)
            if hit is None and not self.redis.locked(key):
                hit = self.redis.get(key)  # released between the two reads?
                if hit is None:
                    return None
            if hit is not None:
                return self._served_from_redis(key, hit.prompt, generation)
        return None

    def _from_local(self, key: PromptKey, failure: Exception | None, generation: int) -> ResolvedPrompt:
        if self.local is None:
            raise PromptUnavailableError(
                f"cannot serve {key}: {failure}; nothing is cached and no local prompt store is set"
            ) from failure
        try:
            prompt = self.local.get(key)
        except LVPError as exc:
            raise self._local_failed(key, failure, exc) from (failure or exc)
        return self._local_served(key, prompt, failure is not None, generation)

    # -- async loading ------------------------------------------------------------------------

    async def _aload(self, key: PromptKey, *, generation: int, refresh: bool = False) -> ResolvedPrompt:
        stale: ResolvedPrompt | None = None
        if self.redis is not None:
            hit = await self.redis.aget(key)
            if hit is not None and hit.fresh:
                return self._served_from_redis(key, hit.prompt, generation)
            stale = hit.prompt if hit is not None else None
            self.counters.add("redis", "misses")
        if self.langfuse is None:
            return await self._afrom_local(key, None, generation)
        token = await self.redis.aacquire(key) if self.redis is not None else ""
        if token is None:
            if refresh:
                return stale if stale is not None else self._keep(key)
            if stale is not None:
                return self._serve_stale(key, stale, generation)
            waited = await self._await_fleet(key, generation)
            if waited is not None:
                return waited
        try:
            prompt = await self.langfuse.afetch(key)
        except PromptNotFoundError:
            await self._aevict(key)
            raise
        except SourceUnavailableError as exc:
            self.counters.add("langfuse", "errors")
            if refresh:
                raise
            if stale is not None:
                return self._serve_stale(key, stale, generation)
            return await self._afrom_local(key, exc, generation)
        else:
            self.counters.add("langfuse", "hits")
            if self.redis is not None and self._generation(key) == generation:
                await self.redis.aset(key, prompt)
        finally:
            if token and self.redis is not None:
                await self.redis.arelease(key, token)
        return self._remember(key, prompt, generation)

    async def _await_fleet(self, key: PromptKey, generation: int) -> ResolvedPrompt | None:
        """Async twin of ``_wait_for_fleet``."""
        assert self.redis is not None
        deadline = time.monotonic() + self.redis_wait
        while time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            hit = await self.redis.aget(key)
            if hit is None and not await self.redis.alocked(key):
                hit = await self.redis.aget(key)
                if hit is None:
                    return None
            if hit is not None:
                return self._served_from_redis(key, hit.prompt, generation)
        return None

    async def _afrom_local(self, key: PromptKey, failure: Exception | None, generation: int) -> ResolvedPrompt:
        if self.local is None:
            return self._from_local(key, failure, generation)  # raises PromptUnavailableError
        try:
            prompt = await self.local.aget(key)
        except LVPError as exc:
            raise self._local_failed(key, failure, exc) from (failure or exc)
        return self._local_served(key, prompt, failure is not None, generation)

    def _local_failed(self, key: PromptKey, failure: Exception | None, exc: LVPError) -> LVPError:
        self.counters.add("local", "misses")
        if failure is None:
            return exc
        return PromptUnavailableError(
            f"cannot serve {key}: {failure}; nothing is cached and the local store has no copy ({exc})"
        )

    async def _aevict(self, key: PromptKey) -> None:
        self.memory.invalidate(key)
        if self.redis is not None:
            await self.redis.adelete(key)

    # -- background refresh -------------------------------------------------------------------

    def _claim_refresh(self, key: PromptKey) -> bool:
        with self._lock:
            if key in self._refreshing:
                return False
            failed_at = self._refresh_failed.get(key)
            if failed_at is not None and time.monotonic() - failed_at < self.refresh_backoff:
                return False
            self._refreshing.add(key)
            return True

    def _schedule_refresh(self, key: PromptKey) -> None:
        if not self._claim_refresh(key):
            return
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        max_workers=2, thread_name_prefix="lvp-refresh"
                    )
        try:
            self._executor.submit(self._refresh, key)
        except RuntimeError:  # executor shut down
            self._refresh_done(key, ok=False)

    def _schedule_arefresh(self, key: PromptKey) -> None:
        if not self._claim_refresh(key):
            return
        task = asyncio.get_running_loop().create_task(self._arefresh(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refresh(self, key: PromptKey) -> None:
        self.counters.add("memory", "refreshes")
        ok = False
        try:
            self._load(key, generation=self._generation(key), refresh=True)
            ok = True
        except Exception as exc:
            self._refresh_failed_with(key, exc)
        finally:
            self._refresh_done(key, ok)

    async def _arefresh(self, key: PromptKey) -> None:
        self.counters.add("memory", "refreshes")
        ok = False
        try:
            await self._aload(key, generation=self._generation(key), refresh=True)
            ok = True
        except Exception as exc:
            self._refresh_failed_with(key, exc)
        finally:
            self._refresh_done(key, ok)

    def _refresh_failed_with(self, key: PromptKey, exc: Exception) -> None:
        self.counters.add("memory", "refresh_errors")
        if isinstance(exc, PromptNotFoundError):
            self.memory.invalidate(key)
        logger.warning("Background refresh of %s failed; serving the cached copy: %s", key, exc)

    def _refresh_done(self, key: PromptKey, ok: bool) -> None:
        with self._lock:
            self._refreshing.discard(key)
            if ok:
                self._refresh_failed.pop(key, None)
            else:
                self._refresh_failed[key] = time.monotonic()

    # -- shared steps -------------------------------------------------------------------------

    def _remember(
        self, key: PromptKey, prompt: ResolvedPrompt, generation: int, ttl: float | None = None
    ) -> ResolvedPrompt:
        if self._generation(key) == generation:  # not invalidated while this load ran
            self.memory.set(key, prompt.replace(source="memory"), ttl)
        return prompt

    def _served_from_redis(self, key: PromptKey, prompt: ResolvedPrompt, generation: int) -> ResolvedPrompt:
        self.counters.add("redis", "hits")
        return self._remember(key, prompt, generation)

    def _serve_stale(self, key: PromptKey, stale: ResolvedPrompt, generation: int) -> ResolvedPrompt:
        self.counters.add("redis", "stale_served")
        return self._remember(key, stale.replace(is_stale=True), generation, self.fallback_ttl)

    def _keep(self, key: PromptKey) -> ResolvedPrompt:
        """During a refresh whose key another process is fetching: keep what L1 has."""
        hit = self.memory.get(key)
        if hit is None:
            raise PromptUnavailableError(f"{key} is being fetched by another process")
        return hit.prompt

    def _local_served(self, key: PromptKey, prompt: ResolvedPrompt, fallback: bool, generation: int) -> ResolvedPrompt:
        self.counters.add("local", "fallbacks" if fallback else "hits")
        prompt = prompt.replace(is_fallback=fallback, label=key.label)
        return self._remember(key, prompt, generation, self.fallback_ttl if fallback else None)

    def _evict(self, key: PromptKey) -> None:
        self.counters.add("langfuse", "misses")
        self.memory.invalidate(key)
        if self.redis is not None:
            self.redis.delete(key)


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
