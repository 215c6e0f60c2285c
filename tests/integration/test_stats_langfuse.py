"""``stats.from_langfuse`` and ``lvp ab report`` on spans and scores exported through the real SDK.

Spans go over OTLP and scores through the SDK's batched score ingestion into the Langfuse stand-in
(or your own Langfuse when LVP_TEST_LANGFUSE_* are set; names then carry a random suffix and reads
wait for ingestion). The report must equal ``stats.analyze`` on the same scores joined by hand.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from langfuse import Langfuse, propagate_attributes
from typer.testing import CliRunner

from langfuse_versioned_prompts import Experiment, Variant, stats
from langfuse_versioned_prompts.testing import LangfuseTestServer

pytestmark = pytest.mark.langfuse_tracing

REAL = all(
    os.environ.get(n) for n in ("LVP_TEST_LANGFUSE_URL", "LVP_TEST_LANGFUSE_PUBLIC_KEY", "LVP_TEST_LANGFUSE_SECRET_KEY")
)
SUFFIX = f"-{uuid.uuid4().hex[:8]}" if REAL else ""
WAIT_SECONDS = 120.0 if REAL else 0.0  # a real Langfuse ingests asynchronously

T = TypeVar("T")


def eventually(read: Callable[[], T], done: Callable[[T], bool]) -> T:
    """``read()`` until ``done``; at once on the stand-in, polling a real Langfuse while it ingests."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            result = read()
            if done(result) or time.monotonic() >= deadline:
                return result
        except (stats.ExperimentNotFoundError, stats.ScoreNotFoundError):
            if time.monotonic() >= deadline:
                raise
        time.sleep(3.0)


@dataclass
class Seeded:
    experiment: Experiment
    score: str
    scores: dict[str, list[float]] = field(default_factory=dict)
    users: dict[str, list[str]] = field(default_factory=dict)
    count: int = 0


def export_experiment(client: Langfuse, *, users: int = 24, boolean: bool = False) -> Seeded:
    """Traces stamped as the callback handler stamps them, then one score per trace."""
    experiment = Experiment(f"analyzer-v2{SUFFIX}", [Variant("A", version=1), Variant("B", version=2)])
    seeded = Seeded(experiment, f"{'resolved' if boolean else 'helpfulness'}{SUFFIX}")
    for i in range(users):
        user = f"user-{i}{SUFFIX}"
        variant = experiment.assign(user).name
        for k in range(1 + i % 3):
            meta = {"ab_experiment": experiment.name, "ab_variant": variant}
            tags = [f"ab:{experiment.name}={variant}", f"prompt:analyzer@v{1 if variant == 'A' else 2}"]
            with (
                client.start_as_current_observation(as_type="span", name="request") as root,
                propagate_attributes(user_id=user, tags=tags, metadata=meta),
                client.start_as_current_observation(as_type="generation", name="analyze", metadata=meta) as generation,
            ):
                pass
            value: Any
            if boolean:
                value = (i + k) % (2 if variant == "B" else 3) == 0
                client.create_score(name=seeded.score, value=float(value), trace_id=root.trace_id, data_type="BOOLEAN")
            else:
                value = (3.0 if variant == "A" else 3.8) + ((i * 5 + k) % 4) * 0.5
                # every other score sits on the generation rather than on the trace
                observation = generation.id if k % 2 else None
                client.create_score(name=seeded.score, value=value, trace_id=root.trace_id, observation_id=observation)
            seeded.scores.setdefault(variant, []).append(value)
            seeded.users.setdefault(variant, []).append(user)
            seeded.count += 1
    client.create_score(name=seeded.score, value=1.0, trace_id=uuid.uuid4().hex)  # not in the experiment
    client.flush()
    return seeded


def read(client: Langfuse, seeded: Seeded, **options: Any) -> stats.Report:
    return eventually(
        lambda: stats.from_langfuse(seeded.experiment.name, seeded.score, client=client, **options),
        lambda report: report.source.get("scores_joined") == seeded.count,
    )


def test_report_equals_analyze_on_the_same_scores_joined_by_hand(langfuse_client: Langfuse) -> None:
    seeded = export_experiment(langfuse_client)
    report = read(langfuse_client, seeded)
    expected = stats.analyze(seeded.scores, users=seeded.users, control="A")
    assert report.source["scores_joined"] == seeded.count
    assert report.source["scores_unjoined"] >= 1
    assert report.per == "user" and report.control == "A"
    for name in ("A", "B"):
        assert report.variant(name).n == expected.variant(name).n
        assert report.variant(name).observations == len(seeded.scores[name])
        assert report.variant(name).mean == pytest.approx(expected.variant(name).mean)
    ours, theirs = report.comparison("B"), expected.comparison("B")
    assert ours.p_value == pytest.approx(theirs.p_value)
    assert ours.ci == pytest.approx(theirs.ci)
    assert ours.effect_size == pytest.approx(theirs.effect_size)
    json.dumps(report.to_dict(), allow_nan=False)


def test_an_experiment_object_reads_by_trace_tags_and_per_observation(langfuse_client: Langfuse) -> None:
    seeded = export_experiment(langfuse_client)
    report = read(langfuse_client, seeded)
    by_tags = eventually(
        lambda: stats.from_langfuse(seeded.experiment, seeded.score, client=langfuse_client),
        lambda r: r.source.get("scores_joined") == seeded.count,
    )
    assert by_tags.comparison("B").p_value == pytest.approx(report.comparison("B").p_value)
    assert by_tags.srm is not None and by_tags.srm.expected_share == {"A": 0.5, "B": 0.5}
    per_obs = read(langfuse_client, seeded, per="observation")
    expected = stats.analyze(seeded.scores, control="A")
    assert per_obs.variant("A").n == len(seeded.scores["A"])
    assert per_obs.comparison("B").p_value == pytest.approx(expected.comparison("B").p_value)


def test_boolean_scores_give_a_proportions_test(langfuse_client: Langfuse) -> None:
    seeded = export_experiment(langfuse_client, boolean=True)
    report = read(langfuse_client, seeded, per="observation")
    expected = stats.analyze(seeded.scores, control="A")
    assert report.metric == "boolean" == expected.metric
    assert report.comparison("B").p_value == pytest.approx(expected.comparison("B").p_value)


def test_unknown_experiment_and_unknown_score(langfuse_client: Langfuse) -> None:
    seeded = export_experiment(langfuse_client, users=4)
    read(langfuse_client, seeded)
    with pytest.raises(stats.ExperimentNotFoundError, match="no Langfuse trace"):
        stats.from_langfuse(f"no-such-experiment{SUFFIX}", seeded.score, client=langfuse_client)
    with pytest.raises(stats.ScoreNotFoundError, match="no Langfuse score named"):
        stats.from_langfuse(seeded.experiment.name, f"no-such-score{SUFFIX}", client=langfuse_client)


def test_lvp_ab_report_through_the_main_cli(
    langfuse_client: Langfuse, langfuse_server: LangfuseTestServer, tmp_path: Any
) -> None:
    from langfuse_versioned_prompts.cli import app

    seeded = export_experiment(langfuse_client)
    read(langfuse_client, seeded)
    connection = [
        "--langfuse-url", langfuse_server.url,
        "--public-key", langfuse_server.public_key,
        "--secret-key", langfuse_server.secret_key,
    ]  # fmt: skip
    png = tmp_path / "ab.png"
    args = [*connection, "ab", "report", "--experiment", seeded.experiment.name, "--score", seeded.score]
    result = CliRunner().invoke(app, [*args, "--json", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["experiment"] == seeded.experiment.name
    assert data["source"]["scores_joined"] == seeded.count
    assert png.read_bytes()[:4] == b"\x89PNG"
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0 and "A (control)" in table.stdout and "Decision:" in table.stdout
    missing = CliRunner().invoke(app, [*connection, "ab", "report", "-e", f"nope{SUFFIX}", "-s", seeded.score])
    assert missing.exit_code == 1
    assert missing.stderr.strip().startswith("error: no Langfuse trace")
    assert len(missing.stderr.strip().splitlines()) == 1
    # the connection flags also work on the command itself, after `ab report`
    on_command = CliRunner().invoke(app, ["ab", "report", "-e", seeded.experiment.name, "-s", seeded.score,
                                          "--json", *connection, "--timeout", "20"])  # fmt: skip
    assert on_command.exit_code == 0, on_command.output
    assert json.loads(on_command.stdout)["source"]["scores_joined"] == seeded.count
    missing = CliRunner().invoke(app, ["ab", "report", "-e", f"nope{SUFFIX}", "-s", seeded.score, *connection])
    assert missing.exit_code == 1 and missing.stderr.strip().startswith("error: no Langfuse trace")
