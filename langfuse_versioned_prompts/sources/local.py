"""L4: prompt files on disk (YAML, one per prompt); also the whole backend when Langfuse is absent.

A prompt named ``rag/qa`` lives in ``<root>/rag/qa.yaml``. The file holds every version::

    name: customer-support          # optional; when given it must match the file's place
    type: text                      # text (default) or chat; one type for all versions
    tags: [support]                 # tags belong to the prompt, as in Langfuse
    versions:
      - version: 1                  # unique positive integers, in any order
        labels: [production]        # a label lives on exactly one version
        commit_message: Initial version
        config: {model: gpt-4o-mini, temperature: 0.2}
        prompt: |
          You are a support agent. The customer's name is {{customer_name}}.
      - version: 2
        labels: [staging]           # `latest` is implicit: always the highest version
        prompt: ...

A chat prompt's ``prompt`` is a list of ``{role: ..., content: ...}`` messages and
``{type: placeholder, name: ...}`` placeholders. A version may also carry ``resolution_graph``
(kept from Langfuse by ``lvp pull``). Unknown keys are errors, so a typo never goes unnoticed.

Files are read with a safe loader that also rejects duplicate keys and keeps dates as strings (so a
config stays JSON, as Langfuse returns it). ``save`` writes multi-line text as ``|`` blocks, keys in
a fixed order, unicode as is, atomically (temporary file, then ``os.replace``). Parsed files are
cached by (inode, mtime, size): an unchanged file is never parsed twice, an edited one is re-read.
All methods are thread-safe; ``add_version`` is not safe against other processes writing the file.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import stat
import threading
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, NoReturn

import yaml

from .._errors import ConfigurationError, PromptFormatError, PromptNotFoundError
from .._prompt import PromptKey, ResolvedPrompt, check_label
from .._settings import DEFAULT_LABEL, LOCAL_PROMPTS_DIR
from ._yaml import Dumper, load_yaml, write_atomic

SUFFIX = ".yaml"
LATEST = "latest"
_PROMPT_KEYS = ("name", "type", "tags", "versions")
_VERSION_KEYS = ("version", "labels", "commit_message", "config", "resolution_graph", "prompt")
_FileStamp = tuple[int, int, int]


class _PromptFile(NamedTuple):
    """One parsed prompt file, with its versions indexed for lookups."""

    path: pathlib.Path
    tags: tuple[str, ...]
    versions: tuple[ResolvedPrompt, ...]
    by_version: dict[int, ResolvedPrompt]
    by_label: dict[str, ResolvedPrompt]


class LocalPromptStore:
    """Prompt versions stored as YAML files under one directory.

    >>> store = LocalPromptStore("prompts")                                       # doctest: +SKIP
    >>> store.get(PromptKey.create("rag/qa", label="production")).render(       # doctest: +SKIP
    ...     context_str="...", query_str="What is L4?")
    """

    def __init__(self, path: str | os.PathLike[str] = LOCAL_PROMPTS_DIR) -> None:
        self._root = pathlib.Path(path).expanduser()
        self._cache: dict[pathlib.Path, tuple[_FileStamp, _PromptFile]] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.RLock()

    def __repr__(self) -> str:
        return f"LocalPromptStore({str(self._root)!r})"

    @property
    def path(self) -> pathlib.Path:
        """The root directory of the prompt files."""
        return self._root

    # -- reading -----------------------------------------------------------------------------

    def get(self, key: PromptKey) -> ResolvedPrompt:
        """The version ``key`` asks for (by label or version), with ``source="local"``."""
        file = self._load(key.name)
        label = key.label or DEFAULT_LABEL
        if file is None:
            self._missing(key.name, f"version {key.version}" if key.version else f"label {label!r}")
        if key.version is not None:
            found = file.by_version.get(key.version)
            if found is None:
                raise PromptNotFoundError(
                    f"prompt {key.name!r} has no version {key.version} in {file.path} "
                    f"(versions there: {', '.join(map(str, file.by_version))})"
                )
            return found
        found = file.by_label.get(label)
        if found is None:
            held = ", ".join(f"{name} -> v{p.version}" for name, p in file.by_label.items())
            raise PromptNotFoundError(
                f"prompt {key.name!r} has no version with label {label!r} in {file.path} "
                f"(labels there: {held}); add the label to a version in that file"
            )
        return found

    async def aget(self, key: PromptKey) -> ResolvedPrompt:
        """``get`` in a worker thread, so file reads never block the event loop."""
        return await asyncio.to_thread(self.get, key)

    def names(self) -> list[str]:
        """Names of all prompts under the root, sorted; empty when the root does not exist."""
        found: list[str] = []
        for directory, subdirs, files in os.walk(self._root):
            subdirs[:] = [d for d in subdirs if not d.startswith(".")]
            base = pathlib.Path(directory).relative_to(self._root)
            for filename in files:
                if filename.endswith(SUFFIX) and not filename.startswith("."):
                    found.append((base / filename[: -len(SUFFIX)]).as_posix())
        return sorted(found)

    def versions(self, name: str) -> list[ResolvedPrompt]:
        """Every version of prompt ``name``, in ascending order."""
        file = self._load(name)
        if file is None:
            self._missing(name, "all versions")
        return list(file.versions)

    def file_for(self, name: str) -> pathlib.Path:
        """The file that holds prompt ``name``; ``ConfigurationError`` if the name cannot be one."""
        problem = _name_problem(name)
        if problem:
            raise ConfigurationError(f"prompt name {name!r} cannot be a local file name: {problem}")
        *folders, last = name.split("/")
        return self._root.joinpath(*folders, last + SUFFIX)

    # -- writing -----------------------------------------------------------------------------

    def save(self, name: str, versions: Sequence[ResolvedPrompt]) -> pathlib.Path:
        """Write all ``versions`` of prompt ``name`` to its file, atomically; returns the path.

        ``latest`` is not written (it is implied by the highest version). The file is checked
        with the same rules as a read first, so ``save`` never writes a file ``get`` rejects.
        """
        path = self.file_for(name)
        problem = "save needs at least one version" if not versions else ""
        if any(p.name != name for p in versions):
            problem = f"cannot save versions of {sorted({p.name for p in versions} - {name})}"
        elif len({p.type for p in versions}) > 1:
            problem = "versions mix text and chat; a prompt has one type (use another name)"
        if problem:
            raise ConfigurationError(f"prompt {name!r}: {problem}")
        try:
            document = _document(name, versions)
        except (TypeError, ValueError) as exc:
            raise PromptFormatError(f"{path}: config must hold JSON values only ({exc})") from exc
        _parse(document, path, name)
        text = yaml.dump(document, Dumper=Dumper, sort_keys=False, allow_unicode=True,
                         default_flow_style=False, width=1 << 30)
        with self._write_lock:
            write_atomic(path, text.encode("utf-8"))
            with self._lock:
                self._cache.pop(path, None)
        return path

    def add_version(self, prompt: ResolvedPrompt) -> ResolvedPrompt:
        """Append ``prompt`` as the next version of ``prompt.name``, as Langfuse's create does.

        Its labels move to it from older versions, it becomes ``latest``, and its tags (when it
        has any) replace the tags of the prompt. ``prompt.version`` is ignored. Returns the new
        version as stored.
        """
        with self._write_lock:
            file = self._load(prompt.name)
            old = list(file.versions) if file is not None else []
            if old and old[0].type != prompt.type:
                raise ConfigurationError(
                    f"prompt {prompt.name!r} has {old[0].type} versions, cannot add a "
                    f"{prompt.type} version: create a new prompt with a different name"
                )
            labels = tuple(dict.fromkeys(check_label(x, prompt=prompt.name)
                                         for x in prompt.labels if x != LATEST))
            tags = prompt.tags or (file.tags if file is not None else ())
            kept = [p.replace(labels=tuple(x for x in p.labels if x not in labels), tags=tags)
                    for p in old]
            number = max((p.version for p in old), default=0) + 1
            new = prompt.replace(version=number, labels=labels, tags=tags, label=None,
                                 source="local", is_stale=False, is_fallback=False)
            self.save(prompt.name, [*kept, new])
            return self.versions(prompt.name)[-1]

    # -- internals ---------------------------------------------------------------------------

    def _load(self, name: str) -> _PromptFile | None:
        """The parsed file of ``name`` (from the cache when unchanged), or ``None`` if absent."""
        path = self.file_for(name)
        try:
            info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            info = None
        if info is None or not stat.S_ISREG(info.st_mode):
            with self._lock:
                self._cache.pop(path, None)
            return None
        with self._lock:
            cached = self._cache.get(path)
        if cached is not None and cached[0] == _stamp(info):
            return cached[1]
        try:
            with open(path, "rb") as handle:
                stamp = _stamp(os.fstat(handle.fileno()))
                raw = handle.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise PromptFormatError(f"{path}: cannot read the prompt file: {exc.strerror}") from exc
        parsed = _parse(load_yaml(raw, path), path, name)
        with self._lock:
            self._cache[path] = (stamp, parsed)
        return parsed

    def _missing(self, name: str, asked: str) -> NoReturn:
        where = f"prompt {name!r} ({asked}) not found"
        if not self._root.is_dir():
            raise PromptNotFoundError(
                f"{where}: the local prompt directory {self._root} does not exist; "
                "create it, run `lvp pull`, or set LVP_PROMPTS_DIR"
            )
        names = self.names()
        found = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "") or "none"
        raise PromptNotFoundError(
            f"{where}: no file {self.file_for(name)} (prompts under {self._root}: {found})"
        )


def _stamp(result: os.stat_result) -> _FileStamp:
    """What identifies one state of a file: inode (changed by ``os.replace``), mtime, size."""
    return (result.st_ino, result.st_mtime_ns, result.st_size)


def _name_problem(name: object) -> str:
    """Why ``name`` cannot map to a file under the root, or ``""`` when it can."""
    if not isinstance(name, str) or not name:
        return "it must be a non-empty string"
    if "\\" in name:
        return "backslashes are not allowed"
    if name.startswith("/") or os.path.isabs(name):
        return "it is an absolute path"
    if any(ord(ch) < 32 for ch in name):
        return "control characters are not allowed"
    for segment in name.split("/"):
        if not segment:
            return "empty path segments ('//', or '/' at either end) are not allowed"
        if segment in (".", ".."):
            return "'.' and '..' segments are not allowed"
        if segment.startswith("."):
            return "a segment may not start with '.' (hidden files are ignored)"
    return ""


# -- reading and checking a file -------------------------------------------------------------


def _parse(data: Any, path: pathlib.Path, name: str) -> _PromptFile:
    """Check a loaded document and build its versions; errors name ``path``."""

    def fail(message: str) -> NoReturn:
        raise PromptFormatError(f"{path}: {message}")

    if data is None:
        fail("the file is empty; expected a mapping with 'type' and 'versions'")
    if not isinstance(data, dict):
        fail(f"expected a mapping with 'type' and 'versions' at the top, got {type(data).__name__}")
    if _unknown_keys(data, _PROMPT_KEYS):
        fail(f"top level: {_unknown_keys(data, _PROMPT_KEYS)}")
    if data.get("name", name) != name:
        fail(f"'name: {data['name']}' does not match the file's place, which holds prompt {name!r}")
    kind = data.get("type", "text")
    if kind not in ("text", "chat"):
        fail(f"type must be 'text' or 'chat', got {kind!r}")
    tags = data.get("tags") or []
    if not _is_string_list(tags):
        fail(f"tags must be a list of strings, got {tags!r}")
    raw_versions = data.get("versions")
    if not isinstance(raw_versions, list) or not raw_versions:
        fail("'versions' must be a non-empty list of versions")
    entries: dict[int, dict[str, Any]] = {}
    for index, raw in enumerate(raw_versions):
        if not isinstance(raw, dict):
            fail(f"versions[{index}] must be a mapping, got {type(raw).__name__}")
        number = raw.get("version")
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            fail(f"versions[{index}]: 'version' must be a positive integer, got {number!r}")
        where = f"version {number}"
        if number in entries:
            fail(f"version {number} appears twice; version numbers must be unique")
        if _unknown_keys(raw, _VERSION_KEYS) or "prompt" not in raw:
            fail(f"{where}: {_unknown_keys(raw, _VERSION_KEYS) or 'missing key prompt'}")
        if not _is_string_list(raw.get("labels")):
            fail(f"{where}: labels must be a list of strings, got {raw['labels']!r}")
        try:
            labels = [check_label(x, prompt=name) for x in dict.fromkeys(raw.get("labels") or [])]
        except ConfigurationError as exc:
            fail(f"{where}: {exc}")
        message = raw.get("commit_message")
        if message is not None and not isinstance(message, str):
            fail(f"{where}: commit_message must be a string, got {type(message).__name__}")
        for field in ("config", "resolution_graph"):
            value = raw.get(field)
            if value is not None and not isinstance(value, dict):
                fail(f"{where}: {field} must be a mapping, got {type(value).__name__}")
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                fail(f"{where}: {field} must hold JSON values only ({exc})")
        entries[number] = dict(
            name=name, version=number, type=kind, prompt=raw["prompt"], labels=labels, tags=tags,
            config=raw.get("config"), commitMessage=message,
            resolutionGraph=raw.get("resolution_graph"),
        )
    highest = max(entries)
    owners: dict[str, list[int]] = {}
    for number in sorted(entries):
        for label in entries[number]["labels"]:
            owners.setdefault(label, []).append(number)
    for label, numbers in owners.items():
        if label == LATEST and numbers != [highest]:
            fail(f"label 'latest' is always the highest version (v{highest}), "
                 f"but is written on version {numbers[0]}; remove it there")
        if len(numbers) > 1:
            fail(f"label {label!r} is on versions {', '.join(map(str, numbers))}; "
                 "a label lives on exactly one version")
    if LATEST not in owners:
        entries[highest]["labels"].append(LATEST)
    versions = tuple(ResolvedPrompt.from_dict(entries[n], source="local", origin=str(path))
                     for n in sorted(entries))
    by_label: dict[str, ResolvedPrompt] = {}
    for prompt in versions:
        for label in prompt.labels:
            by_label[label] = prompt.replace(label=label)
    return _PromptFile(path, tuple(tags), versions, {p.version: p for p in versions}, by_label)


def _unknown_keys(data: dict[Any, Any], allowed: tuple[str, ...]) -> str:
    unknown = [str(key) for key in data if key not in allowed]
    return f"unknown key {', '.join(unknown)} (allowed: {', '.join(allowed)})" if unknown else ""


def _is_string_list(value: object) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(x, str) for x in value))


# -- writing a file --------------------------------------------------------------------------


def _document(name: str, versions: Sequence[ResolvedPrompt]) -> dict[str, Any]:
    """The YAML document for ``versions``, keys in a fixed order, empty fields left out."""
    tags = list(dict.fromkeys(tag for p in versions for tag in p.tags))
    document: dict[str, Any] = {"name": name, "type": versions[0].type}
    if tags:
        document["tags"] = tags
    entries = []
    for prompt in sorted(versions, key=lambda p: p.version):
        entry: dict[str, Any] = {"version": prompt.version}
        labels = [label for label in dict.fromkeys(prompt.labels) if label != LATEST]
        if labels:
            entry["labels"] = labels
        if prompt.commit_message is not None:
            entry["commit_message"] = prompt.commit_message
        if prompt.config:
            entry["config"] = json.loads(json.dumps(dict(prompt.config)))
        if prompt.resolution_graph:
            entry["resolution_graph"] = json.loads(json.dumps(dict(prompt.resolution_graph)))
        entry["prompt"] = (prompt.template if isinstance(prompt.template, str)
                           else [_message(m) for m in prompt.template])
        entries.append(entry)
    document["versions"] = entries
    return document


def _message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A chat message for the file, without the SDK's redundant ``type: chatmessage``."""
    return {k: v for k, v in message.items() if (k, v) != ("type", "chatmessage")}
