"""``PromptKey`` (what is asked for) and ``ResolvedPrompt`` (what was served, and from where)."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping, Sequence
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ._errors import ConfigurationError, MissingVariableError, PromptFormatError, RenderError
from ._render import Template, parse_template, template_format

if TYPE_CHECKING:
    from langfuse.model import ChatPromptClient, TextPromptClient

    from .variants import Experiment

PromptType = Literal["text", "chat"]
Source = Literal["memory", "redis", "langfuse", "local"]
ChatMessage = Mapping[str, Any]

LABEL_PATTERN = re.compile(r"[a-z0-9_\-.]+")
"""Langfuse's rule for labels: lowercase letters, digits, ``_``, ``-`` and ``.``."""


class PromptKey(NamedTuple):
    """What is asked for: a prompt name and exactly one of label or version.

    A tuple, so it hashes at C speed on the hot path; build it with ``PromptKey.create``.

    >>> PromptKey.create("support/triage", label="staging")
    PromptKey(name='support/triage', label='staging', version=None)
    """

    name: str
    label: str | None
    version: int | None

    @classmethod
    def create(
        cls,
        name: str,
        label: str | None = None,
        version: int | None = None,
        *,
        default_label: str = "production",
    ) -> PromptKey:
        """Validate and build a key; no label and no version means ``default_label``."""
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"prompt name must be a non-empty string, got {name!r}")
        if label is not None and version is not None:
            raise ConfigurationError(
                f"prompt {name!r}: give a label or a version, not both (got label={label!r}, version={version!r})"
            )
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise ConfigurationError(f"prompt {name!r}: version must be a positive integer, got {version!r}")
            return cls(name, None, version)
        label = default_label if label is None else label
        check_label(label, prompt=name)
        return cls(name, label, None)

    @property
    def pinned(self) -> bool:
        """True when the key asks for a fixed version."""
        return self.version is not None

    def __str__(self) -> str:
        return f"{self.name}@v{self.version}" if self.version is not None else f"{self.name}@{self.label}"


def check_label(label: object, *, prompt: str | None = None) -> str:
    """Return ``label`` if Langfuse would accept it, else raise ``ConfigurationError``."""
    if not isinstance(label, str) or not LABEL_PATTERN.fullmatch(label):
        where = f"prompt {prompt!r}: " if prompt else ""
        raise ConfigurationError(
            f"{where}invalid label {label!r}: labels are lowercase letters, digits, '_', '-' and '.'"
        )
    return label


@dataclasses.dataclass(frozen=True)
class ResolvedPrompt:
    """An immutable prompt version, with where it came from.

    >>> p = ResolvedPrompt(name="greet", version=2, type="text", template="Hi {{ name }}!")
    >>> p.render(name="Ada")
    'Hi Ada!'
    >>> p.variables
    ('name',)
    """

    name: str
    version: int
    type: PromptType
    template: str | tuple[ChatMessage, ...]
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    labels: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    commit_message: str | None = None
    resolution_graph: Mapping[str, Any] | None = None
    label: str | None = None
    """The label this prompt was asked for by, if any."""
    source: Source = "local"
    is_stale: bool = False
    is_fallback: bool = False

    def __post_init__(self) -> None:
        if self.type not in ("text", "chat"):
            raise PromptFormatError(f"prompt {self.name!r}: type must be 'text' or 'chat', got {self.type!r}")
        if self.type == "text" and not isinstance(self.template, str):
            raise PromptFormatError(f"text prompt {self.name!r} v{self.version}: the prompt must be a string")
        if self.type == "chat":
            if isinstance(self.template, str) or not isinstance(self.template, Sequence):
                raise PromptFormatError(
                    f"chat prompt {self.name!r} v{self.version}: the prompt must be a list of messages"
                )
            object.__setattr__(self, "template", tuple(_check_message(self, m) for m in self.template))
        object.__setattr__(self, "config", MappingProxyType(copy.deepcopy(dict(self.config))))
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "tags", tuple(self.tags))

    # -- derived -------------------------------------------------------------------------------

    @property
    def is_pinned_immutable(self) -> bool:
        """True when this version's text can never change (it references no other prompt)."""
        return not self.resolution_graph

    @cached_property
    def _parsed(self) -> tuple[Template, ...]:
        fmt = template_format(self.config)
        try:
            if isinstance(self.template, str):
                return (parse_template(self.template, fmt),)
            return tuple(
                parse_template(m["content"], fmt)
                for m in self.template
                if "role" in m and isinstance(m.get("content"), str)
            )
        except RenderError as exc:
            raise RenderError(f"prompt {self.name!r} version {self.version}: {exc}") from exc

    @property
    def variables(self) -> tuple[str, ...]:
        """Template variables this version needs, in order of first use (placeholders excluded)."""
        seen: dict[str, None] = {}
        for template in self._parsed:
            seen.update(dict.fromkeys(template.variables))
        return tuple(seen)

    @property
    def placeholders(self) -> tuple[str, ...]:
        """Names of the chat message placeholders, in order."""
        if isinstance(self.template, str):
            return ()
        return tuple(m["name"] for m in self.template if m.get("type") == "placeholder")

    # -- rendering -----------------------------------------------------------------------------

    def render(self, **values: Any) -> Any:
        """Render to text, or for a chat prompt to a list of ``{"role", "content"}`` dicts.

        A chat placeholder takes a list of messages (dicts or LangChain messages) from the value of
        the same name. A missing variable raises ``MissingVariableError`` naming it and this version.
        """
        try:
            if isinstance(self.template, str):
                return self._parsed[0].render(values)
            return self._render_chat(values)
        except MissingVariableError as exc:
            raise MissingVariableError(exc.missing, prompt=self.name, version=self.version) from None
        except RenderError as exc:
            raise RenderError(f"prompt {self.name!r} version {self.version}: {exc}") from exc

    def _render_chat(self, values: Mapping[str, Any]) -> list[Any]:
        messages: list[Any] = []
        missing: list[str] = []
        parsed = iter(self._parsed)
        assert not isinstance(self.template, str)
        for message in self.template:
            if message.get("type") == "placeholder":
                name = message["name"]
                if name not in values:
                    missing.append(name)
                    continue
                filled = values[name]
                if isinstance(filled, (str, bytes)) or not isinstance(filled, Sequence):
                    raise RenderError(f"placeholder {name!r} takes a list of messages, got {type(filled).__name__}")
                messages.extend(filled)
                continue
            rendered = dict(message)
            rendered.pop("type", None)
            if isinstance(message.get("content"), str):
                try:
                    rendered["content"] = next(parsed).render(values)
                except MissingVariableError as exc:
                    missing.extend(exc.missing)
            messages.append(rendered)
        if missing:
            raise MissingVariableError(missing)
        return messages

    # -- conversion ----------------------------------------------------------------------------

    def replace(self, **changes: Any) -> ResolvedPrompt:
        """A copy with ``changes`` applied (e.g. ``source="redis"``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The prompt in the Langfuse API shape (camelCase keys), JSON-serialisable."""
        return {
            "name": self.name,
            "version": self.version,
            "type": self.type,
            "prompt": self.template if isinstance(self.template, str) else [dict(m) for m in self.template],
            "config": copy.deepcopy(dict(self.config)),
            "labels": list(self.labels),
            "tags": list(self.tags),
            "commitMessage": self.commit_message,
            "resolutionGraph": copy.deepcopy(dict(self.resolution_graph)) if self.resolution_graph else None,
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, label: str | None = None, source: Source = "local", origin: str = ""
    ) -> ResolvedPrompt:
        """Build from the Langfuse API shape; ``origin`` (a file or key) is named in errors."""
        where = f"{origin}: " if origin else ""
        try:
            version = data["version"]
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise PromptFormatError(f"{where}version must be a positive integer, got {version!r}")
            config = data.get("config") or {}
            if not isinstance(config, Mapping):
                raise PromptFormatError(f"{where}config must be a mapping, got {type(config).__name__}")
            return cls(
                name=str(data["name"]),
                version=version,
                type=data.get("type", "text"),
                template=data["prompt"],
                config=config,
                labels=tuple(data.get("labels") or ()),
                tags=tuple(data.get("tags") or ()),
                commit_message=data.get("commitMessage"),
                resolution_graph=data.get("resolutionGraph") or None,
                label=label,
                source=source,
            )
        except KeyError as exc:
            raise PromptFormatError(f"{where}missing required field {exc.args[0]!r}") from exc
        except PromptFormatError as exc:
            if where and not str(exc).startswith(where):
                raise PromptFormatError(f"{where}{exc}") from exc
            raise

    @cached_property
    def experiment(self) -> Experiment | None:
        """The A/B experiment defined in this prompt's config (key ``experiment``), if any."""
        if "experiment" not in self.config:
            return None
        from .variants import Experiment

        return Experiment.from_config(self.config["experiment"], default_name=self.name)

    @cached_property
    def run_metadata(self) -> Mapping[str, Any]:
        """Run metadata that says this version served a call (``ab_*`` keys left empty)."""
        data: dict[str, Any] = {
            "prompt_name": self.name,
            "prompt_version": self.version,
            "prompt_label": self.label,
            "prompt_source": self.source,
            "prompt_is_fallback": self.is_fallback,
            "ab_experiment": None,
            "ab_variant": None,
        }
        if not self.is_fallback:  # Langfuse links generations to real versions only
            data["langfuse_prompt"] = self.langfuse_client
        return MappingProxyType(data)

    @cached_property
    def langfuse_client(self) -> TextPromptClient | ChatPromptClient:
        """The Langfuse SDK prompt client for this version, for ``metadata["langfuse_prompt"]``."""
        from langfuse.api import Prompt_Chat, Prompt_Text
        from langfuse.model import ChatPromptClient, TextPromptClient

        fields: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "config": dict(self.config),
            "labels": list(self.labels),
            "tags": list(self.tags),
            "commitMessage": self.commit_message,
        }
        if isinstance(self.template, str):
            return TextPromptClient(Prompt_Text(prompt=self.template, **fields), is_fallback=self.is_fallback)
        messages = [dict(m) for m in self.template]
        for m in messages:
            if m.get("type") != "placeholder":
                m["type"] = "chatmessage"
        chat = Prompt_Chat(prompt=messages, **fields)  # type: ignore[arg-type]  # pydantic parses the dicts
        return ChatPromptClient(chat, is_fallback=self.is_fallback)


def _check_message(prompt: ResolvedPrompt, message: object) -> ChatMessage:
    where = f"chat prompt {prompt.name!r} v{prompt.version}"
    if not isinstance(message, Mapping):
        raise PromptFormatError(f"{where}: each message must be a mapping, got {message!r}")
    if message.get("type") == "placeholder":
        if not isinstance(message.get("name"), str) or not message["name"]:
            raise PromptFormatError(f"{where}: a placeholder needs a 'name'")
        return {"type": "placeholder", "name": message["name"]}
    if "role" not in message or "content" not in message:
        raise PromptFormatError(f"{where}: a message needs 'role' and 'content', got {dict(message)!r}")
    return dict(message)
