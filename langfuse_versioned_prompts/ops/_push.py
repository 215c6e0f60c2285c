"""``push``: prompt files (``LocalPromptStore``) -> new Langfuse versions, idempotently.

For each prompt file, the file's newest version is compared with Langfuse's newest version
(label ``latest``, raw text with prompt references unresolved). A new Langfuse version is created
only when the type, template or config differ, so pushing twice creates nothing. A file pulled
with ``lvp pull`` whose text is a resolved prompt reference (it keeps ``resolution_graph``) is also
compared with the resolved text; a push that would change such a snapshot is refused (it would
replace the references with literal text). Labels written in the files are not pushed: moving
labels is ``promote``'s job; ``label=`` puts one label on every version this push creates (and
records the move in the label history). The commit message is ``message`` when given, else the
version's ``commit_message`` in the file.

Every file is read and every prompt compared before anything is written, so a malformed file or
a type change stops the push with nothing written. Each prompt is then written by one request:
a failure part-way raises ``PushError`` listing the prompts pushed and those not pushed. When no
answer came back (a timeout, a dropped connection), Langfuse's newest version is read again: the
prompt counts as pushed if it now matches the file, else as unknown (pushing again is safe).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from .._errors import ConfigurationError, LVPError, PromptNotFoundError
from .._prompt import ResolvedPrompt
from ..sources.local import LocalPromptStore
from ._admin import PromptAdmin, content_differences, no_answer
from ._errors import PushError
from ._history import (
    Clock,
    LabelMove,
    append_history,
    history_name,
    is_history_prompt,
    read_history,
    timestamp,
    utc_now,
)
from ._labels import default_actor, movable_label

Status = Literal["new", "changed", "unchanged"]


@dataclass(frozen=True)
class PushChange:
    """What push does (or did, or would do) for one prompt."""

    name: str
    path: pathlib.Path
    status: Status
    differences: tuple[str, ...]
    """What differs from Langfuse's newest version: ``type``, ``template``, ``config``."""
    previous: int | None
    """Langfuse's newest version before the push (``None`` for a new prompt)."""
    commit_message: str | None
    labels: tuple[str, ...] = ()
    version: int | None = None
    """The version created (``None`` for a dry run or an unchanged prompt)."""
    label_holder: int | None = None
    """The version that held ``labels`` before the push."""
    label_move: LabelMove | None = None

    @property
    def writes(self) -> bool:
        """True when the push creates a version for this prompt."""
        return self.status != "unchanged"


@dataclass(frozen=True)
class PushResult:
    """The outcome of a push: one change per prompt file, in name order."""

    changes: tuple[PushChange, ...]
    dry_run: bool

    @property
    def created(self) -> tuple[PushChange, ...]:
        """The prompts for which a version was created (none on a dry run)."""
        return tuple(c for c in self.changes if c.version is not None)

    @property
    def pending(self) -> tuple[PushChange, ...]:
        """The prompts that differ from Langfuse (what a dry run would push)."""
        return tuple(c for c in self.changes if c.writes)


def open_store(source: LocalPromptStore | str | os.PathLike[str]) -> LocalPromptStore:
    """A store on ``source``; ``ConfigurationError`` when it is not a directory."""
    store = source if isinstance(source, LocalPromptStore) else LocalPromptStore(source)
    if not store.path.is_dir():
        raise ConfigurationError(f"{store.path} is not a directory of prompt files")
    return store


def select_names(store: LocalPromptStore, names: Sequence[str] | None) -> list[str]:
    """The prompt names to push: all files under the store, or ``names`` (which must exist)."""
    found = [n for n in store.names() if not is_history_prompt(n)]
    if not names:
        return found
    missing = [n for n in names if n not in found]
    if missing:
        raise PromptNotFoundError(
            f"no prompt file for {', '.join(map(repr, missing))} under {store.path} "
            f"(expected e.g. {store.file_for(missing[0])})"
        )
    return list(dict.fromkeys(names))


def push(
    admin: PromptAdmin,
    source: LocalPromptStore | str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
    label: str | None = None,
    message: str | None = None,
    dry_run: bool = False,
    actor: str | None = None,
    clock: Clock = utc_now,
    on_pushed: Callable[[PushChange], None] | None = None,
) -> PushResult:
    """Create a Langfuse version for every prompt file that differs from Langfuse's newest.

    ``on_pushed`` is called after each prompt is written (for progress output).

    >>> push(admin, "prompts", label="staging", message="tone down").created   # doctest: +SKIP
    """
    store = open_store(source)
    labels = (movable_label(label),) if label else ()
    selected = select_names(store, names)
    newest = {name: store.versions(name)[-1] for name in selected}  # parse every file first
    plans: list[PushChange] = []
    logs: dict[str, list[LabelMove]] = {}
    for name in selected:
        try:
            plans.append(_plan(admin, store, newest[name], labels, message))
            if labels and plans[-1].writes:  # an unreadable history stops the push here
                logs[name] = read_history(admin, name)
        except LVPError as exc:
            pending = [p.name for p in plans if p.writes] + [name]
            raise PushError(f"push stopped before writing anything: {exc}", pushed=[],
                            not_pushed=pending) from exc
    if dry_run:
        return PushResult(tuple(plans), dry_run=True)

    done: list[PushChange] = []
    results: list[PushChange] = []
    to_write = [p.name for p in plans if p.writes]
    for plan in plans:
        if not plan.writes:
            results.append(plan)
            continue
        not_pushed = to_write[len(done):]
        try:
            created = admin.create(newest[plan.name], labels=plan.labels,
                                   commit_message=plan.commit_message)
        except LVPError as exc:
            raise _create_failed(admin, plan, newest[plan.name], exc, [c.name for c in done],
                                 not_pushed) from exc
        change = replace(plan, version=created.version)
        done.append(change)
        if plan.labels:
            move = LabelMove(plan.name, plan.labels[0], plan.label_holder, created.version, "push",
                             timestamp(clock), actor or default_actor())
            change = replace(change, label_move=move)
            try:
                append_history(admin, [move], log=logs.get(plan.name))
            except LVPError as exc:
                raise PushError(str(exc), pushed=[c.name for c in done],
                                not_pushed=not_pushed[1:]) from exc
        results.append(change)
        if on_pushed is not None:
            on_pushed(change)
    return PushResult(tuple(results), dry_run=False)


def _plan(
    admin: PromptAdmin, store: LocalPromptStore, local: ResolvedPrompt, labels: tuple[str, ...],
    message: str | None,
) -> PushChange:
    """Compare one prompt file's newest version with Langfuse's newest version."""
    path = store.file_for(local.name)
    commit_message = message if message is not None else local.commit_message
    remote = admin.newest(local.name, resolve=False)
    if remote is None:
        status: Status = "new"
        differences: tuple[str, ...] = ("type", "template", "config")
        previous = None
    else:
        theirs = remote.prompt
        if theirs.type != local.type:
            raise ConfigurationError(
                f"{path}: prompt {local.name!r} is a {local.type} prompt, but in Langfuse it is a "
                f"{theirs.type} prompt; Langfuse cannot change a prompt's type: use another name"
            )
        previous = theirs.version
        differences = content_differences(local, theirs)
        if local.resolution_graph and "template" in differences:
            differences = _snapshot_differences(admin, local, path, theirs.version)
        status = "changed" if differences else "unchanged"
    holder = None
    if labels and status != "unchanged":
        found = admin.find(local.name, label=labels[0], resolve=False)
        holder = found.version if found is not None else None
    return PushChange(local.name, path, status, differences, previous, commit_message, labels,
                      label_holder=holder)


def _snapshot_differences(
    admin: PromptAdmin, local: ResolvedPrompt, path: pathlib.Path, newest: int
) -> tuple[str, ...]:
    """Compare a pulled snapshot (references resolved) with Langfuse's newest version resolved.

    Nothing may differ: a snapshot is not a source, pushing it would replace the prompt
    references (``@@@langfusePrompt:...@@@``) with the text they resolved to at pull time.
    """
    resolved = admin.newest(local.name, resolve=True)
    differences = content_differences(local, resolved.prompt) if resolved is not None else ("template",)
    if not differences:
        return ()
    why = ("its text matches neither the raw nor the resolved text of Langfuse's newest version "
           f"v{newest} (a referenced prompt changed since the pull, or the file was edited)"
           if "template" in differences else f"its {' and '.join(differences)} differs from v{newest}")
    raise ConfigurationError(
        f"{path}: prompt {local.name!r} is a resolved snapshot written by pull (prompt references "
        f"filled in, resolution_graph kept), not a source, and {why}; pushing it would replace the "
        "references with literal text. Pull it again, or change the prompt in Langfuse or in a "
        "source file that keeps its references"
    )


def _create_failed(
    admin: PromptAdmin, plan: PushChange, local: ResolvedPrompt, exc: LVPError, pushed: list[str],
    not_pushed: list[str],
) -> PushError:
    """The ``PushError`` for a failed create of ``plan`` (the first of ``not_pushed``).

    When no answer came back, the request may have created the version: Langfuse's newest version
    is read again; if it is new and matches the file, the prompt was pushed, else it is unknown.
    """
    head = f"pushing prompt {plan.name!r} ({plan.path}) failed: {exc}"
    if not no_answer(exc):
        return PushError(head, pushed=pushed, not_pushed=not_pushed)
    history = f"the move is not recorded in the label history ({history_name(plan.name)})"
    try:
        remote = admin.newest(plan.name, resolve=False)
        seen = "Langfuse's newest version does not show it (yet)"
    except LVPError:
        remote, seen = None, "reading it back failed too"
    if (remote is not None and (plan.previous is None or remote.version > plan.previous)
            and not content_differences(local, remote.prompt)):
        head += f"; but Langfuse did create {plan.name} v{remote.version}"
        if plan.labels:
            head += f"; label {plan.labels[0]!r} moved to it, but {history}"
        return PushError(head, pushed=[*pushed, plan.name], not_pushed=not_pushed[1:])
    head += f"; no answer came back and {seen}"
    if plan.labels:
        head += f"; if Langfuse created it, label {plan.labels[0]!r} moved to it and {history}"
    return PushError(head, pushed=pushed, not_pushed=not_pushed[1:], unknown=[plan.name])
