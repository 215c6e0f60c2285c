"""``lvp promote`` and ``lvp rollback``: move labels, recording every move in Langfuse.

The label history lives in Langfuse itself, in the companion text prompt
``lvp-label-history/<name>`` (its newest version holds the JSON log of moves): see
``langfuse_versioned_prompts.ops._history``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from .. import ops
from ._common import (
    LangfuseUrlOption,
    PublicKeyOption,
    SecretKeyOption,
    TimeoutOption,
    connection,
    handle_errors,
    out,
)

_HISTORY = ("Every move is recorded in Langfuse, in the text prompt `lvp-label-history/NAME` "
            "(its newest version holds the JSON log); `lvp log NAME` shows it.")


def promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Prompt name.", show_default=False)],
    source: Annotated[str, typer.Option(
        "--from", help="Label (or version number) whose version gets the label.",
        show_default=False)],
    to: Annotated[str, typer.Option(
        "--to", help="Label to move, e.g. production.", show_default=False)],
    langfuse_url: LangfuseUrlOption = None,
    public_key: PublicKeyOption = None,
    secret_key: SecretKeyOption = None,
    timeout: TimeoutOption = None,
) -> None:
    """Move label --to onto the version that --from points at (e.g. staging -> production)."""
    admin = connection(ctx, langfuse_url=langfuse_url, public_key=public_key,
                       secret_key=secret_key, timeout=timeout).admin()
    _print_move(ops.promote(admin, name, source=source, to=to))


promote.__doc__ = f"{promote.__doc__}\n\n{_HISTORY}"


def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Prompt name.", show_default=False)],
    label: Annotated[str, typer.Option(
        "--label", "-l", help="Label to roll back.")] = "production",
    to_version: Annotated[int | None, typer.Option(
        "--to-version", help="Move the label to this version instead of its previous one.",
        min=1, show_default=False)] = None,
    langfuse_url: LangfuseUrlOption = None,
    public_key: PublicKeyOption = None,
    secret_key: SecretKeyOption = None,
    timeout: TimeoutOption = None,
) -> None:
    """Move a label back to the version that held it before its last move.

    Rolling back twice goes back two moves. Refuses when lvp recorded no earlier version (or the
    label was moved outside lvp since); --to-version N then moves it explicitly.
    """
    admin = connection(ctx, langfuse_url=langfuse_url, public_key=public_key,
                       secret_key=secret_key, timeout=timeout).admin()
    _print_move(ops.rollback(admin, name, label=label, to_version=to_version))


rollback.__doc__ = f"{rollback.__doc__}\n\n{_HISTORY}"


def _print_move(move: ops.LabelMove) -> None:
    console = out()
    before = f"v{move.from_version}" if move.from_version is not None else "(none)"
    if not move.changed:
        console.print(f"{move.prompt}: label {move.label} is already on v{move.to_version}; "
                      "nothing moved")
        return
    console.print(Text.assemble((move.prompt, "bold"), f": label {move.label}"))
    console.print(Text.assemble("  before: ", (before, "red")))
    console.print(Text.assemble("  after:  ", (f"v{move.to_version}", "green")))
    console.print(Text(f"  recorded in {ops.history_name(move.prompt)} ({move.action} by {move.by})",
                       style="dim"))


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    for command in (promote, rollback):
        app.command(command.__name__)(handle_errors(command))
