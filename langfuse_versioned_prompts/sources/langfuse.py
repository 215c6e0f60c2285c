"""L3: prompts fetched from Langfuse through the official SDK's API client.

The SDK's own prompt cache is bypassed (this library caches in L1/L2), each fetch makes one
request with a short timeout and no retries (the SDK default retries a 500 for about ten seconds),
and a circuit breaker stops calling a Langfuse that keeps failing.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

from .._breaker import CircuitBreaker
from .._errors import (
    ConfigurationError,
    LVPError,
    PromptNotFoundError,
    SourceAuthError,
    SourceUnavailableError,
)
from .._prompt import PromptKey, ResolvedPrompt
from .._settings import LANGFUSE_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from langfuse import Langfuse

logger = logging.getLogger(__name__)


class LangfuseSource:
    """Fetch prompt versions from Langfuse.

    >>> from langfuse import Langfuse                                  # doctest: +SKIP
    >>> source = LangfuseSource(Langfuse(), timeout=1.5)               # doctest: +SKIP
    >>> source.fetch(PromptKey.create("support", label="staging"))     # doctest: +SKIP
    """

    def __init__(
        self,
        client: Langfuse,
        *,
        timeout: float = LANGFUSE_TIMEOUT_SECONDS,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if not timeout > 0:
            raise ConfigurationError(f"LangfuseSource timeout must be > 0 seconds, got {timeout!r}")
        self.client = client
        self.timeout = float(timeout)
        self.breaker = breaker or CircuitBreaker()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> LangfuseSource | None:
        """A source for the Langfuse named by LANGFUSE_* variables, or ``None`` when keys are unset.

        From the process environment it shares the application's client (``langfuse.get_client()``).
        """
        env = os.environ if environ is None else environ
        public_key, secret_key = env.get("LANGFUSE_PUBLIC_KEY"), env.get("LANGFUSE_SECRET_KEY")
        if not (public_key and secret_key):
            return None
        if environ is None or environ is os.environ:
            from langfuse import get_client

            return cls(get_client(), **kwargs)
        from langfuse import Langfuse

        base_url = env.get("LANGFUSE_BASE_URL") or env.get("LANGFUSE_HOST")
        return cls(Langfuse(public_key=public_key, secret_key=secret_key, base_url=base_url), **kwargs)

    def _request(self, key: PromptKey) -> tuple[str, dict[str, Any]]:
        if not self.breaker.allow():
            raise SourceUnavailableError(
                f"Langfuse circuit is open after repeated failures; not fetching {key} "
                f"(next try in {self.breaker.retry_in():.1f}s)"
            )
        options: dict[str, Any] = {"timeout_in_seconds": self.timeout, "max_retries": 0}
        return quote(key.name, safe=""), {
            "version": key.version,
            "label": key.label,
            "request_options": options,
        }

    def fetch(self, key: PromptKey) -> ResolvedPrompt:
        """One request to Langfuse for ``key``; errors mapped to the library's own."""
        name, kwargs = self._request(key)
        try:
            response = self.client.api.prompts.get(name, **kwargs)
        except Exception as exc:
            self._fail(key, exc)
        except BaseException:  # interrupted: no verdict on Langfuse
            self.breaker.abandon_trial()
            raise
        return self._succeed(key, response)

    async def afetch(self, key: PromptKey) -> ResolvedPrompt:
        """Async twin of ``fetch`` on the SDK's async API client."""
        name, kwargs = self._request(key)
        try:
            response = await self.client.async_api.prompts.get(name, **kwargs)
        except Exception as exc:
            self._fail(key, exc)
        except BaseException:  # cancelled: no verdict on Langfuse
            self.breaker.abandon_trial()
            raise
        return self._succeed(key, response)

    def _succeed(self, key: PromptKey, response: Any) -> ResolvedPrompt:
        try:
            data = response.dict(by_alias=True) if hasattr(response, "dict") else dict(response)
            prompt = ResolvedPrompt.from_dict(data, label=key.label, source="langfuse", origin=f"Langfuse {key}")
        except (LVPError, TypeError, ValueError) as exc:
            self.breaker.record_failure()
            raise SourceUnavailableError(f"Langfuse answered {key} with an unreadable prompt: {exc}") from exc
        self.breaker.record_success()
        return prompt

    def _fail(self, key: PromptKey, exc: Exception) -> NoReturn:
        status = getattr(exc, "status_code", None)
        if status == 404:
            self.breaker.record_success()  # the server answered
            raise PromptNotFoundError(f"Langfuse has no prompt {key}: {_message(exc)}") from exc
        if status in (401, 403):
            self.breaker.record_success()
            raise SourceAuthError(
                f"Langfuse refused the credentials (HTTP {status}) fetching {key}: check "
                "LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and LANGFUSE_BASE_URL"
            ) from exc
        if status == 400:
            self.breaker.record_success()
            raise ConfigurationError(f"Langfuse rejected the request for {key}: {_message(exc)}") from exc
        self.breaker.record_failure()
        if status is not None and 200 <= status < 300:
            raise SourceUnavailableError(
                f"Langfuse answered {key} with an unreadable response (HTTP {status}): {_message(exc)[:80]}"
            ) from exc
        what = f"HTTP {status}" if status is not None else type(exc).__name__
        logger.debug("Langfuse fetch of %s failed: %s", key, exc)
        raise SourceUnavailableError(f"Langfuse could not serve {key}: {what}: {_message(exc)}") from exc


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    if isinstance(body, str):
        try:
            return str(json.loads(body).get("message", body))
        except (ValueError, AttributeError):
            return body[:200]
    return str(exc)[:200] or type(exc).__name__
