"""LangChain prompt templates that resolve their Langfuse prompt version at every call.

The version is chosen before the run starts, so the run's metadata (a copy of the call's config,
never the shared template) names exactly what served the call: ``langfuse_prompt`` for Langfuse's
own CallbackHandler to link the generation, and ``prompt_*`` / ``ab_*`` keys for filtering.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, cast

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.messages import BaseMessage, HumanMessage, convert_to_messages
from langchain_core.prompt_values import ChatPromptValue, PromptValue, StringPromptValue
from langchain_core.prompts import StringPromptTemplate
from langchain_core.prompts.chat import BaseChatPromptTemplate, ChatPromptTemplate
from langchain_core.runnables import RunnableConfig, ensure_config
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from .._errors import ConfigurationError
from .._prompt import ResolvedPrompt
from .._selection import PromptSpec, Selection, arender, aselect, input_variables_of, render, select
from ..resolver import PromptResolver, default_resolver
from ..variants import Experiment, Rollout, current_unit
from .callbacks import stamp_run


class _Versioned(BaseModel):
    """Fields and call logic shared by the text and chat templates."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str  # the prompt name doubles as the run name
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
    resolver: PromptResolver | None = Field(default=None, exclude=True)
    """Resolver to use (default: one shared ``PromptResolver.from_env()``)."""
    rng: random.Random | None = Field(default=None, exclude=True)
    """Random source for calls with neither user nor session (seed it in tests)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_prepare(kwargs))

    _spec: PromptSpec = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        """Freeze what this template asks for once."""
        super().model_post_init(context)
        self._spec = _spec_of(self.__dict__)

    @property
    def spec(self) -> PromptSpec:
        """What this template asks for."""
        return self._spec

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """Not loadable by ``langchain_core.load``: a template needs a live resolver."""
        return False

    def _resolver(self) -> PromptResolver:
        return self.resolver or default_resolver()

    def _values(self, input: Any) -> dict[str, Any]:
        input_variables: list[str] = self.input_variables  # type: ignore[attr-defined]
        values: dict[str, Any]
        if isinstance(input, dict):
            values = input
        elif len(input_variables) == 1:
            values = {input_variables[0]: input}
        else:
            raise TypeError(
                f"{type(self).__name__} {self.name!r} expects a dict of {input_variables}, got {type(input).__name__}"
            )
        if not self.partial_variables:  # type: ignore[attr-defined]
            return values
        merge: Callable[..., dict[str, Any]] = self._merge_partial_and_user_variables  # type: ignore[attr-defined]
        return merge(**values)

    def _to_value(self, rendered: Any, prompt: ResolvedPrompt) -> PromptValue:
        raise NotImplementedError

    def _call_config(self, config: RunnableConfig, stamp: dict[str, Any]) -> RunnableConfig:
        metadata = {**config.get("metadata", {}), **(self.metadata or {}), **stamp}  # type: ignore[attr-defined]
        tags = [*config.get("tags", []), *(self.tags or [])]  # type: ignore[attr-defined]
        return cast(RunnableConfig, {**config, "metadata": metadata, "tags": tags})

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> PromptValue:
        """Resolve the version for this call, render it, and run it as a traced prompt step."""
        config = ensure_config(config)
        user_id, session_id = _unit_of(config)
        selection: Selection | None = None
        try:
            values, spec, resolver = self._values(input), self.spec, self._resolver()
            selection = select(resolver, spec, user_id, session_id, self.rng)
            rendered, selection = render(resolver, spec, selection, values)
            result: PromptValue | Exception = self._to_value(rendered, selection.prompt)
        except Exception as exc:  # surfaces inside the traced run below
            result = exc
        stamp = selection.metadata() if selection else {"prompt_name": self.name}
        return cast(
            PromptValue,
            self._call_with_config(  # type: ignore[attr-defined]
                _run(result, stamp),
                input,
                self._call_config(config, stamp),
                run_type="prompt",
                serialized=self._serialized,  # type: ignore[attr-defined]
            ),
        )

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> PromptValue:
        """Async twin of ``invoke``; resolution never blocks the event loop."""
        config = ensure_config(config)
        user_id, session_id = _unit_of(config)
        selection: Selection | None = None
        try:
            values, spec, resolver = self._values(input), self.spec, self._resolver()
            selection = await aselect(resolver, spec, user_id, session_id, self.rng)
            rendered, selection = await arender(resolver, spec, selection, values)
            result: PromptValue | Exception = self._to_value(rendered, selection.prompt)
        except Exception as exc:
            result = exc
        stamp = selection.metadata() if selection else {"prompt_name": self.name}
        return cast(
            PromptValue,
            await self._acall_with_config(  # type: ignore[attr-defined]
                _arun(result, stamp),
                input,
                self._call_config(config, stamp),
                run_type="prompt",
                serialized=self._serialized,  # type: ignore[attr-defined]
            ),
        )

    def resolve(self, user_id: str | None = None, session_id: str | None = None) -> Selection:
        """The selection a call by this user would get now (without rendering)."""
        if user_id is None and session_id is None:
            user_id, session_id = current_unit()
        return select(self._resolver(), self.spec, user_id, session_id, self.rng)

    def _format_value(self, **kwargs: Any) -> PromptValue:
        user_id, session_id = current_unit()
        spec, resolver = self.spec, self._resolver()
        selection = select(resolver, spec, user_id, session_id, self.rng)
        rendered, selection = render(resolver, spec, selection, self._values(kwargs))
        return self._to_value(rendered, selection.prompt)

    async def _aformat_value(self, **kwargs: Any) -> PromptValue:
        user_id, session_id = current_unit()
        spec, resolver = self.spec, self._resolver()
        selection = await aselect(resolver, spec, user_id, session_id, self.rng)
        rendered, selection = await arender(resolver, spec, selection, self._values(kwargs))
        return self._to_value(rendered, selection.prompt)


class VersionedPromptTemplate(_Versioned, StringPromptTemplate):  # type: ignore[misc]  # name: str narrows str | None
    """A LangChain string prompt whose text is the Langfuse prompt version served at call time.

    >>> prompt = VersionedPromptTemplate(name="customer-support", label="production")  # doctest: +SKIP
    >>> (prompt | llm).invoke({"customer_name": "John", "issue_type": "billing"})       # doctest: +SKIP
    """

    @property
    def _prompt_type(self) -> str:
        return "langfuse-versioned"

    def _to_value(self, rendered: Any, prompt: ResolvedPrompt) -> PromptValue:
        if prompt.type != "text":
            raise ConfigurationError(
                f"prompt {prompt.name!r} version {prompt.version} is a chat prompt: use VersionedChatPromptTemplate"
            )
        return StringPromptValue(text=rendered)

    def format(self, **kwargs: Any) -> str:
        """Render the version this context's user gets (see ``variant_context``)."""
        return self._format_value(**kwargs).to_string()

    def format_prompt(self, **kwargs: Any) -> PromptValue:
        """Render to a ``StringPromptValue``."""
        return self._format_value(**kwargs)

    async def aformat(self, **kwargs: Any) -> str:
        """Async twin of ``format``: resolution never blocks the event loop."""
        return (await self._aformat_value(**kwargs)).to_string()

    async def aformat_prompt(self, **kwargs: Any) -> PromptValue:
        """Async twin of ``format_prompt``."""
        return await self._aformat_value(**kwargs)


class VersionedChatPromptTemplate(_Versioned, ChatPromptTemplate):  # type: ignore[misc]  # name: str narrows str | None
    """A LangChain chat prompt resolved from Langfuse at call time; placeholders take messages.

    >>> prompt = VersionedChatPromptTemplate(name="analyzer", experiment=exp)  # doctest: +SKIP
    >>> prompt.invoke({"content": "...", "history": []},
    ...               config={"metadata": {"langfuse_user_id": "u-42"}})       # doctest: +SKIP
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("messages", [])
        BaseChatPromptTemplate.__init__(self, **_prepare(kwargs))

    @model_validator(mode="before")
    @classmethod
    def validate_input_variables(cls, values: Any) -> Any:
        """Input variables come from the Langfuse prompt, not from ``messages``."""
        return values

    @property
    def _prompt_type(self) -> str:
        return "langfuse-versioned-chat"

    def _to_value(self, rendered: Any, prompt: ResolvedPrompt) -> PromptValue:
        if prompt.type == "text":
            return ChatPromptValue(messages=[HumanMessage(content=rendered)])
        return ChatPromptValue(messages=convert_to_messages(rendered))

    def format_messages(self, **kwargs: Any) -> list[BaseMessage]:
        """Render the version this context's user gets to LangChain messages."""
        return self._format_value(**kwargs).to_messages()

    async def aformat_messages(self, **kwargs: Any) -> list[BaseMessage]:
        """Async twin of ``format_messages``."""
        return (await self._aformat_value(**kwargs)).to_messages()

    async def aformat_prompt(self, **kwargs: Any) -> ChatPromptValue:
        """Async twin of ``format_prompt``."""
        return cast(ChatPromptValue, await self._aformat_value(**kwargs))

    def format_prompt(self, **kwargs: Any) -> ChatPromptValue:
        """Render to a ``ChatPromptValue``."""
        return cast(ChatPromptValue, self._format_value(**kwargs))

    def partial(self, **kwargs: Any) -> VersionedChatPromptTemplate:
        """A copy with some variables filled in."""
        fields = dict(self.__dict__)
        fields["input_variables"] = [v for v in self.input_variables if v not in kwargs]
        fields["partial_variables"] = {**self.partial_variables, **kwargs}
        return type(self)(**fields)


def _prepare(values: dict[str, Any]) -> dict[str, Any]:
    """Check the spec and fill ``input_variables`` from the prompt (before pydantic sees them)."""
    spec = _spec_of(values)
    if values.get("input_variables") is None:
        resolver = values.get("resolver") or default_resolver()
        partials = values.get("partial_variables") or {}
        values["input_variables"] = [v for v in input_variables_of(resolver, spec) if v not in partials]
    return values


def _spec_of(values: dict[str, Any]) -> PromptSpec:
    name = values.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"a versioned prompt template needs the prompt name, got {name!r}")
    if values.get("rollout") is not None and values.get("experiment") is not None:
        raise ConfigurationError(f"prompt {name!r}: give an experiment or a rollout, not both")
    return PromptSpec(
        name=name,
        label=values.get("label"),
        version=values.get("version"),
        experiment=values.get("rollout") or values.get("experiment"),
        fallback=values.get("fallback"),
    )


def _unit_of(config: RunnableConfig) -> tuple[str | None, str | None]:
    """User and session of a call: from its metadata, else from ``variant_context``, field by field."""
    metadata = config.get("metadata") or {}
    context_user, context_session = current_unit()
    user = metadata.get("langfuse_user_id") or metadata.get("user_id") or context_user
    session = metadata.get("langfuse_session_id") or metadata.get("session_id") or context_session
    return (None if user is None else str(user)), (None if session is None else str(session))


def _run(
    result: PromptValue | Exception, stamp: dict[str, Any]
) -> Callable[[Any, CallbackManagerForChainRun], PromptValue]:
    def run(_input: Any, run_manager: CallbackManagerForChainRun) -> PromptValue:
        if isinstance(result, Exception):
            raise result
        stamp_run(run_manager.run_id, stamp, run_manager.handlers)
        return result

    return run


def _arun(
    result: PromptValue | Exception, stamp: dict[str, Any]
) -> Callable[[Any, AsyncCallbackManagerForChainRun], Awaitable[PromptValue]]:
    async def run(_input: Any, run_manager: AsyncCallbackManagerForChainRun) -> PromptValue:
        if isinstance(result, Exception):
            raise result
        stamp_run(run_manager.run_id, stamp, run_manager.handlers)
        return result

    return run
