"""``lvp``: operate versioned Langfuse prompts.

Commands: push, pull, log, diff (prompt files <-> Langfuse), promote, rollback (labels, with a
label history kept in Langfuse as the text prompt ``lvp-label-history/<name>``), cache warm /
invalidate (Redis L2 + pub/sub), webhook serve (fleet invalidation), ab (A/B statistics; needs the
``stats`` extra).

Connection: LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY, LANGFUSE_BASE_URL (or LANGFUSE_HOST),
REDIS_URL; or the flags ``--public-key --secret-key --langfuse-url --redis-url`` on the command
(or before it). Exit status: 0 on success, 1 with a one-line ``error: ...`` on stderr for an
expected failure (bad input, unknown prompt, Langfuse or Redis unreachable), 2 for usage errors.
"""

from __future__ import annotations

from typing import Any

import typer

from . import _cache, _labels, _prompts, _webhook
from ._common import (
    Connection,
    LangfuseUrlOption,
    PublicKeyOption,
    RedisUrlOption,
    SecretKeyOption,
    TimeoutOption,
    fail,
    handle_errors,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="lvp",
    help="Operate versioned Langfuse prompts: push, pull, promote, rollback, diff, cache, webhooks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # never print locals (they hold keys) in a traceback
    rich_markup_mode="markdown",
)


@app.callback()
def _root(
    ctx: typer.Context,
    langfuse_url: LangfuseUrlOption = None,
    public_key: PublicKeyOption = None,
    secret_key: SecretKeyOption = None,
    redis_url: RedisUrlOption = None,
    timeout: TimeoutOption = None,
) -> None:
    """Operate versioned Langfuse prompts: push, pull, promote, rollback, diff, cache, webhooks.

    Connection settings come from LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY, LANGFUSE_BASE_URL
    (or LANGFUSE_HOST) and REDIS_URL, or from the flags (here or on each command).
    """
    ctx.obj = {
        "connection": Connection.from_env().override(
            langfuse_url=langfuse_url, public_key=public_key, secret_key=secret_key,
            redis_url=redis_url, timeout=timeout,
        )
    }


_prompts.register(app)
_labels.register(app)
_cache.register(app)
_webhook.register(app)


@app.command(
    "ab",
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    help="A/B experiment statistics from Langfuse scores (needs the 'stats' extra). "
    "Run `lvp ab --help` for its commands.",
)
@handle_errors
def _ab(ctx: typer.Context) -> None:
    """Run ``lvp ab ...``, importing it (and the stats extra) only now."""
    try:
        from .ab import app as ab_app
    except ImportError as exc:
        fail(
            "lvp ab needs the 'stats' extra: pip install 'langfuse-versioned-prompts[stats]' "
            f"({exc})"
        )
    obj: dict[str, Any] = {}
    root = ctx.find_root().obj
    conn = root.get("connection") if isinstance(root, dict) else None
    if isinstance(conn, Connection):
        obj["connection"] = conn  # flags given after `ab report` are laid over these
        if conn.has_langfuse():
            obj["langfuse_client"] = conn.langfuse_client()
    command = typer.main.get_command(ab_app)
    command.main(args=list(ctx.args), prog_name=f"{ctx.find_root().info_name or 'lvp'} ab", obj=obj,
                 standalone_mode=True)


def main() -> Any:
    """Console-script entry point of ``lvp``."""
    return app(prog_name="lvp")
