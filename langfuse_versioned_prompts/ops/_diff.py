"""``diff``: a unified diff of two versions of a prompt (template and config).

The template is the raw text as authored (prompt references unresolved); a chat prompt is shown
one message per block (``[role]`` then its content, ``[placeholder: name]`` for placeholders).
The config is JSON with sorted keys, two-space indent.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._prompt import ResolvedPrompt
from ._admin import PromptAdmin
from ._labels import parse_ref


@dataclass(frozen=True)
class PromptDiff:
    """The differences between versions ``a`` and ``b`` of one prompt, as unified-diff lines."""

    name: str
    a: ResolvedPrompt
    b: ResolvedPrompt
    a_ref: str
    b_ref: str
    template: tuple[str, ...]
    config: tuple[str, ...]

    @property
    def same(self) -> bool:
        """True when type, template and config are equal."""
        return not self.template and not self.config and self.a.type == self.b.type

    @property
    def lines(self) -> tuple[str, ...]:
        """The whole diff: template first, then config."""
        return self.template + self.config


def render_template(prompt: ResolvedPrompt) -> list[str]:
    """The template as lines: text as is, chat as one block per message."""
    if isinstance(prompt.template, str):
        return prompt.template.splitlines()
    lines: list[str] = []
    for index, message in enumerate(prompt.template):
        if index:
            lines.append("")
        lines.extend(_message_block(message))
    return lines


def _message_block(message: Mapping[str, Any]) -> list[str]:
    if message.get("type") == "placeholder":
        return [f"[placeholder: {message.get('name')}]"]
    content = message.get("content")
    text = content if isinstance(content, str) else json.dumps(content, sort_keys=True, indent=2)
    extra = {k: v for k, v in message.items() if k not in ("role", "content", "type")}
    head = f"[{message.get('role')}]" + (f" {json.dumps(extra, sort_keys=True)}" if extra else "")
    return [head, *text.splitlines()]


def render_config(prompt: ResolvedPrompt) -> list[str]:
    """The config as sorted, indented JSON lines."""
    return json.dumps(dict(prompt.config), sort_keys=True, indent=2, ensure_ascii=False).splitlines()


def diff_prompts(a: ResolvedPrompt, b: ResolvedPrompt, *, a_ref: str = "", b_ref: str = "") -> PromptDiff:
    """The diff of two prompt versions (pure; no I/O)."""
    a_name = f"{a.name}@v{a.version}" + (f" ({a_ref})" if a_ref and not a_ref.isdigit() else "")
    b_name = f"{b.name}@v{b.version}" + (f" ({b_ref})" if b_ref and not b_ref.isdigit() else "")
    template = _unified(render_template(a), render_template(b), a_name, b_name, "template")
    if a.type != b.type:
        template = [f"type: {a.type} -> {b.type}", *template]
    config = _unified(render_config(a), render_config(b), a_name, b_name, "config")
    return PromptDiff(a.name, a, b, a_ref or str(a.version), b_ref or str(b.version),
                      tuple(template), tuple(config))


def _unified(old: Sequence[str], new: Sequence[str], a_name: str, b_name: str, part: str) -> list[str]:
    return list(difflib.unified_diff(
        list(old), list(new), fromfile=f"{a_name} {part}", tofile=f"{b_name} {part}", lineterm="",
    ))


def diff(admin: PromptAdmin, name: str, a: str | int, b: str | int) -> PromptDiff:
    """Fetch versions ``a`` and ``b`` of ``name`` (each a version number or a label) and diff them.

    >>> print("\\n".join(diff(admin, "qa", "production", "staging").lines))   # doctest: +SKIP
    """
    fetched = []
    for ref in (a, b):
        version, label = parse_ref(ref)
        fetched.append(admin.get(name, version=version, label=label, resolve=False).prompt)
    return diff_prompts(fetched[0], fetched[1], a_ref=str(a), b_ref=str(b))
