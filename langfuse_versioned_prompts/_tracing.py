"""What a served prompt version looks like on a Langfuse trace: metadata keys, tags, attributes.

Langfuse merges trace-level attributes written on any span of a trace into the trace, so both
integrations (LangChain and LlamaIndex) write these on the span that served the call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

TRACE_KEYS = (
    "prompt_name",
    "prompt_version",
    "prompt_label",
    "prompt_source",
    "prompt_is_fallback",
    "ab_experiment",
    "ab_variant",
)
"""Metadata keys put on the trace."""


def trace_tags(metadata: Mapping[str, Any]) -> list[str]:
    """``prompt:<name>@v<version>`` and, in an experiment, ``ab:<experiment>=<variant>``."""
    tags = []
    if metadata.get("prompt_name") and metadata.get("prompt_version") is not None:
        tags.append(f"prompt:{metadata['prompt_name']}@v{metadata['prompt_version']}")
    if metadata.get("ab_experiment") and metadata.get("ab_variant"):
        tags.append(f"ab:{metadata['ab_experiment']}={metadata['ab_variant']}")
    return tags


def trace_attributes(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """OpenTelemetry attributes that make Langfuse put the variant keys on the trace."""
    attributes: dict[str, Any] = {
        f"langfuse.trace.metadata.{key}": json.dumps(metadata[key])
        for key in TRACE_KEYS
        if metadata.get(key) is not None
    }
    tags = trace_tags(metadata)
    if tags:
        attributes["langfuse.trace.tags"] = tags
    return attributes
