"""VersionedLlamaPromptTemplate in a real llama-index-core query pipeline, offline.

MockLLM echoes its prompt and MockEmbedding(embed_dim=8) stands in for embeddings; a recording
LLM keeps every prompt it received, so each test asserts the text that reached the model.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.llms.generic_utils import messages_to_prompt
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse, MessageRole
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import root_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import BaseQueryEngine
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import Field

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
    variant_context,
)
from langfuse_versioned_prompts.llama_index import (
    PromptVersionSelectedEvent,
    VersionedLlamaPromptTemplate,
)

QA = "response_synthesizer:text_qa_template"
REFINE = "response_synthesizer:refine_template"
QUESTION = "What did the author do growing up?"
DOCS = [
    "The author grew up writing short stories.",
    "As a teenager the author programmed an IBM 1401.",
    "Later the author sold Viaweb to Yahoo.",
]


class RecordingLLM(MockLLM):
    """MockLLM that keeps every prompt it completes (chat calls arrive here joined)."""

    prompts: list[str] = Field(default_factory=list)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.prompts.append(prompt)
        return super().complete(prompt, formatted=formatted, **kwargs)


class EventRecorder(BaseEventHandler):
    """Keeps the prompt-selection events dispatched through LlamaIndex instrumentation."""

    events: list[PromptVersionSelectedEvent] = Field(default_factory=list)

    def handle(self, event: Any, **kwargs: Any) -> None:
        if isinstance(event, PromptVersionSelectedEvent):
            self.events.append(event)


def text(name: str, version: int, template: str, labels: tuple[str, ...] = ()) -> ResolvedPrompt:
    return ResolvedPrompt(name=name, version=version, type="text", template=template, labels=labels)


@pytest.fixture(autouse=True)
def offline_settings() -> Iterator[None]:
    """Mock models in LlamaIndex's global Settings for the test, restored afterwards."""
    saved = dict(vars(Settings))
    Settings.llm = MockLLM()
    Settings.embed_model = MockEmbedding(embed_dim=8)
    yield
    vars(Settings).clear()
    vars(Settings).update(saved)


@pytest.fixture
def store(tmp_path: Any) -> LocalPromptStore:
    store = LocalPromptStore(tmp_path)
    store.save(
        "rag/qa",
        [
            text(
                "rag/qa",
                1,
                'QA v1 | context: {{context_str}} | question: {{ query_str }} | {"k": 1} {literal}',
                ("production",),
            ),
            text("rag/qa", 2, "QA v2 concise | {{context_str}} | {{query_str}}", ("concise",)),
        ],
    )
    store.save(
        "rag/refine",
        [
            text(
                "rag/refine",
                1,
                "REFINE v1 | question: {{query_str}} | old: {{existing_answer}} | new: {{context_msg}}",
                ("production",),
            )
        ],
    )
    store.save(
        "rag/chat-qa",
        [
            ResolvedPrompt(
                name="rag/chat-qa",
                version=1,
                type="chat",
                template=[
                    {"role": "system", "content": 'Answer from context. Format: {"answer": "..."}'},
                    {"type": "placeholder", "name": "history"},
                    {"role": "user", "content": "Context: {{context_str}}\nQ: {{query_str}}"},
                ],
                labels=("production",),
            )
        ],
    )
    return store


@pytest.fixture
def resolver(store: LocalPromptStore) -> PromptResolver:
    return PromptResolver(local=store)


@pytest.fixture(scope="module")
def index() -> VectorStoreIndex:
    return VectorStoreIndex.from_documents([Document(text=t) for t in DOCS], embed_model=MockEmbedding(embed_dim=8))


def engine(index: VectorStoreIndex, llm: MockLLM, mode: str = "refine") -> BaseQueryEngine:
    return index.as_query_engine(llm=llm, similarity_top_k=2, response_mode=mode)


# -- overriding query-engine prompts --------------------------------------------------------


def test_text_qa_template_reaches_the_llm(index: VectorStoreIndex, resolver: PromptResolver) -> None:
    llm = RecordingLLM()
    query_engine = engine(index, llm, mode="compact")
    qa = VersionedLlamaPromptTemplate(name="rag/qa", label="production", resolver=resolver)
    assert qa.template_vars == ["context_str", "query_str"]
    query_engine.update_prompts({QA: qa})

    query_engine.query(QUESTION)

    [prompt] = llm.prompts
    assert prompt.startswith("QA v1 | context: ")
    assert f"question: {QUESTION} | " in prompt
    assert '{"k": 1} {literal}' in prompt  # literal braces are untouched
    assert any(doc in prompt for doc in DOCS)


def test_refine_template_is_used_in_refine_mode(index: VectorStoreIndex, resolver: PromptResolver) -> None:
    llm = RecordingLLM()
    query_engine = engine(index, llm, mode="refine")
    query_engine.update_prompts(
        {
            QA: VersionedLlamaPromptTemplate(name="rag/qa", resolver=resolver),
            REFINE: VersionedLlamaPromptTemplate(name="rag/refine", resolver=resolver),
        }
    )

    response = query_engine.query(QUESTION)

    first, second = llm.prompts
    assert first.startswith("QA v1 | ")
    assert second.startswith(f"REFINE v1 | question: {QUESTION} | old: QA v1 | ")
    assert str(response) == second  # MockLLM echoes: the last prompt is the answer


async def test_async_query(index: VectorStoreIndex, resolver: PromptResolver) -> None:
    llm = RecordingLLM()
    query_engine = engine(index, llm, mode="compact")
    query_engine.update_prompts({QA: VersionedLlamaPromptTemplate(name="rag/qa", resolver=resolver)})
    await query_engine.aquery(QUESTION)
    assert llm.prompts[0].startswith("QA v1 | ")


def test_chat_prompt_with_a_chat_model(index: VectorStoreIndex, resolver: PromptResolver) -> None:
    llm = RecordingLLM(is_chat_model=True)
    query_engine = engine(index, llm, mode="compact")
    query_engine.update_prompts({QA: VersionedLlamaPromptTemplate(name="rag/chat-qa", resolver=resolver)})
    query_engine.query(QUESTION)
    [prompt] = llm.prompts
    assert prompt.startswith('system: Answer from context. Format: {"answer": "..."}\nuser: Context: ')
    assert prompt.endswith(f"Q: {QUESTION}\nassistant: ")


# -- resolution at format time --------------------------------------------------------------


def test_label_move_is_served_on_the_next_query(
    index: VectorStoreIndex, store: LocalPromptStore, resolver: PromptResolver
) -> None:
    llm = RecordingLLM()
    query_engine = engine(index, llm, mode="compact")
    query_engine.update_prompts({QA: VersionedLlamaPromptTemplate(name="rag/qa", resolver=resolver)})
    query_engine.query(QUESTION)

    moved = store.add_version(text("rag/qa", 0, "QA v3 moved | {{context_str}} | {{query_str}}", ("production",)))
    resolver.invalidate("rag/qa", label="production")  # what the webhook receiver does
    query_engine.query(QUESTION)

    assert moved.version == 3
    assert llm.prompts[0].startswith("QA v1 | ")
    assert llm.prompts[1].startswith("QA v3 moved | ")


def test_ab_split_over_1000_users(index: VectorStoreIndex, resolver: PromptResolver) -> None:
    llm = RecordingLLM()
    query_engine = engine(index, llm, mode="compact")
    experiment = Experiment(
        "qa-style",
        [Variant("A", label="production", weight=0.7), Variant("B", label="concise", weight=0.3)],
    )
    qa = VersionedLlamaPromptTemplate(name="rag/qa", experiment=experiment, resolver=resolver)
    query_engine.update_prompts({QA: qa})

    served: dict[str, str] = {}
    for i in range(1000):
        user = f"user-{i}"
        with variant_context(user_id=user):
            query_engine.query(QUESTION)
        served[user] = "A" if llm.prompts[-1].startswith("QA v1") else "B"

    shares = Counter(served.values())
    assert abs(shares["A"] / 1000 - 0.7) < 0.04
    assert abs(shares["B"] / 1000 - 0.3) < 0.04
    for user in ("user-1", "user-2", "user-3"):  # sticky, and as the pure assignment says
        assert served[user] == experiment.assign(user).name
        with variant_context(user_id=user):
            assert qa.resolve().assignment.variant.name == served[user]  # type: ignore[union-attr]


def test_rollout_moves_users_to_the_target(resolver: PromptResolver) -> None:
    values = {"context_str": "c", "query_str": "q"}
    for percent, expected in ((0, "QA v1"), (100, "QA v2")):
        rollout = Rollout("qa-concise", target="concise", percent=percent)
        qa = VersionedLlamaPromptTemplate(name="rag/qa", rollout=rollout, resolver=resolver)
        for i in range(20):
            with variant_context(user_id=f"u-{i}"):
                assert qa.format(**values).startswith(expected)


def test_get_prompts_round_trip(index: VectorStoreIndex, store: LocalPromptStore) -> None:
    resolver = PromptResolver(local=store)
    llm = RecordingLLM()
    query_engine = engine(index, llm, mode="compact")
    qa = VersionedLlamaPromptTemplate(name="rag/qa", resolver=resolver)
    query_engine.update_prompts({QA: qa})

    copied = query_engine.get_prompts()[QA]  # get_prompts deep-copies every template

    assert isinstance(copied, VersionedLlamaPromptTemplate)
    assert copied is not qa
    assert copied.resolver is resolver  # shared, not copied (it holds locks and clients)
    assert copied.format(context_str="c", query_str="q").startswith("QA v1 | context: c")
    store.add_version(text("rag/qa", 0, "QA v3 | {{context_str}} | {{query_str}}", ("production",)))
    resolver.invalidate("rag/qa", label="production")
    assert copied.format(context_str="c", query_str="q") == "QA v3 | c | q"

    query_engine.update_prompts({QA: copied})
    query_engine.query(QUESTION)
    assert llm.prompts[-1].startswith("QA v3 | ")
    assert copy.deepcopy(qa).resolver is resolver


def test_get_prompts_shares_function_mappings_that_hold_locks(
    index: VectorStoreIndex, store: LocalPromptStore, resolver: PromptResolver
) -> None:
    template = "{{examples}} | {{context_str}} | {{query_str}}"
    store.save("with-examples", [text("with-examples", 1, template, ("production",))])

    class ExampleStore:  # what a function mapping is often bound to: an object holding a lock or client
        def __init__(self) -> None:
            self.lock = threading.RLock()

        def examples(self, **_values: Any) -> str:
            with self.lock:
                return "EXAMPLES"

    examples = ExampleStore()
    llm = RecordingLLM()
    query_engine = engine(index, llm, mode="compact")
    qa = VersionedLlamaPromptTemplate(
        name="with-examples", resolver=resolver, function_mappings={"examples": examples.examples}
    )
    query_engine.update_prompts({QA: qa})

    copied = query_engine.get_prompts()[QA]  # deep copy
    query_engine.query(QUESTION)  # the synthesizer calls partial_format (a deep copy) per query

    assert isinstance(copied, VersionedLlamaPromptTemplate)
    assert copied.function_mappings == {"examples": examples.examples}
    assert copied.function_mappings is not qa.function_mappings
    assert llm.prompts[-1].startswith("EXAMPLES | ")


# -- the BasePromptTemplate contract --------------------------------------------------------


def test_partial_format_and_ignored_llm(resolver: PromptResolver) -> None:
    qa = VersionedLlamaPromptTemplate(name="rag/qa", resolver=resolver)
    partial = qa.partial_format(query_str="why?")
    assert qa.kwargs == {}
    assert partial.kwargs == {"query_str": "why?"}
    rendered = partial.format(llm=MockLLM(), context_str="ctx")
    assert rendered == 'QA v1 | context: ctx | question: why? | {"k": 1} {literal}'
    assert partial.format(context_str="ctx", completion_to_prompt=str.upper).startswith("QA V1")
    [message] = partial.format_messages(context_str="ctx")
    assert message.role == MessageRole.USER
    assert message.content == rendered
    assert qa.get_template() == ('QA v1 | context: {{context_str}} | question: {{ query_str }} | {"k": 1} {literal}')


def test_values_are_inserted_once(resolver: PromptResolver) -> None:
    qa = VersionedLlamaPromptTemplate(name="rag/qa", resolver=resolver)
    rendered = qa.format(context_str="{{query_str}} {x}", query_str="q")
    assert rendered.startswith("QA v1 | context: {{query_str}} {x} | question: q | ")


def test_template_var_mappings(resolver: PromptResolver) -> None:
    qa = VersionedLlamaPromptTemplate(
        name="rag/qa",
        resolver=resolver,
        template_var_mappings={"context": "context_str"},
        function_mappings={"query_str": lambda **kw: kw["question"].upper()},
    )
    assert qa.format(context="ctx", question="why?").startswith("QA v1 | context: ctx | question: WHY?")


def test_chat_messages_and_placeholders(resolver: PromptResolver) -> None:
    chat = VersionedLlamaPromptTemplate(name="rag/chat-qa", resolver=resolver)
    assert chat.template_vars == ["context_str", "query_str", "history"]
    history = [
        ChatMessage(role=MessageRole.USER, content="Hi"),
        {"role": "assistant", "content": "Hello {{not_a_var}}"},
    ]

    messages = chat.format_messages(context_str="c", query_str="q", history=history)

    assert [m.role for m in messages] == [
        MessageRole.SYSTEM,
        MessageRole.USER,
        MessageRole.ASSISTANT,
        MessageRole.USER,
    ]
    assert messages[2].content == "Hello {{not_a_var}}"
    assert messages[3].content == "Context: c\nQ: q"
    assert chat.format(context_str="c", query_str="q", history=history) == messages_to_prompt(messages)
    # a placeholder left out (or "" from LlamaIndex's prompt helper) adds no messages
    assert len(chat.format_messages(context_str="c", query_str="q")) == 2
    assert len(chat.format_messages(context_str="c", query_str="q", history="")) == 2
    assert chat.get_template().splitlines()[-3:] == [
        "{{history}}",
        "user: Context: {{context_str}}",
        "Q: {{query_str}}",
    ]


# -- errors ---------------------------------------------------------------------------------


def test_missing_variable_names_prompt_version_and_variable(resolver: PromptResolver) -> None:
    qa = VersionedLlamaPromptTemplate(name="rag/qa", resolver=resolver)
    with pytest.raises(MissingVariableError) as caught:
        qa.format(context_str="c")
    assert caught.value.missing == ("query_str",)
    assert (caught.value.prompt, caught.value.version) == ("rag/qa", 1)
    assert "'query_str' of prompt 'rag/qa' version 1" in str(caught.value)


def test_missing_variable_inside_a_query(
    index: VectorStoreIndex,
    store: LocalPromptStore,
    resolver: PromptResolver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store.save(
        "needs-tone",
        [text("needs-tone", 1, "{{tone}}: {{context_str}} {{query_str}}", ("production",))],
    )
    qa = VersionedLlamaPromptTemplate(name="needs-tone", resolver=resolver)
    message = "'tone' of prompt 'needs-tone' version 1"

    simple = engine(index, RecordingLLM(), mode="simple_summarize")
    simple.update_prompts({QA: qa})
    with pytest.raises(MissingVariableError, match=message):
        simple.query(QUESTION)

    # LlamaIndex's refine loop (refine, compact) swallows ValueErrors; ours still reach the caller
    compact = engine(index, RecordingLLM(), mode="compact")
    compact.update_prompts({QA: qa})
    with pytest.raises(MissingVariableError, match=message):
        compact.query(QUESTION)


def test_unknown_prompt_and_label(resolver: PromptResolver) -> None:
    with pytest.raises(PromptNotFoundError, match="'nope'"):
        VersionedLlamaPromptTemplate(name="nope", resolver=resolver)
    lazy = VersionedLlamaPromptTemplate(
        name="rag/qa", label="missing", resolver=resolver, template_vars=["context_str", "query_str"]
    )
    with pytest.raises(PromptNotFoundError, match="label 'missing'"):
        lazy.format(context_str="c", query_str="q")


def test_bad_arguments(resolver: PromptResolver) -> None:
    experiment = Experiment("e", [Variant("A", label="production")])
    rollout = Rollout("r", target="concise", percent=5)
    with pytest.raises(ConfigurationError, match="experiment or a rollout"):
        VersionedLlamaPromptTemplate(name="rag/qa", experiment=experiment, rollout=rollout, resolver=resolver)
    with pytest.raises(ConfigurationError, match="label, version"):
        VersionedLlamaPromptTemplate(name="rag/qa", label="production", version=1, resolver=resolver)
    with pytest.raises(ConfigurationError, match="prompt name"):
        VersionedLlamaPromptTemplate(name="", resolver=resolver)


def test_fallback_when_the_served_version_cannot_render(store: LocalPromptStore, resolver: PromptResolver) -> None:
    store.add_version(text("rag/qa", 0, "QA v3 {{context_str}} {{query_str}} {{tone}}", ("canary",)))
    qa = VersionedLlamaPromptTemplate(name="rag/qa", label="canary", fallback="production", resolver=resolver)
    recorder = EventRecorder()
    root_dispatcher.add_event_handler(recorder)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        with provider.get_tracer("test").start_as_current_span("format"):
            assert qa.format(context_str="c", query_str="q").startswith("QA v1 | ")
    finally:
        root_dispatcher.event_handlers.remove(recorder)
    [event] = recorder.events
    assert (event.prompt_version, event.prompt_is_fallback) == (1, True)
    [span] = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["langfuse.trace.metadata.prompt_is_fallback"] == "true"
    assert attributes["langfuse.trace.metadata.prompt_version"] == "1"
    # marked, not linked: as the LangChain templates treat fallbacks (no langfuse_prompt)
    assert "langfuse.observation.prompt.name" not in attributes
    assert "langfuse.observation.prompt.version" not in attributes


# -- what a traced app sees -----------------------------------------------------------------


def test_otel_span_carries_variant_and_prompt(index: VectorStoreIndex, resolver: PromptResolver) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()  # local: the global tracer provider is never touched
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    experiment = Experiment("qa-style", [Variant("A", label="production"), Variant("B", label="concise")])
    query_engine = engine(index, RecordingLLM(), mode="refine")
    query_engine.update_prompts(
        {
            QA: VersionedLlamaPromptTemplate(name="rag/qa", experiment=experiment, resolver=resolver),
            REFINE: VersionedLlamaPromptTemplate(name="rag/refine", resolver=resolver),
        }
    )
    user = "u-42"
    variant = experiment.assign(user)
    version = 1 if variant.label == "production" else 2

    with tracer.start_as_current_span("rag-query"), variant_context(user_id=user):
        query_engine.query(QUESTION)

    [span] = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["langfuse.trace.metadata.ab_experiment"] == '"qa-style"'
    assert attributes["langfuse.trace.metadata.ab_variant"] == f'"{variant.name}"'
    assert set(attributes["langfuse.trace.tags"]) == {  # type: ignore[arg-type]
        f"prompt:rag/qa@v{version}",
        f"ab:qa-style={variant.name}",
        "prompt:rag/refine@v1",
    }
    # the refine step formatted last, so the span links to its prompt
    assert attributes["langfuse.trace.metadata.prompt_name"] == '"rag/refine"'
    assert attributes["langfuse.observation.prompt.name"] == "rag/refine"
    assert attributes["langfuse.observation.prompt.version"] == 1


def test_langfuse_observation_gets_the_prompt(index: VectorStoreIndex, resolver: PromptResolver) -> None:
    from langfuse import Langfuse
    from langfuse._client.resource_manager import LangfuseResourceManager

    exporter = InMemorySpanExporter()
    langfuse = Langfuse(  # spans go to the in-memory exporter, nothing leaves the process
        public_key="pk-lf-lvp-llama-index-test",
        secret_key="sk-lf-unused",
        base_url="http://127.0.0.1:9",
        tracer_provider=TracerProvider(),
        span_exporter=exporter,
    )
    query_engine = engine(index, RecordingLLM(), mode="compact")
    query_engine.update_prompts({QA: VersionedLlamaPromptTemplate(name="rag/qa", resolver=resolver)})
    try:
        with langfuse.start_as_current_observation(name="rag", as_type="span"):
            query_engine.query(QUESTION)
        langfuse.flush()
    finally:
        langfuse.shutdown()
        # the SDK keeps one client per public key for get_client(): leave none behind
        with LangfuseResourceManager._lock:
            LangfuseResourceManager._instances.pop("pk-lf-lvp-llama-index-test", None)

    [span] = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["langfuse.trace.tags"] == ("prompt:rag/qa@v1",)
    assert attributes["langfuse.trace.metadata.prompt_version"] == "1"
    assert attributes["langfuse.trace.metadata.prompt_label"] == '"production"'
    assert attributes["langfuse.observation.prompt.name"] == "rag/qa"
    assert attributes["langfuse.observation.prompt.version"] == 1


def test_llama_index_event_handlers_see_the_selection(index: VectorStoreIndex, resolver: PromptResolver) -> None:
    experiment = Experiment("qa-style", [Variant("A", label="production"), Variant("B", label="concise")])
    query_engine = engine(index, RecordingLLM(), mode="compact")
    query_engine.update_prompts(
        {QA: VersionedLlamaPromptTemplate(name="rag/qa", experiment=experiment, resolver=resolver)}
    )
    recorder = EventRecorder()
    root_dispatcher.add_event_handler(recorder)
    try:
        with variant_context(user_id="u-7"):
            query_engine.query(QUESTION)
    finally:
        root_dispatcher.event_handlers.remove(recorder)

    assert recorder.events
    variant = experiment.assign("u-7")
    for event in recorder.events:
        assert event.prompt_name == "rag/qa"
        assert (event.ab_experiment, event.ab_variant, event.prompt_label) == (
            "qa-style",
            variant.name,
            variant.label,
        )
        assert event.span_id  # dispatched inside the LlamaIndex span that formatted the prompt
    assert recorder.events[-1].model_dump()["class_name"] == "PromptVersionSelectedEvent"


def test_no_span_no_handler_no_problem(resolver: PromptResolver) -> None:
    qa = VersionedLlamaPromptTemplate(name="rag/qa", resolver=resolver)
    assert qa.format(context_str="c", query_str="q").startswith("QA v1 | context: c")


def test_import_of_the_package_does_not_load_llama_index() -> None:
    code = (
        "import langfuse_versioned_prompts, sys; "
        "assert not any(m.startswith('llama_index') for m in sys.modules), "
        "sorted(m for m in sys.modules if m.startswith('llama_index'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_missing_extra_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['llama_index.core'] = None  # as if llama-index-core were not installed\n"
        "try:\n"
        "    import langfuse_versioned_prompts.llama_index\n"
        "except ImportError as exc:\n"
        "    assert \"pip install 'langfuse-versioned-prompts[llama-index]'\" in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr + result.stdout
