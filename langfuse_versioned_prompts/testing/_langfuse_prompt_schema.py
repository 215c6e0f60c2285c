"""Request validation of the prompt API, answering with zod-style issues as Langfuse does.

The create body is ``z.union([text, chat])``: when every branch fails on a type, the answer is one
``invalid_union`` issue at path ``[]``; when exactly one branch has only refinement issues (a label
that fails the regex), those issues are the answer, with their own paths (``["labels", 0]``).
"""

from __future__ import annotations

import re
from typing import Any

from ._langfuse_common import invalid_data, issue, type_issue

LABEL_PATTERN = re.compile(r"^[a-z0-9_\-.]+$")
LABEL_MESSAGE = (
    "Label must be lowercase alphanumeric with optional underscores, hyphens, or periods"
)
_LABEL_MAX = 36
_COMMIT_MESSAGE_MAX = 500
_RESERVED_NAMES = ("new",)

Issues = list[dict[str, Any]]


class _Branch:
    """Issues of one union branch; ``aborted`` when a type check failed (zod stops there)."""

    def __init__(self) -> None:
        self.issues: Issues = []
        self.aborted = False

    def fatal(self, found: dict[str, Any]) -> None:
        self.issues.append(found)
        self.aborted = True


def label_issues(label: str, path: list[str | int]) -> Issues:
    """The refinement issues of one label (length and pattern)."""
    found: Issues = []
    if not label:
        found.append(issue("too_small", path, "Too small: expected string to have >=1 characters",
                           origin="string", minimum=1, inclusive=True))
    if len(label) > _LABEL_MAX:
        found.append(issue("too_big", path, f"Too big: expected string to have <={_LABEL_MAX} characters",
                           origin="string", maximum=_LABEL_MAX, inclusive=True))
    if not LABEL_PATTERN.match(label):
        found.append(issue("invalid_format", path, LABEL_MESSAGE, format="regex",
                           pattern=LABEL_PATTERN.pattern))
    return found


def _name_issues(name: str) -> Issues:
    found: Issues = []
    if not name:
        found.append(issue("too_small", ["name"], "Too small: expected string to have >=1 characters",
                           origin="string", minimum=1, inclusive=True))
    if "|" in name:
        found.append(issue("invalid_format", ["name"], "Prompt name cannot contain '|' character",
                           format="regex", pattern="^[^|]*$"))
    if name in _RESERVED_NAMES:
        found.append(issue("custom", ["name"], f"Prompt name cannot be '{name}'"))
    return found


def _is_message(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    if message.get("type") == "placeholder":
        return isinstance(message.get("name"), str)
    return isinstance(message.get("role"), str) and isinstance(message.get("content"), str)


def _check_branch(body: dict[str, Any], kind: str) -> _Branch:
    branch = _Branch()
    name = body.get("name")
    if not isinstance(name, str):
        branch.fatal(type_issue(["name"], "string", name, present="name" in body))
    else:
        branch.issues += _name_issues(name)
    if "labels" in body:
        labels = body["labels"]
        if not isinstance(labels, list):
            branch.fatal(type_issue(["labels"], "array", labels))
        else:
            for index, label in enumerate(labels):
                if isinstance(label, str):
                    branch.issues += label_issues(label, ["labels", index])
                else:
                    branch.fatal(type_issue(["labels", index], "string", label))
    given_type = body.get("type")
    if (kind == "text" and "type" in body and given_type != "text") or (
        kind == "chat" and given_type != "chat"
    ):
        branch.fatal(issue("invalid_value", ["type"], f'Invalid input: expected "{kind}"', values=[kind]))
    prompt = body.get("prompt")
    if kind == "text" and not isinstance(prompt, str):
        branch.fatal(type_issue(["prompt"], "string", prompt, present="prompt" in body))
    elif kind == "chat":
        if not isinstance(prompt, list):
            branch.fatal(type_issue(["prompt"], "array", prompt, present="prompt" in body))
        else:
            for index, message in enumerate(prompt):
                if not _is_message(message):
                    branch.fatal(issue("invalid_union", ["prompt", index], "Invalid input"))
    tags = body.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        branch.fatal(type_issue(["tags"], "array", tags))
    commit = body.get("commitMessage")
    if commit is not None:
        if not isinstance(commit, str):
            branch.fatal(type_issue(["commitMessage"], "string", commit))
        elif len(commit) > _COMMIT_MESSAGE_MAX:
            branch.issues.append(issue(
                "too_big", ["commitMessage"],
                f"Too big: expected string to have <={_COMMIT_MESSAGE_MAX} characters",
                origin="string", maximum=_COMMIT_MESSAGE_MAX, inclusive=True,
            ))
    return branch


def validate_create(body: Any) -> dict[str, Any]:
    """The parsed create body, or a 400 ``Invalid request data`` with zod issues."""
    if not isinstance(body, dict):
        raise invalid_data([issue("invalid_union", [], "Invalid input", errors=[
            [type_issue([], "object", body)], [type_issue([], "object", body)],
        ])])
    text, chat = _check_branch(body, "text"), _check_branch(body, "chat")
    for kind, branch in (("text", text), ("chat", chat)):
        if not branch.issues:
            return {
                "name": body["name"],
                "type": kind,
                "prompt": body["prompt"],
                "labels": list(body.get("labels") or []),
                "config": body.get("config"),
                "tags": body.get("tags"),
                "commitMessage": body.get("commitMessage"),
            }
    open_branches = [branch for branch in (text, chat) if not branch.aborted]
    if len(open_branches) == 1:
        raise invalid_data(open_branches[0].issues)
    raise invalid_data([issue("invalid_union", [], "Invalid input", errors=[text.issues, chat.issues])])


def validate_patch(body: Any) -> list[str]:
    """The ``newLabels`` of a PATCH body (a strict object), or a 400 with zod issues."""
    if not isinstance(body, dict):
        raise invalid_data([type_issue([], "object", body)])
    found: Issues = []
    unknown = [key for key in body if key != "newLabels"]
    if unknown:
        keys = ", ".join(f'"{key}"' for key in unknown)
        found.append(issue("unrecognized_keys", [], f"Unrecognized key{'s' if len(unknown) > 1 else ''}: "
                           f"{keys}", keys=unknown))
    labels = body.get("newLabels")
    if not isinstance(labels, list):
        found.append(type_issue(["newLabels"], "array", labels, present="newLabels" in body))
        raise invalid_data(found)
    texts = [label for label in labels if isinstance(label, str)]
    for index, label in enumerate(labels):
        if not isinstance(label, str):
            found.append(type_issue(["newLabels", index], "string", label))
    if found:
        raise invalid_data(found)
    if "latest" in texts:
        raise invalid_data([issue(
            "custom", ["newLabels"], "Label 'latest' is always assigned to the latest prompt version"
        )])
    for index, label in enumerate(texts):
        found += label_issues(label, ["newLabels", index])
    if found:
        raise invalid_data(found)
    return list(dict.fromkeys(texts))
