"""YAML for the local prompt files: strict reading, diff-friendly writing, atomic replacement."""

from __future__ import annotations

import contextlib
import os
import pathlib
import stat
import tempfile
from typing import Any

import yaml

from .._errors import ConfigurationError, PromptFormatError


class _Loader(yaml.SafeLoader):
    """``SafeLoader`` that rejects duplicate keys and keeps timestamps as strings."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                marker = (key_node.tag, key_node.value)
                if marker in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"found duplicate key {key_node.value!r}", key_node.start_mark,
                    )
                seen.add(marker)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(raw: bytes, path: pathlib.Path) -> Any:
    try:
        return yaml.load(raw, Loader=_Loader)  # a SafeLoader subclass: builds plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(x for x in (exc.context, exc.problem) if x)
        raise PromptFormatError(f"{path}{where}: invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise PromptFormatError(f"{path}: invalid YAML: {exc}") from exc


class Dumper(yaml.SafeDumper):
    """``SafeDumper`` with indented lists, ``|`` blocks for multi-line text, short lists inline."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


_OTHER_BREAKS = "\r\x85\u2028\u2029"


def _is_block(text: str) -> bool:
    """Multi-line text with some content is written as a ``|`` block."""
    return "\n" in text and not text.isspace()


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style: str | None = "|" if _is_block(data) else None
    if any(ch in data for ch in _OTHER_BREAKS):
        style = '"'  # other styles would turn these into "\n" or " "; double quotes escape them
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.SequenceNode:
    inline = all(
        x is None or isinstance(x, (int, float)) or (isinstance(x, str) and not _is_block(x))
        for x in data
    )
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)


Dumper.add_representer(str, _represent_str)
Dumper.add_representer(list, _represent_list)


def write_atomic(path: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then move it over ``path``."""
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else 0o644
        descriptor, temporary = tempfile.mkstemp(".tmp", f".{path.name}.", path.parent)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as exc:
        raise ConfigurationError(f"cannot write prompt file {path}: {exc.strerror}") from exc
    finally:
        if temporary is not None:  # still there only when something failed
            with contextlib.suppress(OSError):
                os.unlink(temporary)
