"""``VariantCallbackHandler``: stamps which prompt version and A/B variant served onto the trace.

Langfuse merges trace-level attributes written on any span of a trace into the trace. The handler
writes ``langfuse.trace.metadata.<key>`` and ``langfuse.trace.tags`` on the span that Langfuse's
own ``CallbackHandler`` opened for the prompt run, found by run id (so it works in async chains,
where LangChain runs sync handlers in copied contexts), or else on the current OpenTelemetry span.
Nothing here ever raises into the user's chain.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from .._tracing import trace_attributes

logger = logging.getLogger(__name__)

_OUR_TEMPLATES = ("VersionedPromptTemplate", "VersionedChatPromptTemplate")

class VariantCallbackHandler(BaseCallbackHandler):
    """Put the prompt version and A/B variant of each call on its Langfuse trace.

    Use it beside Langfuse's handler:

    >>> from langfuse.langchain import CallbackHandler                                  # doctest: +SKIP
    >>> chain.invoke(inputs, config={"callbacks": [CallbackHandler(), VariantCallbackHandler()],
    ...                              "metadata": {"langfuse_user_id": "u-42"}})          # doctest: +SKIP
    """

    raise_error = False

    def __init__(self, langfuse_handler: Any = None) -> None:
        self.langfuse_handler = langfuse_handler
        self.stamped = 0
        """How many runs were stamped (read it in tests)."""

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Stamp runs whose metadata was set by hand (our templates stamp through ``stamp``)."""
        if not metadata or "prompt_name" not in metadata or "prompt_version" not in metadata:
            return
        if (serialized or {}).get("id", [""])[-1] in _OUR_TEMPLATES:
            return  # our templates call ``stamp`` inside the run, where the span is known
        try:
            self._write(_current_span(), metadata)
        except Exception:
            logger.debug("could not stamp run %s", run_id, exc_info=True)

    def stamp(self, run_id: UUID, metadata: Mapping[str, Any], handlers: Sequence[Any] = ()) -> bool:
        """Write the variant attributes onto the span of ``run_id``; True when a span took them."""
        try:
            span = self._langfuse_span(run_id, handlers) or _current_span()
            return self._write(span, metadata)
        except Exception:
            logger.debug("could not stamp run %s", run_id, exc_info=True)
            return False

    def _langfuse_span(self, run_id: UUID, handlers: Sequence[Any]) -> Any:
        candidates = [self.langfuse_handler] if self.langfuse_handler is not None else []
        try:
            from langfuse.langchain import CallbackHandler
        except ImportError:  # pragma: no cover - langfuse is a dependency
            return None
        candidates += [h for h in handlers if isinstance(h, CallbackHandler)]
        for handler in candidates:
            observation = getattr(handler, "_runs", {}).get(run_id)
            span = getattr(observation, "_otel_span", None)
            if span is not None and span.is_recording():
                return span
        return None

    def _write(self, span: Any, metadata: Mapping[str, Any]) -> bool:
        if span is None or not span.is_recording():
            return False
        span.set_attributes(trace_attributes(metadata))
        self.stamped += 1
        return True


def _current_span() -> Any:
    from opentelemetry import trace

    span = trace.get_current_span()
    return span if span.is_recording() else None


def stamp_run(run_id: UUID, metadata: Mapping[str, Any], handlers: Sequence[Any]) -> None:
    """Let every ``VariantCallbackHandler`` among ``handlers`` stamp this run."""
    for handler in handlers:
        if isinstance(handler, VariantCallbackHandler):
            handler.stamp(run_id, metadata, handlers)
