"""``prompt_log``: every version of a prompt in Langfuse, with labels, dates and commit messages."""

from __future__ import annotations

from ._admin import PromptAdmin, RemoteVersion


def prompt_log(admin: PromptAdmin, name: str) -> list[RemoteVersion]:
    """Every version of prompt ``name``, newest first (one request per version).

    >>> [v.version for v in prompt_log(admin, "qa")]                          # doctest: +SKIP
    [3, 2, 1]
    """
    summary = admin.summary(name)
    return [admin.get(name, version=n, resolve=False) for n in sorted(summary.versions, reverse=True)]
