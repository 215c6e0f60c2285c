"""Errors of the prompt operations; all derive from ``LVPError`` (see ``_errors.py`` for the tree).

::

    LVPError
    ├── PushError            a push stopped part-way; says which prompts were pushed and which not
    ├── RollbackError        nothing to roll back to, or the history disagrees with Langfuse
    └── LabelHistoryError    a label moved but recording the move in its history failed
"""

from __future__ import annotations

from collections.abc import Sequence

from .._errors import LVPError


class PushError(LVPError):
    """A push failed after it started writing.

    Each prompt is written by one request, so no prompt is half-written: ``pushed`` were written,
    ``not_pushed`` were not (the first of them is the one that failed).
    """

    def __init__(self, message: str, *, pushed: Sequence[str], not_pushed: Sequence[str]) -> None:
        self.pushed = tuple(pushed)
        self.not_pushed = tuple(not_pushed)
        done = ", ".join(self.pushed) or "none"
        left = ", ".join(self.not_pushed) or "none"
        super().__init__(f"{message}; pushed: {done}; not pushed: {left}")


class RollbackError(LVPError):
    """A label cannot be rolled back: no earlier version recorded, or already there."""


class LabelHistoryError(LVPError):
    """A label moved, but appending the move to its history in Langfuse failed."""
