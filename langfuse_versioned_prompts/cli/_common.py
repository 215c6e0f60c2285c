"""What every ``lvp`` command shares: connection settings, error handling, output."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, NoReturn, TypeVar, cast

import typer
from rich.console import Console

from .._errors import ConfigurationError, LVPError, SourceUnavailableError
from ..ops import ADMIN_TIMEOUT_SECONDS, PromptAdmin
from ..sources.redis import RedisCache

PANEL = "Connection"

LangfuseUrlOption = Annotated[str | None, typer.Option(
    "--langfuse-url", help="Langfuse base URL (default: $LANGFUSE_BASE_URL, else $LANGFUSE_HOST)",
    rich_help_panel=PANEL, show_default=False)]
PublicKeyOption = Annotated[str | None, typer.Option(
    "--public-key", help="Langfuse public key (default: $LANGFUSE_PUBLIC_KEY)",
    rich_help_panel=PANEL, show_default=False)]
SecretKeyOption = Annotated[str | None, typer.Option(
    "--secret-key", help="Langfuse secret key (default: $LANGFUSE_SECRET_KEY)",
    rich_help_panel=PANEL, show_default=False)]
RedisUrlOption = Annotated[str | None, typer.Option(
    "--redis-url", help="Redis URL, e.g. redis://127.0.0.1:6379/0 (default: $REDIS_URL)",
    rich_help_panel=PANEL, show_default=False)]
TimeoutOption = Annotated[float | None, typer.Option(
    "--timeout", help=f"Seconds per Langfuse request (default: {ADMIN_TIMEOUT_SECONDS:g})",
    rich_help_panel=PANEL, show_default=False, min=0.1)]


@dataclass(frozen=True)
class Connection:
    """Where Langfuse and Redis are: flags first, then the root command's flags, then the env."""

    langfuse_url: str | None = None
    public_key: str | None = None
    secret_key: str | None = None
    redis_url: str | None = None
    timeout: float = ADMIN_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls) -> Connection:
        """Settings from LANGFUSE_BASE_URL (or LANGFUSE_HOST), LANGFUSE_*_KEY and REDIS_URL."""
        env = os.environ
        return cls(
            langfuse_url=env.get("LANGFUSE_BASE_URL") or env.get("LANGFUSE_HOST") or None,
            public_key=env.get("LANGFUSE_PUBLIC_KEY") or None,
            secret_key=env.get("LANGFUSE_SECRET_KEY") or None,
            redis_url=env.get("REDIS_URL") or None,
        )

    def override(self, **values: Any) -> Connection:
        """A copy with the given (not ``None``) values replacing these."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def has_langfuse(self) -> bool:
        """True when both Langfuse keys are set."""
        return bool(self.public_key and self.secret_key)

    def langfuse_client(self) -> Any:
        """A Langfuse SDK client (tracing off); ``ConfigurationError`` when keys are missing."""
        return self.admin().client

    def admin(self) -> PromptAdmin:
        """A ``PromptAdmin`` on Langfuse; ``ConfigurationError`` when keys are missing."""
        if not (self.public_key and self.secret_key):
            missing = " and ".join(
                name for name, value in (("LANGFUSE_PUBLIC_KEY", self.public_key),
                                         ("LANGFUSE_SECRET_KEY", self.secret_key)) if not value
            )
            raise ConfigurationError(
                f"Langfuse keys are missing: set {missing} (or pass --public-key and --secret-key)"
            )
        return PromptAdmin.connect(public_key=self.public_key, secret_key=self.secret_key,
                                   base_url=self.langfuse_url, timeout=self.timeout)

    def redis_cache(self, **options: Any) -> RedisCache:
        """The fleet's ``RedisCache``, checked with PING; errors say what to fix."""
        if not self.redis_url:
            raise ConfigurationError("no Redis configured: set REDIS_URL or pass --redis-url")
        cache = RedisCache.from_url(self.redis_url, **options)
        try:
            cache.client.ping()
        except Exception as exc:
            raise SourceUnavailableError(
                f"cannot reach Redis at {_redact(self.redis_url)}: {type(exc).__name__}: {exc}"
            ) from exc
        return cache


def connection(ctx: typer.Context, **flags: Any) -> Connection:
    """The connection for a command: its own flags over the root command's over the env."""
    root = ctx.find_root().obj
    base = root.get("connection") if isinstance(root, dict) else None
    return (base if isinstance(base, Connection) else Connection.from_env()).override(**flags)


def _redact(url: str) -> str:
    """``url`` without a password."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user + ':***' if ':' in creds else user}@{host}"
    return url


# -- output ------------------------------------------------------------------------------------


def out() -> Console:
    """The console for results (stdout); markup off: names and prompts print verbatim."""
    return Console(highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(code)


F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(function: F) -> F:
    """Turn expected failures into one line on stderr and exit status 1 (no traceback).

    Expected: every ``LVPError``, Redis errors, connection and file-system errors.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except LVPError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted", code=130)
        except Exception as exc:
            if not _expected(exc):
                raise
            fail(f"{type(exc).__name__}: {exc}")

    return cast(F, wrapper)  # functools.wraps keeps the signature that typer reads


def _expected(exc: BaseException) -> bool:
    """Connection and I/O failures: Redis errors, httpx errors, OSError."""
    if isinstance(exc, OSError):
        return True
    module = type(exc).__module__
    return module.startswith(("redis.", "httpx", "httpcore"))
