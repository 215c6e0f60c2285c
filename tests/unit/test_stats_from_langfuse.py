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
        self.malformed: set[str] = set()  # endpoints ("observations", "scores") answering a page that fails validation
        self.not_json: set[str] = set()  # endpoints answering 200 with a body that is not JSON

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
        endpoint = request.url.path.rsplit("/", 1)[-1]
        if endpoint in self.not_json:
            return httpx.Response(200, text="<html>maintenance</html>")
        if endpoint in self.malformed:
            return httpx.Response(200, json={"data": [{"id": 1, "name": 5}], "meta": "nope"})
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


def test_without_weights_an_unequal_split_is_not_checked(fake: FakeLangfuse) -> None:
    for i in range(40):
        variant = "A" if i < 34 else "B"
        fake.add_trace(f"t{i}", variant, user=f"u{i}")
        fake.add_score(f"t{i}", (3.0 if variant == "A" else 4.5) + (i % 3) / 4)
    report = stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client())
    assert report.srm is None
    assert report.winner == "B" and report.decision.startswith("B beats A")
    assert any(n.startswith("sample ratio not checked: no configured split") for n in report.notes)
    assert report.source["assigned_users:A"] == 34 and report.source["assigned_users:B"] == 6
    # the same data with a configured equal split is a mismatch
    weighted = stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client(), weights={"A": 1, "B": 1})
    assert weighted.srm is not None and weighted.srm.flagged
    assert weighted.decision.startswith("do not decide: sample ratio mismatch")


def test_per_observation_srm_counts_assigned_users_not_traces(fake: FakeLangfuse) -> None:
    # 20 users per variant; each B user has four traces, each A user one
    for i in range(40):
        variant = "A" if i < 20 else "B"
        for k in range(1 if variant == "A" else 4):
            fake.add_trace(f"t{i}-{k}", variant, user=f"u{i}")
            fake.add_score(f"t{i}-{k}", 3.0 + ((i + k) % 4) / 2)
    fake.add_trace("anon-1", "A", session="s-1")
    fake.add_trace("anon-2", "A", session="s-1")  # same session: one unit
    fake.add_trace("anon-3", "B")  # neither user nor session: its own unit
    experiment = Experiment("analyzer-v2", [Variant("A"), Variant("B")])
    report = stats.from_langfuse(experiment, "helpfulness", client=fake.client(), per="observation")
    assert report.per == "observation" and report.variant("B").n == 80
    assert report.srm is not None and dict(report.srm.observed) == {"A": 21, "B": 21}
    assert not report.srm.flagged
    assert report.source["assigned_users:A"] == 21
    assert any("counts every assigned user" in n for n in report.notes)


def test_tag_reads_skip_the_metadata_field_group(fake: FakeLangfuse) -> None:
    seed_experiment(fake)
    stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client(), weights={"A": 1, "B": 1})
    fields = fake.requests[0].url.params["fields"].split(",")
    assert "trace_context" in fields and "basic" in fields and "metadata" not in fields
    fake.requests.clear()
    stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client())
    assert "metadata" in fake.requests[0].url.params["fields"].split(",")


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


# ---- an SDK whose private HTTP client changed, and pages that fail validation ----------------------


class _Raising:
    """Stands in for an SDK object whose method raises ``exc`` when called."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise self.exc


def test_a_changed_private_http_client_falls_back_to_the_public_scores_call(fake: FakeLangfuse) -> None:
    scores, users = seed_experiment(fake)
    sdk = fake.client()
    request = _Raising(TypeError("request() got an unexpected keyword argument 'params'"))
    changed = SimpleNamespace(
        observations=sdk.observations,
        scores=sdk.scores,
        _client_wrapper=SimpleNamespace(httpx_client=SimpleNamespace(request=request)),
    )
    report = stats.from_langfuse("analyzer-v2", "helpfulness", client=changed)
    expected = stats.analyze(scores, users=users, control="A")
    assert request.calls == 1  # tried once, then the public call for every page
    assert report.comparison("B").p_value == pytest.approx(expected.comparison("B").p_value)
    assert report.source["scores_joined"] == 40
    # a wrapper object without the HTTP client attribute goes to the public call at once
    bare = SimpleNamespace(observations=sdk.observations, scores=sdk.scores, _client_wrapper=object())
    assert stats.from_langfuse("analyzer-v2", "helpfulness", client=bare).source["scores_joined"] == 40


@pytest.mark.parametrize(
    ("exc", "call"),
    [
        (TypeError("get_many() got an unexpected keyword argument 'fields'"), "api.scores.get_many"),
        (AttributeError("'ScoresClient' object has no attribute 'get_many'"), "api.scores.get_many"),
    ],
)
def test_a_changed_public_sdk_call_is_source_unavailable(fake: FakeLangfuse, exc: Exception, call: str) -> None:
    seed_experiment(fake)
    sdk = fake.client()
    changed = SimpleNamespace(observations=sdk.observations, scores=SimpleNamespace(get_many=_Raising(exc)))
    with pytest.raises(SourceUnavailableError, match=call.replace(".", r"\.")) as info:
        stats.from_langfuse("analyzer-v2", "helpfulness", client=changed)
    assert type(exc).__name__ in str(info.value) and "langfuse SDK" in str(info.value)
    both = SimpleNamespace(
        observations=sdk.observations,
        scores=SimpleNamespace(get_many=_Raising(exc)),
        _client_wrapper=SimpleNamespace(httpx_client=SimpleNamespace(request=_Raising(TypeError("changed")))),
    )
    with pytest.raises(SourceUnavailableError, match=call.replace(".", r"\.")):
        stats.from_langfuse("analyzer-v2", "helpfulness", client=both)
    observations = SimpleNamespace(get_many=_Raising(TypeError("changed")))
    with pytest.raises(SourceUnavailableError, match=r"api\.observations\.get_many"):
        stats.from_langfuse("analyzer-v2", "helpfulness", client=SimpleNamespace(observations=observations))


def test_pages_that_fail_validation_are_source_unavailable(fake: FakeLangfuse) -> None:
    seed_experiment(fake)
    fake.malformed = {"observations"}
    with pytest.raises(SourceUnavailableError, match=r"api\.observations\.get_many.*did not validate"):
        stats.from_langfuse("analyzer-v2", "helpfulness", client=fake.client())
    fake.malformed = {"scores"}
    sdk = fake.client()
    public = SimpleNamespace(observations=sdk.observations, scores=sdk.scores)
    with pytest.raises(SourceUnavailableError, match=r"api\.scores\.get_many.*did not validate"):
        stats.from_langfuse("analyzer-v2", "helpfulness", client=public)
    fake.malformed = set()
    fake.not_json = {"scores"}
    with pytest.raises(SourceUnavailableError, match=r"GET /api/public/v3/scores.*not JSON"):
        stats.from_langfuse("analyzer-v2", "helpfulness", client=sdk)


def test_cli_shows_one_line_not_a_traceback_when_the_sdk_changed(fake: FakeLangfuse) -> None:
    seed_experiment(fake)
    sdk = fake.client()
    changed = SimpleNamespace(
        observations=sdk.observations, scores=SimpleNamespace(get_many=_Raising(TypeError("changed")))
    )
    result = CliRunner().invoke(
        app, ["report", "-e", "analyzer-v2", "-s", "helpfulness"], obj={"langfuse_client": changed}
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "api.scores.get_many" in lines[0]
    fake.malformed = {"observations"}
    result = run(fake, "-e", "analyzer-v2", "-s", "helpfulness")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().startswith("error:") and "did not validate" in result.stderr


# ---- connection flags on `lvp ab report` ---------------------------------------------------------


@pytest.fixture
def connections(fake: FakeLangfuse, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every Connection a Langfuse client is made from; each client talks to ``fake``."""
    from langfuse_versioned_prompts.cli._common import Connection

    for name in ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LANGFUSE_BASE_URL", "LANGFUSE_HOST"):
        monkeypatch.delenv(name, raising=False)
    made: list[Any] = []

    def client(self: Connection) -> Any:
        if not self.has_langfuse():
            raise ConfigurationError("Langfuse keys are missing")
        made.append(self)
        return fake.client()

    monkeypatch.setattr(Connection, "langfuse_client", client)
    return made


CONNECTION = ["--langfuse-url", "http://langfuse.example", "--public-key", "pk-flag", "--secret-key", "sk-flag"]


@pytest.mark.parametrize("placement", ["before the command", "on the command"])
def test_connection_flags_work_before_lvp_ab_and_on_report(
    fake: FakeLangfuse, connections: list[Any], placement: str
) -> None:
    from langfuse_versioned_prompts.cli import app as lvp

    seed_experiment(fake)
    report = ["ab", "report", "-e", "analyzer-v2", "-s", "helpfulness", "--json"]
    args = [*CONNECTION, *report] if placement == "before the command" else [*report, *CONNECTION, "--timeout", "7"]
    result = CliRunner().invoke(lvp, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["winner"] == "B"
    used = connections[-1]
    assert (used.langfuse_url, used.public_key, used.secret_key) == ("http://langfuse.example", "pk-flag", "sk-flag")
    if placement == "on the command":
        assert used.timeout == 7.0


def test_report_flags_override_the_environment_and_missing_keys_are_one_line(
    fake: FakeLangfuse, connections: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_experiment(fake)
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-env")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-env")
    monkeypatch.setenv("LANGFUSE_BASE_URL", "http://env.example")
    result = CliRunner().invoke(app, ["report", "-e", "analyzer-v2", "-s", "helpfulness", "--public-key", "pk-cmd"])
    assert result.exit_code == 0, result.output
    used = connections[-1]
    assert (used.langfuse_url, used.public_key, used.secret_key) == ("http://env.example", "pk-cmd", "sk-env")
    monkeypatch.delenv("LANGFUSE_SECRET_KEY")
    missing = CliRunner().invoke(app, ["report", "-e", "analyzer-v2", "-s", "helpfulness", "--public-key", "pk"])
    assert missing.exit_code == 1
    assert missing.stderr.strip().startswith("error:") and len(missing.stderr.strip().splitlines()) == 1
    help_text = CliRunner().invoke(app, ["report", "--help"]).stdout
    for flag in ("--langfuse-url", "--public-key", "--secret-key", "--timeout"):
        assert flag in help_text


def test_the_trace_map_shares_one_value_per_variant_and_user(fake: FakeLangfuse) -> None:
    from langfuse_versioned_prompts.stats._langfuse_read import read_assignments

    seed_experiment(fake)  # two traces per user
    traces, _ = read_assignments(fake.client(), "analyzer-v2", None, None, None, None)
    assert len(traces) == 40
    assert traces["t3-0"] == ("A", ("user", "u3")) and traces["t3-0"] is traces["t3-1"]
    assert len({id(value) for value in traces.values()}) == 20


def test_report_flags_are_laid_over_the_parents_connection_when_it_passes_one(
    fake: FakeLangfuse, connections: list[Any]
) -> None:
    from langfuse_versioned_prompts.cli._common import Connection

    seed_experiment(fake)
    parent = Connection(public_key="pk-root", secret_key="sk-root", langfuse_url="http://root.example")
    args = ["report", "-e", "analyzer-v2", "-s", "helpfulness", "--langfuse-url", "http://cmd.example"]
    result = CliRunner().invoke(app, args, obj={"connection": parent})
    assert result.exit_code == 0, result.output
    used = connections[-1]
    assert (used.langfuse_url, used.public_key, used.secret_key) == ("http://cmd.example", "pk-root", "sk-root")
