"""Versioned, A/B-tested Langfuse prompts for LangChain and LlamaIndex."""

from ._errors import (
    ConfigurationError,
    LVPError,
    MissingVariableError,
    PromptFormatError,
    PromptNotFoundError,
    PromptUnavailableError,
    RenderError,
    SourceAuthError,
    SourceUnavailableError,
)
from ._prompt import PromptKey, ResolvedPrompt
from ._version import __version__
from .langchain import (
    VariantCallbackHandler,
    VersionedChatPromptTemplate,
    VersionedPromptTemplate,
)
from .resolver import PromptResolver
from .sources.langfuse import LangfuseSource
from .sources.local import LocalPromptStore
from .sources.memory import MemoryCache
from .sources.redis import RedisCache
from .variants import Experiment, Rollout, Variant, assign_variant, variant_context

__all__ = [
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
]
