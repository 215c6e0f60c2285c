"""``pull``: Langfuse -> prompt files (``LocalPromptStore``), the snapshot that L4 serves.

With no labels, every version of every prompt is written. With labels, the versions holding any
of them are written, plus the newest version (so ``latest`` resolves locally as in Langfuse, and a
later ``push`` of the same files compares against it and creates nothing). Text is written as
Langfuse serves it (prompt references resolved, ``resolution_graph`` kept), so a prompt served
from the snapshot renders exactly as when served from Langfuse.

Everything is fetched before any file is written; each file is then replaced atomically and holds
exactly the pulled versions. Label-history prompts (``lvp-label-history/...``) are not pulled.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass

from .._errors import PromptNotFoundError
from .._prompt import ResolvedPrompt, check_label
from ..sources.local import LocalPromptStore
from ._admin import PromptAdmin, PromptSummary
from ._history import is_history_prompt
from ._labels import LATEST


@dataclass(frozen=True)
class PulledPrompt:
    """One prompt file written by ``pull``."""

    name: str
    path: pathlib.Path
    versions: tuple[int, ...]
    labels: dict[str, int]
    """Which version holds each label in the file (``latest`` excluded)."""


@dataclass(frozen=True)
class PullResult:
    """The files written, and the prompts skipped because no version held the labels."""

    pulled: tuple[PulledPrompt, ...]
    skipped: tuple[str, ...]


def pull(
    admin: PromptAdmin,
    target: LocalPromptStore | str | os.PathLike[str],
    *,
    labels: Sequence[str] = (),
    names: Sequence[str] | None = None,
) -> PullResult:
    """Write the prompt files for ``names`` (default: every prompt) holding ``labels`` (default: all).

    >>> pull(admin, "prompts", labels=["production"]).pulled                  # doctest: +SKIP
    """
    store = target if isinstance(target, LocalPromptStore) else LocalPromptStore(target)
    wanted = [check_label(label) for label in dict.fromkeys(labels)]
    if names:
        summaries = [admin.summary(name) for name in dict.fromkeys(names)]
    else:
        summaries = [s for s in admin.prompts() if not is_history_prompt(s.name)]
    fetched: list[tuple[str, list[ResolvedPrompt]]] = []
    skipped: list[str] = []
    for summary in summaries:
        numbers = _versions_to_pull(admin, summary, wanted, strict=bool(names))
        if not numbers:
            skipped.append(summary.name)
            continue
        versions = [admin.get(summary.name, version=n).prompt for n in numbers]
        fetched.append((summary.name, versions))
    store.path.mkdir(parents=True, exist_ok=True)
    pulled = []
    for name, versions in fetched:
        path = store.save(name, versions)
        held = {label: p.version for p in versions for label in p.labels if label != LATEST}
        pulled.append(PulledPrompt(name, path, tuple(p.version for p in versions), held))
    return PullResult(tuple(pulled), tuple(skipped))


def _versions_to_pull(
    admin: PromptAdmin, summary: PromptSummary, labels: Sequence[str], *, strict: bool
) -> list[int]:
    """The version numbers to write for one prompt (ascending)."""
    if not summary.versions:
        return []
    if not labels:
        return list(summary.versions)
    numbers: set[int] = set()
    for label in labels:
        if label not in summary.labels:
            continue
        found = admin.find(summary.name, label=label, resolve=False)
        if found is not None:
            numbers.add(found.version)
    if not numbers:
        if strict:
            raise PromptNotFoundError(
                f"prompt {summary.name!r} has no version with label "
                f"{' or '.join(map(repr, labels))} in Langfuse (its labels: "
                f"{', '.join(summary.labels) or 'none'})"
            )
        return []
    numbers.add(max(summary.versions))
    return sorted(numbers)
