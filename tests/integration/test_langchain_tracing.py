"""Trace linking and variant stamping through the real Langfuse CallbackHandler, spans sent over OTLP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableConfig
from langfuse.langchain import CallbackHandler

from langfuse_versioned_prompts import (
    Experiment,
    LangfuseSource,
    LocalPromptStore,
    PromptResolver,
    ResolvedPrompt,
    Variant,
    VariantCallbackHandler,
    VersionedChatPromptTemplate,
    VersionedPromptTemplate,
    assign_variant,
)
from langfuse_versioned_prompts.testing import Fault, LangfuseTestServer

pytestmark = pytest.mark.langfuse_tracing

EXPERIMENT = Experiment("analyzer-v2", [Variant("A", version=1), Variant("B", version=2)])


@pytest.fixture
def served(langfuse_server: LangfuseTestServer) -> LangfuseTestServer:
    langfuse_server.create_prompt("analyzer", "Analyze v1: {{content}}", labels=["production"])
    langfuse_server.create_prompt("analyzer", 'Analyze v2 {"strict": true}: {{content}}', labels=["staging"])
    langfuse_server.create_prompt(
        "analyzer-chat",
        [
            {"role": "system", "content": "You analyze."},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{content}}"},
        ],
        labels=["production"],
    )
    return langfuse_server


@pytest.fixture
def resolver(served: LangfuseTestServer, langfuse_client: Any, tmp_path: Any) -> PromptResolver:
    local = LocalPromptStore(tmp_path)
    local.save(
        "analyzer",
        [
            ResolvedPrompt(
                name="analyzer", version=1, type="text", template="Local: {{content}}", labels=("production",)
            )
        ],
    )
    return PromptResolver(langfuse=LangfuseSource(langfuse_client, timeout=0.5), local=local)


def llm() -> FakeListChatModel:
    return FakeListChatModel(responses=["fine"] * 200)


def config(server: LangfuseTestServer, user: str = "u-1", variant_handler: bool = True) -> dict[str, Any]:
    callbacks: list[Any] = [CallbackHandler(public_key=server.public_key)]
    if variant_handler:
        callbacks.append(VariantCallbackHandler())
    return {"callbacks": callbacks, "metadata": {"langfuse_user_id": user}}


def generations(server: LangfuseTestServer) -> list[dict[str, Any]]:
    return [o for o in server.observations if o["type"] == "GENERATION"]


def test_generation_links_the_exact_version_served(
    served: LangfuseTestServer, langfuse_client: Any, resolver: PromptResolver
) -> None:
    chain = VersionedPromptTemplate(name="analyzer", resolver=resolver) | llm() | StrOutputParser()
    chain.invoke({"content": "x"}, config=config(served))
    served.move_labels("analyzer", 2, ["production"])
    resolver.invalidate("analyzer")
    chain.invoke({"content": "x"}, config=config(served))
    langfuse_client.flush()
    linked = [(g["promptName"], g["promptVersion"]) for g in generations(served)]
    assert linked == [("analyzer", 1), ("analyzer", 2)]


def test_chat_prompt_first_step_of_the_chain_is_linked(
    served: LangfuseTestServer, langfuse_client: Any, resolver: PromptResolver
) -> None:
    chain = VersionedChatPromptTemplate(name="analyzer-chat", resolver=resolver) | llm()
    chain.invoke({"content": "x", "history": [("human", "earlier")]}, config=config(served))
    langfuse_client.flush()
    (generation,) = generations(served)
    assert (generation["promptName"], generation["promptVersion"]) == ("analyzer-chat", 1)


def test_linked_inside_a_langgraph_node(
    served: LangfuseTestServer, langfuse_client: Any, resolver: PromptResolver
) -> None:
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    class State(TypedDict):
        content: str
        answer: str

    chain = VersionedPromptTemplate(name="analyzer", label="staging", resolver=resolver) | llm() | StrOutputParser()

    def node(state: State, config: RunnableConfig) -> dict[str, str]:
        return {"answer": chain.invoke({"content": state["content"]}, config=config)}

    graph = StateGraph(State)
    graph.add_node("analyze", node)
    graph.add_edge(START, "analyze")
    graph.add_edge("analyze", END)
    graph.compile().invoke({"content": "x", "answer": ""}, config=config(served))  # type: ignore[arg-type]
    langfuse_client.flush()
    (generation,) = generations(served)
    assert (generation["promptName"], generation["promptVersion"]) == ("analyzer", 2)


def test_fallbacks_are_marked_not_linked(
    served: LangfuseTestServer, langfuse_client: Any, resolver: PromptResolver
) -> None:
    chain = VersionedPromptTemplate(name="analyzer", resolver=resolver) | llm()
    resolver.invalidate("analyzer")
    with served.inject(Fault.status(500)):
        chain.invoke({"content": "x"}, config=config(served))
    langfuse_client.flush()
    (generation,) = generations(served)
    assert generation["promptName"] is None
    (trace,) = served.traces
    assert trace["metadata"]["prompt_is_fallback"] is True
    assert trace["metadata"]["prompt_source"] == "local"


def test_variant_handler_puts_variant_and_version_on_the_trace(
    served: LangfuseTestServer, langfuse_client: Any, resolver: PromptResolver
) -> None:
    chain = VersionedPromptTemplate(name="analyzer", experiment=EXPERIMENT, resolver=resolver) | llm()
    chain.invoke({"content": "x"}, config=config(served, user="u-42"))
    langfuse_client.flush()
    expected = assign_variant(EXPERIMENT, user_id="u-42").variant
    (trace,) = served.traces
    assert trace["userId"] == "u-42"
    assert trace["metadata"]["ab_experiment"] == "analyzer-v2"
    assert trace["metadata"]["ab_variant"] == expected.name
    assert trace["metadata"]["prompt_version"] == expected.version
    assert f"ab:analyzer-v2={expected.name}" in trace["tags"]
    assert f"prompt:analyzer@v{expected.version}" in trace["tags"]


def test_no_variant_handler_no_trace_stamp(
    served: LangfuseTestServer, langfuse_client: Any, resolver: PromptResolver
) -> None:
    chain = VersionedPromptTemplate(name="analyzer", experiment=EXPERIMENT, resolver=resolver) | llm()
    chain.invoke({"content": "x"}, config=config(served, variant_handler=False))
    langfuse_client.flush()
    (trace,) = served.traces
    assert "ab_variant" not in (trace["metadata"] or {}) and not trace["tags"]


def test_concurrent_async_calls_keep_their_own_variant(
    served: LangfuseTestServer, langfuse_client: Any, resolver: PromptResolver
) -> None:
    chain = (
        VersionedPromptTemplate(name="analyzer", experiment=EXPERIMENT, resolver=resolver) | llm() | StrOutputParser()
    )
    users = [f"user-{i}" for i in range(100)]

    async def main() -> None:
        await asyncio.gather(*(chain.ainvoke({"content": u}, config=config(served, user=u)) for u in users))

    asyncio.run(main())
    langfuse_client.flush()
    traces = served.traces
    assert len(traces) == 100
    for trace in traces:
        expected = assign_variant(EXPERIMENT, user_id=trace["userId"]).variant
        assert trace["metadata"]["ab_variant"] == expected.name
        assert f"prompt:analyzer@v{expected.version}" in trace["tags"]
    by_trace = {g["traceId"]: g["promptVersion"] for g in generations(served)}
    assert all(by_trace[t["id"]] == assign_variant(EXPERIMENT, user_id=t["userId"]).variant.version for t in traces)
