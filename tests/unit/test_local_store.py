"""L4 ``LocalPromptStore``: the YAML format, lookups, typed errors, caching and rendering parity."""

from __future__ import annotations

import os
import pathlib
import stat
import threading
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langfuse_versioned_prompts import (
    ConfigurationError,
    PromptFormatError,
    PromptNotFoundError,
)
from langfuse_versioned_prompts._prompt import PromptKey, ResolvedPrompt
from langfuse_versioned_prompts.sources import local as local_module
from langfuse_versioned_prompts.sources.local import LocalPromptStore

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "prompts"

TEXT_V1 = (
    "Du bist ein Support-Agent für {{customer_name}} — ünïcode ✓ 日本語.\n"
    'Reply as JSON: {"answer": "...", "escalate": false} and keep {single} braces.\n'
    "\n"
    "   indented line\n"
)
CHAT = [
    {"role": "system", "content": "You analyze.\nBe brief about {{topic}}."},
    {"type": "placeholder", "name": "history"},
    {"role": "user", "content": "{{content}}"},
]


def key(name: str, label: str | None = None, version: int | None = None) -> PromptKey:
    return PromptKey.create(name, label=label, version=version)


def api(name: str, version: int, prompt: Any, **fields: Any) -> dict[str, Any]:
    """A prompt in the shape the Langfuse API returns it."""
    kind = "text" if isinstance(prompt, str) else "chat"
    data = {
        "name": name,
        "version": version,
        "type": kind,
        "prompt": prompt,
        "config": {},
        "labels": [],
        "tags": [],
        "commitMessage": None,
        "resolutionGraph": None,
    }
    data.update(fields)
    return data


def from_api(data: dict[str, Any]) -> ResolvedPrompt:
    return ResolvedPrompt.from_dict(data, source="langfuse")


@pytest.fixture
def store(tmp_path: pathlib.Path) -> LocalPromptStore:
    return LocalPromptStore(tmp_path / "prompts")


def write(store: LocalPromptStore, name: str, text: str) -> pathlib.Path:
    path = store.file_for(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


SUPPORT = """\
name: support
type: text
tags: [support]
versions:
  - version: 1
    labels: [production]
    commit_message: first
    config: {model: gpt-4o-mini, temperature: 0.2}
    prompt: |
      Hello {{customer_name}}
  - version: 2
    labels: [staging]
    prompt: Hi {{customer_name}}, v2
"""


# -- round trips -----------------------------------------------------------------------------


def test_text_round_trip_keeps_every_field(store: LocalPromptStore) -> None:
    v1 = from_api(
        api(
            "support",
            1,
            TEXT_V1,
            labels=["production"],
            tags=["support", "de"],
            config={
                "model": "gpt-4o-mini",
                "temperature": 0.2,
                "stop": ["\n", "END"],
                "nested": {"a": [1, 2.5, None, True]},
            },
            commitMessage="Erste Version ✓\nmit zwei Zeilen",
        )
    )
    v2 = from_api(api("support", 2, "one line {{customer_name}}", labels=["staging", "latest"], tags=["support", "de"]))
    path = store.save("support", [v2, v1])
    assert path == store.path / "support.yaml"

    got = store.get(key("support", label="production"))
    assert (got.source, got.label, got.version) == ("local", "production", 1)
    assert got.to_dict() == {**v1.to_dict(), "labels": ["production"]}
    assert store.get(key("support", version=2)).to_dict() == v2.to_dict()
    assert [p.version for p in store.versions("support")] == [1, 2]


def test_chat_round_trip_keeps_messages_and_placeholders(store: LocalPromptStore) -> None:
    messages = [dict(m) for m in CHAT]
    messages[2] = {**messages[2], "type": "chatmessage"}  # as the SDK may send it
    prompt = from_api(api("analyzer", 1, messages, labels=["production"]))
    store.save("analyzer", [prompt])
    got = store.get(key("analyzer"))
    assert got.type == "chat"
    assert not isinstance(got.template, str)
    assert [dict(m) for m in got.template] == CHAT
    assert got.placeholders == ("history",)


@pytest.mark.parametrize("name", ["rag/qa", "team a/sub:x/prompt*1", "a..b"])
def test_folder_names_map_to_subdirectories(store: LocalPromptStore, name: str) -> None:
    store.save(name, [from_api(api(name, 1, "q", labels=["production"]))])
    *folders, last = name.split("/")
    assert store.path.joinpath(*folders, last + ".yaml").is_file()
    assert store.get(key(name)).name == name
    assert store.names() == [name]


def test_names_lists_prompts_sorted_and_skips_hidden_files(store: LocalPromptStore) -> None:
    for name in ("zeta", "rag/qa", "alpha", "rag/deep/x"):
        store.save(name, [from_api(api(name, 1, "t"))])
    (store.path / ".tmp.yaml").write_text("junk")
    (store.path / ".git").mkdir()
    (store.path / ".git" / "x.yaml").write_text("junk")
    (store.path / "notes.txt").write_text("not a prompt")
    assert store.names() == ["alpha", "rag/deep/x", "rag/qa", "zeta"]


def test_names_of_a_missing_root_is_empty(tmp_path: pathlib.Path) -> None:
    assert LocalPromptStore(tmp_path / "absent").names() == []


# -- lookups ---------------------------------------------------------------------------------


def test_lookup_by_label_version_and_implicit_latest(store: LocalPromptStore) -> None:
    write(store, "support", SUPPORT)
    assert store.get(key("support", label="production")).version == 1
    assert store.get(key("support", label="staging")).version == 2
    latest = store.get(key("support", label="latest"))
    assert (latest.version, latest.label, latest.labels) == (2, "latest", ("staging", "latest"))
    pinned = store.get(key("support", version=1))
    assert (pinned.version, pinned.label, pinned.labels) == (1, None, ("production",))
    assert store.get(PromptKey("support", None, None)).version == 1  # production by default


def test_latest_may_be_written_on_the_highest_version(store: LocalPromptStore) -> None:
    write(store, "support", SUPPORT.replace("[staging]", "[staging, latest]"))
    assert store.get(key("support", label="latest")).labels == ("staging", "latest")


def test_dates_stay_strings_so_config_stays_json(store: LocalPromptStore) -> None:
    write(store, "p", "versions:\n  - version: 1\n    config: {released: 2024-01-01}\n    prompt: hi\n")
    assert store.get(key("p", version=1)).config == {"released": "2024-01-01"}


async def test_aget_returns_the_same_as_get(store: LocalPromptStore) -> None:
    write(store, "support", SUPPORT)
    assert await store.aget(key("support", label="staging")) == store.get(key("support", "staging"))


def test_concurrent_gets_agree(store: LocalPromptStore) -> None:
    write(store, "support", SUPPORT)
    results: list[int] = []

    def worker() -> None:
        for _ in range(50):
            results.append(store.get(key("support", label="staging")).version)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [2] * 400


# -- not found -------------------------------------------------------------------------------


def test_unknown_label_names_prompt_file_and_existing_labels(store: LocalPromptStore) -> None:
    path = write(store, "support", SUPPORT)
    with pytest.raises(PromptNotFoundError) as info:
        store.get(key("support", label="canary"))
    message = str(info.value)
    for part in ("'support'", "'canary'", str(path), "production -> v1", "staging -> v2", "latest -> v2"):
        assert part in message


def test_unknown_version_names_prompt_file_and_existing_versions(store: LocalPromptStore) -> None:
    path = write(store, "support", SUPPORT)
    with pytest.raises(PromptNotFoundError, match=r"no version 9 .*versions there: 1, 2") as info:
        store.get(key("support", version=9))
    assert str(path) in str(info.value)


def test_unknown_prompt_names_the_file_and_the_prompts_that_exist(store: LocalPromptStore) -> None:
    write(store, "support", SUPPORT)
    with pytest.raises(PromptNotFoundError) as info:
        store.get(key("rag/qa", label="staging"))
    message = str(info.value)
    for part in ("'rag/qa'", "'staging'", str(store.path / "rag" / "qa.yaml"), "support"):
        assert part in message
    with pytest.raises(PromptNotFoundError, match="'rag/qa'"):
        store.versions("rag/qa")


def test_a_directory_is_not_a_prompt(store: LocalPromptStore) -> None:
    (store.path / "rag.yaml").mkdir(parents=True)
    with pytest.raises(PromptNotFoundError):
        store.get(key("rag"))


def test_missing_root_directory_is_a_not_found_error(tmp_path: pathlib.Path) -> None:
    store = LocalPromptStore(tmp_path / "nowhere")
    with pytest.raises(PromptNotFoundError, match="does not exist") as info:
        store.get(key("support"))
    assert str(tmp_path / "nowhere") in str(info.value)


@pytest.mark.parametrize(
    "name",
    ["..", "../etc/passwd", "a/../b", "/etc/passwd", "a\\b", "a//b", "a/", "/", ".hidden", "a/./b", "bad\nname"],
)
def test_unsafe_names_are_configuration_errors(store: LocalPromptStore, name: str) -> None:
    prompt = ResolvedPrompt(name=name, version=1, type="text", template="x")
    for call in (
        lambda: store.get(PromptKey(name, "production", None)),
        lambda: store.save(name, [prompt]),
        lambda: store.versions(name),
    ):
        with pytest.raises(ConfigurationError) as info:
            call()
        assert repr(name) in str(info.value)
    assert not store.path.exists()


# -- bad files -------------------------------------------------------------------------------

V = "versions:\n  - version: 1\n    prompt: hi\n"

BAD_FILES = {
    "invalid yaml": ("versions:\n  - version: 1\n    prompt: [unclosed\n", r"line \d+, column \d+"),
    "tab indentation": ("versions:\n\t- version: 1\n", r"line 2, column 1"),
    "empty": ("", "empty"),
    "top level list": ("- a\n- b\n", "mapping"),
    "unknown top key": ("version: 1\n" + V, "unknown key version"),
    "unknown version key": (V + "    label: [production]\n", "unknown key label"),
    "duplicate key": (V + "    prompt: again\n", "duplicate key 'prompt'"),
    "name mismatch": ("name: other\n" + V, "'name: other' does not match"),
    "bad type": ("type: image\n" + V, "type must be"),
    "no versions": ("type: text\n", "'versions' must be a non-empty list"),
    "empty versions": ("versions: []\n", "'versions' must be a non-empty list"),
    "version zero": ("versions:\n  - version: 0\n    prompt: hi\n", "positive integer"),
    "version string": ("versions:\n  - version: '1'\n    prompt: hi\n", "positive integer"),
    "version bool": ("versions:\n  - version: true\n    prompt: hi\n", "positive integer"),
    "version not mapping": ("versions:\n  - hi\n", r"versions\[0\] must be a mapping"),
    "duplicate version": (V + "  - version: 1\n    prompt: again\n", "version 1 appears twice"),
    "missing prompt": ("versions:\n  - version: 1\n", "version 1: missing key prompt"),
    "bad label": (V + "    labels: [Production]\n", "invalid label 'Production'"),
    "labels not list": (V + "    labels: production\n", "labels must be a list of strings"),
    "tags not list": ("tags: support\n" + V, "tags must be a list of strings"),
    "label on two versions": (
        "versions:\n  - version: 1\n    labels: [production]\n    prompt: a\n"
        "  - version: 2\n    labels: [production]\n    prompt: b\n",
        "label 'production' is on versions 1, 2",
    ),
    "latest on an old version": (
        "versions:\n  - version: 1\n    labels: [latest]\n    prompt: a\n  - version: 2\n    prompt: b\n",
        "'latest' is always the highest version",
    ),
    "text prompt given messages": (
        "versions:\n  - version: 1\n    prompt: [{role: user, content: hi}]\n",
        "must be a string",
    ),
    "chat prompt given text": ("type: chat\n" + V, "list of messages"),
    "chat message without role": (
        "type: chat\nversions:\n  - version: 1\n    prompt: [{content: hi}]\n",
        "needs 'role'",
    ),
    "placeholder without name": (
        "type: chat\nversions:\n  - version: 1\n    prompt: [{type: placeholder}]\n",
        "'name'",
    ),
    "config not mapping": (V + "    config: [1]\n", "config must be a mapping"),
    "config not json": (V + "    config: {a: !!binary aGk=}\n", "JSON values only"),
    "commit message not text": (V + "    commit_message: [x]\n", "commit_message must be a string"),
    "python tag": (V + "    config: !!python/object/apply:os.system [echo]\n", "invalid YAML"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_raise_format_errors_naming_the_file(store: LocalPromptStore, case: str) -> None:
    text, expected = BAD_FILES[case]
    path = write(store, "p", text)
    with pytest.raises(PromptFormatError, match=expected) as info:
        store.get(key("p", version=1))
    assert str(path) in str(info.value)


def test_unreadable_file_is_a_format_error(store: LocalPromptStore, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(store, "p", V)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(local_module, "open", refuse, raising=False)
    with pytest.raises(PromptFormatError, match="cannot read the prompt file: Permission") as info:
        store.get(key("p", version=1))
    assert str(path) in str(info.value)


# -- caching ---------------------------------------------------------------------------------


def test_unchanged_file_is_parsed_once_and_edited_file_is_re_read(
    store: LocalPromptStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    parse = local_module._parse

    def counting(data: Any, path: pathlib.Path, name: str) -> Any:
        calls.append(name)
        return parse(data, path, name)

    monkeypatch.setattr(local_module, "_parse", counting)
    path = write(store, "support", SUPPORT)
    first = store.get(key("support"))
    assert store.get(key("support")) is first
    assert store.versions("support")[0].version == 1
    assert calls == ["support"]

    info = path.stat()
    path.write_text(SUPPORT.replace("Hello", "Howdy"), encoding="utf-8")  # same size
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))
    assert store.get(key("support")).render(customer_name="Ada") == "Howdy Ada\n"
    assert len(calls) == 2

    path.unlink()
    with pytest.raises(PromptNotFoundError):
        store.get(key("support"))


def test_save_invalidates_the_cache(store: LocalPromptStore) -> None:
    store.save("p", [from_api(api("p", 1, "one"))])
    assert store.get(key("p", version=1)).template == "one"
    store.save("p", [from_api(api("p", 1, "two"))])
    assert store.get(key("p", version=1)).template == "two"


# -- the written file ------------------------------------------------------------------------


def test_saved_file_is_diff_friendly_yaml(store: LocalPromptStore) -> None:
    prompts = [
        from_api(
            api(
                "support",
                1,
                TEXT_V1,
                labels=["production"],
                tags=["support"],
                config={"model": "m"},
                commitMessage="first",
            )
        ),
        from_api(api("support", 2, "single line", labels=["staging", "latest"], tags=["support"])),
    ]
    path = store.save("support", prompts)
    text = path.read_text(encoding="utf-8")
    head = "name: support\ntype: text\ntags: [support]\nversions:\n  - version: 1\n"
    assert text.startswith(head)
    assert "    labels: [production]\n    commit_message: first\n" in text
    assert "    prompt: |\n      Du bist ein Support-Agent für {{customer_name}}" in text
    assert "ünïcode ✓ 日本語" in text  # unicode written as is
    assert "latest" not in text  # implicit
    data = yaml.safe_load(text)
    assert [v["version"] for v in data["versions"]] == [1, 2]
    assert list(data["versions"][0]) == ["version", "labels", "commit_message", "config", "prompt"]
    assert data["versions"][0]["prompt"] == TEXT_V1
    assert store.save("support", prompts[::-1]).read_text(encoding="utf-8") == text  # stable
    assert [p.name for p in store.path.iterdir()] == ["support.yaml"]  # no temp files left


def test_save_keeps_the_file_mode_and_replaces_atomically(store: LocalPromptStore) -> None:
    path = store.save("p", [from_api(api("p", 1, "one"))])
    path.chmod(0o640)
    inode = path.stat().st_ino
    store.save("p", [from_api(api("p", 1, "two"))])
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_ino != inode  # a new file moved into place, not rewritten in place


@pytest.mark.parametrize(
    ("versions", "error", "match"),
    [
        ([], ConfigurationError, "at least one version"),
        ([api("other", 1, "x")], ConfigurationError, r"'p': cannot save versions of \['other'\]"),
        ([api("p", 1, "x", config={"f": {1, 2}})], PromptFormatError, "JSON values only"),
        ([api("p", 1, "x"), api("p", 2, [{"role": "user", "content": "y"}])], ConfigurationError, "mix text and chat"),
        (
            [api("p", 1, "x", labels=["production"]), api("p", 2, "y", labels=["production"])],
            PromptFormatError,
            "label 'production' is on versions 1, 2",
        ),
        ([api("p", 1, "x"), api("p", 1, "y")], PromptFormatError, "appears twice"),
        ([api("p", 1, "x", config={"f": float("nan")})], PromptFormatError, "JSON values only"),
    ],
)
def test_save_rejects_what_get_would_reject(
    store: LocalPromptStore, versions: list[dict[str, Any]], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        store.save("p", [from_api(v) for v in versions])
    assert not store.file_for("p").exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(codec="utf-8")), tag=st.text(min_size=1))
def test_any_text_round_trips(store: LocalPromptStore, text: str, tag: str) -> None:
    prompt = from_api(api("p", 1, text, tags=[tag], commitMessage=text, config={text: [text]}))
    store.save("p", [prompt])
    got = store.get(key("p", version=1))
    assert (got.template, got.commit_message, got.tags, got.config) == (text, text, (tag,), {text: [text]})


# -- add_version -----------------------------------------------------------------------------


def test_add_version_moves_labels_and_latest_like_langfuse(store: LocalPromptStore) -> None:
    write(store, "support", SUPPORT)
    new = store.add_version(
        ResolvedPrompt(
            name="support",
            version=99,
            type="text",
            template="v3 {{customer_name}}",
            labels=("production", "latest"),
            commit_message="promote",
        )
    )
    assert (new.version, new.labels, new.tags, new.source) == (3, ("production", "latest"), ("support",), "local")
    assert store.get(key("support", label="production")).version == 3
    assert store.get(key("support", label="latest")).version == 3
    assert [p.labels for p in store.versions("support")] == [(), ("staging",), new.labels]
    retagged = store.add_version(new.replace(labels=(), tags=("new",)))
    assert [p.tags for p in store.versions("support")] == [("new",)] * 4
    assert retagged.labels == ("latest",)


def test_add_version_creates_a_prompt_and_refuses_a_type_change(store: LocalPromptStore) -> None:
    chat = from_api(api("folder/chat", 7, CHAT, labels=["canary"]))
    created = store.add_version(chat)
    assert (created.version, created.labels) == (1, ("canary", "latest"))
    with pytest.raises(ConfigurationError, match="has chat versions"):
        store.add_version(from_api(api("folder/chat", 1, "text")))


# -- one renderer for all sources ------------------------------------------------------------

PARITY = [
    (api("support", 1, TEXT_V1), {"customer_name": "{{not rendered}} Ada"}),
    (api("json", 1, '{"q": "{{ q }}", "n": {"x": 1}}\n{{q}}'), {"q": "why?"}),
    (api("chat", 2, CHAT), {"topic": "t", "content": "c", "history": [{"role": "assistant", "content": "earlier"}]}),
    (
        api("jinja", 1, "{% for x in xs %}- {{ x }}\n{% endfor %}", config={"template_format": "jinja2"}),
        {"xs": ["a", "b"]},
    ),
]


@pytest.mark.parametrize(("data", "values"), PARITY, ids=[d["name"] for d, _ in PARITY])
def test_local_renders_exactly_as_the_langfuse_payload(
    store: LocalPromptStore, data: dict[str, Any], values: dict[str, Any]
) -> None:
    remote = from_api(data)
    store.save(data["name"], [remote])
    local = store.get(key(data["name"], version=data["version"]))
    assert local.render(**values) == remote.render(**values)
    assert local.variables == remote.variables


# -- the example prompts used by the offline demos -------------------------------------------


def test_example_prompts_load() -> None:
    store = LocalPromptStore(EXAMPLES)
    assert {"analyzer", "customer-support", "rag/qa", "release-notes"} <= set(store.names())
    support = store.get(key("customer-support"))
    assert support.version == 1
    assert store.get(key("customer-support", label="staging")).version == 2
    assert support.render(customer_name="Ada", issue_type="billing").startswith("You are")
    analyzer = store.get(key("analyzer", label="canary"))
    assert (analyzer.version, analyzer.placeholders) == (2, ("history",))
    assert store.get(key("analyzer")).version == 1
    assert store.get(key("rag/qa")).variables == ("context_str", "query_str")
    notes = store.get(key("release-notes"))
    assert notes.config["template_format"] == "jinja2"
    assert "(BREAKING)" in notes.render(product="X", release="1.0", changes=[{"title": "a", "breaking": True}])
