"""``PromptAdmin``: the Langfuse prompt API calls the operations make, with errors mapped once.

Reads go through ``client.api.prompts`` (no SDK cache), writes through ``client.api.prompts.create``
and ``client.api.prompt_version.update``. Every call makes exactly one request (``max_retries=0``):
a retried POST could create a version twice, and an operator would rather see the failure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, cast
from urllib.parse import quote

from .._errors import (
    ConfigurationError,
    LVPError,
    PromptFormatError,
    PromptNotFoundError,
    SourceAuthError,
    SourceUnavailableError,
)
from .._prompt import ResolvedPrompt

if TYPE_CHECKING:
    from langfuse import Langfuse

ADMIN_TIMEOUT_SECONDS = 10.0
"""One administrative request to Langfuse: this timeout, no retries."""

_PAGE_SIZE = 100


@dataclass(frozen=True)
class RemoteVersion:
    """One prompt version as Langfuse holds it, with its creation time."""

    prompt: ResolvedPrompt
    created_at: str | None = None

    @property
    def version(self) -> int:
        """The version number."""
        return self.prompt.version


@dataclass(frozen=True)
class PromptSummary:
    """A prompt in Langfuse's list: its versions and the labels held by any of them."""

    name: str
    type: str
    versions: tuple[int, ...]
    labels: tuple[str, ...]


class PromptAdmin:
    """Administrative access to Langfuse prompts (used by ``lvp`` and the ``ops`` functions).

    >>> from langfuse import Langfuse                                      # doctest: +SKIP
    >>> admin = PromptAdmin(Langfuse(tracing_enabled=False))               # doctest: +SKIP
    >>> admin.get("support", label="production").version                   # doctest: +SKIP
    3
    """

    def __init__(self, client: Langfuse, *, timeout: float = ADMIN_TIMEOUT_SECONDS) -> None:
        if not timeout > 0:
            raise ConfigurationError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.client = client
        self.timeout = float(timeout)

    @classmethod
    def connect(
        cls,
        *,
        public_key: str,
        secret_key: str,
        base_url: str | None = None,
        timeout: float = ADMIN_TIMEOUT_SECONDS,
    ) -> PromptAdmin:
        """An admin on a new SDK client (tracing off) for these keys and URL."""
        from langfuse import Langfuse

        client = Langfuse(
            public_key=public_key,
            secret_key=secret_key,
            base_url=base_url,
            tracing_enabled=False,
            timeout=max(1, math.ceil(timeout)),  # the SDK's default for calls made without options
        )
        return cls(client, timeout=timeout)

    @property
    def base_url(self) -> str:
        """The Langfuse URL the client talks to (named in connection errors)."""
        wrapper = getattr(self.client.api, "_client_wrapper", None)
        getter = getattr(wrapper, "get_base_url", None)
        return str(getter()) if callable(getter) else "Langfuse"

    def _options(self) -> Any:
        return {"timeout_in_seconds": self.timeout, "max_retries": 0}

    # -- reads --------------------------------------------------------------------------------

    def find(
        self, name: str, *, version: int | None = None, label: str | None = None, resolve: bool = True
    ) -> RemoteVersion | None:
        """The version asked for, or ``None`` when Langfuse has no such prompt, version or label."""
        try:
            return self.get(name, version=version, label=label, resolve=resolve)
        except PromptNotFoundError:
            return None

    def get(
        self, name: str, *, version: int | None = None, label: str | None = None, resolve: bool = True
    ) -> RemoteVersion:
        """The version asked for; ``PromptNotFoundError`` naming it when it does not exist."""
        what = _describe(name, version, label)
        try:
            response = self.client.api.prompts.get(
                quote(name, safe=""),
                version=version,
                label=label,
                resolve=None if resolve else False,
                request_options=self._options(),
            )
        except Exception as exc:
            self._fail(f"reading {what}", exc)
        return _remote(response, f"Langfuse {what}")

    def newest(self, name: str, *, resolve: bool = False) -> RemoteVersion | None:
        """The highest version of ``name`` (label ``latest``), or ``None`` for a new prompt."""
        return self.find(name, label="latest", resolve=resolve)

    def prompts(self, *, name: str | None = None) -> Iterator[PromptSummary]:
        """Every prompt in the project (or the one called ``name``), page by page."""
        page = 1
        while True:
            try:
                response = self.client.api.prompts.list(
                    name=name, page=page, limit=_PAGE_SIZE, request_options=self._options()
                )
            except Exception as exc:
                self._fail("listing prompts", exc)
            for meta in response.data:
                if name is None or meta.name == name:
                    yield PromptSummary(
                        name=meta.name,
                        type=str(getattr(meta.type, "value", meta.type)),
                        versions=tuple(sorted(meta.versions)),
                        labels=tuple(meta.labels),
                    )
            total_pages = getattr(response.meta, "total_pages", 1) or 1
            if page >= total_pages or not response.data:
                return
            page += 1

    def summary(self, name: str) -> PromptSummary:
        """The list entry of prompt ``name``; ``PromptNotFoundError`` when there is none."""
        for found in self.prompts(name=name):
            return found
        raise PromptNotFoundError(f"Langfuse at {self.base_url} has no prompt {name!r}")

    # -- writes -------------------------------------------------------------------------------

    def create(
        self,
        prompt: ResolvedPrompt,
        *,
        labels: Sequence[str] = (),
        commit_message: str | None = None,
    ) -> RemoteVersion:
        """Create the next version of ``prompt.name`` with ``prompt``'s content (one POST)."""
        from langfuse.api import CreateChatPromptRequest, CreateChatPromptType, CreateTextPromptRequest

        fields: dict[str, Any] = {
            "name": prompt.name,
            "labels": list(labels),
            "tags": list(prompt.tags) or None,
            "config": dict(prompt.config),
            "commit_message": commit_message,
        }
        request: Any
        if isinstance(prompt.template, str):
            request = CreateTextPromptRequest(prompt=prompt.template, **fields)
        else:
            request = CreateChatPromptRequest(
                prompt=cast(Any, chat_messages(prompt.template)),
                type=cast(Any, CreateChatPromptType.CHAT),  # mypy reads a StrEnum member as str
                **fields,
            )
        try:
            response = self.client.api.prompts.create(request=request, request_options=self._options())
        except Exception as exc:
            self._fail(f"creating a version of prompt {prompt.name!r}", exc)
        return _remote(response, f"Langfuse prompt {prompt.name!r}")

    def set_labels(self, name: str, version: int, labels: Sequence[str]) -> RemoteVersion:
        """Put ``labels`` on ``version`` (Langfuse moves them from wherever they were)."""
        try:
            response = self.client.api.prompt_version.update(
                quote(name, safe=""), version, new_labels=list(labels), request_options=self._options()
            )
        except Exception as exc:
            self._fail(f"moving labels {', '.join(labels)} to {_describe(name, version, None)}", exc)
        return _remote(response, f"Langfuse {_describe(name, version, None)}")

    # -- errors -------------------------------------------------------------------------------

    def _fail(self, doing: str, exc: Exception) -> NoReturn:
        """Map an SDK, HTTP or network error to the library's own, naming what was being done."""
        if isinstance(exc, LVPError):
            raise exc
        status = getattr(exc, "status_code", None)
        detail = error_message(exc)
        if status == 404:
            raise PromptNotFoundError(f"{doing}: not found in Langfuse ({detail})") from exc
        if status in (401, 403):
            raise SourceAuthError(
                f"{doing}: Langfuse at {self.base_url} refused the credentials (HTTP {status}); check "
                "LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY (or --public-key / --secret-key)"
            ) from exc
        if status is not None and 400 <= status < 500 and status not in (408, 429):
            raise ConfigurationError(f"{doing}: Langfuse rejected the request (HTTP {status}): {detail}") from exc
        if status is not None and 200 <= status < 300:
            raise SourceUnavailableError(
                f"{doing}: Langfuse answered HTTP {status} with an unreadable body: {detail}"
            ) from exc
        if status is not None:
            raise SourceUnavailableError(f"{doing}: Langfuse answered HTTP {status}: {detail}") from exc
        raise SourceUnavailableError(
            f"{doing}: cannot reach Langfuse at {self.base_url}: {type(exc).__name__}: {detail}"
        ) from exc


def chat_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chat messages in one canonical shape (no redundant ``type: chatmessage``), for compare and send."""
    return [{k: v for k, v in m.items() if (k, v) != ("type", "chatmessage")} for m in messages]


def content_differences(a: ResolvedPrompt, b: ResolvedPrompt) -> tuple[str, ...]:
    """What differs between two versions, of ``type``, ``template`` and ``config`` (empty: same).

    The raw comparison push makes (and ``diff`` reports): templates are compared character for
    character, final newline and line endings included; chat messages in one canonical shape.
    """
    found = [] if a.type == b.type else ["type"]
    if isinstance(a.template, str) or isinstance(b.template, str):
        if a.template != b.template:
            found.append("template")
    elif chat_messages(a.template) != chat_messages(b.template):
        found.append("template")
    if dict(a.config) != dict(b.config):
        found.append("config")
    return tuple(found)


def no_answer(exc: BaseException) -> bool:
    """True when a request failed without a readable answer from Langfuse (timeout, dropped
    connection, 2xx with an unreadable body): it may have taken effect. False when Langfuse
    answered with an error status, or when the connection was never made."""
    cause = exc.__cause__ if isinstance(exc, LVPError) and exc.__cause__ is not None else exc
    status = getattr(cause, "status_code", None)
    if isinstance(status, int):
        return 200 <= status < 300
    import httpx

    return not isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout))


def error_message(exc: BaseException) -> str:
    """The server's message from an SDK error, else the exception text, on one line."""
    body = getattr(exc, "body", None)
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return " ".join(body.split())[:200]
    if isinstance(body, dict) and body.get("message"):
        return " ".join(str(body["message"]).split())
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _describe(name: str, version: int | None, label: str | None) -> str:
    if version is not None:
        return f"prompt {name!r} version {version}"
    if label is not None:
        return f"prompt {name!r} label {label!r}"
    return f"prompt {name!r}"


def _remote(response: Any, origin: str) -> RemoteVersion:
    try:
        data = response.dict(by_alias=True) if hasattr(response, "dict") else dict(response)
        prompt = ResolvedPrompt.from_dict(data, source="langfuse", origin=origin)
    except (LVPError, TypeError, ValueError) as exc:
        raise PromptFormatError(f"{origin}: Langfuse answered with an unreadable prompt: {exc}") from exc
    created = data.get("createdAt")
    return RemoteVersion(prompt, str(created) if created is not None else None)
