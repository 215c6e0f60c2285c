"""The layer walk behind ``PromptResolver``: loading, single flight and background refresh.

The policy it implements is written out in ``resolver.py``. The walk is written once, as a
generator that yields I/O steps (``Op``); a sync driver performs them with the sync clients and an
async driver with the asyncio ones, so both paths take exactly the same decisions. Every load notes the invalidation
generation of its prompt when it starts and writes nothing to L1 or L2 if the prompt was
invalidated meanwhile, so an invalidation is never undone by a fetch that was already under way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, NamedTuple, Protocol, cast

from ._counters import Counters
from ._errors import LVPError, PromptNotFoundError, PromptUnavailableError, SourceUnavailableError
from ._prompt import PromptKey, ResolvedPrompt
from .sources.langfuse import LangfuseSource
from .sources.local import LocalPromptStore
from .sources.memory import MemoryCache
from .sources.redis import RedisCache

logger = logging.getLogger(__name__)


class Executor(Protocol):
    """Where background refreshes run (a ``ThreadPoolExecutor`` by default)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any: ...


class Op(NamedTuple):
    """One I/O step of the layer walk, performed by the sync or the async driver."""

    kind: str
    key: PromptKey
    arg: Any = None


L2_GET, L2_LOCKED, L2_ACQUIRE, L2_RELEASE = "l2_get", "l2_locked", "l2_acquire", "l2_release"
L2_SET, L2_DELETE, FETCH, LOCAL_GET, SLEEP = "l2_set", "l2_delete", "fetch", "local_get", "sleep"

Plan = Generator[Op, Any, ResolvedPrompt]
"""The walk for one key: yields I/O steps, receives their results (or their errors), returns the prompt."""


class LayerWalk:
    """Loading through the layers, single flight and background refresh (state set by the resolver)."""

    memory: MemoryCache
    redis: RedisCache | None
    langfuse: LangfuseSource | None
    local: LocalPromptStore | None
    counters: Counters
    fallback_ttl: float
    refresh_backoff: float
    redis_wait: float
    _sleep: Callable[[float], None]
    _executor: Executor | None
    _flights: dict[PromptKey, concurrent.futures.Future[ResolvedPrompt]]
    _aflights: dict[tuple[int, PromptKey], asyncio.Task[ResolvedPrompt]]
    _generations: dict[str, int]
    _refreshing: set[PromptKey]
    _refresh_failed: dict[PromptKey, float]
    _tasks: set[asyncio.Task[None]]
    _lock: threading.Lock

    def _flight_done(self, flight_key: tuple[int, PromptKey], flight: asyncio.Task[ResolvedPrompt]) -> None:
        if self._aflights.get(flight_key) is flight:
            del self._aflights[flight_key]
        if not flight.cancelled():
            flight.exception()  # retrieved: no warning when every caller was cancelled

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
        return self._drive(self._plan_load(key, generation, refresh))

    async def _aload(self, key: PromptKey, *, generation: int, refresh: bool = False) -> ResolvedPrompt:
        return await self._adrive(self._plan_load(key, generation, refresh))

    # -- the walk, as a plan of I/O steps ----------------------------------------------------------

    def _plan_load(self, key: PromptKey, generation: int, refresh: bool) -> Plan:
        """L2, then Langfuse under the fleet lock, then local files: the policy in ``resolver.py``."""
        stale: ResolvedPrompt | None = None
        if self.redis is not None:
            hit = yield Op(L2_GET, key)
            if hit is not None and hit.fresh:
                return self._served_from_redis(key, hit.prompt, generation)
            stale = hit.prompt if hit is not None else None
            self.counters.add("redis", "misses")
        if self.langfuse is None:
            return (yield from self._plan_local(key, None, generation))
        token = (yield Op(L2_ACQUIRE, key)) if self.redis is not None else ""
        if token is None:  # another process is fetching this key
            if refresh:  # leave L1 as it is: the holder refreshes L2, the next stale read finds it
                return stale if stale is not None else self._keep(key)
            if stale is not None:
                return self._serve_stale(key, stale, generation)
            waited = yield from self._plan_wait(key, generation)
            if waited is not None:
                return waited
        try:
            prompt = yield Op(FETCH, key)
        except PromptNotFoundError:
            self.counters.add("langfuse", "misses")
            self.memory.invalidate(key)
            if self.redis is not None:
                yield Op(L2_DELETE, key)
            raise
        except SourceUnavailableError as exc:
            self.counters.add("langfuse", "errors")
            if refresh:
                raise
            if stale is not None:
                return self._serve_stale(key, stale, generation)
            return (yield from self._plan_local(key, exc, generation))
        else:
            self.counters.add("langfuse", "hits")
            if self.redis is not None and self._generation(key) == generation:
                yield Op(L2_SET, key, prompt)  # before the lock is released, so waiters find it
        finally:
            if token and self.redis is not None:
                yield Op(L2_RELEASE, key, token)
        return self._remember(key, prompt, generation)

    def _plan_wait(self, key: PromptKey, generation: int) -> Generator[Op, Any, ResolvedPrompt | None]:
        """Wait for the lock holder's L2 write; ``None``: fetch yourself (it gave up or is slow)."""
        deadline = time.monotonic() + self.redis_wait
        while time.monotonic() < deadline:
            yield Op(SLEEP, key, 0.01)
            hit = yield Op(L2_GET, key)
            if hit is None and not (yield Op(L2_LOCKED, key)):
                hit = yield Op(L2_GET, key)  # released between the two reads?
                if hit is None:
                    return None
            if hit is not None:
                return self._served_from_redis(key, hit.prompt, generation)
        return None

    def _plan_local(self, key: PromptKey, failure: Exception | None, generation: int) -> Plan:
        if self.local is None:
            raise PromptUnavailableError(
                f"cannot serve {key}: {failure}; nothing is cached and no local prompt store is set"
            ) from failure
        try:
            prompt = yield Op(LOCAL_GET, key)
        except LVPError as exc:
            self.counters.add("local", "misses")
            if failure is None:
                raise
            raise PromptUnavailableError(
                f"cannot serve {key}: {failure}; nothing is cached and the local store has no copy ({exc})"
            ) from failure
        return self._local_served(key, prompt, failure is not None, generation)

    # -- the drivers: the same plan, sync or async -------------------------------------------------

    def _drive(self, plan: Plan) -> ResolvedPrompt:
        reply: Any = None
        error: Exception | None = None
        while True:
            try:
                op = plan.throw(error) if error is not None else plan.send(reply)
            except StopIteration as done:
                return cast(ResolvedPrompt, done.value)
            reply, error = None, None
            try:
                reply = self._perform(op)
            except Exception as exc:
                error = exc
            except BaseException:
                _abandon(plan)
                raise

    async def _adrive(self, plan: Plan) -> ResolvedPrompt:
        reply: Any = None
        error: Exception | None = None
        while True:
            try:
                op = plan.throw(error) if error is not None else plan.send(reply)
            except StopIteration as done:
                return cast(ResolvedPrompt, done.value)
            reply, error = None, None
            try:
                reply = await self._aperform(op)
            except Exception as exc:
                error = exc
            except BaseException:  # cancelled: a fleet lock it held expires after its TTL
                _abandon(plan)
                raise

    def _perform(self, op: Op) -> Any:
        redis, key = cast(RedisCache, self.redis), op.key
        match op.kind:
            case "l2_get":
                return redis.get(key)
            case "l2_locked":
                return redis.locked(key)
            case "l2_acquire":
                return redis.acquire(key)
            case "l2_release":
                return redis.release(key, op.arg)
            case "l2_set":
                return redis.set(key, op.arg)
            case "l2_delete":
                return redis.delete(key)
            case "fetch":
                return cast(LangfuseSource, self.langfuse).fetch(key)
            case "local_get":
                return cast(LocalPromptStore, self.local).get(key)
            case "sleep":
                return self._sleep(op.arg)
        raise AssertionError(f"unknown step {op.kind!r}")

    async def _aperform(self, op: Op) -> Any:
        redis, key = cast(RedisCache, self.redis), op.key
        match op.kind:
            case "l2_get":
                return await redis.aget(key)
            case "l2_locked":
                return await redis.alocked(key)
            case "l2_acquire":
                return await redis.aacquire(key)
            case "l2_release":
                return await redis.arelease(key, op.arg)
            case "l2_set":
                return await redis.aset(key, op.arg)
            case "l2_delete":
                return await redis.adelete(key)
            case "fetch":
                return await cast(LangfuseSource, self.langfuse).afetch(key)
            case "local_get":
                return await cast(LocalPromptStore, self.local).aget(key)
            case "sleep":
                return await asyncio.sleep(op.arg)
        raise AssertionError(f"unknown step {op.kind!r}")

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


def _abandon(plan: Plan) -> None:
    """Close a plan interrupted mid-walk (its ``finally`` steps cannot run without a driver)."""
    with contextlib.suppress(RuntimeError):
        plan.close()
