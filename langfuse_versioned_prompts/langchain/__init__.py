"""LangChain integration: versioned prompt templates and the trace-stamping callback."""

from .._tracing import trace_attributes
from .callbacks import VariantCallbackHandler
from .prompts import VersionedChatPromptTemplate, VersionedPromptTemplate

__all__ = ["VariantCallbackHandler", "VersionedChatPromptTemplate", "VersionedPromptTemplate", "trace_attributes"]
