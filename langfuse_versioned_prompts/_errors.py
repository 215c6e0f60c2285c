"""The exception tree. Every error the library raises derives from ``LVPError``.

::

    LVPError
    ├── ConfigurationError (also ValueError)   bad arguments, settings, weights, labels
    ├── PromptFormatError (also ValueError)    a prompt file or payload that cannot be read
    ├── RenderError                            a template that cannot be rendered
    │   └── MissingVariableError (also KeyError) a variable the template needs was not given
    ├── PromptNotFoundError (also LookupError) the prompt, label or version does not exist
    └── PromptUnavailableError                 no layer could answer (Langfuse down, nothing cached)
        └── SourceUnavailableError             one source failed: 5xx, 429, timeout, circuit open
            └── SourceAuthError                Langfuse refused the keys (401/403)

Render errors are deliberately not ``ValueError``s: LlamaIndex's refine loop swallows those and
answers "Empty Response". A missing variable is a ``KeyError``, as in LangChain.

Backend errors (httpx, the Langfuse API client, redis-py) are mapped to these in one place per
source, with ``raise ... from exc`` so the original stays in ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Iterable


class LVPError(Exception):
    """Root of every error raised by langfuse-versioned-prompts."""


class ConfigurationError(LVPError, ValueError):
    """An argument or setting is invalid; the message names it and the accepted values."""


class PromptFormatError(LVPError, ValueError):
    """A prompt file or stored payload is malformed; the message names the file and the problem."""


class RenderError(LVPError):
    """A prompt could not be rendered with the given values."""


class MissingVariableError(RenderError, KeyError):
    """The template needs variables that the call did not give.

    >>> err = MissingVariableError(["city"], prompt="weather", version=3)
    >>> err.missing
    ('city',)
    """

    def __init__(self, missing: Iterable[str], *, prompt: str | None = None, version: int | None = None) -> None:
        self.missing = tuple(sorted(set(missing)))
        self.prompt = prompt
        self.version = version
        where = ""
        if prompt is not None:
            where = f" of prompt {prompt!r}" + (f" version {version}" if version is not None else "")
        names = ", ".join(repr(name) for name in self.missing)
        plural = "s" if len(self.missing) > 1 else ""
        self.message = (
            f"missing template variable{plural} {names}{where}: pass "
            f"{'them' if plural else 'it'} when rendering or invoking"
        )
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class PromptNotFoundError(LVPError, LookupError):
    """The prompt, or the asked label or version of it, does not exist in the source asked."""


class PromptUnavailableError(LVPError):
    """No layer could answer: the source failed and nothing was cached or stored locally."""


class SourceUnavailableError(PromptUnavailableError):
    """One source failed (server error, rate limit, timeout, dropped connection, open circuit)."""


class SourceAuthError(SourceUnavailableError):
    """Langfuse refused the credentials (HTTP 401 or 403)."""
