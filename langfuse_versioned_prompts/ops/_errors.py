"""Errors of the prompt operations; all derive from ``LVPError`` (see ``_errors.py`` for the tree).

::

    LVPError
    ├── PushError            a push stopped part-way; says which prompts were pushed, which not, which unknown
    ├── RollbackError        nothing to roll back to, or the history disagrees with Langfuse
    └── LabelHistoryError    a label moved but recording the move in its history failed
"""

from __future__ import annotations

from collections.abc import Sequence

from .._errors import LVPError


class PushError(LVPError):
    """A push failed after it started writing.

    Each prompt is written by one request, so no prompt is half-written: ``pushed`` were written,
    ``not_pushed`` were not, ``unknown`` may or may not have been (its request got no answer, and
    Langfuse did not show the version when read again). Pushing again is safe: it only writes
    what differs.
    """

    def __init__(
        self, message: str, *, pushed: Sequence[str], not_pushed: Sequence[str], unknown: Sequence[str] = ()
    ) -> None:
        self.pushed = tuple(pushed)
        self.not_pushed = tuple(not_pushed)
        self.unknown = tuple(unknown)
        done = ", ".join(self.pushed) or "none"
        left = ", ".join(self.not_pushed) or "none"
        maybe = f"; unknown: {', '.join(self.unknown)} (re-run push: it is idempotent)" if self.unknown else ""
        super().__init__(f"{message}; pushed: {done}; not pushed: {left}{maybe}")


class RollbackError(LVPError):
    """A label cannot be rolled back: no earlier version recorded, or already there."""


class LabelHistoryError(LVPError):
    """A label moved, but appending the move to its history in Langfuse failed."""
