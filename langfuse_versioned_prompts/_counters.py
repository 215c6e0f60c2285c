"""Per-layer counters of a resolver."""

from __future__ import annotations

import threading

LAYERS = ("memory", "redis", "langfuse", "local")
EVENTS = ("hits", "misses", "stale_served", "errors", "refreshes", "refresh_errors", "fallbacks")


class Counters:
    """Thread-safe event counts per layer, read as a nested dict.

    >>> c = Counters(); c.add("memory", "hits"); c.snapshot()["memory"]["hits"]
    1
    """

    __slots__ = ("_counts", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {(layer, event): 0 for layer in LAYERS for event in EVENTS}

    def add(self, layer: str, event: str, n: int = 1) -> None:
        """Count ``n`` events of one kind at one layer."""
        with self._lock:
            self._counts[layer, event] += n

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{layer: {event: count}}`` with every layer and event present."""
        with self._lock:
            counts = dict(self._counts)
        return {layer: {event: counts[layer, event] for event in EVENTS} for layer in LAYERS}

    def reset(self) -> None:
        """Set every count back to zero."""
        with self._lock:
            for key in self._counts:
                self._counts[key] = 0
