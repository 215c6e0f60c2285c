"""Shared pieces of the Langfuse stand-in: responses, error bodies, times, cursors, query parsing.

Error bodies follow the real server: ``{"message", "error": "<Name>Error"}`` for business errors and
``{"message": "Invalid request data", "error": [zod issues]}`` for schema errors.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Query = Mapping[str, Sequence[str]]
Clock = Callable[[], datetime]
IdFactory = Callable[[], str]


def utc_now() -> datetime:
    """The default clock of the stand-in: timezone-aware UTC now."""
    return datetime.now(UTC)


def new_uuid() -> str:
    """The default id factory: a random UUID4 string."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class ApiResponse:
    """One HTTP answer: status, JSON body (``None`` for no body) and extra headers."""

    status: int
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


class ApiError(Exception):
    """Raised inside request handling to answer with ``response`` right away."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__(response.status, response.body)
        self.response = response


def error_response(status: int, message: str, error: str) -> ApiResponse:
    """A Langfuse error body ``{"message", "error"}``."""
    return ApiResponse(status, {"message": message, "error": error})


def not_found(message: str) -> ApiError:
    """404 as Langfuse's ``LangfuseNotFoundError``."""
    return ApiError(error_response(404, message, "LangfuseNotFoundError"))


def invalid_request(message: str) -> ApiError:
    """400 as Langfuse's ``InvalidRequestError``."""
    return ApiError(error_response(400, message, "InvalidRequestError"))


def invalid_data(issues: list[dict[str, Any]]) -> ApiError:
    """400 with zod issues, as the real server answers schema errors."""
    return ApiError(ApiResponse(400, {"message": "Invalid request data", "error": issues}))


def issue(code: str, path: Sequence[str | int], message: str, **extra: Any) -> dict[str, Any]:
    """One zod (v4) issue."""
    return {"code": code, **extra, "path": list(path), "message": message}


def type_name(value: Any) -> str:
    """The JavaScript-ish name of a JSON value's type, for zod messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def type_issue(path: Sequence[str | int], expected: str, value: Any, present: bool = True) -> dict[str, Any]:
    """A zod ``invalid_type`` issue."""
    received = type_name(value) if present else "undefined"
    return issue(
        "invalid_type", path, f"Invalid input: expected {expected}, received {received}",
        expected=expected,
    )


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, as the Langfuse API prints times."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_iso(text: str, path: str) -> datetime:
    """Parse an ISO 8601 query value; a 400 naming ``path`` when it is not one."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise invalid_data(
            [issue("invalid_format", [path], "Invalid ISO datetime", format="datetime")]
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def first(query: Query, key: str) -> str | None:
    """The first value of a query parameter, or ``None``."""
    values = query.get(key)
    return values[0] if values else None


def query_int(
    query: Query, key: str, *, default: int | None, minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    """An integer query parameter, validated like ``z.coerce.number().int()``; 400 if invalid."""
    raw = first(query, key)
    if raw is None or raw == "":
        return default
    try:
        number = float(raw)
    except ValueError:
        raise invalid_data([issue("invalid_type", [key], "Invalid input: expected number, received NaN",
                                  expected="number")]) from None
    if not number.is_integer():
        raise invalid_data([issue("invalid_type", [key], "Invalid input: expected int, received number",
                                  expected="int")])
    value = int(number)
    if minimum is not None and value < minimum:
        raise invalid_data([issue("too_small", [key], f"Too small: expected number to be >={minimum}",
                                  minimum=minimum, origin="number", inclusive=True)])
    if maximum is not None and value > maximum:
        raise invalid_data([issue("too_big", [key], f"Too big: expected number to be <={maximum}",
                                  maximum=maximum, origin="number", inclusive=True)])
    return value


def encode_cursor(offset: int) -> str:
    """An opaque base64url cursor for offset paging."""
    raw = json.dumps({"offset": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The offset inside a cursor from :func:`encode_cursor`; 400 when it is not one."""
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = data["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid_request("Invalid cursor") from None
    if not isinstance(offset, int) or offset < 0:
        raise invalid_request("Invalid cursor")
    return offset


def json_text(value: Any) -> str:
    """A compact JSON encoding (like JavaScript's ``JSON.stringify``); strings stay as they are."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def split_csv(raw: str | None) -> list[str]:
    """A comma-separated query value as a list without empty items."""
    if not raw:
        return []
    return [part.strip() for part in raw.split(",") if part.strip()]
