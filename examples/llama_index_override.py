"""Override a LlamaIndex query engine's prompts with versioned Langfuse prompts, in an A/B test.

Runs offline: prompts come from ``examples/prompts`` (a ``LocalPromptStore``), the LLM is
LlamaIndex's ``MockLLM`` (it answers with the prompt it received, so the output shows exactly what
the model would have seen) and embeddings are ``MockEmbedding``.

    python examples/llama_index_override.py

With Langfuse configured (LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY), build the resolver with
``PromptResolver.from_env()`` instead and the same code serves the prompts from Langfuse.
"""

from __future__ import annotations

import pathlib

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import root_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import LLMCompletionStartEvent
from llama_index.core.llms import MockLLM

from langfuse_versioned_prompts import (
    Experiment,
    LocalPromptStore,
    PromptResolver,
    Variant,
    variant_context,
)
from langfuse_versioned_prompts.llama_index import (
    PromptVersionSelectedEvent,
    VersionedLlamaPromptTemplate,
)

PROMPTS = pathlib.Path(__file__).parent / "prompts"
QUESTION = "What did the author do growing up?"


class Printer(BaseEventHandler):
    """A LlamaIndex event handler: prints each prompt version chosen and each LLM prompt.

    The synthesizer formats the QA prompt twice (once with empty values to measure it), hence two
    events per user.
    """

    def handle(self, event: object, **kwargs: object) -> None:
        if isinstance(event, PromptVersionSelectedEvent) and event.prompt_name == "rag/answer":
            print(f"  [event] {event.prompt_name} v{event.prompt_version} "
                  f"({event.ab_experiment}={event.ab_variant})")
        elif isinstance(event, LLMCompletionStartEvent):
            print("  [llm received]\n    " + event.prompt.strip().replace("\n", "\n    "))


def main() -> None:
    resolver = PromptResolver(local=LocalPromptStore(PROMPTS))
    documents = [
        Document(text="The author grew up writing short stories, which were awful."),
        Document(text="As a teenager the author programmed an IBM 1401 in Fortran."),
        Document(text="Years later the author sold Viaweb to Yahoo."),
    ]
    index = VectorStoreIndex.from_documents(documents, embed_model=MockEmbedding(embed_dim=8))
    query_engine = index.as_query_engine(
        llm=MockLLM(), similarity_top_k=2, response_mode="refine"
    )

    # Half of the users get the full answer (label `production`), half the concise one.
    style = Experiment(
        "rag-answer-style",
        [Variant("full", label="production"), Variant("concise", label="concise")],
    )
    query_engine.update_prompts(
        {
            "response_synthesizer:text_qa_template": VersionedLlamaPromptTemplate(
                name="rag/answer", experiment=style, resolver=resolver
            ),
            "response_synthesizer:refine_template": VersionedLlamaPromptTemplate(
                name="rag/refine", label="production", resolver=resolver
            ),
        }
    )
    qa = query_engine.get_prompts()["response_synthesizer:text_qa_template"]
    assert isinstance(qa, VersionedLlamaPromptTemplate)

    root_dispatcher.add_event_handler(Printer())
    for user in ("u-1", "u-3"):
        with variant_context(user_id=user):
            selection = qa.resolve()
            assert selection.assignment is not None
            print(f"=== user {user}: variant {selection.assignment.variant.name!r} -> "
                  f"{selection.prompt.name} v{selection.prompt.version} ===")
            query_engine.query(QUESTION)
        print()

if __name__ == "__main__":
    main()
