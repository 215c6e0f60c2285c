"""Rendering: Langfuse `{{ var }}` semantics, strict about missing values, sandboxed Jinja2."""

from __future__ import annotations

import pytest
from langfuse.model import TemplateParser

from langfuse_versioned_prompts import MissingVariableError, RenderError, ResolvedPrompt


def text(template: str, **config: object) -> ResolvedPrompt:
    return ResolvedPrompt(name="t", version=3, type="text", template=template, config=config)


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        ("Hi {{name}}", {"name": "Ada"}, "Hi Ada"),
        ("Hi {{  name }}!", {"name": "Ada"}, "Hi Ada!"),
        ("{{user-name}} / {{a.b}}", {"user-name": "u", "a.b": "x"}, "u / x"),
        ('{"city": "{{city}}", "n": {}}', {"city": "Oslo"}, '{"city": "Oslo", "n": {}}'),
        ("literal {single} and {{ 'quoted' }} stay", {}, "literal {single} and {{ 'quoted' }} stay"),
        ("{{a}}{{a}}", {"a": 1}, "11"),
        ("none is empty: [{{x}}]", {"x": None}, "none is empty: []"),
        ("extra values are ignored", {"unused": 1}, "extra values are ignored"),
    ],
)
def test_langfuse_syntax(template: str, values: dict[str, object], expected: str) -> None:
    assert text(template).render(**values) == expected


@pytest.mark.parametrize(
    "template",
    ["Q: {{question}} C: {{ context }}", '{"a": {{x}}} {b} {{{y}}}', "{{ n }} {{n}}", "plain"],
)
def test_matches_langfuse_compile_when_all_values_given(template: str) -> None:
    values = {"question": "why?", "context": "ctx", "x": 1, "y": 2, "n": "N"}
    assert text(template).render(**values) == TemplateParser.compile_template(template, values)


def test_value_holding_a_token_is_not_rendered_again() -> None:
    assert text("A {{a}} B {{b}}").render(a="{{b}}", b="x") == "A {{b}} B x"


def test_missing_variable_names_it_the_prompt_and_version() -> None:
    with pytest.raises(MissingVariableError) as info:
        text("{{a}} {{b}} {{c}}").render(a=1)
    assert info.value.missing == ("b", "c")
    assert "'b', 'c'" in str(info.value) and "'t' version 3" in str(info.value)


def test_variables_in_order_of_first_use() -> None:
    assert text("{{b}} {{a}} {{b}} {{ c-d }}").variables == ("b", "a", "c-d")


def test_chat_render_with_placeholder() -> None:
    chat = ResolvedPrompt(
        name="c",
        version=1,
        type="chat",
        template=[
            {"role": "system", "content": "You are {{persona}}. {json: 1}"},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{q}}"},
        ],
    )
    assert chat.variables == ("persona", "q")
    assert chat.placeholders == ("history",)
    history = [{"role": "user", "content": "earlier"}]
    assert chat.render(persona="a bot", history=history, q="now?") == [
        {"role": "system", "content": "You are a bot. {json: 1}"},
        {"role": "user", "content": "earlier"},
        {"role": "user", "content": "now?"},
    ]
    with pytest.raises(MissingVariableError) as info:
        chat.render(persona="x", q="y")
    assert info.value.missing == ("history",)
    with pytest.raises(RenderError, match="placeholder 'history' takes a list"):
        chat.render(persona="x", q="y", history="not a list")


def test_jinja2_when_config_asks() -> None:
    prompt = text("{% for i in items %}{{ i }};{% endfor %}{{ tail }}", template_format="jinja2")
    assert prompt.variables == ("items", "tail")
    assert prompt.render(items=[1, 2], tail="!") == "1;2;!"
    with pytest.raises(MissingVariableError, match="'tail'"):
        prompt.render(items=[])


def test_jinja2_is_sandboxed() -> None:
    prompt = text("{{ x.__class__.__mro__ }}", template_format="jinja2")
    with pytest.raises(RenderError, match="sandbox"):
        prompt.render(x=1)


def test_bad_template_format_and_syntax_are_named() -> None:
    with pytest.raises(RenderError, match="unknown template_format 'mustache'"):
        text("x", template_format="mustache").render()
    with pytest.raises(RenderError, match="invalid Jinja2 template"):
        text("{% for %}", template_format="jinja2").render()
