"""Rendering of prompt templates: Langfuse ``{{ var }}`` tokens, or sandboxed Jinja2 on request.

A template is parsed once into literal and variable segments; rendering joins them in one pass,
so a value holding ``{{x}}`` is inserted as written and never rendered again. Single braces and
JSON stay literal: nothing is converted to f-string syntax.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Protocol

from ._errors import MissingVariableError, RenderError

_TOKEN = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
"""Langfuse's scan: from each ``{{`` to the first ``}}`` after it."""

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
"""A variable name: letters, digits and underscores, with ``-`` and ``.`` allowed inside."""

_JINJA_UNDEFINED = re.compile(r"'([^']+)' is undefined")

JINJA2 = "jinja2"
LANGFUSE = "langfuse"


class Template(Protocol):
    """A parsed template: the variables it needs and a renderer."""

    @property
    def variables(self) -> tuple[str, ...]: ...

    def render(self, values: Mapping[str, Any]) -> str: ...


class LangfuseTemplate:
    """A ``{{ var }}`` template, rendered as Langfuse renders it, but strict about missing values.

    >>> LangfuseTemplate('{"city": "{{ city }}"}').render({"city": "Oslo"})
    '{"city": "Oslo"}'
    """

    __slots__ = ("_parts", "source", "variables")

    def __init__(self, source: str) -> None:
        self.source = source
        parts: list[tuple[str, str | None]] = []
        names: dict[str, None] = {}
        position = 0
        for match in _TOKEN.finditer(source):
            name = match.group(1).strip()
            if not _NAME.fullmatch(name):
                continue  # not a variable: `{{"a": 1}}` and the like stay literal
            parts.append((source[position : match.start()], name))
            names[name] = None
            position = match.end()
        parts.append((source[position:], None))
        self._parts = tuple(parts)
        self.variables: tuple[str, ...] = tuple(names)

    def render(self, values: Mapping[str, Any]) -> str:
        """Insert each value once; ``None`` renders as an empty string, as in Langfuse."""
        if len(self._parts) == 1:
            return self.source
        out: list[str] = []
        missing: list[str] = []
        for literal, name in self._parts:
            out.append(literal)
            if name is None:
                continue
            try:
                value = values[name]
            except KeyError:
                missing.append(name)
                continue
            out.append("" if value is None else str(value))
        if missing:
            raise MissingVariableError(missing)
        return "".join(out)


class Jinja2Template:
    """A Jinja2 template rendered in a ``SandboxedEnvironment``; undefined variables are errors."""

    __slots__ = ("_template", "source", "variables")

    def __init__(self, source: str) -> None:
        from jinja2 import TemplateSyntaxError, meta

        environment = _jinja_environment()
        try:
            self._template = environment.from_string(source)
            parsed = environment.parse(source)
        except TemplateSyntaxError as exc:
            raise RenderError(f"invalid Jinja2 template at line {exc.lineno}: {exc.message}") from exc
        self.source = source
        self.variables: tuple[str, ...] = tuple(sorted(meta.find_undeclared_variables(parsed)))

    def render(self, values: Mapping[str, Any]) -> str:
        """Render in the sandbox; an undefined variable raises ``MissingVariableError``."""
        from jinja2 import TemplateError, UndefinedError
        from jinja2.exceptions import SecurityError

        try:
            return str(self._template.render(**values))
        except UndefinedError as exc:
            found = _JINJA_UNDEFINED.search(str(exc))
            if found:
                raise MissingVariableError([found.group(1)]) from exc
            raise RenderError(f"Jinja2 template: {exc}") from exc
        except SecurityError as exc:
            raise RenderError(f"Jinja2 sandbox refused the template: {exc}") from exc
        except TemplateError as exc:
            raise RenderError(f"Jinja2 template: {exc}") from exc


@lru_cache(maxsize=1)
def _jinja_environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def template_format(config: Mapping[str, Any]) -> str:
    """The format a prompt's config asks for: ``langfuse`` (default) or ``jinja2``."""
    fmt = config.get("template_format", LANGFUSE)
    if fmt not in (LANGFUSE, JINJA2):
        raise RenderError(f"unknown template_format {fmt!r} in the prompt config: use 'langfuse' or 'jinja2'")
    return str(fmt)


def parse_template(source: str, fmt: str = LANGFUSE) -> Template:
    """Parse ``source`` in the given format."""
    if fmt == JINJA2:
        return Jinja2Template(source)
    return LangfuseTemplate(source)
