"""``lvp cache warm`` and ``lvp cache invalidate``: the fleet's shared Redis cache (L2)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from .._errors import LVPError
from .._invalidation import DEFAULT_CHANNEL, publish_invalidation
from .._prompt import PromptKey
from .._settings import default_label
from ..resolver import PromptResolver
from ..sources.langfuse import LangfuseSource
from ..sources.memory import MemoryCache
from ..sources.redis import RedisCache
from ._common import (
    LangfuseUrlOption,
    PublicKeyOption,
    RedisUrlOption,
    SecretKeyOption,
    TimeoutOption,
    connection,
    fail,
    handle_errors,
    out,
)

app = typer.Typer(name="cache", help="Warm or invalidate the shared Redis cache (L2).",
                  no_args_is_help=True, add_completion=False, rich_markup_mode="markdown")

ChannelOption = Annotated[str, typer.Option(
    "--channel", help="Redis pub/sub channel the fleet's InvalidationSubscribers listen on.")]


@app.command("warm")
@handle_errors
def warm(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Prompt names.", show_default=False)],
    label: Annotated[str | None, typer.Option(
        "--label", "-l", help="Label to warm (default: $LVP_DEFAULT_LABEL, else production).",
        show_default=False)] = None,
    version: Annotated[int | None, typer.Option(
        "--version", help="Warm this version instead of a label.", min=1, show_default=False)] = None,
    langfuse_url: LangfuseUrlOption = None,
    public_key: PublicKeyOption = None,
    secret_key: SecretKeyOption = None,
    redis_url: RedisUrlOption = None,
    timeout: TimeoutOption = None,
) -> None:
    """Resolve prompts through Redis and Langfuse so Redis holds them for the whole fleet.

    A prompt already cached in Redis is left as is (source `redis`); a missing or expired one is
    fetched from Langfuse and written to Redis (source `langfuse`). Exits 1 if any prompt fails.
    """
    conn = connection(ctx, langfuse_url=langfuse_url, public_key=public_key,
                      secret_key=secret_key, redis_url=redis_url, timeout=timeout)
    admin = conn.admin()
    resolver = PromptResolver(
        memory=MemoryCache(), redis=conn.redis_cache(),
        langfuse=LangfuseSource(admin.client, timeout=admin.timeout),
        default_label=label or default_label(),
    )
    try:
        results = resolver.warm(names, label=label, version=version)
    finally:
        resolver.close()
    table = Table(title="cache warm", title_justify="left")
    for column in ("prompt", "asked", "version", "source"):
        table.add_column(column, overflow="fold")
    errors: list[LVPError] = []
    for key, result in results.items():
        asked = f"v{key.version}" if key.version is not None else str(key.label)
        if isinstance(result, LVPError):
            errors.append(result)
            table.add_row(key.name, asked, "-", Text("error", style="red"))
        else:
            source = "redis (already cached)" if result.source == "redis" else result.source
            table.add_row(key.name, asked, f"v{result.version}", source)
    out().print(table)
    if errors:
        fail("; ".join(str(e) for e in errors))


@app.command("invalidate")
@handle_errors
def invalidate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Prompt name.", show_default=False)],
    label: Annotated[str | None, typer.Option(
        "--label", "-l", help="In Redis, drop only this label's entry of the prompt, and every cached "
        "prompt embedding it (default: every entry of the prompt and of the prompts embedding it).",
        show_default=False)] = None,
    channel: ChannelOption = DEFAULT_CHANNEL,
    redis_url: RedisUrlOption = None,
) -> None:
    """Drop a prompt from Redis and tell every process (pub/sub) to drop it from memory.

    Without --label every Redis entry of the prompt goes, and every cached prompt that embeds it
    (a prompt reference, `@@@langfusePrompt:...@@@`). With --label only that label's entry of the
    prompt goes, plus every cached prompt embedding the prompt (their entries do not say which
    label they embed). Processes running an InvalidationSubscriber on the channel drop the prompt
    (all its labels) and the prompts embedding it from their in-process cache (L1) at once; their
    next request reads Redis or Langfuse.
    """
    cache = connection(ctx, redis_url=redis_url).redis_cache()
    try:
        if label is not None:
            key = PromptKey.create(name, label=label)
            cache.delete(key)
            try:
                count = _drop_dependents(cache, name)
            except Exception:
                fail(f"Redis failed while invalidating {name!r}; nothing was published")
            dropped = (f"dropped the Redis entry {key} and {count} cached prompt{'s' * (count != 1)} "
                       f"embedding {name}")
        else:
            count = cache.invalidate_prompt(name)
            dropped = f"dropped {count} Redis entr{'y' if count == 1 else 'ies'} of {name}"
        if cache.errors:
            fail(f"Redis failed while invalidating {name!r}; nothing was published")
        receivers = publish_invalidation(cache.client, name, channel)
    finally:
        cache.close()
    out().print(f"{dropped}; told {receivers} process{'es' * (receivers != 1)} on {channel}")


def _drop_dependents(cache: RedisCache, name: str) -> int:
    """Drop the cached prompts embedding ``name``, as ``RedisCache.invalidate_prompt`` does; how many."""
    index = cache.tag(name) + ":dependents"
    members = sorted(m.decode() if isinstance(m, bytes) else m for m in cache.client.smembers(index))
    dropped = sum(cache.client.delete(member, member + ":fresh") > 0 for member in members)
    cache.client.delete(index)
    return int(dropped)


def register(root: typer.Typer) -> None:
    """Mount ``lvp cache`` on ``root``."""
    root.add_typer(app, name="cache")
