"""``diff``: a unified diff of two versions of a prompt (template and config).

The template is the raw text as authored (prompt references unresolved); a chat prompt is shown
one message per block (``[role]`` then its content, ``[placeholder: name]`` for placeholders).
The config is JSON with sorted keys, two-space indent.

Two versions are the same exactly when push would see no change (``content_differences``), so
differences that are invisible in plain text are shown: a text template without a final newline
gets ``\\ No newline at end of file`` (as in ``git diff``), a carriage return is shown as ``␍``
(CRLF line endings), and a chat message's final newline is an empty last line of its block.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._prompt import ResolvedPrompt
from ._admin import PromptAdmin, content_differences
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
        """True when type, template and config are equal, character for character (as push sees them)."""
        return not content_differences(self.a, self.b)

    @property
    def lines(self) -> tuple[str, ...]:
        """The whole diff: template first, then config."""
        return self.template + self.config


NO_FINAL_NEWLINE = "\\ No newline at end of file"
CARRIAGE_RETURN = "\u240d"
"""How a carriage return is shown (U+240D SYMBOL FOR CARRIAGE RETURN)."""


def render_template(prompt: ResolvedPrompt) -> list[str]:
    """The template as lines, each ending in ``\\n`` but a text's last one when the text has no
    final newline: text as is, chat as one block per message."""
    if isinstance(prompt.template, str):
        return _text_lines(prompt.template)
    lines: list[str] = []
    for index, message in enumerate(prompt.template):
        if index:
            lines.append("\n")
        lines.extend(line + "\n" for line in _message_block(message))
    return lines


def _text_lines(text: str) -> list[str]:
    """``text`` split after each ``\\n`` only (not at other line separators; a CR stays in its line)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def _message_block(message: Mapping[str, Any]) -> list[str]:
    if message.get("type") == "placeholder":
        return [f"[placeholder: {message.get('name')}]"]
    content = message.get("content")
    text = content if isinstance(content, str) else json.dumps(content, sort_keys=True, indent=2)
    extra = {k: v for k, v in message.items() if k not in ("role", "content", "type")}
    head = f"[{message.get('role')}]" + (f" {json.dumps(extra, sort_keys=True)}" if extra else "")
    return [head, *text.split("\n")]


def render_config(prompt: ResolvedPrompt) -> list[str]:
    """The config as sorted, indented JSON lines."""
    text = json.dumps(dict(prompt.config), sort_keys=True, indent=2, ensure_ascii=False)
    return [line + "\n" for line in text.split("\n")]


def diff_prompts(a: ResolvedPrompt, b: ResolvedPrompt, *, a_ref: str = "", b_ref: str = "") -> PromptDiff:
    """The diff of two prompt versions (pure; no I/O)."""
    a_name = f"{a.name}@v{a.version}" + (f" ({a_ref})" if a_ref and not a_ref.isdigit() else "")
    b_name = f"{b.name}@v{b.version}" + (f" ({b_ref})" if b_ref and not b_ref.isdigit() else "")
    template = _unified(render_template(a), render_template(b), a_name, b_name, "template")
    if a.type != b.type:
        template = [f"type: {a.type} -> {b.type}", *template]
    config = _unified(render_config(a), render_config(b), a_name, b_name, "config")
    if not template and not config and content_differences(a, b):  # e.g. a chat field shown alike
        template = [f"{a_name} and {b_name} differ in a way these lines cannot show; compare them raw"]
    return PromptDiff(a.name, a, b, a_ref or str(a.version), b_ref or str(b.version),
                      tuple(template), tuple(config))


def _unified(old: Sequence[str], new: Sequence[str], a_name: str, b_name: str, part: str) -> list[str]:
    """A unified diff of lines that keep their ``\\n``, as display lines (no ``\\n``)."""
    found = list(difflib.unified_diff(
        list(old), list(new), fromfile=f"{a_name} {part}", tofile=f"{b_name} {part}", lineterm="",
    ))
    shown = found[:2]
    for line in found[2:]:
        if line.startswith("@@"):
            shown.append(line)
        elif line.endswith("\n"):
            shown.append(line[:-1].replace("\r", CARRIAGE_RETURN))
        else:
            shown += [line.replace("\r", CARRIAGE_RETURN), NO_FINAL_NEWLINE]
    return shown


def diff(admin: PromptAdmin, name: str, a: str | int, b: str | int) -> PromptDiff:
    """Fetch versions ``a`` and ``b`` of ``name`` (each a version number or a label) and diff them.

    >>> print("\\n".join(diff(admin, "qa", "production", "staging").lines))   # doctest: +SKIP
    """
    fetched = []
    for ref in (a, b):
        version, label = parse_ref(ref)
        fetched.append(admin.get(name, version=version, label=label, resolve=False).prompt)
    return diff_prompts(fetched[0], fetched[1], a_ref=str(a), b_ref=str(b))
