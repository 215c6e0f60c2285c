"""The public surface: pinned names, and no heavy optional import at package import time."""

from __future__ import annotations

import subprocess
import sys

import langfuse_versioned_prompts

PUBLIC = {
    "ConfigurationError",
    "Experiment",
    "LVPError",
    "LangfuseSource",
    "LocalPromptStore",
    "MemoryCache",
    "MissingVariableError",
    "PromptFormatError",
    "PromptKey",
    "PromptNotFoundError",
    "PromptResolver",
    "PromptUnavailableError",
    "RedisCache",
    "RenderError",
    "ResolvedPrompt",
    "Rollout",
    "SourceAuthError",
    "SourceUnavailableError",
    "Variant",
    "VariantCallbackHandler",
    "VersionedChatPromptTemplate",
    "VersionedPromptTemplate",
    "__version__",
    "assign_variant",
    "variant_context",
}


def test_all_is_pinned() -> None:
    assert set(langfuse_versioned_prompts.__all__) == PUBLIC
    assert len(langfuse_versioned_prompts.__all__) == len(PUBLIC), "no duplicates"
    for name in PUBLIC:
        assert hasattr(langfuse_versioned_prompts, name), name


def test_every_error_derives_from_the_root() -> None:
    from langfuse_versioned_prompts import LVPError

    errors = [getattr(langfuse_versioned_prompts, n) for n in PUBLIC if n.endswith("Error") and n != "LVPError"]
    assert errors and all(issubclass(error, LVPError) for error in errors)


def test_import_does_not_pull_optional_extras() -> None:
    code = (
        "import sys, langfuse_versioned_prompts\n"
        "heavy = ('redis', 'llama_index', 'scipy', 'matplotlib', 'numpy', 'typer', 'rich')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
