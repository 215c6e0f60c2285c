"""Offline A/B test and 10% rollout through a LangChain chain.

1,000 simulated users go through an experiment between two versions of the `analyzer` chat prompt,
then through a 10% rollout of its `canary` label. The model is langchain-core's fake chat model and
the prompts come from the bundled local prompt files: nothing leaves this machine.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser

from langfuse_versioned_prompts import (
    Experiment,
    LocalPromptStore,
    PromptResolver,
    Rollout,
    Variant,
    VersionedChatPromptTemplate,
)
from langfuse_versioned_prompts.langchain import trace_attributes

PROMPTS = Path(__file__).parent / "prompts"


class LastPromptRun(BaseCallbackHandler):
    """Keeps the metadata of the last prompt run (what Langfuse would get for the trace)."""

    def __init__(self) -> None:
        self.metadata: dict[str, Any] = {}

    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, metadata: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if metadata and "prompt_name" in metadata:
            self.metadata = dict(metadata)


def run(template: VersionedChatPromptTemplate, users: int, recorder: LastPromptRun) -> Counter[str]:
    chain = template | FakeListChatModel(responses=['{"sentiment": "positive"}']) | StrOutputParser()
    split: Counter[str] = Counter()
    for i in range(users):
        chain.invoke(
            {"content": "Love the new export button", "history": []},
            config={"callbacks": [recorder], "metadata": {"langfuse_user_id": f"user-{i}"}},
        )
        split[f"{recorder.metadata['ab_variant']} (v{recorder.metadata['prompt_version']})"] += 1
    return split


def main() -> None:
    resolver = PromptResolver(local=LocalPromptStore(PROMPTS))
    recorder = LastPromptRun()

    experiment = Experiment("analyzer-v2", [Variant("A", version=1, weight=0.5), Variant("B", version=2, weight=0.5)])
    ab = VersionedChatPromptTemplate(name="analyzer", experiment=experiment, resolver=resolver)
    print("A/B experiment, 1,000 simulated users:")
    for variant, count in sorted(run(ab, 1000, recorder).items()):
        print(f"  {variant}: {count} ({count / 10:.1f}%)")

    rollout = Rollout("analyzer-canary", target="canary", percent=10)
    canary = VersionedChatPromptTemplate(name="analyzer", rollout=rollout, resolver=resolver)
    print("10% rollout of the canary label, 1,000 simulated users:")
    for variant, count in sorted(run(canary, 1000, recorder).items()):
        print(f"  {variant}: {count} ({count / 10:.1f}%)")

    print("Metadata of the last prompt run (langfuse_prompt links the generation in Langfuse):")
    for key, value in recorder.metadata.items():
        if key == "langfuse_prompt":
            value = f"<{type(value).__name__} {value.name} v{value.version}>"
        print(f"  {key}: {value}")
    print("Trace attributes VariantCallbackHandler writes for it:")
    for key, value in trace_attributes(recorder.metadata).items():
        print(f"  {key} = {value}")


if __name__ == "__main__":
    main()
