"""Prompt operations behind ``lvp``, usable from Python: push, pull, promote, rollback, diff, log.

Each takes a ``PromptAdmin`` (a Langfuse SDK client with one-request, no-retry calls and errors
mapped to the library's own) and returns plain data; none prints.

>>> from langfuse_versioned_prompts import ops                                # doctest: +SKIP
>>> admin = ops.PromptAdmin.connect(public_key="pk-...", secret_key="sk-...",
...                                 base_url="https://cloud.langfuse.com")    # doctest: +SKIP
>>> ops.push(admin, "prompts", label="staging").created                       # doctest: +SKIP
>>> ops.promote(admin, "support", source="staging", to="production")          # doctest: +SKIP
>>> ops.rollback(admin, "support", label="production")                        # doctest: +SKIP

Label history (what ``rollback`` reads) is kept in Langfuse, in the companion text prompt
``lvp-label-history/<name>``: see ``langfuse_versioned_prompts.ops._history``.
"""

from ._admin import ADMIN_TIMEOUT_SECONDS, PromptAdmin, PromptSummary, RemoteVersion
from ._diff import PromptDiff, diff, diff_prompts
from ._errors import LabelHistoryError, PushError, RollbackError
from ._history import HISTORY_PREFIX, LabelMove, history_name, read_history
from ._labels import label_history, parse_ref, promote, rollback, rollback_target
from ._log import prompt_log
from ._pull import PulledPrompt, PullResult, pull
from ._push import PushChange, PushResult, push

__all__ = [
    "ADMIN_TIMEOUT_SECONDS",
    "HISTORY_PREFIX",
    "LabelHistoryError",
    "LabelMove",
    "PromptAdmin",
    "PromptDiff",
    "PromptSummary",
    "PullResult",
    "PulledPrompt",
    "PushChange",
    "PushError",
    "PushResult",
    "RemoteVersion",
    "RollbackError",
    "diff",
    "diff_prompts",
    "history_name",
    "label_history",
    "parse_ref",
    "promote",
    "prompt_log",
    "pull",
    "push",
    "read_history",
    "rollback",
    "rollback_target",
]
