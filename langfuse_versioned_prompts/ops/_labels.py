"""Label moves: ``promote`` a label to another label's version, ``rollback`` a label.

Every move is recorded in the prompt's label history in Langfuse (the companion prompt
``lvp-label-history/<name>``, see ``_history.py``), which is what ``rollback`` reads: Langfuse itself
keeps no label history (langfuse/langfuse#16007).

``rollback`` with no version moves the label back to where it was before its last recorded move
that is not itself undone: rolling back twice walks back two steps. ``rollback --to-version N``
moves the label to ``N`` (recorded as a plain move, which a later rollback undoes).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence

from .._errors import ConfigurationError
from .._prompt import check_label
from ._admin import PromptAdmin
from ._errors import RollbackError
from ._history import (
    Action,
    Clock,
    LabelMove,
    append_history,
    history_name,
    read_history,
    timestamp,
    utc_now,
)

LATEST = "latest"


def default_actor() -> str:
    """Who moves labels: ``LVP_USER``, else the login name, else ``unknown``."""
    user = os.environ.get("LVP_USER")
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name for this uid (containers)
        return "unknown"


def parse_ref(ref: str | int) -> tuple[int | None, str | None]:
    """``(version, label)`` from a command-line reference: a number is a version, else a label."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        if ref < 1:
            raise ConfigurationError(f"versions are positive integers, got {ref}")
        return ref, None
    text = str(ref).strip()
    if text.isdigit():
        return parse_ref(int(text))
    return None, check_label(text)


def movable_label(label: str) -> str:
    """``label`` if a move may target it; ``latest`` is assigned by Langfuse alone."""
    check_label(label)
    if label == LATEST:
        raise ConfigurationError("label 'latest' cannot be moved: Langfuse puts it on the newest version")
    return label


def move_label(
    admin: PromptAdmin, name: str, label: str, version: int, *, action: Action,
    actor: str | None = None, clock: Clock = utc_now, log: Sequence[LabelMove] | None = None,
) -> LabelMove:
    """Put ``label`` on ``version`` of ``name`` and record the move; a no-op when it is there.

    The history is read (``log``, when not given) before the label moves, so an unreadable
    history stops the move before anything changes.
    """
    movable_label(label)
    holder = admin.find(name, label=label, resolve=False)
    before = holder.version if holder is not None else None
    move = LabelMove(name, label, before, version, action, timestamp(clock), actor or default_actor())
    if not move.changed:
        return move
    log = read_history(admin, name) if log is None else log
    admin.set_labels(name, version, [label])
    append_history(admin, [move], log=log)
    return move


def promote(
    admin: PromptAdmin, name: str, *, source: str | int, to: str, actor: str | None = None,
    clock: Clock = utc_now,
) -> LabelMove:
    """Move label ``to`` onto the version that ``source`` (a label or version) points at.

    >>> promote(admin, "qa", source="staging", to="production").describe()   # doctest: +SKIP
    'qa: production v3 -> v4'
    """
    movable_label(to)
    version, label = parse_ref(source)
    target = admin.get(name, version=version, label=label, resolve=False)
    return move_label(admin, name, to, target.version, action="promote", actor=actor, clock=clock)


def rollback(
    admin: PromptAdmin, name: str, *, label: str = "production", to_version: int | None = None,
    actor: str | None = None, clock: Clock = utc_now,
) -> LabelMove:
    """Move ``label`` back to the version that held it before its last move (or to ``to_version``).

    ``RollbackError`` when there is nothing to roll back to; the label is then left alone.
    """
    movable_label(label)
    current = admin.get(name, label=label, resolve=False).version
    if to_version is not None:
        target = admin.get(name, version=to_version, resolve=False).version
        if target == current:
            raise RollbackError(f"prompt {name!r}: label {label!r} is already on version {current}")
        return move_label(admin, name, label, target, action="move", actor=actor, clock=clock)
    log = read_history(admin, name)
    target = rollback_target(log, name=name, label=label, current=current)
    admin.get(name, version=target, resolve=False)  # still there (versions can be deleted)
    return move_label(admin, name, label, target, action="rollback", actor=actor, clock=clock,
                      log=log)


def rollback_target(moves: Sequence[LabelMove], *, name: str, label: str, current: int) -> int:
    """Where a rollback of ``label`` (now on ``current``) goes, from the recorded moves.

    Replays the label's moves as a stack: a ``rollback`` undoes (pops) the move before it, any
    other move is pushed. The answer is where the top move came from.

    >>> m = [LabelMove("qa", "production", None, 1, "push", "", "a"),
    ...      LabelMove("qa", "production", 1, 2, "promote", "", "a")]
    >>> rollback_target(m, name="qa", label="production", current=2)
    1
    """
    stack: list[LabelMove] = []
    for move in moves:
        if move.label != label or not move.changed:
            continue
        if move.action == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(move)
    where = f"cannot roll back label {label!r} of prompt {name!r} (now on version {current})"
    hint = f"the label history is Langfuse prompt {history_name(name)!r}; give --to-version N instead"
    if not stack:
        raise RollbackError(f"{where}: lvp has recorded no earlier version for it; {hint}")
    top = stack[-1]
    if top.to_version != current:
        raise RollbackError(
            f"{where}: the last move lvp recorded put it on version {top.to_version}, so it was "
            f"moved outside lvp since; {hint}"
        )
    if top.from_version is None:
        raise RollbackError(
            f"{where}: no version held it before it was put on version {current} "
            f"({top.action} at {top.at} by {top.by}); {hint}"
        )
    return top.from_version


def label_history(admin: PromptAdmin, name: str, *, label: str | None = None) -> list[LabelMove]:
    """The recorded label moves of prompt ``name`` (of one ``label``), oldest first."""
    moves = read_history(admin, name)
    return [m for m in moves if label is None or m.label == label]
