"""Cost of a versioned template call on an L1 hit, against plain LangChain and Langfuse's pattern."""

from __future__ import annotations

import time

from _timing import compare
from langchain_core.prompts import PromptTemplate
from opentelemetry.sdk.trace import TracerProvider

from langfuse_versioned_prompts import (
    Experiment,
    LangfuseSource,
    PromptResolver,
    Variant,
    VersionedPromptTemplate,
    assign_variant,
)
from langfuse_versioned_prompts.testing import LangfuseTestServer

TEXT = "You are a support agent. The customer's name is {{customer_name}}; the issue is {{issue_type}}."
INPUTS = {"customer_name": "John", "issue_type": "billing"}


def bench_templates() -> None:
    from langfuse import Langfuse

    with LangfuseTestServer() as server:
        server.create_prompt("customer-support", TEXT, labels=["production"])
        client = Langfuse(
            public_key=server.public_key,
            secret_key=server.secret_key,
            base_url=server.url,
            tracing_enabled=False,
            tracer_provider=TracerProvider(),
        )
        resolver = PromptResolver(langfuse=LangfuseSource(client))
        ours = VersionedPromptTemplate(name="customer-support", label="production", resolver=resolver)
        plain = PromptTemplate.from_template(TEXT.replace("{{", "{").replace("}}", "}"))
        assert ours.invoke(INPUTS).to_string() == plain.invoke(INPUTS).to_string()

        compare(
            "VersionedPromptTemplate.invoke (L1 hit) vs PromptTemplate.invoke",
            lambda: ours.invoke(INPUTS),
            lambda: plain.invoke(INPUTS),
            number=3_000,
            target=1.10,
        )

        client.get_prompt("customer-support", label="production")  # fill the SDK cache

        def langfuse_pattern() -> object:
            prompt = client.get_prompt("customer-support", label="production")
            return PromptTemplate.from_template(prompt.get_langchain_prompt()).invoke(INPUTS)

        compare(
            "VersionedPromptTemplate.invoke vs Langfuse's documented pattern "
            "(cached get_prompt + PromptTemplate.from_template + invoke)",
            lambda: ours.invoke(INPUTS),
            langfuse_pattern,
            number=3_000,
        )
        client.shutdown()


def bench_assignment() -> None:
    experiment = Experiment("analyzer-v2", [Variant("A", version=1), Variant("B", version=2)])
    users = [f"user-{i}" for i in range(200_000)]
    start = time.perf_counter()
    for user in users:
        assign_variant(experiment, user_id=user)
    elapsed = time.perf_counter() - start
    print(f"variant assignments: {len(users) / elapsed:,.0f} per second")


if __name__ == "__main__":
    bench_templates()
    bench_assignment()
