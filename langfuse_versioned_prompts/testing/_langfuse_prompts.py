"""Prompt management of the Langfuse stand-in: versions, labels, tags, composability.

Follows how Langfuse 4.x answers (see ``langfuse-server-behaviour.md``): versions count 1, 2, 3 per
name; ``latest`` moves to the newest version; a label lives on one version; tags belong to the
prompt; references ``@@@langfusePrompt:name=X|label=L@@@`` resolve on read.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._langfuse_common import (
    ApiError,
    Clock,
    IdFactory,
    Query,
    error_response,
    first,
    invalid_data,
    invalid_request,
    iso,
    not_found,
    parse_iso,
    query_int,
    type_issue,
)
from ._langfuse_prompt_schema import validate_create, validate_patch

PRODUCTION = "production"
LATEST = "latest"
_MAX_NESTING_DEPTH = 5
_DEPENDENCY_TAG = re.compile(r"@@@langfusePrompt:(.*?)@@@")
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class _Dependency:
    name: str
    version: int | None = None
    label: str | None = None

    def describe(self) -> str:
        if self.version is not None:
            return f"{self.name} - version {self.version}"
        return f"{self.name} - label {self.label}"


@dataclass
class _Version:
    id: str
    name: str
    version: int
    type: str
    prompt: Any
    config: Any
    labels: list[str]
    commit_message: str | None
    created_at: datetime
    updated_at: datetime
    dependencies: tuple[_Dependency, ...] = field(default=())


class _ResolveError(Exception):
    """A reference that cannot be resolved (missing, not text, circular, too deep)."""


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def parse_dependencies(prompt: Any) -> tuple[_Dependency, ...]:
    """The prompt references in a prompt's content, parsed as the server does."""
    found: list[_Dependency] = []
    for inner in _DEPENDENCY_TAG.findall(json.dumps(prompt, ensure_ascii=False)):
        parts = inner.split("|")
        if len(parts) != 2 or not parts[0].startswith("name="):
            continue
        params: dict[str, str | None] = {}
        for part in parts:
            pieces = part.split("=")
            params[pieces[0]] = pieces[1] if len(pieces) > 1 else None
        name = params.get("name")
        if not name:
            continue
        version_text = params.get("version")
        if version_text:
            try:
                found.append(_Dependency(name, version=int(version_text.strip())))
            except ValueError:
                continue
        elif params.get("label") is not None:
            found.append(_Dependency(name, label=params["label"]))
    return tuple(dict.fromkeys(found))


class PromptStore:
    """The prompts of one project. Thread-safe: every public method holds the store's lock."""

    def __init__(self, *, project_id: str, clock: Clock, new_id: IdFactory) -> None:
        self._project_id = project_id
        self._clock = clock
        self._new_id = new_id
        self._lock = threading.RLock()
        self._versions: dict[str, list[_Version]] = {}
        self._tags: dict[str, list[str]] = {}

    # -- reads -------------------------------------------------------------------------------

    def get(self, name: str, query: Query) -> dict[str, Any]:
        """GET /api/public/v2/prompts/{name}: the resolved version asked (production by default)."""
        version = query_int(query, "version", default=None)
        label = first(query, "label")
        if version is not None and label is not None:
            raise invalid_request("Cannot specify both version and label")
        resolve = (first(query, "resolve") or "true").lower() != "false"
        with self._lock:
            wanted = PRODUCTION if label is None else label
            found = self._find(name, version=version or None, label=None if version else wanted)
            if found is None:
                where = f"with version {version}" if version else f"with label '{wanted}'"
                raise not_found(f"Prompt not found: '{name}' {where}")
            prompt, graph = (copy.deepcopy(found.prompt), None)
            if resolve and found.dependencies:
                try:
                    prompt, graph = self._resolve(found, found.dependencies)
                except _ResolveError as exc:
                    raise ApiError(error_response(500, str(exc), "InternalServerError")) from exc
            row = self._row(found)
        row.update(prompt=prompt, isActive=PRODUCTION in found.labels, resolutionGraph=graph)
        return row

    def list_prompts(self, query: Query) -> dict[str, Any]:
        """GET /api/public/v2/prompts: one entry per name with the versions matching the filters."""
        page = query_int(query, "page", default=1, minimum=1) or 1
        limit = query_int(query, "limit", default=10, minimum=1, maximum=100) or 10
        name, label, tag = first(query, "name"), first(query, "label"), first(query, "tag")
        version = query_int(query, "version", default=None)
        since, until = first(query, "fromUpdatedAt"), first(query, "toUpdatedAt")
        since_at = parse_iso(since, "fromUpdatedAt") if since else None
        until_at = parse_iso(until, "toUpdatedAt") if until else None
        entries: list[dict[str, Any]] = []
        with self._lock:
            for prompt_name in sorted(self._versions):
                tags = self._tags.get(prompt_name, [])
                if (name and prompt_name != name) or (tag and tag not in tags):
                    continue
                matching = [
                    v for v in self._versions[prompt_name]
                    if (not label or label in v.labels)
                    and (not version or v.version == version)
                    and (since_at is None or v.updated_at >= since_at)
                    and (until_at is None or v.updated_at < until_at)
                ]
                if not matching:
                    continue
                newest = max(matching, key=lambda v: v.version)
                entries.append({
                    "name": prompt_name,
                    "type": newest.type,
                    "versions": sorted(v.version for v in matching),
                    "labels": sorted({lbl for v in matching for lbl in v.labels}),
                    "tags": list(tags),
                    "lastUpdatedAt": iso(max(v.updated_at for v in matching)),
                    "lastConfig": copy.deepcopy(newest.config),
                })
        total = len(entries)
        meta = {"page": page, "limit": limit, "totalItems": total, "totalPages": -(-total // limit)}
        data = entries[(page - 1) * limit : page * limit]
        return {"data": data, "meta": meta, "pagination": dict(meta)}

    def prompt_id(self, name: str, version: int) -> str | None:
        """The id of one stored version, or ``None``."""
        with self._lock:
            found = self._find(name, version=version, label=None)
            return found.id if found else None

    # -- writes ------------------------------------------------------------------------------

    def create(self, body: Any) -> dict[str, Any]:
        """POST /api/public/v2/prompts: store a new version; labels given move to it."""
        data = validate_create(body)
        name, kind, prompt = data["name"], data["type"], data["prompt"]
        if kind == "chat":
            _check_chat_names(prompt)
        with self._lock:
            versions = self._versions.get(name, [])
            latest = max(versions, key=lambda v: v.version) if versions else None
            if latest is not None and latest.type != kind:
                raise invalid_request(
                    "Previous versions have different prompt type. "
                    "Create a new prompt with a different name."
                )
            now = self._clock()
            new = _Version(
                id=self._new_id(), name=name, version=latest.version + 1 if latest else 1,
                type=kind, prompt=copy.deepcopy(prompt),
                config=copy.deepcopy(data["config"]) if data["config"] is not None else {},
                labels=_unique([*data["labels"], LATEST]), commit_message=data["commitMessage"],
                created_at=now, updated_at=now, dependencies=parse_dependencies(prompt),
            )
            if new.dependencies:
                try:
                    self._resolve(new, new.dependencies)
                except _ResolveError as exc:
                    raise invalid_request(str(exc)) from exc
            self._take_labels(versions, new.labels, keep=None, now=now)
            old_tags = self._tags.get(name, [])
            tags = _unique(data["tags"]) if data["tags"] is not None else list(old_tags)
            if sorted(set(tags)) != sorted(set(old_tags)):
                for other in versions:
                    other.updated_at = now
            self._tags[name] = tags
            self._versions[name] = [*versions, new]
            return self._row(new)

    def update_labels(self, name: str, version_text: str, body: Any) -> dict[str, Any]:
        """PATCH /api/public/v2/prompts/{name}/versions/{version}: move ``newLabels`` to it."""
        try:
            version = int(version_text)
        except ValueError:
            raise invalid_data([type_issue(["promptVersion"], "number", "NaN")]) from None
        new_labels = validate_patch(body)
        with self._lock:
            target = self._find(name, version=version, label=None)
            if target is None:
                raise not_found(f"Prompt '{name}' version {version} not found in project")
            now = self._clock()
            self._take_labels(self._versions[name], new_labels, keep=target, now=now)
            target.labels = _unique([*new_labels, *target.labels])
            target.updated_at = now
            return self._row(target)

    def delete(self, name: str, query: Query) -> None:
        """DELETE /api/public/v2/prompts/{name}: the version, the label's holder, or all."""
        version = query_int(query, "version", default=None)
        label = first(query, "label")
        if version and label:
            raise invalid_request("Cannot specify both version and label")
        with self._lock:
            versions = self._versions.get(name, [])
            doomed = [
                v for v in versions
                if (not version or v.version == version) and (not label or label in v.labels)
            ]
            if not doomed:
                raise not_found("Prompt not found")
            remaining = [v for v in versions if v not in doomed]
            self._check_dependents(name, doomed, remaining)
            if any(LATEST in v.labels for v in doomed) and remaining and not any(
                LATEST in v.labels for v in remaining
            ):
                highest = max(remaining, key=lambda v: v.version)
                highest.labels = _unique([*highest.labels, LATEST])
            if remaining:
                self._versions[name] = remaining
            else:
                self._versions.pop(name, None)
                self._tags.pop(name, None)

    # -- helpers -----------------------------------------------------------------------------

    def _find(self, name: str, *, version: int | None, label: str | None) -> _Version | None:
        for candidate in self._versions.get(name, []):
            if version is not None and candidate.version == version:
                return candidate
            if version is None and label is not None and label in candidate.labels:
                return candidate
        return None

    def _row(self, version: _Version) -> dict[str, Any]:
        return {
            "id": version.id,
            "createdAt": iso(version.created_at),
            "updatedAt": iso(version.updated_at),
            "projectId": self._project_id,
            "createdBy": "API",
            "prompt": copy.deepcopy(version.prompt),
            "name": version.name,
            "version": version.version,
            "type": version.type,
            "isActive": None,
            "config": copy.deepcopy(version.config),
            "tags": list(self._tags.get(version.name, [])),
            "labels": list(version.labels),
            "commitMessage": version.commit_message,
        }

    @staticmethod
    def _take_labels(
        versions: list[_Version], labels: list[str], *, keep: _Version | None, now: datetime
    ) -> None:
        for other in versions:
            if other is not keep and any(label in other.labels for label in labels):
                other.labels = [label for label in other.labels if label not in labels]
                other.updated_at = now

    def _check_dependents(self, name: str, doomed: list[_Version], remaining: list[_Version]) -> None:
        doomed_versions = {v.version for v in doomed}
        blocking: list[str] = []
        for parent_versions in self._versions.values():
            for parent in parent_versions:
                if parent in doomed:
                    continue
                for dep in parent.dependencies:
                    if dep.name != name:
                        continue
                    if dep.version is not None and dep.version in doomed_versions:
                        blocking.append(f"{parent.name} v{parent.version} depends on {name} v{dep.version}")
                    elif dep.label is not None and not any(dep.label in v.labels for v in remaining):
                        blocking.append(f"{parent.name} v{parent.version} depends on {name} {dep.label}")
        if blocking:
            raise invalid_request(
                "Other prompts are depending on prompt versions you are trying to delete:\n\n"
                + "\n".join(blocking) + "\n\nPlease delete the dependent prompts first."
            )

    def _resolve(
        self, root: _Version, dependencies: tuple[_Dependency, ...]
    ) -> tuple[Any, dict[str, Any] | None]:
        graph: dict[str, Any] = {
            "root": {"name": root.name, "version": root.version, "id": root.id},
            "dependencies": {},
        }
        seen: set[str] = set()

        def resolve(current: _Version, deps: tuple[_Dependency, ...], level: int) -> Any:
            if level >= _MAX_NESTING_DEPTH:
                raise _ResolveError(f"Maximum nesting depth exceeded ({_MAX_NESTING_DEPTH})")
            if current.id in seen or (current.name == root.name and current.id != root.id):
                raise _ResolveError(
                    f"Circular dependency detected involving prompt '{current.name}' "
                    f"version {current.version}"
                )
            seen.add(current.id)
            if not deps:
                seen.discard(current.id)
                return copy.deepcopy(current.prompt)
            text = json.dumps(current.prompt, ensure_ascii=False)
            for dep in deps:
                child = self._find(dep.name, version=dep.version, label=dep.label)
                if child is None:
                    raise _ResolveError(f"Prompt dependency not found: {dep.describe()}")
                if child.type != "text":
                    raise _ResolveError(f"Prompt dependency is not a text prompt: {dep.describe()}")
                graph["dependencies"].setdefault(current.id, []).append(
                    {"id": child.id, "name": child.name, "version": child.version}
                )
                resolved = resolve(child, child.dependencies, level + 1)
                tag = f"@@@langfusePrompt:name={re.escape(child.name)}\\|"
                patterns = [f"{tag}version={child.version}@@@"]
                patterns += [f"{tag}label={re.escape(label)}@@@" for label in child.labels]
                replacement = json.dumps(resolved, ensure_ascii=False)[1:-1]
                text = re.sub("|".join(patterns), _literal(replacement), text)
            seen.discard(current.id)
            return json.loads(text)

        resolved_prompt = resolve(root, dependencies, 0)
        return resolved_prompt, graph if graph["dependencies"] else None


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` replacement that inserts ``text`` verbatim (no backslash processing)."""
    return lambda _match: text


def _check_chat_names(messages: list[Any]) -> None:
    """Variables and placeholders of a chat prompt must not share a name (a 400 otherwise)."""
    placeholders = {m["name"] for m in messages if isinstance(m, dict) and m.get("type") == "placeholder"}
    variables: list[str] = []
    for message in messages:
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            variables += _VARIABLE.findall(message["content"])
    clashes = [name for name in dict.fromkeys(variables) if name in placeholders]
    if clashes:
        raise invalid_request(
            "Cannot create prompt, variables and placeholders must be unique, the following are "
            f"not: {', '.join(clashes)}"
        )

