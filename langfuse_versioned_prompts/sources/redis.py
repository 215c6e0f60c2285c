"""L2: resolved prompts shared by every process of a fleet through Redis.

Keys (all under one prefix; the escaped prompt name is a hash tag, so one prompt's keys share a
Redis Cluster slot and can be read together)::

    lvp:{<quoted name>}:label:<label>          JSON payload, kept for the stale TTL (7 days)
    lvp:{<quoted name>}:version:<n>            same, for a pinned version
    lvp:{<quoted name>}:label:<label>:fresh    the same payload, with the freshness TTL (15 minutes)
    lvp:{<quoted name>}:label:<label>:lock     fleet-wide single-flight lock (SET NX PX)
    lvp:{<quoted name>}:keys                   set of this prompt's payload keys, for invalidation
    lvp:{<quoted name>}:dependents             payload keys of prompts embedding this one

Freshness lives in Redis's own key expiry, so processes need no shared wall clock, and a fresh hit
is one GET, like reading the payload by hand; only an expired entry costs a second GET. Every Redis
failure (down, slow, garbage) is counted and turns into a miss; after a failure the layer is
skipped for ``retry_after`` seconds so a dead Redis costs one timeout per interval, not per call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from .._errors import ConfigurationError, LVPError
from .._prompt import PromptKey, ResolvedPrompt
from .._settings import (
    REDIS_LOCK_TTL_SECONDS,
    REDIS_PREFIX,
    REDIS_SOCKET_TIMEOUT_SECONDS,
    REDIS_STALE_TTL_SECONDS,
    REDIS_TTL_SECONDS,
)
from .memory import Lookup, check_ttl, referenced_names

logger = logging.getLogger(__name__)

SCHEMA = 1
"""Version of the JSON payload; entries of another schema are treated as misses and replaced."""

_DECODED_MAX = 4096
"""Bound of the per-key memos (Redis key strings, decoded payloads)."""

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("RedisCache needs redis-py: pip install 'langfuse-versioned-prompts[redis]'") from exc
    return redis


class RedisCache:
    """Shared L2 cache over sync ``redis.Redis`` and ``redis.asyncio.Redis``.

    >>> cache = RedisCache.from_url("redis://127.0.0.1:6379/0", ttl=600)   # doctest: +SKIP
    """

    def __init__(
        self,
        client: Any = None,
        *,
        async_client: Any = None,
        url: str | None = None,
        prefix: str = REDIS_PREFIX,
        ttl: float = REDIS_TTL_SECONDS,
        stale_ttl: float = REDIS_STALE_TTL_SECONDS,
        lock_ttl: float = REDIS_LOCK_TTL_SECONDS,
        socket_timeout: float = REDIS_SOCKET_TIMEOUT_SECONDS,
        retry_after: float = 1.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if client is None and async_client is None and url is None:
            raise ConfigurationError("RedisCache needs a client, an async_client or a url")
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(f"RedisCache prefix must be non-empty and brace-free, got {prefix!r}")
        self.url = url
        self.prefix = prefix
        self.ttl = check_ttl(ttl, "RedisCache ttl")
        self.stale_ttl = max(check_ttl(stale_ttl, "RedisCache stale_ttl"), self.ttl)
        self.lock_ttl = check_ttl(lock_ttl, "RedisCache lock_ttl")
        self.socket_timeout = check_ttl(socket_timeout, "RedisCache socket_timeout")
        self.retry_after = retry_after
        self.timer = timer
        self._client = client
        self._async_clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}
        self._given_async_client = async_client
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._decoded: dict[PromptKey, tuple[bytes | str, ResolvedPrompt]] = {}
        self._keys: dict[PromptKey, str] = {}
        self.errors = 0
        self.corrupt = 0

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisCache:
        """A cache on the Redis at ``url`` with short timeouts and no client-side retries."""
        return cls(url=url, **kwargs)

    # -- clients -----------------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        _import_redis()
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_timeout,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        }

    @property
    def client(self) -> Any:
        """The sync client (created from ``url`` on first use)."""
        if self._client is None:
            if self.url is None:
                raise ConfigurationError("RedisCache was given only an async client; use the async methods")
            with self._lock:
                if self._client is None:
                    self._client = _import_redis().Redis.from_url(self.url, **self._client_options())
        return self._client

    def _async_client(self) -> Any:
        """The asyncio client of the running loop (redis.asyncio connections belong to one loop)."""
        if self._given_async_client is not None:
            return self._given_async_client
        if self.url is None:
            raise ConfigurationError("RedisCache was given only a sync client; use the sync methods")
        loop = asyncio.get_running_loop()
        held = self._async_clients.get(id(loop))
        if held is None or held[0] is not loop:
            from redis import asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            options = self._client_options() | {"retry": Retry(NoBackoff(), 0)}
            held = (loop, aioredis.Redis.from_url(self.url, **options))
            self._async_clients = {k: v for k, v in self._async_clients.items() if not v[0].is_closed()}
            self._async_clients[id(loop)] = held
        return held[1]

    # -- keys and payloads ---------------------------------------------------------------------

    def tag(self, name: str) -> str:
        """The hash-tagged prefix of every key of prompt ``name``."""
        return f"{self.prefix}:{{{quote(name, safe='')}}}"

    def key(self, key: PromptKey) -> str:
        """The Redis key holding the payload of ``key``."""
        try:
            return self._keys[key]
        except KeyError:
            pass
        if key.version is not None:
            redis_key = f"{self.tag(key.name)}:version:{key.version}"
        else:
            redis_key = f"{self.tag(key.name)}:label:{key.label}"
        if len(self._keys) >= _DECODED_MAX:
            self._keys.clear()
        self._keys[key] = redis_key
        return redis_key

    @staticmethod
    def encode(prompt: ResolvedPrompt) -> str:
        """The JSON payload stored for ``prompt``."""
        return json.dumps({"schema": SCHEMA, "prompt": prompt.to_dict()}, separators=(",", ":"))

    def decode(self, key: PromptKey, raw: bytes | str) -> ResolvedPrompt | None:
        """The prompt in a payload, or ``None`` (counted as corrupt) when it cannot be read.

        Prompts are immutable, so the last decoding of each key is reused while the bytes match.
        """
        seen = self._decoded.get(key)
        if seen is not None and seen[0] == raw:
            return seen[1]
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("schema") != SCHEMA:
                raise ValueError(f"unknown payload schema {data.get('schema') if isinstance(data, dict) else data!r}")
            prompt = ResolvedPrompt.from_dict(data["prompt"], label=key.label, source="redis")
            if prompt.name != key.name or (key.version is not None and prompt.version != key.version):
                raise ValueError("payload belongs to another prompt")
        except (LVPError, ValueError, TypeError, KeyError) as exc:
            self.corrupt += 1
            logger.warning("Corrupt Redis entry %s (%s); it will be replaced", self.key(key), exc)
            return None
        if len(self._decoded) >= _DECODED_MAX:
            self._decoded.clear()
        self._decoded[key] = (raw, prompt)
        return prompt

    # -- failure handling ------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False while the layer is being skipped after a failure."""
        return self.timer() >= self._down_until

    def _failed(self, action: str, exc: BaseException) -> None:
        if isinstance(exc, ConfigurationError):  # a missing client is a mistake, not an outage
            raise exc
        self.errors += 1
        self._down_until = self.timer() + self.retry_after
        logger.warning("Redis %s failed, skipping L2 for %.1fs: %r", action, self.retry_after, exc)

    def _plan_set(
        self, key: PromptKey, prompt: ResolvedPrompt, ttl: float | None
    ) -> tuple[str, str, int | None, int | None]:
        data_key = self.key(key)
        if key.pinned and prompt.is_pinned_immutable:
            return data_key, self.encode(prompt), None, None
        fresh_ms = int((self.ttl if ttl is None else ttl) * 1000)
        return data_key, self.encode(prompt), max(1, fresh_ms), int(self.stale_ttl * 1000)

    # -- sync ---------------------------------------------------------------------------------

    def get(self, key: PromptKey) -> Lookup | None:
        """The cached prompt and whether it is fresh; ``None`` on a miss or any Redis failure."""
        if not self.available:
            return None
        data_key = self.key(key)
        try:
            raw = self.client.get(data_key + ":fresh")
            fresh = raw is not None
            if raw is None:
                raw = self.client.get(data_key)
        except Exception as exc:
            self._failed("GET", exc)
            return None
        if raw is None:
            return None
        prompt = self.decode(key, raw)
        if prompt is None:
            self.delete(key)
            return None
        return Lookup(prompt, fresh)

    def set(self, key: PromptKey, prompt: ResolvedPrompt, ttl: float | None = None) -> bool:
        """Store ``prompt``; True when Redis took it."""
        if not self.available:
            return False
        data_key, payload, fresh_ms, stale_ms = self._plan_set(key, prompt, ttl)
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.set(data_key, payload, px=stale_ms)
            pipe.set(data_key + ":fresh", payload, px=fresh_ms)
            pipe.sadd(self.tag(key.name) + ":keys", data_key)
            pipe.execute()
            for name in referenced_names(prompt):  # another slot in a cluster: outside the MULTI
                self.client.sadd(self.tag(name) + ":dependents", data_key)
        except Exception as exc:
            self._failed("SET", exc)
            return False
        return True

    def delete(self, key: PromptKey) -> None:
        """Drop exactly ``key``."""
        data_key = self.key(key)
        try:
            self.client.delete(data_key, data_key + ":fresh")
        except Exception as exc:
            self._failed("DEL", exc)

    def invalidate_prompt(self, name: str) -> int:
        """Drop every cached key of prompt ``name`` and of the prompts embedding it.

        Returns how many payloads were dropped. Keys of one prompt share a cluster slot, so each
        prompt's keys are deleted in a call of their own.
        """
        dropped = 0
        try:
            for index in (self.tag(name) + ":keys", self.tag(name) + ":dependents"):
                members = sorted(m.decode() if isinstance(m, bytes) else m for m in self.client.smembers(index))
                for member in members:
                    dropped += self.client.delete(member, member + ":fresh") > 0
                self.client.delete(index)
        except Exception as exc:
            self._failed("invalidate", exc)
        return dropped

    def acquire(self, key: PromptKey) -> str | None:
        """Take the fleet-wide fetch lock of ``key``: a token, or ``None`` if another holds it.

        When Redis is unavailable every process may fetch: a token is returned.
        """
        token = secrets.token_hex(8)
        if not self.available:
            return token
        try:
            taken = self.client.set(self.key(key) + ":lock", token, nx=True, px=int(self.lock_ttl * 1000))
        except Exception as exc:
            self._failed("lock", exc)
            return token
        return token if taken else None

    def locked(self, key: PromptKey) -> bool:
        """Whether some process holds the fetch lock of ``key`` (False when Redis fails)."""
        try:
            return bool(self.client.exists(self.key(key) + ":lock"))
        except Exception as exc:
            self._failed("EXISTS", exc)
            return False

    def release(self, key: PromptKey, token: str) -> None:
        """Give back the lock of ``key`` if this token still holds it (tried even after a failure)."""
        try:
            self.client.eval(_RELEASE, 1, self.key(key) + ":lock", token)
        except Exception as exc:
            self._failed("unlock", exc)

    # -- async --------------------------------------------------------------------------------

    async def aget(self, key: PromptKey) -> Lookup | None:
        """Async twin of ``get``."""
        if not self.available:
            return None
        data_key = self.key(key)
        try:
            raw = await self._async_client().get(data_key + ":fresh")
            fresh = raw is not None
            if raw is None:
                raw = await self._async_client().get(data_key)
        except Exception as exc:
            self._failed("GET", exc)
            return None
        if raw is None:
            return None
        prompt = self.decode(key, raw)
        if prompt is None:
            await self.adelete(key)
            return None
        return Lookup(prompt, fresh)

    async def aset(self, key: PromptKey, prompt: ResolvedPrompt, ttl: float | None = None) -> bool:
        """Async twin of ``set``."""
        if not self.available:
            return False
        data_key, payload, fresh_ms, stale_ms = self._plan_set(key, prompt, ttl)
        try:
            pipe = self._async_client().pipeline(transaction=True)
            pipe.set(data_key, payload, px=stale_ms)
            pipe.set(data_key + ":fresh", payload, px=fresh_ms)
            pipe.sadd(self.tag(key.name) + ":keys", data_key)
            await pipe.execute()
            for name in referenced_names(prompt):
                await self._async_client().sadd(self.tag(name) + ":dependents", data_key)
        except Exception as exc:
            self._failed("SET", exc)
            return False
        return True

    async def adelete(self, key: PromptKey) -> None:
        """Async twin of ``delete``."""
        data_key = self.key(key)
        try:
            await self._async_client().delete(data_key, data_key + ":fresh")
        except Exception as exc:
            self._failed("DEL", exc)

    async def aacquire(self, key: PromptKey) -> str | None:
        """Async twin of ``acquire``."""
        token = secrets.token_hex(8)
        if not self.available:
            return token
        try:
            taken = await self._async_client().set(
                self.key(key) + ":lock", token, nx=True, px=int(self.lock_ttl * 1000)
            )
        except Exception as exc:
            self._failed("lock", exc)
            return token
        return token if taken else None

    async def alocked(self, key: PromptKey) -> bool:
        """Async twin of ``locked``."""
        try:
            return bool(await self._async_client().exists(self.key(key) + ":lock"))
        except Exception as exc:
            self._failed("EXISTS", exc)
            return False

    async def arelease(self, key: PromptKey, token: str) -> None:
        """Async twin of ``release``."""
        try:
            await self._async_client().eval(_RELEASE, 1, self.key(key) + ":lock", token)
        except Exception as exc:
            self._failed("unlock", exc)

    def close(self) -> None:
        """Close the sync client's connections."""
        if self._client is not None:
            self._client.close()
