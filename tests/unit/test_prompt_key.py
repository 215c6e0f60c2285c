"""PromptKey validation and ResolvedPrompt (de)serialisation."""

from __future__ import annotations

import pytest

from langfuse_versioned_prompts import ConfigurationError, PromptFormatError, PromptKey, ResolvedPrompt


def test_default_label_and_pinning() -> None:
    assert PromptKey.create("a") == ("a", "production", None)
    assert PromptKey.create("a", default_label="staging").label == "staging"
    assert PromptKey.create("a", version=4).pinned
    assert str(PromptKey.create("f/x", label="dev")) == "f/x@dev"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "non-empty"),
        ({"name": "a", "label": "Prod"}, "invalid label 'Prod'"),
        ({"name": "a", "label": "a b"}, "invalid label"),
        ({"name": "a", "label": "x", "version": 1}, "not both"),
        ({"name": "a", "version": 0}, "positive integer"),
        ({"name": "a", "version": "2"}, "positive integer"),
        ({"name": "a", "version": True}, "positive integer"),
    ],
)
def test_bad_keys_name_the_problem(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PromptKey.create(**kwargs)  # type: ignore[arg-type]


def test_round_trip_through_the_langfuse_shape() -> None:
    prompt = ResolvedPrompt(
        name="x/y",
        version=2,
        type="chat",
        template=[{"role": "system", "content": "hi {{a}}"}, {"type": "placeholder", "name": "h"}],
        config={"model": "m", "nested": {"k": [1, 2]}},
        labels=("production", "latest"),
        tags=("t",),
        commit_message="msg",
    )
    again = ResolvedPrompt.from_dict(prompt.to_dict())
    assert again == prompt


def test_from_dict_names_what_is_wrong() -> None:
    with pytest.raises(PromptFormatError, match=r"f\.yaml: missing required field 'prompt'"):
        ResolvedPrompt.from_dict({"name": "a", "version": 1}, origin="f.yaml")
    with pytest.raises(PromptFormatError, match="version must be a positive integer"):
        ResolvedPrompt.from_dict({"name": "a", "version": -1, "prompt": ""})
    with pytest.raises(PromptFormatError, match="must be a string"):
        ResolvedPrompt.from_dict({"name": "a", "version": 1, "prompt": ["x"], "type": "text"})
    with pytest.raises(PromptFormatError, match="needs 'role' and 'content'"):
        ResolvedPrompt.from_dict({"name": "a", "version": 1, "prompt": [{"x": 1}], "type": "chat"})


def test_langfuse_client_carries_name_version_and_fallback_flag() -> None:
    prompt = ResolvedPrompt(name="p", version=7, type="text", template="{{a}}", is_fallback=True)
    client = prompt.langfuse_client
    assert (client.name, client.version, client.is_fallback) == ("p", 7, True)
    assert client.compile(a="z") == "z"
