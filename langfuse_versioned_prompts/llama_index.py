"""LlamaIndex prompt template that resolves its Langfuse prompt version at every format.

Put it wherever a query engine takes a prompt::

    qa = VersionedLlamaPromptTemplate(name="rag/qa", label="production")
    query_engine.update_prompts({"response_synthesizer:text_qa_template": qa})

Each ``format`` / ``format_messages`` resolves the version (label, pinned version, A/B variant or
rollout share of the unit set by ``variant_context``) through the ``PromptResolver``, so a moved
label is served on the next query without registering the template again. Templates are rendered
by the one renderer of this library (``{{var}}``, literal braces kept, missing variables raise
``MissingVariableError``), so ``{{context_str}}`` and ``{{query_str}}`` just work.

Chat placeholders: LlamaIndex has no such concept, so a placeholder takes a list of LlamaIndex
``ChatMessage`` objects or ``{"role", "content"}`` dicts from the keyword argument of its name;
left out, ``None`` or ``""`` (what LlamaIndex's prompt helper passes to measure a prompt) it adds
no messages. A placeholder named ``context_messages`` fits the synthesizers' chat-content slots.

What served each call is recorded twice, and never raises into the pipeline:

* on the current OpenTelemetry span, when one is recording: ``langfuse.trace.metadata.<key>`` and
  ``langfuse.trace.tags`` (merged into the trace by Langfuse, as the LangChain handler writes them)
  and ``langfuse.observation.prompt.name`` / ``.version`` (not for fallbacks, the ``fallback=``
  version included: the LangChain templates do not link those either);
* as a ``PromptVersionSelectedEvent`` on the LlamaIndex instrumentation dispatcher, for
  LlamaIndex event handlers. One per format: synthesizers also format once with empty values to
  measure the prompt, so a query usually dispatches more than one.

Errors are typed (``MissingVariableError`` names prompt, version and variable) and reach the
caller in every response mode: render errors are not ``ValueError``s, which LlamaIndex's refine
loop would swallow into "Empty Response".

Formatting is synchronous (LlamaIndex calls ``format`` from async code too): a call that misses
the memory cache reads the next layer in the calling thread; ``resolver.warm([...])`` at startup
keeps that off the hot path.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

try:
    from llama_index.core.base.llms.generic_utils import messages_to_prompt as _messages_to_prompt
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    # both names are re-exported by llama-index-core without ``__all__``, hence the ignores
    from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
    from llama_index.core.instrumentation.event_handlers import NullEventHandler
    from llama_index.core.instrumentation.events.base import (  # type: ignore[attr-defined]
        BaseEvent,
    )
    from llama_index.core.prompts.base import BasePromptTemplate
    from llama_index.core.prompts.prompt_type import PromptType
    from llama_index.core.types import BaseOutputParser
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "langfuse_versioned_prompts.llama_index needs llama-index-core: "
        "pip install 'langfuse-versioned-prompts[llama-index]'"
    ) from exc

from pydantic import PrivateAttr

from ._errors import ConfigurationError, RenderError
from ._prompt import ResolvedPrompt
from ._selection import PromptSpec, Selection, input_variables_of, render, select
from ._tracing import trace_attributes
from .resolver import PromptResolver, default_resolver
from .variants import Experiment, Rollout, current_unit

__all__ = ["PromptVersionSelectedEvent", "VersionedLlamaPromptTemplate"]

logger = logging.getLogger(__name__)
dispatcher = get_dispatcher(__name__)

PROMPT_NAME_ATTRIBUTE = "langfuse.observation.prompt.name"
PROMPT_VERSION_ATTRIBUTE = "langfuse.observation.prompt.version"
TAGS_ATTRIBUTE = "langfuse.trace.tags"

_ROLE_ALIASES = {"human": MessageRole.USER, "ai": MessageRole.ASSISTANT}


class PromptVersionSelectedEvent(BaseEvent):
    """Dispatched each time a ``VersionedLlamaPromptTemplate`` renders: what served the call.

    >>> from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    >>> seen = []
    >>> class Recorder(BaseEventHandler):
    ...     def handle(self, event: Any, **kwargs: Any) -> None:
    ...         if isinstance(event, PromptVersionSelectedEvent):
    ...             seen.append((event.prompt_name, event.prompt_version, event.ab_variant))
    """

    prompt_name: str
    prompt_version: int
    prompt_label: str | None = None
    prompt_source: str = "local"
    prompt_is_fallback: bool = False
    ab_experiment: str | None = None
    ab_variant: str | None = None

    @classmethod
    def class_name(cls) -> str:
        """Name of the event class for handlers and serialisation."""
        return "PromptVersionSelectedEvent"


class VersionedLlamaPromptTemplate(BasePromptTemplate):
    """A LlamaIndex prompt whose text is the Langfuse prompt version served at format time.

    >>> qa = VersionedLlamaPromptTemplate(name="rag/qa", label="production")       # doctest: +SKIP
    >>> query_engine.update_prompts({"response_synthesizer:text_qa_template": qa})  # doctest: +SKIP
    >>> with variant_context(user_id="u-42"):                                      # doctest: +SKIP
    ...     query_engine.query("What did the author do growing up?")
    """

    name: str
    """Langfuse prompt name."""
    label: str | None = None
    """Label to serve (default: the resolver's default label)."""
    version: int | None = None
    """Pinned version to serve."""
    experiment: Experiment | None = None
    """A/B experiment whose variants name labels or versions."""
    rollout: Rollout | None = None
    """Gradual rollout of a label."""
    fallback: str | int | None = None
    """Label or version to use when the served version cannot render with the call's values."""
    kwargs: dict[str, Any]
    """Values given by ``partial_format`` (LlamaIndex's name for partial variables)."""

    _resolver: PromptResolver | None = PrivateAttr(default=None)
    _rng: random.Random | None = PrivateAttr(default=None)

    def __init__(
        self,
        name: str,
        *,
        label: str | None = None,
        version: int | None = None,
        experiment: Experiment | None = None,
        rollout: Rollout | None = None,
        fallback: str | int | None = None,
        resolver: PromptResolver | None = None,
        rng: random.Random | None = None,
        template_vars: Sequence[str] | None = None,
        prompt_type: str = PromptType.CUSTOM,
        output_parser: BaseOutputParser | None = None,
        metadata: dict[str, Any] | None = None,
        template_var_mappings: dict[str, Any] | None = None,
        function_mappings: dict[str, Callable[..., Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        """``kwargs`` are partial values; ``template_vars`` skips reading them from the prompt."""
        spec = _spec(name, label, version, experiment, rollout, fallback)
        if template_vars is None:
            template_vars = input_variables_of(resolver or default_resolver(), spec)
        fields: dict[str, Any] = {
            "name": name,
            "label": label,
            "version": version,
            "experiment": experiment,
            "rollout": rollout,
            "fallback": fallback,
            "template_vars": list(template_vars),
            "kwargs": kwargs,
            "metadata": {**(metadata or {}), "prompt_type": prompt_type},
            "output_parser": output_parser,
            "template_var_mappings": template_var_mappings,
            "function_mappings": function_mappings,
        }
        super().__init__(**fields)
        self._resolver = resolver
        self._rng = rng

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> VersionedLlamaPromptTemplate:
        """Copy the fields; share the resolver, rng, output parser and function mappings.

        They may hold locks or clients (a bound method's object does), which cannot be copied.
        """
        memo = {} if memo is None else memo
        functions = (self.function_mappings or {}).values()
        shared_objects = (self._resolver, self._rng, self.output_parser, self.experiment, self.rollout, *functions)
        for shared in shared_objects:
            if shared is not None:
                memo.setdefault(id(shared), shared)
        copied: VersionedLlamaPromptTemplate = super().__deepcopy__(memo)
        return copied

    # -- what serves a call -------------------------------------------------------------------

    @property
    def spec(self) -> PromptSpec:
        """What this template asks for."""
        return _spec(
            self.name, self.label, self.version, self.experiment, self.rollout, self.fallback
        )

    @property
    def resolver(self) -> PromptResolver:
        """The resolver in use (the process default when none was given)."""
        return self._resolver or default_resolver()

    def resolve(self, user_id: str | None = None, session_id: str | None = None) -> Selection:
        """The selection a call by this user (default: ``variant_context``'s) would get now."""
        if user_id is None and session_id is None:
            user_id, session_id = current_unit()
        return select(self.resolver, self.spec, user_id, session_id, self._rng)

    # -- BasePromptTemplate -------------------------------------------------------------------

    def partial_format(self, **kwargs: Any) -> VersionedLlamaPromptTemplate:
        """A copy with some values filled in (the version is still resolved at format time)."""
        prompt = self.__deepcopy__()
        prompt.kwargs.update(kwargs)
        return prompt

    def format(self, llm: Any = None, **kwargs: Any) -> str:
        """Render to text; a chat prompt is joined as LlamaIndex joins messages.

        ``llm`` is ignored; ``completion_to_prompt`` (text) and ``messages_to_prompt`` (chat),
        as ``LLM.predict`` passes them, are applied.
        """
        del llm
        completion_to_prompt = kwargs.pop("completion_to_prompt", None)
        messages_to_prompt = kwargs.pop("messages_to_prompt", None)
        rendered, selection = self._render(kwargs)
        if selection.prompt.type == "chat":
            messages = self._parse_messages(_to_messages(rendered, selection.prompt))
            return (messages_to_prompt or _messages_to_prompt)(messages)
        text = self._parse_text(rendered)
        return completion_to_prompt(text) if completion_to_prompt is not None else text

    def format_messages(self, llm: Any = None, **kwargs: Any) -> list[ChatMessage]:
        """Render to chat messages; a text prompt becomes one user message."""
        del llm
        kwargs.pop("completion_to_prompt", None)
        kwargs.pop("messages_to_prompt", None)
        rendered, selection = self._render(kwargs)
        if selection.prompt.type == "chat":
            return self._parse_messages(_to_messages(rendered, selection.prompt))
        return [ChatMessage(role=MessageRole.USER, content=self._parse_text(rendered))]

    def get_template(self, llm: Any = None) -> str:
        """The unrendered template of the version this context's user gets now."""
        del llm
        prompt = self.resolve().prompt
        if isinstance(prompt.template, str):
            return prompt.template
        return "\n".join(
            "{{" + m["name"] + "}}" if m.get("type") == "placeholder" else f"{m['role']}: {m['content']}"
            for m in prompt.template
        )

    # -- internals ----------------------------------------------------------------------------

    def _render(self, kwargs: Mapping[str, Any]) -> tuple[Any, Selection]:
        values = self._map_all_vars({**self.kwargs, **kwargs})
        selection = self.resolve()
        values = _with_placeholders(selection.prompt, values)
        rendered, selection = render(self.resolver, self.spec, selection, values)
        _stamp(selection)
        return rendered, selection

    def _parse_text(self, text: str) -> str:
        parser = self.output_parser
        return parser.format(text) if parser is not None else text

    def _parse_messages(self, messages: list[ChatMessage]) -> list[ChatMessage]:
        parser = self.output_parser
        return parser.format_messages(messages) if parser is not None else messages


def _spec(
    name: str,
    label: str | None,
    version: int | None,
    experiment: Experiment | None,
    rollout: Rollout | None,
    fallback: str | int | None,
) -> PromptSpec:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"a versioned prompt template needs the prompt name, got {name!r}")
    if experiment is not None and rollout is not None:
        raise ConfigurationError(f"prompt {name!r}: give an experiment or a rollout, not both")
    checks = (("experiment", experiment, Experiment), ("rollout", rollout, Rollout))
    for what, value, kind in checks:
        if value is not None and not isinstance(value, kind):
            raise ConfigurationError(
                f"prompt {name!r}: {what} must be a {kind.__name__}, got {value!r}"
            )
    chosen = rollout or experiment
    return PromptSpec(name, label=label, version=version, experiment=chosen, fallback=fallback)


def _with_placeholders(prompt: ResolvedPrompt, values: dict[str, Any]) -> dict[str, Any]:
    """Values with each placeholder of ``prompt`` as a list (empty when not given)."""
    for name in prompt.placeholders:
        given = values.get(name)
        if given is None or given == "":
            values[name] = []
        elif isinstance(given, (ChatMessage, Mapping)):
            values[name] = [given]
    return values


def _to_messages(rendered: Sequence[Any], prompt: ResolvedPrompt) -> list[ChatMessage]:
    """LlamaIndex messages from rendered dicts and the ``ChatMessage`` objects of placeholders."""
    messages = []
    for item in rendered:
        if isinstance(item, ChatMessage):
            messages.append(item)
            continue
        if not isinstance(item, Mapping) or "role" not in item or "content" not in item:
            raise RenderError(
                f"prompt {prompt.name!r} version {prompt.version}: a placeholder message must be a "
                f"llama_index ChatMessage or a dict with 'role' and 'content', got {item!r}"
            )
        messages.append(ChatMessage(role=_role(item["role"], prompt), content=item["content"]))
    return messages


def _role(role: object, prompt: ResolvedPrompt) -> MessageRole:
    if isinstance(role, MessageRole):
        return role
    text = str(role).lower()
    if text in _ROLE_ALIASES:
        return _ROLE_ALIASES[text]
    try:
        return MessageRole(text)
    except ValueError:
        known = ", ".join(r.value for r in MessageRole)
        raise RenderError(
            f"prompt {prompt.name!r} version {prompt.version}: unknown message role {role!r} "
            f"(LlamaIndex roles: {known})"
        ) from None


def _stamp(selection: Selection) -> None:
    """Record what served this call on the current span and as a LlamaIndex event."""
    try:
        metadata = selection.metadata()
        _stamp_span(metadata)
        if _listened():
            fields = PromptVersionSelectedEvent.model_fields
            dispatcher.event(PromptVersionSelectedEvent(**{k: metadata[k] for k in fields if k in metadata}))
    except Exception:  # tracing never breaks the user's pipeline
        logger.debug("could not record prompt %s", selection.prompt.name, exc_info=True)


def _listened() -> bool:
    """True when a handler other than LlamaIndex's no-op one would receive our events."""
    current: Any = dispatcher
    while current is not None:
        if any(not isinstance(h, NullEventHandler) for h in current.event_handlers):
            return True
        current = current.parent if current.propagate else None
    return False


def _stamp_span(metadata: Mapping[str, Any]) -> None:
    from opentelemetry import trace

    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes = trace_attributes(metadata)
    if TAGS_ATTRIBUTE in attributes:  # keep the tags other prompts of this span wrote
        existing = (getattr(span, "attributes", None) or {}).get(TAGS_ATTRIBUTE) or ()
        attributes[TAGS_ATTRIBUTE] = list(dict.fromkeys([*existing, *attributes[TAGS_ATTRIBUTE]]))
    if "langfuse_prompt" in metadata:  # linked as LangChain links: never a fallback of either kind
        attributes[PROMPT_NAME_ATTRIBUTE] = metadata["prompt_name"]
        attributes[PROMPT_VERSION_ATTRIBUTE] = metadata["prompt_version"]
    span.set_attributes(attributes)
