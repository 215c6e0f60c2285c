"""Langfuse webhook signatures: ``x-langfuse-signature: t=<unix>,v1=<hex HMAC-SHA256>``.

The HMAC key is the whole ``lf-whsec_...`` secret; the message is ``"<t>.<raw body>"``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from ._errors import ConfigurationError, LVPError

SIGNATURE_HEADER = "x-langfuse-signature"
TOLERANCE_SECONDS = 300
"""Signatures older (or further in the future) than this are rejected as replays."""
_TIMESTAMP = re.compile(r"[0-9]{1,15}")  # ASCII digits only: str.isdigit() also takes "\u00b2"


class WebhookSignatureError(LVPError):
    """A webhook's signature is missing, malformed, wrong or too old."""


def _digest(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def sign(secret: str, body: bytes | str, *, timestamp: int | None = None) -> str:
    """The ``x-langfuse-signature`` value Langfuse would send for ``body`` (for tests and tools).

    >>> sign("lf-whsec_x", b"{}", timestamp=1700000000)[:14]
    't=1700000000,v'
    """
    t = str(int(time.time()) if timestamp is None else int(timestamp))
    return f"t={t},v1={_digest(secret, t, _as_bytes(body))}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes | str,
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> int:
    """Check a Langfuse webhook signature; returns its timestamp, raises ``WebhookSignatureError``.

    ``body`` must be the raw request body, byte for byte. Several ``v1=`` entries are accepted
    (any may match). ``now`` (unix seconds) defaults to the current time. A malformed header
    (non-ASCII, no ``t=`` of ASCII digits, no ``v1=``) raises ``WebhookSignatureError`` too.

    >>> header = sign("s3cret", b'{"a":1}', timestamp=1000)
    >>> verify_signature("s3cret", header, b'{"a":1}', now=1010)
    1000
    >>> verify_signature("s3cret", header, b'{"a":2}', now=1010)
    Traceback (most recent call last):
    ...
    langfuse_versioned_prompts._signature.WebhookSignatureError: signature does not match the body
    """
    return check_delivery(secret, header, body, now=now, tolerance=tolerance)[0]


def check_delivery(
    secret: str,
    header: str | None,
    body: bytes | str,
    *,
    now: float | None,
    tolerance: float,
) -> tuple[int, str]:
    """``verify_signature``, also returning the digest that matched (what identifies a delivery)."""
    if not secret:
        raise ConfigurationError("the webhook secret must be a non-empty string")
    if not header:
        raise WebhookSignatureError(f"missing {SIGNATURE_HEADER} header")
    if not header.isascii():
        raise WebhookSignatureError(f"{SIGNATURE_HEADER} is not ASCII")
    timestamp: str | None = None
    signatures: list[bytes] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = value.strip()
        elif key == "v1":
            signatures.append(value.strip().lower().encode("ascii"))
    if timestamp is None or not _TIMESTAMP.fullmatch(timestamp):
        raise WebhookSignatureError(f"{SIGNATURE_HEADER} has no valid t=<unix seconds> part")
    if not signatures:
        raise WebhookSignatureError(f"{SIGNATURE_HEADER} has no v1=<signature> part")
    expected = _digest(secret, timestamp, _as_bytes(body))
    matched = False
    for candidate in signatures:  # compare all: no early exit that would leak which one matched
        matched |= hmac.compare_digest(expected.encode("ascii"), candidate)
    if not matched:
        raise WebhookSignatureError("signature does not match the body")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > tolerance:
        raise WebhookSignatureError(
            f"signature timestamp is {abs(age):.0f}s {'old' if age > 0 else 'in the future'} "
            f"(tolerance {tolerance:.0f}s): replayed or clock skew"
        )
    return int(timestamp), expected
