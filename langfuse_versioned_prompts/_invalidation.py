"""Fleet-wide invalidation of L1 through Redis pub/sub.

Whoever learns that a prompt changed (the webhook receiver, ``lvp cache invalidate``) deletes the
prompt's L2 keys, then publishes the prompt name on a channel (``lvp:invalidate`` by default).
Every process runs an ``InvalidationSubscriber`` that drops that prompt from its L1 (and the
prompts embedding it) as soon as the message arrives; its next request reads Redis or Langfuse.

The message is the bare prompt name (UTF-8), so any tool can send one::

    redis-cli PUBLISH lvp:invalidate support/triage

Pub/sub delivers at most once: messages published while a subscriber is disconnected are lost. So
after the subscriber reconnects it clears its whole L1 (``clear_on_reconnect``), which costs one
read from L2 per prompt and never serves a version it may have missed an invalidation for.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from .resolver import PromptResolver

logger = logging.getLogger(__name__)

DEFAULT_CHANNEL = "lvp:invalidate"
"""The Redis pub/sub channel carrying the names of prompts to drop from L1."""


def publish_invalidation(client: Any, name: str, channel: str = DEFAULT_CHANNEL) -> int:
    """Publish ``name`` on ``channel`` with a sync redis-py client; returns how many received it.

    Redis errors propagate (the caller decides whether a failed broadcast is an error).
    """
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"prompt name must be a non-empty string, got {name!r}")
    return int(client.publish(channel, name.encode("utf-8")))


class InvalidationSubscriber:
    """Drop prompts from a resolver's L1 when their names are published on the channel.

    Runs one daemon thread. Redis failures never reach the application: the thread reconnects
    with exponential backoff (``backoff`` doubling up to ``max_backoff`` seconds), and after a
    reconnect clears the resolver's L1 (messages sent meanwhile are lost).

    >>> subscriber = InvalidationSubscriber(resolver, "redis://127.0.0.1:6379/0")  # doctest: +SKIP
    >>> subscriber.start().wait_ready(2.0)                                         # doctest: +SKIP
    True
    >>> subscriber.stop()                                                          # doctest: +SKIP
    """

    def __init__(
        self,
        resolver: PromptResolver,
        redis_url: str | None = None,
        channel: str = DEFAULT_CHANNEL,
        *,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        poll_interval: float = 0.2,
        clear_on_reconnect: bool = True,
    ) -> None:
        url = redis_url or getattr(resolver.redis, "url", None)
        if not url:
            raise ConfigurationError(
                "InvalidationSubscriber needs a redis_url (or a resolver whose RedisCache has a url)"
            )
        if not channel:
            raise ConfigurationError("InvalidationSubscriber channel must be a non-empty string")
        self.resolver = resolver
        self.redis_url: str = url
        self.channel = channel
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.poll_interval = poll_interval
        self.clear_on_reconnect = clear_on_reconnect
        self.received = 0
        """Invalidation messages handled so far."""
        self.reconnects = 0
        """Times the subscription was re-established after a failure."""
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> InvalidationSubscriber:
        """Start the listening thread (a no-op when running); returns ``self``."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"lvp-invalidation:{self.channel}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop listening and wait up to ``timeout`` seconds for the thread to end."""
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._ready.clear()

    @property
    def ready(self) -> bool:
        """True while subscribed (Redis confirmed the subscription)."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until subscribed or ``timeout``; True when subscribed."""
        return self._ready.wait(timeout)

    def __enter__(self) -> InvalidationSubscriber:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.backoff
        lost = False
        while not self._stop.is_set():
            client = pubsub = None
            try:
                client, pubsub = self._subscribe()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=self.poll_interval)
                    if message is None:
                        continue
                    if message.get("type") == "subscribe":
                        if lost:
                            self._recovered()
                        lost = False
                        delay = self.backoff
                        self._ready.set()
                    elif message.get("type") == "message":
                        self._handle(message.get("data"))
            except Exception as exc:  # any Redis or socket failure: reconnect, never raise
                self._ready.clear()
                if self._stop.is_set():
                    break
                lost = True
                logger.warning(
                    "Invalidation subscriber lost Redis (%s: %s); reconnecting in %.1fs",
                    type(exc).__name__, exc, delay,
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self.max_backoff)
            finally:
                _close(pubsub)
                _close(client)
        self._ready.clear()

    def _subscribe(self) -> tuple[Any, Any]:
        import redis

        client: Any = redis.Redis.from_url(
            self.redis_url, socket_connect_timeout=1.0, socket_timeout=5.0,
            socket_keepalive=True, health_check_interval=5,
        )
        pubsub = client.pubsub()
        pubsub.subscribe(self.channel)
        return client, pubsub

    def _recovered(self) -> None:
        self.reconnects += 1
        if self.clear_on_reconnect:
            try:
                self.resolver.memory.clear()
            except Exception:  # never raise into the app
                logger.exception("Clearing L1 after reconnecting to Redis failed")
        logger.info("Invalidation subscriber reconnected to Redis; L1 cleared")

    def _handle(self, data: object) -> None:
        try:
            name = data.decode("utf-8") if isinstance(data, bytes) else str(data)
        except UnicodeDecodeError:
            logger.warning("Ignoring an invalidation message that is not UTF-8: %r", data)
            return
        if not name:
            return
        self.received += 1
        try:
            self.resolver.invalidate_prompt(name, redis=False)
        except Exception:  # never raise into the app
            logger.exception("Invalidating prompt %r from L1 failed", name)
        else:
            logger.debug("Invalidated prompt %r from L1", name)


def _close(resource: Any) -> None:
    """Close a redis-py client or pubsub, ignoring errors."""
    if resource is None:
        return
    try:
        resource.close()
    except Exception:  # closing a broken connection may fail; nothing to do
        logger.debug("Closing %r failed", resource, exc_info=True)
