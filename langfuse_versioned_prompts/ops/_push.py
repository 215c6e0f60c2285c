"""``push``: prompt files (``LocalPromptStore``) -> new Langfuse versions, idempotently.

For each prompt file, the file's newest version is compared with Langfuse's newest version
(label ``latest``, raw text with prompt references unresolved). A new Langfuse version is created
only when the type, template or config differ, so pushing twice creates nothing. A file pulled
with ``lvp pull`` whose text is a resolved prompt reference (it keeps ``resolution_graph``) is also
compared with the resolved text. Labels written in the files are not pushed: moving labels is
``promote``'s job; ``label=`` puts one label on every version this push creates (and records the
move in the label history). The commit message is ``message`` when given, else the version's
``commit_message`` in the file.

Every file is read and every prompt compared before anything is written, so a malformed file or
a type change stops the push with nothing written. Each prompt is then written by one request:
a failure part-way raises ``PushError`` listing the prompts pushed and those not pushed.
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
from ._admin import PromptAdmin, chat_messages, same_content
from ._errors import PushError
from ._history import (
    Clock,
    LabelMove,
    append_history,
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
            raise PushError(f"pushing prompt {plan.name!r} ({plan.path}) failed: {exc}",
                            pushed=[c.name for c in done], not_pushed=not_pushed) from exc
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
        if not same_content(local, theirs) and local.resolution_graph:
            resolved = admin.newest(local.name, resolve=True)
            theirs = resolved.prompt if resolved is not None else theirs
        differences = _differences(local, theirs)
        status = "changed" if differences else "unchanged"
    holder = None
    if labels and status != "unchanged":
        found = admin.find(local.name, label=labels[0], resolve=False)
        holder = found.version if found is not None else None
    return PushChange(local.name, path, status, differences, previous, commit_message, labels,
                      label_holder=holder)


def _differences(local: ResolvedPrompt, remote: ResolvedPrompt) -> tuple[str, ...]:
    found = []
    if isinstance(local.template, str) or isinstance(remote.template, str):
        if local.template != remote.template:
            found.append("template")
    elif chat_messages(local.template) != chat_messages(remote.template):
        found.append("template")
    if dict(local.config) != dict(remote.config):
        found.append("config")
    return tuple(found)
