"""LangChain integration: versioned prompt templates and the trace-stamping callback."""

from .callbacks import VariantCallbackHandler
from .prompts import VersionedChatPromptTemplate, VersionedPromptTemplate

__all__ = ["VariantCallbackHandler", "VersionedChatPromptTemplate", "VersionedPromptTemplate"]
