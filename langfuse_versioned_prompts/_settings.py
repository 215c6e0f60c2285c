"""Defaults and environment settings: the one place each default is written down."""

from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_LABEL = "production"
"""Label asked for when a request names neither label nor version (overridden by LVP_DEFAULT_LABEL)."""

MEMORY_TTL_SECONDS = 300.0
"""L1 freshness: 5 minutes."""

MEMORY_MAX_ENTRIES = 1024
"""L1 bound: least recently used entries are dropped beyond this."""

REDIS_TTL_SECONDS = 900.0
"""L2 freshness: 15 minutes."""

REDIS_STALE_TTL_SECONDS = 7 * 24 * 3600.0
"""How long L2 keeps an expired entry to serve while Langfuse is down: 7 days."""

REDIS_PREFIX = "lvp"
"""Every Redis key the library writes starts with this prefix."""

REDIS_SOCKET_TIMEOUT_SECONDS = 0.25
"""A Redis call slower than this counts as a Redis failure and the layer is skipped."""

REDIS_LOCK_TTL_SECONDS = 5.0
"""Fleet-wide single flight: how long one process may hold the fetch lock of a key."""

REDIS_WAIT_SECONDS = 2.0
"""Fleet-wide single flight: how long others wait for the lock holder before fetching themselves."""

LANGFUSE_TIMEOUT_SECONDS = 2.0
"""One Langfuse prompt fetch: no retries, this timeout."""

BREAKER_FAILURES = 5
"""Consecutive Langfuse failures that open the circuit breaker."""

BREAKER_RESET_SECONDS = 30.0
"""How long an open circuit stays open before one trial call is let through."""

LOCAL_PROMPTS_DIR = "prompts"
"""Directory of local prompt files when LVP_PROMPTS_DIR is not set."""


def default_label(environ: Mapping[str, str] | None = None) -> str:
    """The deployment's default label: LVP_DEFAULT_LABEL, else ``production``."""
    env = os.environ if environ is None else environ
    return env.get("LVP_DEFAULT_LABEL") or DEFAULT_LABEL
