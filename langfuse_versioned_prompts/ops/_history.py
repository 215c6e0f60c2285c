"""Label history: every label move made through ``lvp`` or ``ops``, kept in Langfuse itself.

Langfuse records no label history (langfuse/langfuse#16007): once ``production`` moves, nothing
says where it was. So each move made by ``push --label``, ``promote`` and ``rollback`` is appended
to a log stored in the same Langfuse project, in a companion text prompt::

    lvp-label-history/<prompt name>

whose newest version (label ``latest``) holds the whole log as JSON::

    {"schema": 1, "prompt": "<prompt name>", "moves": [
        {"label": "production", "from_version": 3, "to_version": 4,
         "action": "promote", "at": "2026-01-02T03:04:05Z", "by": "alice"}, ...]}

Every append creates one more version of the companion prompt (its commit message says what
moved), so the log is durable, shared by everyone using the project, and itself versioned. A
prompt without a companion prompt has an empty log. Limits: appends are read-modify-write with no
compare-and-swap in the Langfuse API, so two moves recorded at the same instant may lose one; moves
made elsewhere (Langfuse UI, other tools) are not recorded, and ``rollback`` refuses when the log
disagrees with where the label is. The log keeps the newest ``MAX_MOVES`` moves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .._errors import LVPError, PromptFormatError
from .._prompt import ResolvedPrompt
from ._admin import PromptAdmin
from ._errors import LabelHistoryError

HISTORY_PREFIX = "lvp-label-history/"
"""Name prefix of the companion prompts that hold label histories."""

HISTORY_TAG = "lvp-label-history"
HISTORY_SCHEMA = 1
MAX_MOVES = 1000
"""The log keeps this many newest moves per prompt."""

Action = Literal["push", "promote", "rollback", "move"]
"""How a label moved: put on a pushed version, promoted from another label, rolled back one step
(undoes the move before it), or moved to an explicit version (``rollback --to-version``)."""

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time in UTC (the default clock of the label operations)."""
    return datetime.now(UTC)


def timestamp(clock: Clock = utc_now) -> str:
    """The clock's time as ISO 8601 in UTC, to the second (``at`` of a move)."""
    return clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LabelMove:
    """One recorded move of a label between two versions of a prompt.

    >>> LabelMove("qa", "production", 3, 4, "promote", "2026-01-02T03:04:05Z", "alice").describe()
    'qa: production v3 -> v4'
    """

    prompt: str
    label: str
    from_version: int | None
    """The version that held the label before, or ``None`` when no version held it."""
    to_version: int
    action: Action
    at: str
    """When, ISO 8601 in UTC."""
    by: str
    """Who (``LVP_USER``, else the login name)."""

    @property
    def changed(self) -> bool:
        """False when the label was already on the target version (nothing moved)."""
        return self.from_version != self.to_version

    def describe(self) -> str:
        """``name: label vA -> vB``."""
        before = f"v{self.from_version}" if self.from_version is not None else "(none)"
        return f"{self.prompt}: {self.label} {before} -> v{self.to_version}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON entry of the log (without the prompt name, which the log holds once)."""
        entry = asdict(self)
        del entry["prompt"]
        return entry

    @classmethod
    def from_dict(cls, prompt: str, data: Mapping[str, Any]) -> LabelMove:
        """Read a log entry; ``ValueError`` when it is not one."""
        before, after = data.get("from_version"), data["to_version"]
        if not isinstance(after, int) or not (before is None or isinstance(before, int)):
            raise ValueError(f"versions must be integers, got {before!r} -> {after!r}")
        action = data.get("action", "move")
        if action not in ("push", "promote", "rollback", "move"):
            raise ValueError(f"unknown action {action!r}")
        return cls(prompt, str(data["label"]), before, after, action, str(data.get("at", "")),
                   str(data.get("by", "")))


def history_name(name: str) -> str:
    """The companion prompt holding the label history of prompt ``name``."""
    return HISTORY_PREFIX + name


def is_history_prompt(name: str) -> bool:
    """True for the companion prompts (never pushed, pulled or served as prompts)."""
    return name.startswith(HISTORY_PREFIX)


def read_history(admin: PromptAdmin, name: str) -> list[LabelMove]:
    """Every recorded move of prompt ``name``'s labels, oldest first (empty when none)."""
    remote = admin.newest(history_name(name))
    if remote is None:
        return []
    return parse_log(name, remote.prompt)


def parse_log(name: str, stored: ResolvedPrompt) -> list[LabelMove]:
    """The moves in a companion prompt version; ``PromptFormatError`` naming it when unreadable."""
    where = f"Langfuse prompt {stored.name!r} version {stored.version}"
    try:
        if not isinstance(stored.template, str):
            raise ValueError("it is a chat prompt")
        data = json.loads(stored.template)
        if not isinstance(data, dict) or data.get("schema") != HISTORY_SCHEMA:
            raise ValueError(f"expected a JSON object with schema {HISTORY_SCHEMA}")
        return [LabelMove.from_dict(name, entry) for entry in data.get("moves", [])]
    except (ValueError, KeyError, TypeError) as exc:
        raise PromptFormatError(
            f"{where} is not a readable lvp label history ({exc}); label moves need it: restore "
            "an earlier version of it as a new version, or delete that prompt to start afresh"
        ) from exc


def append_history(
    admin: PromptAdmin, moves: Sequence[LabelMove], *, log: Sequence[LabelMove] | None = None
) -> None:
    """Append ``moves`` (of one prompt) to its label history: one new companion version.

    ``log`` is the history as read before the moves were made (read again when not given).
    """
    moves = [m for m in moves if m.changed]
    if not moves:
        return
    name = moves[0].prompt
    if any(m.prompt != name for m in moves):
        raise ValueError("append_history takes the moves of one prompt at a time")
    try:
        earlier = read_history(admin, name) if log is None else log
        log = [*earlier, *moves][-MAX_MOVES:]
        text = json.dumps(
            {"schema": HISTORY_SCHEMA, "prompt": name, "moves": [m.to_dict() for m in log]},
            indent=1, ensure_ascii=False,
        )
        document = ResolvedPrompt(name=history_name(name), version=1, type="text", template=text,
                                  tags=(HISTORY_TAG,))
        summary = "; ".join(f"{m.action} {m.describe()} by {m.by}" for m in moves)
        admin.create(document, commit_message=f"lvp: {summary}"[:500])
    except LVPError as exc:
        done = ", ".join(m.describe() for m in moves)
        raise LabelHistoryError(
            f"{done} is done, but recording it in the label history "
            f"(Langfuse prompt {history_name(name)!r}) failed: {exc}"
        ) from exc
