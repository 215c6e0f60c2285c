"""``lvp webhook serve``: receive Langfuse prompt webhooks and invalidate the fleet's caches."""

from __future__ import annotations

from typing import Annotated

import typer

from .._invalidation import DEFAULT_CHANNEL
from ..webhook import WebhookServer, webhook_app
from ._common import RedisUrlOption, connection, handle_errors, out

app = typer.Typer(name="webhook", help="Receive Langfuse prompt webhooks (fleet invalidation).",
                  no_args_is_help=True, add_completion=False, rich_markup_mode="markdown")


@app.command("serve")
@handle_errors
def serve(
    ctx: typer.Context,
    secret: Annotated[str, typer.Option(
        "--secret", envvar="LVP_WEBHOOK_SECRET", show_envvar=True, show_default=False,
        help="The webhook's signing secret from Langfuse (lf-whsec_...).")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free port).",
                                      min=0, max=65535)] = 8787,
    path: Annotated[str, typer.Option("--path", help="URL path that receives the webhook.")] = "/",
    channel: Annotated[str, typer.Option(
        "--channel", help="Redis pub/sub channel the fleet's InvalidationSubscribers listen on.",
    )] = DEFAULT_CHANNEL,
    redis_url: RedisUrlOption = None,
) -> None:
    """Serve the webhook receiver (stdlib HTTP server) until Ctrl-C.

    For each signed prompt webhook it deletes the prompt's Redis keys and publishes its name on
    the channel. Unsigned, forged or replayed (older than 5 minutes) requests get 401 and change
    nothing. Put a TLS-terminating proxy in front when Langfuse reaches it over the internet; or
    mount `langfuse_versioned_prompts.webhook.webhook_app(...)` in your own ASGI app.
    """
    cache = connection(ctx, redis_url=redis_url).redis_cache()
    server = WebhookServer(webhook_app(secret, cache, channel, path=path), host=host, port=port)
    console = out()
    try:
        server.start()
        console.print(f"listening on {server.url}/{path.strip('/')} "
                      f"(invalidating via {channel}; Ctrl-C to stop)")
        while not server.wait(1.0):
            pass
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.stop()
        cache.close()


def register(root: typer.Typer) -> None:
    """Mount ``lvp webhook`` on ``root``."""
    root.add_typer(app, name="webhook")
