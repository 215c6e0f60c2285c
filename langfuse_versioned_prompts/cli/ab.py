"""``lvp ab``: A/B experiment statistics from Langfuse scores.

Mounted by the main CLI as ``lvp ab ...``. The connection flags (``--langfuse-url``,
``--public-key``, ``--secret-key``, ``--timeout``) work before ``ab`` (on ``lvp``) and on
``report``. Without flags on ``report`` the Langfuse client is ``ctx.obj["langfuse_client"]`` when
the parent command put one there, else one made from the LANGFUSE_* environment variables. With
flags on ``report`` a client is made from them over ``ctx.obj["connection"]`` (the parent's
``Connection``, when it passes one) over the environment, as every other ``lvp`` command does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._errors import ConfigurationError, LVPError
from ._common import LangfuseUrlOption, PublicKeyOption, SecretKeyOption, TimeoutOption, connection

__all__ = ["app"]

app = typer.Typer(
    name="ab",
    help="A/B experiment statistics from Langfuse scores.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """A/B experiment statistics from Langfuse scores."""


def _parse_weights(text: str | None) -> dict[str, float] | None:
    """``"A=1,B=1"`` -> ``{"A": 1.0, "B": 1.0}``."""
    if text is None:
        return None
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ConfigurationError(f"--weights expects NAME=WEIGHT pairs such as A=1,B=1, got {part!r}")
    return weights


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, highlight=False).print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(1)


@contextmanager
def _progress(console: Console) -> Iterator[Callable[[str, int], None]]:
    """A progress display for paging; a no-op when stderr is not a terminal."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("reading {task.fields[stage]} from Langfuse: {task.completed} so far"),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=None, stage=stage)
            progress.update(tasks[stage], completed=done)

        yield update


@app.command("report")
def report_command(
    ctx: typer.Context,
    experiment: Annotated[
        str,
        typer.Option("--experiment", "-e", help="Experiment name (trace tag ab:<name>=<variant>)."),
    ],
    score: Annotated[str, typer.Option("--score", "-s", help="Langfuse score name.")],
    since: Annotated[str | None, typer.Option(help="Traces since: 7d, 12h, 30m or an ISO date.")] = None,
    until: Annotated[str | None, typer.Option(help="Traces until: a duration ago or an ISO date.")] = None,
    per: Annotated[str, typer.Option(help="Analysis unit: user or observation.")] = "user",
    control: Annotated[str | None, typer.Option(help="Control variant.")] = None,
    weights: Annotated[
        str | None, typer.Option(help="Configured split, e.g. A=1,B=1 (also names the variants).")
    ] = None,
    confidence: Annotated[float, typer.Option(help="Confidence level.")] = 0.95,
    metric: Annotated[str, typer.Option(help="auto, continuous or boolean.")] = "auto",
    lower_is_better: Annotated[bool, typer.Option("--lower-is-better", help="A lower score is better.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG plot to this path.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    langfuse_url: LangfuseUrlOption = None,
    public_key: PublicKeyOption = None,
    secret_key: SecretKeyOption = None,
    timeout: TimeoutOption = None,
) -> None:
    """Compare the variants of an experiment on a Langfuse score."""
    from ..stats import from_langfuse

    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    flags = {"langfuse_url": langfuse_url, "public_key": public_key, "secret_key": secret_key, "timeout": timeout}
    try:
        client = _client(ctx, flags)
        with _progress(err) as progress:
            report = from_langfuse(
                experiment,
                score,
                client=client,
                since=since,
                until=until,
                per=per,
                weights=_parse_weights(weights),
                progress=progress,
                control=control,
                confidence=confidence,
                metric=metric,
                higher_is_better=not lower_is_better,
            )
        if plot is not None:
            report.plot(plot)
    except (LVPError, ImportError) as exc:
        raise _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    if as_json:
        out.print_json(json.dumps(report.to_dict(), allow_nan=False))
    else:
        _print_report(out, report)
    if plot is not None:
        (err if as_json else out).print(f"plot written to {escape(str(plot))}")


def _client(ctx: typer.Context, flags: dict[str, Any]) -> Any:
    """The Langfuse client: from this command's flags when any is given, else the parent's."""
    if any(value is not None for value in flags.values()):
        return connection(ctx, **flags).langfuse_client()
    return ctx.obj.get("langfuse_client") if isinstance(ctx.obj, dict) else None


def _print_report(console: Console, report: Any) -> None:
    from ..stats._report import format_p, table_rows

    headers, rows = table_rows(report)
    table = Table(title=escape(report.title), title_justify="left")
    for i, header in enumerate(headers):
        table.add_column(escape(header), justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    if report.data_line:
        console.print(escape(report.data_line), soft_wrap=True)
    srm = report.srm
    if srm is not None and srm.p_value is not None:
        state = "[red]MISMATCH[/red]" if srm.flagged else "[green]ok[/green]"
        console.print(f"Sample ratio check: chi2={srm.chi2:.3f}, p={format_p(srm.p_value)} {state}")
    console.print(f"[bold]Decision:[/bold] {escape(report.decision)}", soft_wrap=True)
    for warning in report.all_warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]", soft_wrap=True)
