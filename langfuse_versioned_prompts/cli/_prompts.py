"""``lvp push``, ``lvp pull``, ``lvp log``, ``lvp diff``: prompt files <-> Langfuse versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
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

DirArgument = Annotated[Path, typer.Argument(
    help="Directory of prompt files (one YAML file per prompt; `rag/qa` is rag/qa.yaml).",
    show_default=False)]
NamesOption = Annotated[list[str] | None, typer.Option(
    "--name", "-n", help="Only this prompt (repeatable). Default: every prompt.", show_default=False)]


def push(
    ctx: typer.Context,
    directory: DirArgument,
    label: Annotated[str | None, typer.Option(
        "--label", "-l", help="Put this label on every version the push creates.")] = None,
    message: Annotated[str | None, typer.Option(
        "--message", "-m", help="Commit message (default: the file's commit_message).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what would change; write nothing.")] = False,
    names: NamesOption = None,
    langfuse_url: LangfuseUrlOption = None,
    public_key: PublicKeyOption = None,
    secret_key: SecretKeyOption = None,
    timeout: TimeoutOption = None,
) -> None:
    """Push prompt files to Langfuse: a new version only where text, type or config changed.

    Each file's newest version is compared with Langfuse's newest version; a second push creates
    nothing. Labels in the files are not pushed (use --label or `lvp promote`). Every file is read
    and compared before anything is written; a failure part-way names the prompts pushed and not.
    """
    console = out()
    admin = connection(ctx, langfuse_url=langfuse_url, public_key=public_key,
                       secret_key=secret_key, timeout=timeout).admin()

    def report(change: ops.PushChange) -> None:
        before = f"v{change.previous}" if change.previous is not None else "new prompt"
        what = ", ".join(change.differences) if change.status == "changed" else "new"
        line = Text.assemble(("pushed ", "green"), (change.name, "bold"),
                             f" -> v{change.version} ({what}; was {before})")
        console.print(line)
        if change.label_move is not None:
            console.print(f"  {_move_text(change.label_move)}")

    result = ops.push(admin, directory, names=names or None, label=label, message=message,
                      dry_run=dry_run, on_pushed=report)
    if dry_run:
        for change in result.pending:
            before = f"v{change.previous}" if change.previous is not None else "new prompt"
            what = ", ".join(change.differences) if change.status == "changed" else "new"
            extra = f", label {label!r} would move from " + (
                f"v{change.label_holder}" if change.label_holder else "(none)") if label else ""
            console.print(Text.assemble(("would push ", "yellow"), (change.name, "bold"),
                                        f" ({what}; Langfuse newest: {before}{extra})"))
    unchanged = [c for c in result.changes if not c.writes]
    for change in unchanged:
        console.print(Text(f"unchanged {change.name} (Langfuse v{change.previous})", style="dim"))
    done = len(result.pending) if dry_run else len(result.created)
    verb = "would push" if dry_run else "pushed"
    console.print(f"{verb} {done} prompt{'s' * (done != 1)}, {len(unchanged)} unchanged"
                  + (" (dry run: nothing written)" if dry_run else ""))


def pull(
    ctx: typer.Context,
    directory: DirArgument,
    labels: Annotated[list[str] | None, typer.Option(
        "--label", "-l", help="Only versions holding this label (repeatable), plus the newest. "
        "Default: every version.", show_default=False)] = None,
    names: NamesOption = None,
    langfuse_url: LangfuseUrlOption = None,
    public_key: PublicKeyOption = None,
    secret_key: SecretKeyOption = None,
    timeout: TimeoutOption = None,
) -> None:
    """Write prompt files from Langfuse: the snapshot that the local store (L4) serves.

    Each file is replaced atomically and holds exactly the pulled versions. Pulling then pushing
    the same directory creates nothing.
    """
    console = out()
    admin = connection(ctx, langfuse_url=langfuse_url, public_key=public_key,
                       secret_key=secret_key, timeout=timeout).admin()
    result = ops.pull(admin, directory, labels=labels or (), names=names or None)
    for pulled in result.pulled:
        held = ", ".join(f"{label} -> v{version}" for label, version in sorted(pulled.labels.items()))
        versions = ", ".join(f"v{v}" for v in pulled.versions)
        console.print(Text.assemble(("wrote ", "green"), str(pulled.path),
                                    f": {versions}" + (f" ({held})" if held else "")))
    for name in result.skipped:
        console.print(Text(f"skipped {name}: no version holds {', '.join(labels or [])}", style="dim"))
    count = len(result.pulled)
    console.print(f"pulled {count} prompt{'s' * (count != 1)} into {directory}")


def log(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Prompt name.", show_default=False)],
    langfuse_url: LangfuseUrlOption = None,
    public_key: PublicKeyOption = None,
    secret_key: SecretKeyOption = None,
    timeout: TimeoutOption = None,
) -> None:
    """List a prompt's versions (labels, dates, commit messages) and its recorded label moves.

    Label moves made through lvp are kept in Langfuse in the text prompt
    `lvp-label-history/NAME`.
    """
    console = out()
    admin = connection(ctx, langfuse_url=langfuse_url, public_key=public_key,
                       secret_key=secret_key, timeout=timeout).admin()
    versions = ops.prompt_log(admin, name)
    table = Table(title=f"{name}: {len(versions)} version{'s' * (len(versions) != 1)}",
                  title_justify="left")
    for column in ("version", "labels", "created", "type", "commit message"):
        table.add_column(column, overflow="fold")
    for remote in versions:
        p = remote.prompt
        created = (remote.created_at or "")[:19].replace("T", " ")
        table.add_row(f"v{p.version}", ", ".join(p.labels), created,
                      p.type, p.commit_message or "")
    console.print(table)
    moves = ops.label_history(admin, name)
    if not moves:
        console.print(Text(f"no label moves recorded ({ops.history_name(name)})", style="dim"))
        return
    history = Table(title=f"label moves ({ops.history_name(name)})", title_justify="left")
    for column in ("at", "label", "move", "action", "by"):
        history.add_column(column, overflow="fold")
    for move in reversed(moves):
        before = f"v{move.from_version}" if move.from_version is not None else "(none)"
        history.add_row(move.at, move.label, f"{before} -> v{move.to_version}", move.action, move.by)
    console.print(history)


def diff(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Prompt name.", show_default=False)],
    a: Annotated[str, typer.Argument(help="Version number or label (old side).", show_default=False)],
    b: Annotated[str, typer.Argument(help="Version number or label (new side).", show_default=False)],
    langfuse_url: LangfuseUrlOption = None,
    public_key: PublicKeyOption = None,
    secret_key: SecretKeyOption = None,
    timeout: TimeoutOption = None,
) -> None:
    """Show a unified diff of two versions: template (chat: one block per message) and config.

    A and B are version numbers (3) or labels (production, staging, latest). They are the same
    only when push would see no change: a missing final newline is marked
    `\\ No newline at end of file` and a carriage return (CRLF) is shown as `␍`.
    """
    console = out()
    admin = connection(ctx, langfuse_url=langfuse_url, public_key=public_key,
                       secret_key=secret_key, timeout=timeout).admin()
    result = ops.diff(admin, name, a, b)
    if result.same:
        console.print(f"no differences between {name}@v{result.a.version} ({a}) "
                      f"and {name}@v{result.b.version} ({b})")
        return
    for line in result.lines:
        console.print(Text(line, style=_diff_style(line)))


def _diff_style(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "bold"
    if line.startswith("+"):
        return "green"
    if line.startswith("-"):
        return "red"
    if line.startswith("@@"):
        return "cyan"
    if line.startswith(("type:", "\\ ")):
        return "yellow"
    return ""


def _move_text(move: ops.LabelMove) -> str:
    before = f"v{move.from_version}" if move.from_version is not None else "(none)"
    return f"label {move.label}: before {before}, after v{move.to_version}"


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    for command in (push, pull, log, diff):
        app.command(command.__name__)(handle_errors(command))
