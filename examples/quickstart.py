"""Offline quickstart: resolve and render prompts from the bundled local prompt files.

No Langfuse and no Redis: LocalPromptStore is the whole backend here. Point LANGFUSE_* and
REDIS_URL at real services and `PromptResolver.from_env()` adds those layers in front of it.
"""

from __future__ import annotations

from pathlib import Path

from langfuse_versioned_prompts import LocalPromptStore, PromptResolver

PROMPTS = Path(__file__).parent / "prompts"


def main() -> None:
    resolver = PromptResolver(local=LocalPromptStore(PROMPTS))

    prompt = resolver.get("customer-support", label="production")
    print(
        f"{prompt.name} v{prompt.version} from {prompt.source} (stale={prompt.is_stale}, fallback={prompt.is_fallback})"
    )
    print(prompt.render(customer_name="John", issue_type="billing"))

    staging = resolver.get("customer-support", label="staging")
    print(f"staging serves v{staging.version}; variables: {', '.join(staging.variables)}")

    chat = resolver.get("analyzer")
    for message in chat.render(content="The new dashboard is great", history=[]):
        print(f"  [{message['role']}] {message['content'].strip()}")

    again = resolver.get("customer-support", label="production")
    print(f"second read served from {again.source}; counters: {resolver.stats()['memory']}")


if __name__ == "__main__":
    main()
