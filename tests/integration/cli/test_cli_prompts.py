"""``lvp push / pull / log / diff`` against the Langfuse stand-in (the real SDK over HTTP)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from langfuse_versioned_prompts import LocalPromptStore, LVPError, PromptKey, ResolvedPrompt, ops
from langfuse_versioned_prompts.cli import app
from langfuse_versioned_prompts.testing import Fault, LangfuseTestServer

PROMPTS = "/api/public/v2/prompts"


@pytest.fixture
def p() -> str:
    """A unique folder for this test's prompt names (the tests may run on a real Langfuse)."""
    return f"t{uuid.uuid4().hex[:8]}"


def connect(server: LangfuseTestServer) -> list[str]:
    return ["--langfuse-url", server.url, "--public-key", server.public_key, "--secret-key", server.secret_key]


def lvp(server: LangfuseTestServer, *args: str) -> Result:
    result = CliRunner().invoke(app, [*args, *connect(server)])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        result.exception
    )  # never a traceback
    return result


def failed(result: Result, *needles: str) -> str:
    """Assert exit 1 with a one-line error naming every needle; returns the message."""
    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message, message
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in message, message
    return message


def write(root: Path, name: str, text: str) -> Path:
    path = root / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def files(tmp_path: Path, p: str) -> Path:
    root = tmp_path / "prompts"
    write(
        root,
        f"{p}/a",
        f"""\
name: {p}/a
versions:
  - version: 1
    commit_message: first words
    config: {{model: gpt-4o-mini, temperature: 0.2}}
    prompt: "Hello {{{{name}}}}, {{literal}} braces stay"
""",
    )
    write(
        root,
        f"{p}/b",
        """\
type: chat
tags: [support]
versions:
  - version: 4
    labels: [production]
    prompt:
      - {role: system, content: "You are {{persona}}."}
      - {type: placeholder, name: history}
      - {role: user, content: "{{question}}"}
""",
    )
    write(root, f"{p}/c", "versions:\n  - version: 1\n    prompt: plain c\n")
    return root


def versions(server: LangfuseTestServer, name: str) -> list[int]:
    summary = ops.PromptAdmin.connect(
        public_key=server.public_key, secret_key=server.secret_key, base_url=server.url
    ).find(name, label="latest")
    return [] if summary is None else list(range(1, summary.version + 1))


# -- push ------------------------------------------------------------------------------------


def test_push_creates_versions_then_is_idempotent(server: LangfuseTestServer, files: Path, p: str) -> None:
    result = lvp(server, "push", str(files), "-m", "from git")
    assert result.exit_code == 0, result.output
    assert f"pushed {p}/a -> v1" in result.stdout and "pushed 3 prompts, 0 unchanged" in result.stdout
    a = server.get_prompt(f"{p}/a", version=1)
    assert a["prompt"] == "Hello {{name}}, {literal} braces stay"
    assert a["config"] == {"model": "gpt-4o-mini", "temperature": 0.2}
    assert a["commitMessage"] == "from git" and "production" not in a["labels"]
    b = server.get_prompt(f"{p}/b", label="latest")
    assert b["type"] == "chat" and b["version"] == 1 and b["tags"] == ["support"]
    assert b["labels"] == ["latest"]  # labels written in files are not pushed

    posts = server.count("POST", PROMPTS)
    again = lvp(server, "push", str(files))
    assert again.exit_code == 0 and "pushed 0 prompts, 3 unchanged" in again.stdout
    assert server.count("POST", PROMPTS) == posts  # nothing created


def test_push_uses_file_commit_message_and_label_and_records_the_move(
    server: LangfuseTestServer, files: Path, p: str
) -> None:
    result = lvp(server, "push", str(files), "--label", "staging", "--name", f"{p}/a")
    assert result.exit_code == 0, result.output
    assert "label staging: before (none), after v1" in result.stdout
    a = server.get_prompt(f"{p}/a", label="staging")
    assert (a["version"], a["commitMessage"]) == (1, "first words")
    assert server.count("POST", PROMPTS) == 2  # the version and the label history entry
    write(files, f"{p}/a", f"name: {p}/a\nversions:\n  - version: 1\n    prompt: changed\n")
    lvp(server, "push", str(files), "--label", "staging", "--name", f"{p}/a")
    moves = [(m.from_version, m.to_version, m.action) for m in ops.label_history(_admin(server), f"{p}/a")]
    assert moves == [(None, 1, "push"), (1, 2, "push")]


def _admin(server: LangfuseTestServer) -> ops.PromptAdmin:
    return ops.PromptAdmin.connect(public_key=server.public_key, secret_key=server.secret_key, base_url=server.url)


def test_push_detects_template_and_config_changes(server: LangfuseTestServer, files: Path, p: str) -> None:
    lvp(server, "push", str(files))
    write(files, f"{p}/c", "versions:\n  - version: 1\n    config: {x: 1}\n    prompt: plain c\n")
    result = lvp(server, "push", str(files))
    assert f"pushed {p}/c -> v2 (config; was v1)" in result.stdout
    assert "pushed 1 prompt, 2 unchanged" in result.stdout
    assert server.get_prompt(f"{p}/c", version=2)["config"] == {"x": 1}


def test_push_dry_run_writes_nothing(server: LangfuseTestServer, files: Path, p: str) -> None:
    result = lvp(server, "push", str(files), "--dry-run", "--label", "production")
    assert result.exit_code == 0, result.output
    assert f"would push {p}/a (new; Langfuse newest: new prompt" in result.stdout
    assert "would push 3 prompts, 0 unchanged (dry run: nothing written)" in result.stdout
    assert server.count("POST", PROMPTS) == 0 and server.count("PATCH") == 0


def test_push_refuses_a_type_change_before_writing(server: LangfuseTestServer, files: Path, p: str) -> None:
    server.create_prompt(f"{p}/c", [{"role": "system", "content": "chat"}], type="chat")
    message = failed(lvp(server, "push", str(files)), "c.yaml", "text prompt", "chat prompt", "before writing anything")
    assert "pushed: none" in message
    assert server.count("POST", PROMPTS) == 0


def test_malformed_prompt_file_is_named_and_nothing_is_written(server: LangfuseTestServer, files: Path, p: str) -> None:
    bad = write(files, f"{p}/broken", "versions:\n  - version: 1\n    prompt: [unclosed\n")
    failed(lvp(server, "push", str(files)), str(bad), "invalid YAML")
    write(files, f"{p}/broken", "versions:\n  - version: one\n    prompt: x\n")
    failed(lvp(server, "push", str(files)), str(bad), "positive integer")
    assert server.count("POST", PROMPTS) == 0 and server.count("GET") == 0


def test_push_bad_input(server: LangfuseTestServer, files: Path, tmp_path: Path) -> None:
    failed(lvp(server, "push", str(tmp_path / "missing")), "is not a directory")
    failed(lvp(server, "push", str(files), "--name", "nope"), "no prompt file for 'nope'")
    failed(lvp(server, "push", str(files), "--label", "Bad Label"), "invalid label")
    failed(lvp(server, "push", str(files), "--label", "latest"), "'latest'")


def test_network_failure_mid_push_names_pushed_and_not_pushed(
    server: LangfuseTestServer, files: Path, p: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = ops.PromptAdmin.create

    def create_then_break(self: ops.PromptAdmin, *args: Any, **kwargs: Any) -> Any:
        created = create(self, *args, **kwargs)
        server.inject(Fault.drop_connection(), method="POST")  # every later POST fails
        return created

    monkeypatch.setattr(ops.PromptAdmin, "create", create_then_break)
    message = failed(
        lvp(server, "push", str(files)),
        f"pushing prompt '{p}/b'",
        f"pushed: {p}/a;",
        f"not pushed: {p}/c;",
        f"unknown: {p}/b (re-run push: it is idempotent)",  # the connection dropped: no answer came back
    )
    assert "cannot reach Langfuse" in message
    server.clear_faults()
    assert versions(server, f"{p}/a") == [1]
    assert versions(server, f"{p}/b") == [] and versions(server, f"{p}/c") == []  # nothing half-written
    monkeypatch.setattr(ops.PromptAdmin, "create", create)
    resumed = lvp(server, "push", str(files))  # pushing again finishes the job
    assert "pushed 2 prompts, 1 unchanged" in resumed.stdout


def _wait_for_version(server: LangfuseTestServer, name: str, version: int) -> None:
    deadline = time.monotonic() + 5
    while versions(server, name) != list(range(1, version + 1)):
        assert time.monotonic() < deadline, f"{name} v{version} never appeared"
        time.sleep(0.02)


@pytest.mark.parametrize("label", [None, "staging"])
def test_a_timed_out_push_that_langfuse_completed_is_reported_as_pushed(
    server: LangfuseTestServer, files: Path, p: str, monkeypatch: pytest.MonkeyPatch, label: str | None
) -> None:
    hang = server.inject(Fault.hang(), method="POST", path_prefix=PROMPTS)
    create = ops.PromptAdmin.create

    def create_completed_after_the_timeout(self: ops.PromptAdmin, prompt: Any, **kwargs: Any) -> Any:
        try:
            return create(self, prompt, **kwargs)
        except LVPError:
            hang.remove()  # Langfuse finishes the request the client gave up on
            _wait_for_version(server, prompt.name, 1)
            raise

    monkeypatch.setattr(ops.PromptAdmin, "create", create_completed_after_the_timeout)
    args = ["push", str(files), "--name", f"{p}/a", "--name", f"{p}/b", "--timeout", "0.5"]
    message = failed(lvp(server, *args, *(["--label", label] if label else [])), f"pushing prompt '{p}/a'")
    assert f"Langfuse did create {p}/a v1" in message
    assert f"pushed: {p}/a; not pushed: {p}/b" in message and "unknown" not in message
    assert ("not recorded in the label history" in message) == (label is not None)
    assert versions(server, f"{p}/b") == []
    monkeypatch.setattr(ops.PromptAdmin, "create", create)
    resumed = lvp(server, "push", str(files), "--name", f"{p}/a", "--name", f"{p}/b")
    assert "pushed 1 prompt, 1 unchanged" in resumed.stdout  # a was not pushed twice


def test_a_timed_out_push_still_in_flight_is_reported_as_unknown(
    server: LangfuseTestServer, files: Path, p: str
) -> None:
    with server.inject(Fault.hang(), method="POST", path_prefix=PROMPTS):
        message = failed(
            lvp(server, "push", str(files), "--name", f"{p}/a", "--timeout", "0.5", "--label", "staging"),
            f"pushing prompt '{p}/a'",
            "pushed: none; not pushed: none;",
            f"unknown: {p}/a (re-run push: it is idempotent)",
            "label 'staging'",
            "not recorded in the label history",
        )
        assert "Langfuse did create" not in message
    _wait_for_version(server, f"{p}/a", 1)  # released: Langfuse creates it after all
    assert "pushed 0 prompts, 1 unchanged" in lvp(server, "push", str(files), "--name", f"{p}/a").stdout


def test_ops_push_reports_progress_and_stops_on_a_server_error(server: LangfuseTestServer, files: Path, p: str) -> None:
    def break_after_first(change: ops.PushChange) -> None:
        server.inject(Fault.status(500), method="POST")

    with pytest.raises(ops.PushError) as caught:
        ops.push(_admin(server), files, on_pushed=break_after_first)
    assert caught.value.pushed == (f"{p}/a",)
    assert caught.value.not_pushed == (f"{p}/b", f"{p}/c")
    assert "HTTP 500" in str(caught.value)


def test_missing_keys_and_unreachable_langfuse(files: Path, server: LangfuseTestServer) -> None:
    result = CliRunner().invoke(app, ["push", str(files)])
    failed(result, "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY")
    result = CliRunner().invoke(
        app,
        [
            "push",
            str(files),
            "--langfuse-url",
            "http://127.0.0.1:9",
            "--public-key",
            "pk-unreachable",
            "--secret-key",
            "sk",
        ],
    )
    failed(result, "cannot reach Langfuse at http://127.0.0.1:9")
    wrong = CliRunner().invoke(
        app, ["log", "x", "--langfuse-url", server.url, "--public-key", server.public_key, "--secret-key", "wrong"]
    )
    failed(wrong, "refused the credentials")


def test_connection_from_env_and_root_flags(
    server: LangfuseTestServer, files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", server.public_key)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", server.secret_key)
    monkeypatch.setenv("LANGFUSE_HOST", server.url)
    assert CliRunner().invoke(app, ["push", str(files)]).exit_code == 0
    monkeypatch.setenv("LANGFUSE_HOST", "http://127.0.0.1:9")
    result = CliRunner().invoke(app, ["--langfuse-url", server.url, "push", str(files)])
    assert result.exit_code == 0 and "3 unchanged" in result.stdout


# -- pull ------------------------------------------------------------------------------------


@pytest.fixture
def history(server: LangfuseTestServer, p: str) -> str:
    name = f"{p}/qa"
    server.create_prompt(name, "v1 {{q}}", labels=["production"], commit_message="one")
    server.create_prompt(name, "v2 {{q}}", labels=["staging"], config={"temperature": 0})
    server.create_prompt(name, "v3 {{q}}", commit_message="three")
    return name


def test_pull_writes_the_snapshot_l4_serves_and_push_after_pull_is_a_noop(
    server: LangfuseTestServer, history: str, tmp_path: Path
) -> None:
    target = tmp_path / "snapshot"
    result = lvp(server, "pull", str(target), "--label", "production", "--name", history)
    assert result.exit_code == 0, result.output
    assert "v1, v3 (production -> v1)" in result.stdout
    store = LocalPromptStore(target)
    assert [v.version for v in store.versions(history)] == [1, 3]  # production + newest
    served = store.get(PromptKey.create(history, label="production"))
    assert served.render(q="why") == "v1 why" and served.commit_message == "one"
    assert store.get(PromptKey.create(history, label="latest")).version == 3

    posts = server.count("POST", PROMPTS)
    again = lvp(server, "push", str(target))
    assert again.exit_code == 0 and "pushed 0 prompts, 1 unchanged" in again.stdout
    assert server.count("POST", PROMPTS) == posts

    everything = lvp(server, "pull", str(target), "--name", history)
    assert "v1, v2, v3" in everything.stdout
    assert store.get(PromptKey.create(history, label="staging")).config == {"temperature": 0}
    assert "pushed 0 prompts" in lvp(server, "push", str(target)).stdout


def test_pull_all_skips_prompts_without_the_label_and_history_prompts(
    server: LangfuseTestServer, history: str, tmp_path: Path, p: str
) -> None:
    server.create_prompt(f"{p}/unlabelled", "x")
    ops.promote(_admin(server), history, source="staging", to="production")  # writes a history prompt
    result = lvp(server, "pull", str(tmp_path / "all"), "--label", "production")
    assert result.exit_code == 0, result.output
    assert f"skipped {p}/unlabelled" in result.stdout
    names = LocalPromptStore(tmp_path / "all").names()
    assert history in names and not any(n.startswith("lvp-label-history/") for n in names)


def test_pull_then_push_keeps_resolved_prompt_references_unchanged(
    server: LangfuseTestServer, tmp_path: Path, p: str
) -> None:
    server.create_prompt(f"{p}/base", "BASE", labels=["production"])
    server.create_prompt(
        f"{p}/composite", f"Start @@@langfusePrompt:name={p}/base|label=production@@@ end", labels=["production"]
    )
    target = tmp_path / "snap"
    assert lvp(server, "pull", str(target), "--name", f"{p}/base", "--name", f"{p}/composite").exit_code == 0
    served = LocalPromptStore(target).get(PromptKey.create(f"{p}/composite", label="production"))
    assert served.template == "Start BASE end" and served.resolution_graph
    posts = server.count("POST", PROMPTS)
    assert "pushed 0 prompts, 2 unchanged" in lvp(server, "push", str(target)).stdout
    assert server.count("POST", PROMPTS) == posts


def test_push_refuses_a_resolved_snapshot_that_no_longer_matches_langfuse(
    server: LangfuseTestServer, tmp_path: Path, p: str
) -> None:
    server.create_prompt(f"{p}/base", "BASE", labels=["production"])
    reference = f"Start @@@langfusePrompt:name={p}/base|label=production@@@ end"
    server.create_prompt(f"{p}/composite", reference, labels=["production"], config={"t": 1})
    target = tmp_path / "snap"
    assert lvp(server, "pull", str(target), "--name", f"{p}/composite").exit_code == 0
    server.create_prompt(f"{p}/base", "BASE TWO", labels=["production"])  # the referenced prompt changes
    posts = server.count("POST", PROMPTS)
    path = str(target / f"{p}/composite.yaml")
    failed(lvp(server, "push", str(target)), path, "resolved snapshot", "not a source", "before writing anything")
    snapshot = (target / f"{p}/composite.yaml").read_text()
    (target / f"{p}/composite.yaml").write_text(snapshot.replace("t: 1", "t: 2"))  # a config edit on a snapshot
    assert lvp(server, "pull", str(target), "--name", f"{p}/base").exit_code == 0
    failed(lvp(server, "push", str(target), "--name", f"{p}/composite"), path, "resolved snapshot")
    assert server.count("POST", PROMPTS) == posts
    assert server.get_prompt(f"{p}/composite", resolve=False)["prompt"] == reference
    assert lvp(server, "pull", str(target), "--name", f"{p}/composite").exit_code == 0  # pull again
    assert "pushed 0 prompts, 2 unchanged" in lvp(server, "push", str(target)).stdout
    assert server.count("POST", PROMPTS) == posts


def test_pull_bad_input(server: LangfuseTestServer, history: str, tmp_path: Path) -> None:
    failed(lvp(server, "pull", str(tmp_path), "--name", "nope"), "no prompt 'nope'")
    failed(
        lvp(server, "pull", str(tmp_path), "--name", history, "--label", "canary"),
        "no version with label 'canary'",
        "production, staging",
    )
    assert not (tmp_path / f"{history}.yaml").exists()


# -- log and diff ----------------------------------------------------------------------------


def test_log_lists_versions_labels_dates_messages_and_moves(server: LangfuseTestServer, history: str) -> None:
    ops.promote(_admin(server), history, source="staging", to="production")
    result = lvp(server, "log", history)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split("│")[1].strip() for line in lines if line.startswith("│ v")][:3] == ["v3", "v2", "v1"]
    assert "three" in result.stdout and "one" in result.stdout and "latest" in result.stdout
    assert "production" in result.stdout and "v1 -> v2" in result.stdout and "promote" in result.stdout
    assert server.get_prompt(history, version=1)["createdAt"][:10] in result.stdout
    failed(lvp(server, "log", "nope"), "no prompt 'nope'")


def test_diff_text_versions_and_labels(server: LangfuseTestServer, history: str) -> None:
    result = lvp(server, "diff", history, "production", "2")
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert "-v1 {{q}}" in out and "+v2 {{q}}" in out
    assert f"--- {history}@v1 (production) template" in out
    assert '+  "temperature": 0' in out  # config diff, JSON
    same = lvp(server, "diff", history, "latest", "3")
    assert same.exit_code == 0 and "no differences" in same.stdout
    failed(lvp(server, "diff", history, "1", "canary"), "label 'canary'")
    failed(lvp(server, "diff", history, "1", "99"), "version 99")
    failed(lvp(server, "diff", "nope", "1", "2"), "'nope'")


def test_diff_shows_final_newline_and_line_ending_differences(server: LangfuseTestServer, p: str) -> None:
    name = f"{p}/endings"
    server.create_prompt(name, "one\ntwo")
    server.create_prompt(name, "one\ntwo\n")
    server.create_prompt(name, "one\r\ntwo\n")
    newline = lvp(server, "diff", name, "1", "2")
    assert newline.exit_code == 0 and "no differences" not in newline.stdout
    assert newline.stdout.splitlines()[-3:] == ["-two", "\\ No newline at end of file", "+two"]
    crlf = lvp(server, "diff", name, "2", "3")
    assert crlf.exit_code == 0 and "no differences" not in crlf.stdout
    assert "-one" in crlf.stdout.splitlines() and "+one\u240d" in crlf.stdout.splitlines()  # U+240D: a visible CR
    assert "no differences" in lvp(server, "diff", name, "3", "latest").stdout


def test_diff_same_agrees_with_push_on_invisible_differences() -> None:
    base = ResolvedPrompt(name="x", version=1, type="text", template="a\nb")
    for other in ("a\nb\n", "a\r\nb", "a\u2028b", "a\nb "):
        changed = ResolvedPrompt(name="x", version=2, type="text", template=other)
        found = ops.diff_prompts(base, changed)
        assert not found.same and found.lines, other
    chat = [{"role": "user", "content": "hi"}]
    a = ResolvedPrompt(name="c", version=1, type="chat", template=chat)
    b = ResolvedPrompt(name="c", version=2, type="chat", template=[{"role": "user", "content": "hi\n"}])
    assert not ops.diff_prompts(a, b).same and ops.diff_prompts(a, b).lines
    assert ops.diff_prompts(a, ResolvedPrompt(name="c", version=3, type="chat", template=chat)).same


def test_diff_chat_messages_one_block_each_and_sorted_config(server: LangfuseTestServer, p: str) -> None:
    name = f"{p}/chat"
    server.create_prompt(
        name,
        [{"role": "system", "content": "Be [brief]."}, {"type": "placeholder", "name": "history"}],
        config={"b": 1, "a": 2},
    )
    server.create_prompt(
        name,
        [
            {"role": "system", "content": "Be [brief].\nAnd kind."},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{q}}"},
        ],
        config={"a": 2, "b": 3},
    )
    result = lvp(server, "diff", name, "1", "2")
    out = result.stdout.splitlines()
    assert " [system]" in out and " Be [brief]." in out and "+And kind." in out
    assert " [placeholder: history]" in out and "+[user]" in out and "+{{q}}" in out
    assert '   "a": 2,' in out and '-  "b": 1' in out and '+  "b": 3' in out


def test_every_command_has_help() -> None:
    for command in (
        ["--help"],
        ["push", "--help"],
        ["pull", "--help"],
        ["log", "--help"],
        ["diff", "--help"],
        ["promote", "--help"],
        ["rollback", "--help"],
        ["cache", "--help"],
        ["cache", "warm", "--help"],
        ["cache", "invalidate", "--help"],
        ["webhook", "--help"],
        ["webhook", "serve", "--help"],
    ):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
        assert "Usage:" in result.stdout
    assert "lvp-label-history/NAME" in CliRunner().invoke(app, ["rollback", "--help"]).stdout


def test_ab_is_mounted_lazily_with_a_clear_message_without_the_stats_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = CliRunner().invoke(app, ["ab", "--help"])
    assert result.exit_code == 0 and "report" in result.stdout
    monkeypatch.setitem(__import__("sys").modules, "langfuse_versioned_prompts.cli.ab", None)
    failed(CliRunner().invoke(app, ["ab", "report"]), "pip install 'langfuse-versioned-prompts[stats]'")
    assert CliRunner().invoke(app, ["push", "--help"]).exit_code == 0


def test_push_with_a_label_checks_the_label_history_before_writing(
    server: LangfuseTestServer, files: Path, p: str
) -> None:
    server.create_prompt(f"lvp-label-history/{p}/a", "garbage")
    posts = server.count("POST", PROMPTS)
    failed(
        lvp(server, "push", str(files), "--label", "production"),
        "before writing anything",
        "not a readable lvp label history",
    )
    assert server.count("POST", PROMPTS) == posts
