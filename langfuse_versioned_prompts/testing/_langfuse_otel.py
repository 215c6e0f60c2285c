"""Decoding of OTLP/HTTP trace exports (protobuf or JSON, gzip or not) into plain span records."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# protobuf ships no type stubs (types-protobuf is not a dependency)
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from ._langfuse_common import ApiError, error_response

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STATUS_ERROR = 2


@dataclass(frozen=True)
class SpanRecord:
    """One exported span, with ids as lowercase hex and attribute values as Python values.

    >>> from datetime import datetime, timezone
    >>> span = SpanRecord("ab" * 16, "cd" * 8, None, "llm", datetime.now(timezone.utc), None,
    ...                   {"langfuse.observation.prompt.version": 2})
    >>> span.attributes["langfuse.observation.prompt.version"]
    2
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    start_time: datetime
    end_time: datetime | None
    attributes: dict[str, Any] = field(default_factory=dict)
    resource_attributes: dict[str, Any] = field(default_factory=dict)
    scope_name: str = ""
    status_error: bool = False
    status_message: str = ""


def _bad_request(message: str) -> ApiError:
    return ApiError(error_response(400, message, "InvalidRequestError"))


def _time(nanos: int) -> datetime:
    return _EPOCH + timedelta(microseconds=nanos // 1000)


def _proto_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "array_value":
        return [_proto_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _proto_attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return None


def _proto_attributes(items: Iterable[KeyValue]) -> dict[str, Any]:
    return {item.key: _proto_value(item.value) for item in items}


def _from_protobuf(data: bytes) -> list[SpanRecord]:
    try:
        request = ExportTraceServiceRequest.FromString(data)
    except DecodeError as exc:
        raise _bad_request(f"Invalid OTLP protobuf body: {exc}") from exc
    spans: list[SpanRecord] = []
    for resource_spans in request.resource_spans:
        resource = _proto_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(SpanRecord(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex() or None,
                    name=span.name,
                    start_time=_time(span.start_time_unix_nano),
                    end_time=_time(span.end_time_unix_nano) if span.end_time_unix_nano else None,
                    attributes=_proto_attributes(span.attributes),
                    resource_attributes=resource,
                    scope_name=scope_spans.scope.name,
                    status_error=span.status.code == _STATUS_ERROR,
                    status_message=span.status.message,
                ))
    return spans


def _json_id(raw: Any) -> str:
    """OTLP/JSON ids are hex; accept base64 (protobuf's JSON mapping) too."""
    text = str(raw or "")
    try:
        bytes.fromhex(text)
        return text.lower()
    except ValueError:
        pass
    try:
        return base64.b64decode(text, validate=True).hex()
    except (binascii.Error, ValueError):
        raise _bad_request(f"Invalid span or trace id: {text!r}") from None


def _json_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [_json_value(item) for item in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return _json_attributes(value["kvlistValue"].get("values", []))
    return None


def _json_attributes(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {str(i.get("key")): _json_value(i.get("value")) for i in items if isinstance(i, dict)}


def _from_json(data: bytes) -> list[SpanRecord]:
    try:
        body = json.loads(data)
        spans: list[SpanRecord] = []
        for resource_spans in body.get("resourceSpans", []):
            resource = _json_attributes(resource_spans.get("resource", {}).get("attributes"))
            for scope_spans in resource_spans.get("scopeSpans", []):
                scope = scope_spans.get("scope") or {}
                for span in scope_spans.get("spans", []):
                    status = span.get("status") or {}
                    end = int(span.get("endTimeUnixNano") or 0)
                    spans.append(SpanRecord(
                        trace_id=_json_id(span.get("traceId")),
                        span_id=_json_id(span.get("spanId")),
                        parent_span_id=_json_id(span["parentSpanId"]) if span.get("parentSpanId") else None,
                        name=str(span.get("name", "")),
                        start_time=_time(int(span.get("startTimeUnixNano") or 0)),
                        end_time=_time(end) if end else None,
                        attributes=_json_attributes(span.get("attributes")),
                        resource_attributes=resource,
                        scope_name=str(scope.get("name", "")),
                        status_error=status.get("code") in (_STATUS_ERROR, "STATUS_CODE_ERROR"),
                        status_message=str(status.get("message", "")),
                    ))
    except (ValueError, AttributeError, TypeError) as exc:
        raise _bad_request(f"Invalid OTLP JSON body: {exc}") from exc
    return spans


def decode_export(body: bytes, *, content_type: str, content_encoding: str) -> list[SpanRecord]:
    """The spans of one OTLP/HTTP export request; a 400 ApiError when the body is not one."""
    encoding = content_encoding.strip().lower()
    try:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding not in ("", "identity"):
            raise _bad_request(f"Unsupported Content-Encoding: {content_encoding}")
    except (OSError, zlib.error, EOFError) as exc:
        raise _bad_request(f"Cannot decompress the body: {exc}") from exc
    if "json" in content_type.lower():
        return _from_json(body)
    return _from_protobuf(body)
