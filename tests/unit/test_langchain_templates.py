"""LangChain templates on a local prompt store: per-call resolution, variants, metadata, LCEL."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import ChatPromptValue, StringPromptValue
from langchain_core.runnables import RunnableLambda

from langfuse_versioned_prompts import (
    ConfigurationError,
    Experiment,
    LocalPromptStore,
    MissingVariableError,
    PromptNotFoundError,
    PromptResolver,
    ResolvedPrompt,
    Rollout,
    Variant,
    VersionedChatPromptTemplate,
    VersionedPromptTemplate,
    variant_context,
)


class MetadataRecorder(BaseCallbackHandler):
    """Records the metadata of each prompt run."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, metadata: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if metadata and "prompt_name" in metadata:
            self.runs.append(dict(metadata))


def text(
    name: str, version: int, template: str, labels: tuple[str, ...] = (), config: dict[str, Any] | None = None
) -> ResolvedPrompt:
    return ResolvedPrompt(
        name=name, version=version, type="text", template=template, labels=labels, config=config or {}
    )


@pytest.fixture
def store(tmp_path: Any) -> LocalPromptStore:
    store = LocalPromptStore(tmp_path)
    store.save(
        "greet",
        [
            text("greet", 1, "Hello {{name}}!", ("production",)),
            text("greet", 2, "Hi {{name}}, welcome to {{place}}.", ("staging", "canary")),
        ],
    )
    store.save(
        "chat",
        [
            ResolvedPrompt(
                name="chat",
                version=1,
                type="chat",
                template=[
                    {"role": "system", "content": 'You are {{persona}}. Reply as JSON: {"a": 1}'},
                    {"type": "placeholder", "name": "history"},
                    {"role": "user", "content": "{{question}}"},
                ],
                labels=("production",),
            )
        ],
    )
    return store


@pytest.fixture
def resolver(store: LocalPromptStore) -> PromptResolver:
    return PromptResolver(local=store)


def test_input_variables_come_from_the_prompt(resolver: PromptResolver) -> None:
    assert VersionedPromptTemplate(name="greet", resolver=resolver).input_variables == ["name"]
    ab = VersionedPromptTemplate(
        name="greet", resolver=resolver, experiment=Experiment("e", [Variant("A", version=1), Variant("B", version=2)])
    )
    assert set(ab.input_variables) == {"name", "place"}
    declared = VersionedPromptTemplate(name="greet", resolver=resolver, input_variables=["name", "extra"])
    assert declared.input_variables == ["name", "extra"]


def test_invoke_renders_and_stamps_a_copy_of_the_metadata(resolver: PromptResolver) -> None:
    prompt = VersionedPromptTemplate(name="greet", resolver=resolver)
    recorder = MetadataRecorder()
    shared = {"langfuse_user_id": "u-1"}
    value = prompt.invoke({"name": "Ada"}, config={"callbacks": [recorder], "metadata": shared})
    assert value == StringPromptValue(text="Hello Ada!")
    assert shared == {"langfuse_user_id": "u-1"}, "the caller's metadata must not be changed"
    assert prompt.metadata is None, "nothing per call is stored on the template"
    (run,) = recorder.runs
    assert run["prompt_name"] == "greet" and run["prompt_version"] == 1 and run["prompt_label"] == "production"
    assert run["prompt_source"] == "memory" and run["prompt_is_fallback"] is False
    assert run["langfuse_prompt"].version == 1 and run["ab_variant"] is None


def test_a_label_move_is_served_at_the_next_call(store: LocalPromptStore, resolver: PromptResolver) -> None:
    prompt = VersionedPromptTemplate(name="greet", resolver=resolver, fallback=1)
    assert prompt.invoke({"name": "A"}).to_string() == "Hello A!"
    versions = store.versions("greet")
    store.save("greet", [versions[0].replace(labels=()), versions[1].replace(labels=("production",))])
    resolver.invalidate("greet", label="production")
    assert prompt.invoke({"name": "A", "place": "Oslo"}).to_string() == "Hi A, welcome to Oslo."


def test_a_new_version_needing_a_new_variable_names_it(resolver: PromptResolver) -> None:
    prompt = VersionedPromptTemplate(name="greet", label="staging", resolver=resolver, input_variables=["name"])
    with pytest.raises(MissingVariableError, match=r"'place' of prompt 'greet' version 2"):
        prompt.invoke({"name": "A"})


def test_fallback_is_used_when_the_served_version_cannot_render(resolver: PromptResolver) -> None:
    prompt = VersionedPromptTemplate(name="greet", label="staging", fallback="production", resolver=resolver)
    recorder = MetadataRecorder()
    value = prompt.invoke({"name": "A"}, config={"callbacks": [recorder]})
    assert value.to_string() == "Hello A!"
    (run,) = recorder.runs
    assert run["prompt_version"] == 1 and run["prompt_is_fallback"] is True
    assert "langfuse_prompt" not in run, "fallbacks are marked, not linked"


def test_experiment_is_sticky_per_user_and_recorded(resolver: PromptResolver) -> None:
    experiment = Experiment("greet-ab", [Variant("A", version=1), Variant("B", version=2)])
    prompt = VersionedPromptTemplate(name="greet", experiment=experiment, resolver=resolver)
    recorder = MetadataRecorder()
    seen: dict[str, set[int]] = {}
    for i in range(200):
        user = f"user-{i % 20}"
        prompt.invoke(
            {"name": "x", "place": "y"}, config={"callbacks": [recorder], "metadata": {"langfuse_user_id": user}}
        )
        seen.setdefault(user, set()).add(recorder.runs[-1]["prompt_version"])
    assert all(len(versions) == 1 for versions in seen.values()), "a user keeps one variant"
    assert {v for versions in seen.values() for v in versions} == {1, 2}
    run = recorder.runs[0]
    assert run["ab_experiment"] == "greet-ab"
    assert run["ab_variant"] == {1: "A", 2: "B"}[run["prompt_version"]]


def test_variant_context_sets_the_unit_for_format(resolver: PromptResolver) -> None:
    rollout = Rollout("canary", target="canary", percent=100)
    prompt = VersionedPromptTemplate(name="greet", rollout=rollout, resolver=resolver)
    with variant_context(user_id="u-1"):
        assert prompt.format(name="A", place="B") == "Hi A, welcome to B."
    assert prompt.resolve(user_id="u-1").assignment.variant.name == "canary"  # type: ignore[union-attr]


def test_experiment_from_the_prompt_config_changes_without_a_deploy(
    store: LocalPromptStore, resolver: PromptResolver
) -> None:
    prompt = VersionedPromptTemplate(name="greet", resolver=resolver, input_variables=["name", "place"])
    assert prompt.resolve(user_id="u").assignment is None
    base = store.versions("greet")
    config = {"experiment": {"name": "remote", "variants": [{"name": "new", "version": 2, "weight": 1}]}}
    store.save("greet", [base[0].replace(config=config), base[1]])
    resolver.invalidate("greet")
    selection = prompt.resolve(user_id="u")
    assert selection.prompt.version == 2 and selection.assignment.experiment.name == "remote"  # type: ignore[union-attr]


def test_chat_template_with_placeholder(resolver: PromptResolver) -> None:
    prompt = VersionedChatPromptTemplate(name="chat", resolver=resolver)
    assert set(prompt.input_variables) == {"persona", "question", "history"}
    value = prompt.invoke({"persona": "a bot", "question": "why?", "history": [("human", "hi"), ("ai", "hello")]})
    assert isinstance(value, ChatPromptValue)
    assert [m.type for m in value.messages] == ["system", "human", "ai", "human"]
    assert value.messages[0].content == 'You are a bot. Reply as JSON: {"a": 1}'
    partial = prompt.partial(persona="fixed")
    assert set(partial.input_variables) == {"question", "history"}
    assert partial.format_messages(question="q", history=[])[0].content.startswith("You are fixed.")


def test_lcel_chain_batch_stream_and_async(resolver: PromptResolver) -> None:
    llm = FakeListChatModel(responses=["ok"] * 20)
    chain = VersionedChatPromptTemplate(name="chat", resolver=resolver).partial(history=[]) | llm | StrOutputParser()
    inputs = {"persona": "p", "question": "q"}
    assert chain.invoke(inputs) == "ok"
    assert chain.batch([inputs, inputs]) == ["ok", "ok"]
    assert "".join(chain.stream(inputs)) == "ok"
    assert asyncio.run(chain.ainvoke(inputs)) == "ok"
    assert asyncio.run(chain.abatch([inputs] * 3)) == ["ok"] * 3
    configured = chain.with_config(run_name="configured")
    assert configured.invoke(inputs) == "ok"


def test_with_fallbacks_catches_an_unknown_prompt(resolver: PromptResolver, store: LocalPromptStore) -> None:
    broken = VersionedPromptTemplate(name="greet", resolver=resolver, input_variables=["name"])
    store.path.joinpath("greet.yaml").unlink()
    resolver.invalidate("greet")
    with pytest.raises(PromptNotFoundError):
        broken.invoke({"name": "A"})
    safe = broken.with_fallbacks([RunnableLambda(lambda _: StringPromptValue(text="static"))])
    assert safe.invoke({"name": "A"}).to_string() == "static"


def test_as_a_langgraph_node(resolver: PromptResolver) -> None:
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    class State(TypedDict):
        name: str
        answer: str

    prompt = VersionedPromptTemplate(name="greet", resolver=resolver)
    chain = prompt | FakeListChatModel(responses=["graph ok"]) | StrOutputParser()
    graph = StateGraph(State)
    graph.add_node("answer", lambda state: {"answer": chain.invoke({"name": state["name"]})})
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    assert graph.compile().invoke({"name": "A", "answer": ""})["answer"] == "graph ok"


def test_bad_construction_names_the_problem(resolver: PromptResolver) -> None:
    with pytest.raises(ConfigurationError, match=r"not both|one of label"):
        VersionedPromptTemplate(name="greet", label="production", version=1, resolver=resolver)
    with pytest.raises(ConfigurationError, match="experiment or a rollout"):
        VersionedPromptTemplate(
            name="greet",
            resolver=resolver,
            experiment=Experiment("e", [Variant("A")]),
            rollout=Rollout("r", target="canary", percent=5),
        )
    with pytest.raises(PromptNotFoundError, match="nope"):
        VersionedPromptTemplate(name="nope", resolver=resolver)
    with pytest.raises(ConfigurationError, match="chat prompt"):
        VersionedPromptTemplate(name="chat", resolver=resolver).invoke({"persona": 1, "question": 2, "history": []})


def test_variant_handler_never_raises_into_the_chain(resolver: PromptResolver) -> None:
    from langfuse_versioned_prompts import VariantCallbackHandler

    class Exploding:
        @property
        def _runs(self) -> dict[str, Any]:
            raise RuntimeError("boom")

    handler = VariantCallbackHandler(langfuse_handler=Exploding())
    prompt = VersionedPromptTemplate(name="greet", resolver=resolver)
    value = prompt.invoke({"name": "A"}, config={"callbacks": [handler], "metadata": {"user_id": "u"}})
    assert value.to_string() == "Hello A!" and handler.stamped == 0


def test_batch_assigns_each_input_by_its_own_user(resolver: PromptResolver) -> None:
    experiment = Experiment("greet-ab", [Variant("A", version=1), Variant("B", version=2)])
    prompt = VersionedPromptTemplate(name="greet", experiment=experiment, resolver=resolver)
    users = [f"user-{i}" for i in range(40)]
    configs: list[Any] = [{"metadata": {"langfuse_user_id": u}} for u in users]
    values = prompt.batch([{"name": "x", "place": "y"}] * len(users), config=configs)
    expected = {1: "Hello x!", 2: "Hi x, welcome to y."}
    for user, value in zip(users, values, strict=True):
        version = prompt.resolve(user_id=user).prompt.version
        assert value.to_string() == expected[version]
    assert len({v.to_string() for v in values}) == 2


def test_metadata_session_does_not_hide_the_context_user(resolver: PromptResolver) -> None:
    experiment = Experiment("greet-ab", [Variant("A", version=1), Variant("B", version=2)])
    prompt = VersionedPromptTemplate(name="greet", experiment=experiment, resolver=resolver)
    recorder = MetadataRecorder()
    users = [f"u-{i}" for i in range(30)]
    for user in users:
        with variant_context(user_id=user):
            prompt.invoke(
                {"name": "x", "place": "y"},
                config={"callbacks": [recorder], "metadata": {"langfuse_session_id": "s-1"}},
            )
    got = [run["ab_variant"] for run in recorder.runs]
    assert got == [experiment.assign(user).name for user in users]


def test_async_format_does_not_need_the_sync_path(resolver: PromptResolver) -> None:
    prompt = VersionedPromptTemplate(name="greet", resolver=resolver)
    assert asyncio.run(prompt.aformat(name="A")) == "Hello A!"
    assert asyncio.run(prompt.aformat_prompt(name="B")).to_string() == "Hello B!"


def test_templates_without_a_resolver_use_the_process_default(resolver: PromptResolver) -> None:
    from langfuse_versioned_prompts.resolver import default_resolver, set_default_resolver

    set_default_resolver(resolver)
    try:
        prompt = VersionedPromptTemplate(name="greet")
        assert default_resolver() is resolver and prompt.invoke({"name": "A"}).to_string() == "Hello A!"
    finally:
        set_default_resolver(None)
