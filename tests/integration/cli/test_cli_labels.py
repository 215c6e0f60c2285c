"""``lvp promote / rollback`` and the label history kept in Langfuse (``lvp-label-history/<name>``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner, Result

from langfuse_versioned_prompts import PromptFormatError, ops
from langfuse_versioned_prompts.cli import app
from langfuse_versioned_prompts.ops import LabelMove, RollbackError, rollback_target
from langfuse_versioned_prompts.testing import LangfuseTestServer


@pytest.fixture
def name(server: LangfuseTestServer) -> str:
    """A prompt with production on v1, staging on v2 and a v3 (made outside lvp)."""
    prompt = f"t{uuid.uuid4().hex[:8]}/qa"
    server.create_prompt(prompt, "one", labels=["production"])
    server.create_prompt(prompt, "two", labels=["staging"])
    server.create_prompt(prompt, "three")
    return prompt


def lvp(server: LangfuseTestServer, *args: str) -> Result:
    return CliRunner().invoke(
        app, [*args, "--langfuse-url", server.url, "--public-key", server.public_key, "--secret-key", server.secret_key]
    )


def failed(result: Result, *needles: str) -> str:
    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message and "Traceback" not in result.output
    for needle in needles:
        assert needle in message, message
    return message


def holder(server: LangfuseTestServer, prompt: str, label: str) -> int:
    return int(server.get_prompt(prompt, label=label)["version"])


def admin(server: LangfuseTestServer) -> ops.PromptAdmin:
    return ops.PromptAdmin.connect(public_key=server.public_key, secret_key=server.secret_key, base_url=server.url)


def test_promote_moves_the_label_prints_before_after_and_records_it(server: LangfuseTestServer, name: str) -> None:
    result = lvp(server, "promote", name, "--from", "staging", "--to", "production")
    assert result.exit_code == 0, result.output
    assert "label production" in result.stdout
    assert "before: v1" in result.stdout and "after:  v2" in result.stdout
    assert holder(server, name, "production") == 2 and holder(server, name, "staging") == 2
    stored = server.get_prompt(f"lvp-label-history/{name}", label="latest")
    assert '"from_version": 1' in stored["prompt"] and "promote" in stored["commitMessage"]
    [move] = ops.label_history(admin(server), name)
    assert (move.label, move.from_version, move.to_version, move.action, move.by) == (
        "production",
        1,
        2,
        "promote",
        "alice",
    )
    datetime.strptime(move.at, "%Y-%m-%dT%H:%M:%SZ")


def test_promote_from_a_version_number_and_to_a_new_label(server: LangfuseTestServer, name: str) -> None:
    result = lvp(server, "promote", name, "--from", "3", "--to", "canary")
    assert result.exit_code == 0 and "before: (none)" in result.stdout and "after:  v3" in result.stdout
    again = lvp(server, "promote", name, "--from", "3", "--to", "canary")
    assert again.exit_code == 0 and "already on v3; nothing moved" in again.stdout
    assert len(ops.label_history(admin(server), name)) == 1  # no-op moves are not recorded


def test_promote_bad_input_changes_nothing(server: LangfuseTestServer, name: str) -> None:
    failed(
        lvp(server, "promote", name, "--from", "qa-missing", "--to", "production"), "label 'qa-missing'", "not found"
    )
    failed(lvp(server, "promote", name, "--from", "staging", "--to", "latest"), "'latest'")
    failed(lvp(server, "promote", name, "--from", "staging", "--to", "Prod"), "invalid label 'Prod'")
    failed(lvp(server, "promote", "nope", "--from", "staging", "--to", "production"), "'nope'")
    assert holder(server, name, "production") == 1
    assert CliRunner().invoke(app, ["promote", name, "--to", "production"]).exit_code == 2  # usage


def test_rollback_walks_back_through_recorded_moves(server: LangfuseTestServer, name: str) -> None:
    assert lvp(server, "promote", name, "--from", "staging", "--to", "production").exit_code == 0
    assert lvp(server, "promote", name, "--from", "latest", "--to", "production").exit_code == 0
    assert holder(server, name, "production") == 3

    first = lvp(server, "rollback", name)
    assert first.exit_code == 0 and "before: v3" in first.stdout and "after:  v2" in first.stdout
    second = lvp(server, "rollback", name, "--label", "production")
    assert second.exit_code == 0 and "before: v2" in second.stdout and "after:  v1" in second.stdout
    assert holder(server, name, "production") == 1

    failed(lvp(server, "rollback", name), "recorded no earlier version", f"lvp-label-history/{name}", "--to-version")
    assert holder(server, name, "production") == 1
    actions = [m.action for m in ops.label_history(admin(server), name)]
    assert actions == ["promote", "promote", "rollback", "rollback"]


def test_rollback_to_a_given_version_then_undo_it(server: LangfuseTestServer, name: str) -> None:
    result = lvp(server, "rollback", name, "--to-version", "3")
    assert result.exit_code == 0 and "before: v1" in result.stdout and "after:  v3" in result.stdout
    undo = lvp(server, "rollback", name)
    assert undo.exit_code == 0 and "after:  v1" in undo.stdout
    failed(lvp(server, "rollback", name, "--to-version", "1"), "already on version 1")
    failed(lvp(server, "rollback", name, "--to-version", "42"), "version 42")


def test_rollback_refuses_without_history_or_label(server: LangfuseTestServer, name: str) -> None:
    failed(lvp(server, "rollback", name), "recorded no earlier version")
    failed(lvp(server, "rollback", name, "--label", "canary"), "label 'canary'")
    failed(lvp(server, "rollback", "nope"), "'nope'")
    failed(lvp(server, "rollback", name, "--label", "latest"), "'latest'")
    assert holder(server, name, "production") == 1


def test_rollback_refuses_when_the_label_moved_outside_lvp(server: LangfuseTestServer, name: str) -> None:
    assert lvp(server, "promote", name, "--from", "staging", "--to", "production").exit_code == 0
    server.move_labels(name, 3, ["production"])  # e.g. in the Langfuse UI
    failed(lvp(server, "rollback", name), "moved outside lvp", "--to-version")
    assert holder(server, name, "production") == 3


def test_push_label_then_rollback(server: LangfuseTestServer, tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    prompt = f"t{uuid.uuid4().hex[:8]}"
    (root / f"{prompt}.yaml").write_text("versions:\n  - version: 1\n    prompt: first\n")
    assert lvp(server, "push", str(root), "--label", "production").exit_code == 0
    (root / f"{prompt}.yaml").write_text("versions:\n  - version: 1\n    prompt: second\n")
    assert lvp(server, "push", str(root), "--label", "production").exit_code == 0
    assert holder(server, prompt, "production") == 2
    result = lvp(server, "rollback", prompt)
    assert result.exit_code == 0 and "after:  v1" in result.stdout
    failed(lvp(server, "rollback", prompt), "no version held it before")


def test_unreadable_history_is_reported(server: LangfuseTestServer, name: str) -> None:
    server.create_prompt(f"lvp-label-history/{name}", "not json")
    with pytest.raises(PromptFormatError, match="not a readable lvp label history"):
        ops.label_history(admin(server), name)
    failed(lvp(server, "rollback", name), "not a readable lvp label history")
    failed(lvp(server, "rollback", name, "--to-version", "2"), "not a readable lvp label history")
    failed(lvp(server, "promote", name, "--from", "staging", "--to", "production"), "not a readable")
    assert holder(server, name, "production") == 1  # checked before moving: nothing moved


def test_ops_promote_with_an_injected_clock_and_actor(server: LangfuseTestServer, name: str) -> None:
    move = ops.promote(
        admin(server),
        name,
        source="staging",
        to="production",
        actor="ci",
        clock=lambda: datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert (move.at, move.by, move.describe()) == ("2030-01-02T03:04:05Z", "ci", f"{name}: production v1 -> v2")


# -- the pure rollback rule ------------------------------------------------------------------


def m(before: int | None, after: int, action: str = "promote", label: str = "production") -> LabelMove:
    return LabelMove("qa", label, before, after, action, "", "t")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("moves", "current", "target"),
    [
        ([m(None, 1, "push"), m(1, 2)], 2, 1),
        ([m(1, 2), m(2, 3), m(3, 2, "rollback")], 2, 1),
        ([m(1, 2), m(2, 5, "move")], 5, 2),
        ([m(1, 2), m(2, 1, "rollback"), m(1, 4)], 4, 1),
        ([m(1, 2), m(7, 8, label="staging")], 2, 1),
    ],
)
def test_rollback_target(moves: list[LabelMove], current: int, target: int) -> None:
    assert rollback_target(moves, name="qa", label="production", current=current) == target


@pytest.mark.parametrize(
    ("moves", "current", "reason"),
    [
        ([], 1, "recorded no earlier version"),
        ([m(1, 2), m(2, 1, "rollback")], 1, "recorded no earlier version"),
        ([m(None, 1, "push")], 1, "no version held it before"),
        ([m(1, 2)], 3, "moved outside lvp"),
    ],
)
def test_rollback_target_refusals(moves: list[LabelMove], current: int, reason: str) -> None:
    with pytest.raises(RollbackError, match=reason):
        rollback_target(moves, name="qa", label="production", current=current)
