"""``RemoteLangfuse``: the arrange helpers of ``LangfuseTestServer`` against a real Langfuse.

Lets the same tests run against your own Langfuse (URL and keys of a project you can write to).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

from .._errors import ConfigurationError, PromptNotFoundError, SourceUnavailableError

_PROMPTS = "/api/public/v2/prompts"


class RemoteLangfuse:
    """A real Langfuse server with the data helpers of :class:`LangfuseTestServer`, over HTTP.

    >>> remote = RemoteLangfuse("http://127.0.0.1:3000", "pk-lf-...", "sk-lf-...")
    >>> remote.url
    'http://127.0.0.1:3000'
    """

    def __init__(self, url: str, public_key: str, secret_key: str, *, timeout: float = 20.0) -> None:
        self.url = url.rstrip("/")
        self.public_key = public_key
        self.secret_key = secret_key
        self._timeout = timeout
        token = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
        self._auth = f"Basic {token}"

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", self._auth)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urlopen(request, timeout=self._timeout) as response:
                raw = response.read()
        except HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            message = f"{method} {path} answered {exc.code}: {detail}"
            if exc.code == 404:
                raise PromptNotFoundError(message) from exc
            if exc.code in (401, 403) or exc.code >= 500:
                raise SourceUnavailableError(message) from exc
            raise ConfigurationError(message) from exc
        except (URLError, OSError) as exc:
            raise SourceUnavailableError(f"{method} {self.url}{path} failed: {exc}") from exc
        return json.loads(raw) if raw else None

    def create_prompt(
        self, name: str, prompt: str | list[dict[str, Any]], *, type: str | None = None,
        labels: Sequence[str] = (), config: Any = None, tags: Sequence[str] | None = None,
        commit_message: str | None = None,
    ) -> dict[str, Any]:
        """POST /api/public/v2/prompts; returns the created version.

        Fields left ``None`` are not sent, so Langfuse applies its defaults as the stand-in does:
        its schema ``config: nullable().default({})`` keeps an explicit ``"config": null``.
        """
        optional = {"config": config, "commitMessage": commit_message,
                    "tags": list(tags) if tags is not None else None}
        body: dict[str, Any] = {
            "name": name, "prompt": prompt,
            "type": type or ("text" if isinstance(prompt, str) else "chat"),
            "labels": list(labels), **{k: v for k, v in optional.items() if v is not None},
        }
        result: dict[str, Any] = self._request("POST", _PROMPTS, body)
        return result

    def move_labels(self, name: str, version: int, labels: Sequence[str]) -> dict[str, Any]:
        """PATCH /api/public/v2/prompts/{name}/versions/{version}."""
        path = f"{_PROMPTS}/{quote(name, safe='')}/versions/{version}"
        result: dict[str, Any] = self._request("PATCH", path, {"newLabels": list(labels)})
        return result

    def get_prompt(
        self, name: str, *, version: int | None = None, label: str | None = None,
        resolve: bool = True,
    ) -> dict[str, Any]:
        """GET /api/public/v2/prompts/{name}."""
        params = {k: str(v) for k, v in (("version", version), ("label", label)) if v is not None}
        if not resolve:
            params["resolve"] = "false"
        suffix = f"?{urlencode(params)}" if params else ""
        result: dict[str, Any] = self._request("GET", f"{_PROMPTS}/{quote(name, safe='')}{suffix}")
        return result

    def delete_prompt(self, name: str, *, version: int | None = None, label: str | None = None) -> None:
        """DELETE /api/public/v2/prompts/{name}."""
        params = {k: str(v) for k, v in (("version", version), ("label", label)) if v is not None}
        suffix = f"?{urlencode(params)}" if params else ""
        self._request("DELETE", f"{_PROMPTS}/{quote(name, safe='')}{suffix}")
