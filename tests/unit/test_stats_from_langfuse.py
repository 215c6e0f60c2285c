"""``stats.from_langfuse`` and ``lvp ab report`` against the SDK's API client on a MockTransport.

No sockets: the real ``langfuse`` API client sends real requests to an in-process handler that
answers the two endpoints as the OpenAPI spec says (filters, field groups, cursor paging).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from langfuse.api.client import LangfuseAPI
from typer.testing import CliRunner

from langfuse_versioned_prompts import (
    ConfigurationError,
    Experiment,
    LVPError,
    Rollout,
    SourceAuthError,
    SourceUnavailableError,
    Variant,
    stats,
)
from langfuse_versioned_prompts.cli.ab import app

NOW = datetime(2025, 3, 1, tzinfo=UTC)
T0 = "2025-02-20T12:00:00.000Z"


class FakeLangfuse:
    """Answers GET /api/public/v2/observations and GET /api/public/v3/scores from lists."""

    def __init__(self) -> None:
        self.observations: list[dict[str, Any]] = []
        self.scores: list[dict[str, Any]] = []
        self.requests: list[httpx.Request] = []
        self.fail_with: int | None = None

    def add_trace(
        self,
        trace_id: str,
        variant: str,
        *,
        user: str | None = None,
        session: str | None = None,
        experiment: str = "analyzer-v2",
        start: str = T0,
        tags: bool = True,
        metadata: bool = True,
    ) -> None:
        base = {"traceId": trace_id, "startTime": start, "projectId": "p", "userId": user, "sessionId": session}
        # a root span with the user only, and a child span stamped by the callback handler
        self.observations.append({**base, "id": f"{trace_id}-root", "type": "SPAN", "tags": [], "metadata": {}})
        child: dict[str, Any] = {**base, "id": f"{trace_id}-gen", "type": "GENERATION", "tags": [], "metadata": {}}
        if tags:
            child["tags"] = [f"ab:{experiment}={variant}", "prompt:analyzer@v2"]
        if metadata:  # JSON-encoded per key, as the OTel attributes carry them
            child["metadata"] = {"ab_experiment": json.dumps(experiment), "ab_variant": json.dumps(variant)}
        self.observations.append(child)

    def add_score(
        self,
        trace_id: str,
        value: Any,
        *,
        name: str = "helpfulness",
        data_type: str = "NUMERIC",
        on_observation: bool = False,
    ) -> None:
        subject = (
            {"kind": "observation", "id": f"{trace_id}-gen", "traceId": trace_id}
            if on_observation
            else {"kind": "trace", "id": trace_id}
        )
        self.scores.append({
            "id": f"s{len(self.scores)}", "projectId": "p", "name": name, "value": value,
            "dataType": data_type, "source": "API", "timestamp": "2025-02-21T00:00:00.000Z",
            "environment": "default", "createdAt": T0, "updatedAt": T0, "_subject": subject,
        })  # fmt: skip

    def client(self) -> LangfuseAPI:
        return LangfuseAPI(
            base_url="http://langfuse.test",
            username="pk-test",
            password="sk-test",
            httpx_client=httpx.Client(transport=httpx.MockTransport(self.handle)),
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail_with is not None:
            return httpx.Response(self.fail_with, json={"message": "nope", "error": "Error"})
        query = request.url.params
        if request.url.path == "/api/public/v2/observations":
            rows = [o for o in self.observations if _matches(o, json.loads(query.get("filter", "[]")))]
            return _page(rows, query, 1000)
        if request.url.path == "/api/public/v3/scores":
            names = set(query["name"].split(",")) if "name" in query else None
            rows = [s for s in self.scores if names is None or s["name"] in names]
            if "fromTimestamp" in query:
                rows = [s for s in rows if s["timestamp"] >= query["fromTimestamp"][:19]]
            with_subject = "subject" in query.get("fields", "")
            shaped = [
                {k: v for k, v in s.items() if k != "_subject"} | ({"subject": s["_subject"]} if with_subject else {})
                for s in rows
            ]
            return _page(shaped, query, 100)
        return httpx.Response(404, json={"message": "not found"})


def _page(rows: list[dict[str, Any]], query: httpx.QueryParams, maximum: int) -> httpx.Response:
    limit = min(int(query.get("limit", 50)), maximum)
    offset = int(query.get("cursor") or 0)
    meta: dict[str, Any] = {"limit": limit}
    if offset + limit < len(rows):
        meta["cursor"] = str(offset + limit)
    return httpx.Response(200, json={"data": rows[offset : offset + limit], "meta": meta})


def _matches(obs: dict[str, Any], conditions: list[dict[str, Any]]) -> bool:
    for c in conditions:
        if c["column"] == "traceTags":
            if not set(obs["tags"]) & set(c["value"]):
                return False
        elif c["column"] == "metadata":
            raw = obs["metadata"].get(c["key"])
            if raw is None or json.loads(raw) != c["value"]:
                return False
        elif c["column"] == "startTime":
            start = datetime.fromisoformat(obs["startTime"].replace("Z", "+00:00"))
            bound = datetime.fromisoformat(c["value"])
            if (c["operator"] == ">=" and start < bound) or (c["operator"] == "<" and start >= bound):
                return False
        else:
            raise AssertionError(f"unexpected filter {c}")
    return True


@pytest.fixture
def fake() -> Iterator[FakeLangfuse]:
    yield FakeLangfuse()


def seed_experiment(fake: FakeLangfuse) -> tuple[dict[str, list[float]], dict[str, list[str]]]:
    """Users u0..u9 in A and u10..u19 in B, two traces each, a score on each trace."""
    scores: dict[str, list[float]] = {"A": [], "B": []}
    users: dict[str, list[str]] = {"A": [], "B": []}
    for i in range(20):
        variant = "A" if i < 10 else "B"
        for k in range(2):
            trace = f"t{i}-{k}"
            fake.add_trace(trace, variant, user=f"u{i}")
            value = (3.0 if variant == "A" else 4.0) + ((i * 7 + k * 3) % 5) / 4
            fake.add_score(trace, value, on_observation=k == 1)
            scores[variant].append(value)
            users[variant].append(f"u{i}")
    fake.add_score("unrelated-trace", 1.0)
    return scores, users


def test_scores_are_joined_per_user_and_match_analyze(fake: FakeLangfuse) -> None:
    scores, users = seed_experiment(fake)
    report = stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client())
    expected = stats.analyze(scores, users=users, control="A")
    assert report.experiment == "analyzer-v2" and report.score == "helpfulness"
    assert report.per == "user" and report.control == "A"
    assert report.variant("A").n == 10 and report.variant("A").observations == 20
    assert report.comparison("B").p_value == pytest.approx(expected.comparison("B").p_value)
    assert report.source["traces"] == 40
    assert report.source["scores_joined"] == 40 and report.source["scores_unjoined"] == 1
    assert report.winner == "B"


def test_per_observation_counts_every_score(fake: FakeLangfuse) -> None:
    scores, _ = seed_experiment(fake)
    report = stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client(), per="observation")
    expected = stats.analyze(scores, control="A")
    assert report.variant("B").n == 20
    assert report.comparison("B").p_value == pytest.approx(expected.comparison("B").p_value)


def test_requests_filter_on_metadata_or_on_tags_and_page_with_cursors(fake: FakeLangfuse) -> None:
    seed_experiment(fake)
    for i in range(230):
        fake.add_score(f"t{i % 20}-0", 3.5)
    seen: list[tuple[str, int]] = []
    stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client(), progress=lambda s, n: seen.append((s, n)))
    obs_requests = [r for r in fake.requests if r.url.path.endswith("/observations")]
    score_requests = [r for r in fake.requests if r.url.path.endswith("/scores")]
    condition = json.loads(obs_requests[0].url.params["filter"])[0]
    assert condition == {
        "type": "stringObject", "column": "metadata", "key": "ab_experiment", "operator": "=", "value": "analyzer-v2",
    }  # fmt: skip
    assert "trace_context" in obs_requests[0].url.params["fields"]
    assert len(score_requests) == 3  # 271 scores, 100 per page
    assert score_requests[0].url.params["name"] == "helpfulness"
    assert "subject" in score_requests[0].url.params["fields"]
    assert score_requests[1].url.params["cursor"] == "100"
    assert [n for s, n in seen if s == "scores"] == [100, 200, 271]
    assert [n for s, n in seen if s == "traces"] == [40]  # only the stamped spans match

    fake.requests.clear()
    stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client(), weights={"A": 1, "B": 1})
    condition = json.loads(fake.requests[0].url.params["filter"])[0]
    assert condition["column"] == "traceTags" and condition["operator"] == "any of"
    assert condition["value"] == ["ab:analyzer-v2=A", "ab:analyzer-v2=B"]


def test_since_and_until_select_traces_by_start_time(fake: FakeLangfuse) -> None:
    seed_experiment(fake)
    fake.add_trace("old", "A", user="old-user", start="2025-01-01T00:00:00.000Z")
    fake.add_score("old", 100.0)
    report = stats.from_langfuse(
        "analyzer-v2", "helpfulness", client=fake.client(), since="14d", until="1h", now=lambda: NOW
    )
    assert report.source["traces"] == 40
    conditions = json.loads(fake.requests[0].url.params["filter"])
    starts = [c for c in conditions if c["column"] == "startTime"]
    assert starts[0]["operator"] == ">=" and starts[0]["value"].startswith("2025-02-15T00:00:00")
    assert starts[1]["operator"] == "<" and starts[1]["value"].startswith("2025-02-28T23:00:00")
    with pytest.raises(ConfigurationError, match="must be before"):
        stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client(), since="1d", until="2d")


def test_tag_only_traces_need_the_variant_names(fake: FakeLangfuse) -> None:
    fake.add_trace("t1", "A", user="u1", metadata=False)
    fake.add_trace("t2", "B", user="u2", metadata=False)
    fake.add_score("t1", 1.0)
    fake.add_score("t2", 2.0)
    with pytest.raises(stats.ExperimentNotFoundError, match="give the variant names"):
        stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client())
    report = stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client(), weights={"A": 1, "B": 1})
    assert report.variant("A").n == 1 and report.variant("B").n == 1


def test_unknown_experiment_and_unknown_score_are_lookup_errors(fake: FakeLangfuse) -> None:
    seed_experiment(fake)
    with pytest.raises(stats.ExperimentNotFoundError, match="'nope'") as exp:
        stats.from_langfuse("nope", "helpfulness", client=fake.client())
    assert isinstance(exp.value, LookupError) and isinstance(exp.value, LVPError)
    with pytest.raises(stats.ScoreNotFoundError, match="'accuracy'") as score:
        stats.from_langfuse("analyzer-v2", "accuracy", client=fake.client())
    assert isinstance(score.value, LookupError)


def test_scores_on_other_traces_only_give_an_explained_empty_report(fake: FakeLangfuse) -> None:
    fake.add_trace("t1", "A", user="u1")
    fake.add_trace("t2", "B", user="u2")
    fake.add_score("elsewhere", 1.0)
    report = stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client())
    assert report.variant("A").n == 0
    assert any("none of the 1 'helpfulness' scores" in w for w in report.warnings)
    assert report.decision.startswith("cannot decide")
    json.dumps(report.to_dict(), allow_nan=False)


def test_conflicting_traces_anonymous_traces_and_odd_scores_are_reported(fake: FakeLangfuse) -> None:
    seed_experiment(fake)
    fake.add_trace("both", "A", user="x")
    fake.add_trace("both", "B", user="x")
    fake.add_score("both", 5.0)
    fake.add_trace("anon-1", "A")
    fake.add_trace("anon-2", "B", session="s-9")
    fake.add_score("anon-1", 3.0)
    fake.add_score("anon-2", 4.0)
    fake.add_score("t1-0", "great", data_type="CATEGORICAL")
    report = stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client())
    warnings = " | ".join(report.warnings)
    assert "1 trace(s) carried two variants" in warnings
    assert "1 trace(s) had no user or session id" in warnings
    assert "1 'helpfulness' score(s) were not numeric or boolean" in warnings
    assert report.variant("A").n == 11 and report.variant("B").n == 11


def test_boolean_scores_use_proportions(fake: FakeLangfuse) -> None:
    for i in range(40):
        variant = "A" if i % 2 else "B"
        fake.add_trace(f"t{i}", variant, user=f"u{i}")
        fake.add_score(f"t{i}", i % 3 == 0, name="resolved", data_type="BOOLEAN")
    report = stats.from_langfuse("analyzer-v2", "resolved", client=fake.client())
    assert report.metric == "boolean"
    assert report.comparison("B").test == "two_proportion_z"


def test_an_experiment_object_sets_control_and_split_and_srm_counts_assigned_users(
    fake: FakeLangfuse,
) -> None:
    rollout = Rollout("analyzer-v2", target="canary", percent=50)
    for i in range(30):
        fake.add_trace(f"t{i}", "canary" if i < 15 else "production", user=f"u{i}")
        if i % 2 == 0 or i >= 15:
            fake.add_score(f"t{i}", 3.0 + (i % 4))
    report = stats.from_langfuse(rollout, "helpfulness", client=fake.client())
    assert report.control == "production"
    assert report.srm is not None and dict(report.srm.observed) == {"canary": 15, "production": 15}
    assert report.variant("canary").n == 8
    assert any("share of users with a score differs" in w for w in report.warnings)
    experiment = Experiment("analyzer-v2", [Variant("production"), Variant("canary", weight=3.0)])
    weighted = stats.from_langfuse(experiment, "helpfulness", client=fake.client())
    assert weighted.srm is not None and weighted.srm.expected_share["canary"] == 0.75


def test_api_errors_map_to_library_errors(fake: FakeLangfuse) -> None:
    seed_experiment(fake)
    fake.fail_with = 401
    with pytest.raises(SourceAuthError, match="refused the credentials"):
        stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client())
    fake.fail_with = 400
    with pytest.raises(SourceUnavailableError, match=r"HTTP 400.*nope"):
        stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client())


def test_bad_arguments_are_configuration_errors(fake: FakeLangfuse, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_experiment(fake)
    client = fake.client()
    with pytest.raises(ConfigurationError, match="control 'Z'"):
        stats.from_langfuse("analyzer-v2", "helpfulness", client=client, control="Z")
    with pytest.raises(ConfigurationError, match="score must be"):
        stats.from_langfuse("analyzer-v2", "", client=client)
    with pytest.raises(ConfigurationError, match="confidence"):
        stats.from_langfuse("analyzer-v2", "helpfulness", client=client, confidence=2)
    with pytest.raises(ConfigurationError, match="duration"):
        stats.from_langfuse("analyzer-v2", "helpfulness", client=client, since="last week")
    monkeypatch.delenv("LANGFUSE_PUBLIC_KEY", raising=False)
    monkeypatch.delenv("LANGFUSE_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="LANGFUSE_PUBLIC_KEY"):
        stats.from_langfuse("analyzer-v2", "helpfulness")
    assert not any(r.url.path.endswith("scores") for r in fake.requests)


def test_parse_time() -> None:
    assert stats.parse_time(None) is None
    assert stats.parse_time("7d", now=lambda: NOW) == NOW - timedelta(days=7)
    assert stats.parse_time("90m", now=lambda: NOW) == NOW - timedelta(minutes=90)
    assert stats.parse_time(timedelta(hours=2), now=lambda: NOW) == NOW - timedelta(hours=2)
    assert stats.parse_time("2025-02-01") == datetime(2025, 2, 1, tzinfo=UTC)
    assert stats.parse_time(datetime(2025, 2, 1)) == datetime(2025, 2, 1, tzinfo=UTC)
    with pytest.raises(ConfigurationError):
        stats.parse_time("soon")


# ---- lvp ab report ------------------------------------------------------------------------


def run(fake: FakeLangfuse, *args: str) -> Any:
    return CliRunner().invoke(app, ["report", *args], obj={"langfuse_client": fake.client()})


def test_cli_prints_a_table_and_the_decision(fake: FakeLangfuse) -> None:
    seed_experiment(fake)
    result = run(fake, "--experiment", "analyzer-v2", "--score", "helpfulness")
    assert result.exit_code == 0, result.output
    assert "A (control)" in result.output and "Decision:" in result.output and "B beats A" in result.output


def test_cli_json_and_plot(fake: FakeLangfuse, tmp_path: Path) -> None:
    seed_experiment(fake)
    png = tmp_path / "ab.png"
    result = run(fake, "-e", "analyzer-v2", "-s", "helpfulness", "--json", "--plot", str(png), "--since", "2025-01-01")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["winner"] == "B" and data["comparisons"][0]["variant"] == "B"
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-e", "nope", "-s", "helpfulness"], "no Langfuse trace"),
        (["-e", "analyzer-v2", "-s", "accuracy"], "no Langfuse score named 'accuracy'"),
        (["-e", "analyzer-v2", "-s", "helpfulness", "--weights", "A=1,B"], "NAME=WEIGHT"),
        (["-e", "analyzer-v2", "-s", "helpfulness", "--confidence", "95"], "confidence"),
        (["-e", "analyzer-v2", "-s", "helpfulness", "--control", "Z"], "control 'Z'"),
    ],
)
def test_cli_expected_errors_exit_1_with_one_line(fake: FakeLangfuse, args: list[str], message: str) -> None:
    seed_experiment(fake)
    result = run(fake, *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_an_api_object_without_the_sdk_http_client_is_read_through_get_many(fake: FakeLangfuse) -> None:
    scores, users = seed_experiment(fake)
    sdk = fake.client()
    plain = SimpleNamespace(observations=sdk.observations, scores=sdk.scores)  # no _client_wrapper
    report = stats.from_langfuse("analyzer-v2", "helpfulness", client=plain, since="2025-01-01")
    expected = stats.analyze(scores, users=users, control="A")
    assert report.comparison("B").p_value == pytest.approx(expected.comparison("B").p_value)
    assert report.source["scores_unjoined"] == 1
    score_request = next(r for r in fake.requests if r.url.path.endswith("/scores"))
    assert score_request.url.params["fromTimestamp"].startswith("2025-01-01T00:00:00")
