"""The Langfuse stand-in answers as a real Langfuse does, through the real SDK and raw HTTP.

Tests that only use the public API also run against a real Langfuse (see tests/conftest.py); the
ones that use stand-in features (faults, counts, captured data) then skip.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
from langfuse import Langfuse, propagate_attributes
from langfuse.api import NotFoundError

from langfuse_versioned_prompts import (
    ConfigurationError,
    PromptNotFoundError,
    SourceUnavailableError,
)
from langfuse_versioned_prompts.testing import Fault, LangfuseTestServer, RemoteLangfuse
from langfuse_versioned_prompts.testing._langfuse_faults import FaultBoard

PROMPTS = "/api/public/v2/prompts"
REFERENCE = Path(__file__).resolve().parents[1] / "reference"
"""The conformance probe and its output against a real Langfuse 4.16.0."""
T = TypeVar("T")


def unique(prefix: str) -> str:
    """A prompt name no earlier run used (tests may run against a real, persistent Langfuse)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def eventually(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 60.0) -> T:
    """Poll ``read`` until ``done`` (a real Langfuse ingests asynchronously; the stand-in at once)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


@pytest.fixture
def standin(langfuse_server: LangfuseTestServer) -> LangfuseTestServer:
    """The in-process stand-in itself; skips when the tests run against a real Langfuse."""
    if not isinstance(langfuse_server, LangfuseTestServer):
        pytest.skip(
            "needs the in-process stand-in (faults, counts or captured data); "
            "LVP_TEST_LANGFUSE_URL points at a real Langfuse"
        )
    return langfuse_server


@pytest.fixture
def http(langfuse_server: LangfuseTestServer) -> Iterator[httpx.Client]:
    """A raw HTTP client with the server's keys (no retries, short timeout)."""
    with httpx.Client(
        base_url=langfuse_server.url,
        auth=(langfuse_server.public_key, langfuse_server.secret_key),
        timeout=10,
    ) as client:
        yield client


# -- conformance -------------------------------------------------------------------------------


def test_conformance_probe_matches_real_langfuse(langfuse_server: LangfuseTestServer) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REFERENCE / "probe_prompt_api.py"),
            langfuse_server.url,
            langfuse_server.public_key,
            langfuse_server.secret_key,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    ours = result.stdout.splitlines()
    real = (REFERENCE / "probe-real-langfuse-4.16.0.jsonl").read_text().splitlines()
    assert len(ours) == len(real) == 27

    def without_dependency_ids(line: str) -> Any:
        body = json.loads(line)["body"]
        graph = body.get("resolutionGraph") if isinstance(body, dict) else None
        if graph:  # the one id that differs by nature: the key of the root in dependencies
            graph["dependencies"] = list(graph["dependencies"].values())
        return json.loads(line) | {"body": body}

    for mine, theirs in zip(ours, real, strict=True):
        assert without_dependency_ids(mine) == without_dependency_ids(theirs)


# -- prompts through the real SDK --------------------------------------------------------------


def test_sdk_reads_text_prompt_by_default_label_and_version(
    langfuse_server: LangfuseTestServer, langfuse_client: Langfuse
) -> None:
    name = unique("folder/sub qa")
    langfuse_server.create_prompt(name, "v1 {{q}}", labels=["production"], config={"model": "m"})
    langfuse_server.create_prompt(name, "v2 {{q}}", labels=["staging"], tags=["rag"])

    default = langfuse_client.get_prompt(name, cache_ttl_seconds=0, max_retries=0)
    staging = langfuse_client.get_prompt(name, label="staging", cache_ttl_seconds=0, max_retries=0)
    first = langfuse_client.get_prompt(name, version=1, cache_ttl_seconds=0, max_retries=0)

    assert (default.version, default.prompt, default.config) == (1, "v1 {{q}}", {"model": "m"})
    assert (staging.version, staging.labels) == (2, ["staging", "latest"])
    assert first.compile(q="why") == "v1 why"
    assert first.tags == ["rag"], "tags given on v2 replace the tags of every version"


def test_sdk_chat_prompt_with_placeholder(langfuse_client: Langfuse) -> None:
    name = unique("chat")
    messages = [{"role": "system", "content": "You are {{persona}}."}, {"type": "placeholder", "name": "history"}]
    langfuse_client.create_prompt(name=name, prompt=messages, type="chat", labels=["production"])

    prompt = langfuse_client.get_prompt(name, type="chat", cache_ttl_seconds=0, max_retries=0)

    assert prompt.version == 1
    compiled = prompt.compile(persona="a pirate", history=[{"role": "user", "content": "hi"}])
    assert compiled == [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "hi"}]


def test_sdk_create_update_list_delete(langfuse_client: Langfuse) -> None:
    name = unique("lifecycle")
    created = langfuse_client.create_prompt(
        name=name, prompt="a", labels=["production"], tags=["t1"], commit_message="first"
    )
    langfuse_client.create_prompt(name=name, prompt="b", labels=["staging"])
    langfuse_client.create_prompt(name=name, prompt="c")

    moved = langfuse_client.update_prompt(name=name, version=2, new_labels=["production"])
    listed = langfuse_client.api.prompts.list(name=name)
    by_tag = langfuse_client.api.prompts.list(tag="t1", name=name)
    by_label = langfuse_client.api.prompts.list(name=name, label="staging")

    assert (created.version, created.commit_message) == (1, "first")
    assert moved.labels == ["production", "staging"]
    assert [(p.name, p.versions, p.labels, p.tags) for p in listed.data] == [
        (name, [1, 2, 3], ["latest", "production", "staging"], ["t1"])
    ]
    assert listed.meta.total_items == 1 and by_tag.meta.total_items == 1
    assert by_label.data[0].versions == [2]

    langfuse_client.api.prompts.delete(name, version=3)
    after = langfuse_client.api.prompts.list(name=name).data[0]
    assert (after.versions, after.labels) == ([1, 2], ["latest", "production", "staging"])
    langfuse_client.api.prompts.delete(name, label="production")
    with pytest.raises(NotFoundError):
        langfuse_client.get_prompt(name, label="production", cache_ttl_seconds=0, max_retries=0)
    langfuse_client.api.prompts.delete(name)
    assert langfuse_client.api.prompts.list(name=name).data == []


def test_sdk_missing_prompt_is_not_found_and_bad_keys_unauthorized(
    langfuse_server: LangfuseTestServer, langfuse_client: Langfuse
) -> None:
    with pytest.raises(NotFoundError):
        langfuse_client.get_prompt(unique("absent"), cache_ttl_seconds=0, max_retries=0)
    assert langfuse_client.auth_check() is True

    answer = httpx.get(f"{langfuse_server.url}{PROMPTS}", auth=("pk-nope", "sk-nope"), timeout=10)
    assert (answer.status_code, answer.json()) == (
        401,
        {
            "message": "Invalid credentials. Confirm that you've configured the correct host.",
            "error": "UnauthorizedError",
        },
    )


# -- prompt rules through raw HTTP -------------------------------------------------------------


def test_create_rules_labels_types_and_tags(http: httpx.Client) -> None:
    name = unique("rules")
    bad = http.post(PROMPTS, json={"name": name, "prompt": "x", "labels": ["Bad Label!"]})
    assert bad.status_code == 400
    assert bad.json()["message"] == "Invalid request data"
    assert [i["path"] for i in bad.json()["error"]] == [["labels", 0]]
    assert bad.json()["error"][0]["message"] == (
        "Label must be lowercase alphanumeric with optional underscores, hyphens, or periods"
    )

    first = http.post(PROMPTS, json={"name": name, "prompt": "x"}).json()
    assert (first["config"], first["tags"], first["labels"], first["commitMessage"]) == ({}, [], ["latest"], None)
    changed = http.post(PROMPTS, json={"name": name, "type": "chat", "prompt": [{"role": "user", "content": "x"}]})
    assert changed.status_code == 400 and changed.json()["error"] == "InvalidRequestError"

    latest = http.patch(f"{PROMPTS}/{name}/versions/1", json={"newLabels": ["latest"]})
    assert latest.status_code == 400
    assert latest.json()["error"][0]["message"] == ("Label 'latest' is always assigned to the latest prompt version")
    missing = http.patch(f"{PROMPTS}/{name}/versions/9", json={"newLabels": ["production"]})
    assert missing.json() == {
        "message": f"Prompt '{name}' version 9 not found in project",
        "error": "LangfuseNotFoundError",
    }


def test_composed_prompt_resolves_and_follows_label_moves(http: httpx.Client) -> None:
    base, ref = unique("base"), unique("ref")
    http.post(PROMPTS, json={"name": base, "prompt": "one", "labels": ["production"]})
    http.post(PROMPTS, json={"name": base, "prompt": "two"})
    tag = f"@@@langfusePrompt:name={base}|label=production@@@"
    root = http.post(
        PROMPTS,
        json={"name": ref, "prompt": f"[{tag}] [@@@langfusePrompt:name={base}|version=2@@@]", "labels": ["production"]},
    ).json()

    resolved = http.get(f"{PROMPTS}/{quote(ref, safe='')}").json()
    raw = http.get(f"{PROMPTS}/{quote(ref, safe='')}", params={"resolve": "false"}).json()
    assert resolved["prompt"] == "[one] [two]"
    assert resolved["resolutionGraph"]["root"] == {"name": ref, "version": 1, "id": root["id"]}
    deps = resolved["resolutionGraph"]["dependencies"][root["id"]]
    assert [(d["name"], d["version"]) for d in deps] == [(base, 1), (base, 2)]
    assert (raw["prompt"], raw["resolutionGraph"]) == (root["prompt"], None)

    http.patch(f"{PROMPTS}/{quote(base, safe='')}/versions/2", json={"newLabels": ["production"]})
    assert http.get(f"{PROMPTS}/{quote(ref, safe='')}").json()["prompt"] == "[two] [two]"

    blocked = http.delete(f"{PROMPTS}/{quote(base, safe='')}", params={"version": "2"})
    assert blocked.status_code == 400 and "depends on" in blocked.json()["message"]
    dangling = http.post(
        PROMPTS, json={"name": unique("dangling"), "prompt": "@@@langfusePrompt:name=nothing-here|label=x@@@"}
    )
    assert dangling.json() == {
        "message": "Prompt dependency not found: nothing-here - label x",
        "error": "InvalidRequestError",
    }


def test_helpers_arrange_data_and_raise_library_errors(standin: LangfuseTestServer) -> None:
    name = unique("helpers")
    standin.create_prompt(name, "a", labels=["production"])
    standin.create_prompt(name, "b")
    standin.move_labels(name, 2, ["production"])

    assert standin.get_prompt(name)["version"] == 2
    with pytest.raises(ConfigurationError, match="Label must be lowercase"):
        standin.create_prompt(name, "c", labels=["UPPER"])
    with pytest.raises(PromptNotFoundError, match="version 7 not found"):
        standin.move_labels(name, 7, ["production"])


def test_remote_helpers_work_over_http(standin: LangfuseTestServer) -> None:
    remote = RemoteLangfuse(standin.url + "/", standin.public_key, standin.secret_key)
    name = unique("remote/x")
    remote.create_prompt(name, "a", labels=["production"], tags=["t"])
    remote.create_prompt(name, "b")
    assert remote.move_labels(name, 2, ["production"])["labels"] == ["production", "latest"]
    assert remote.get_prompt(name)["prompt"] == "b"
    assert remote.get_prompt(name, version=1, resolve=False)["tags"] == ["t"]
    remote.delete_prompt(name, version=1)
    with pytest.raises(PromptNotFoundError):
        remote.get_prompt(name, version=1)
    with pytest.raises(ConfigurationError, match="400"):
        remote.create_prompt(name, "c", labels=["Not OK"])
    with pytest.raises(SourceUnavailableError, match="401"):
        RemoteLangfuse(standin.url, "pk-x", "sk-y").get_prompt(name)


def test_remote_create_sends_only_the_fields_given(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[Any] = []

    class Answer(io.BytesIO):
        def __init__(self) -> None:
            super().__init__(b'{"version": 1}')

    def fake_urlopen(request: Any, timeout: float) -> Answer:
        sent.append(json.loads(request.data))
        return Answer()

    monkeypatch.setattr("langfuse_versioned_prompts.testing._langfuse_remote.urlopen", fake_urlopen)
    remote = RemoteLangfuse("http://127.0.0.1:1", "pk", "sk")
    remote.create_prompt("p", "a")
    remote.create_prompt("p", "b", config={"m": 1}, tags=[], commit_message="c")

    # a real Langfuse keeps an explicit "config": null; the stand-in and the default give {}
    assert sent == [
        {"name": "p", "prompt": "a", "type": "text", "labels": []},
        {"name": "p", "prompt": "b", "type": "text", "labels": [], "config": {"m": 1},
         "commitMessage": "c", "tags": []},
    ]


# -- scores ------------------------------------------------------------------------------------


@pytest.mark.langfuse_tracing
def test_sdk_scores_are_stored_and_read_back_v3(langfuse_client: Langfuse) -> None:
    trace_id = langfuse_client.create_trace_id()
    langfuse_client.create_score(name="quality", value=0.75, trace_id=trace_id, comment="ok")
    langfuse_client.create_score(name="thumbs", value=1, trace_id=trace_id, data_type="BOOLEAN")
    langfuse_client.create_score(name="label", value="good", trace_id=trace_id, data_type="CATEGORICAL")
    langfuse_client.flush()

    page = eventually(
        lambda: langfuse_client.api.scores.get_many(trace_id=trace_id, fields="details,subject"),
        lambda p: len(p.data) == 3,
    )
    by_name = {s.name: s for s in page.data}
    assert by_name["quality"].value == 0.75 and by_name["quality"].comment == "ok"
    assert by_name["thumbs"].value is True and by_name["label"].value == "good"
    assert by_name["quality"].subject is not None and by_name["quality"].subject.id == trace_id
    numeric = langfuse_client.api.scores.get_many(trace_id=trace_id, data_type="NUMERIC")
    assert [s.name for s in numeric.data] == ["quality"]


def test_scores_single_post_filters_and_cursor(standin: LangfuseTestServer, http: httpx.Client) -> None:
    trace_id = uuid.uuid4().hex
    for index in range(5):
        answer = http.post(
            "/api/public/scores",
            json={"name": "n", "value": index, "traceId": trace_id, "timestamp": f"2026-01-0{index + 1}T00:00:00Z"},
        )
        assert answer.status_code == 200 and answer.json()["id"]
    assert http.get("/api/public/v3/scores", params={"limit": 101}).status_code == 400

    first = http.get("/api/public/v3/scores", params={"traceId": trace_id, "limit": 3}).json()
    rest = http.get("/api/public/v3/scores", params={"traceId": trace_id, "cursor": first["meta"]["cursor"]}).json()
    window = http.get(
        "/api/public/v3/scores",
        params={"traceId": trace_id, "fromTimestamp": "2026-01-02T00:00:00Z", "toTimestamp": "2026-01-04T00:00:00Z"},
    ).json()

    assert [s["value"] for s in first["data"] + rest["data"]] == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert "cursor" not in rest["meta"]
    assert [s["value"] for s in window["data"]] == [2.0, 1.0]
    assert len(standin.scores) == 5


# -- traces and observations over OTLP ---------------------------------------------------------


@pytest.mark.langfuse_tracing
def test_trace_attributes_on_any_span_merge_into_the_trace(
    langfuse_server: LangfuseTestServer, langfuse_client: Langfuse
) -> None:
    name = unique("linked")
    langfuse_server.create_prompt(name, "hi", labels=["production"])
    prompt = langfuse_client.get_prompt(name, cache_ttl_seconds=0, max_retries=0)
    tags = ["ab:exp=B", f"prompt:{name}@v1"]
    with langfuse_client.start_as_current_observation(name="chain", as_type="span") as root:
        with (
            propagate_attributes(user_id="user-1", session_id="s-1", trace_name="ab-run"),
            langfuse_client.start_as_current_observation(
                name="llm", as_type="generation", prompt=prompt, metadata={"variant": "B"}
            ) as child,
        ):
            # what a callback does from inside a chain: trace-level data on a child span
            child._otel_span.set_attribute("langfuse.trace.tags", tags)
            child._otel_span.set_attribute("langfuse.trace.metadata.ab_variant", '"B"')
        trace_id = root.trace_id
    langfuse_client.flush()

    wrapper = langfuse_client.api._client_wrapper.httpx_client  # v5 has no api.trace.get
    trace = eventually(
        lambda: wrapper.request(f"api/public/traces/{trace_id}", method="GET"), lambda r: r.status_code == 200
    ).json()
    assert (trace["name"], trace["userId"], trace["sessionId"]) == ("ab-run", "user-1", "s-1")
    assert trace["tags"] == tags
    assert trace["metadata"]["ab_variant"] == "B"
    llm = next(o for o in trace["observations"] if o["name"] == "llm")
    assert (llm["type"], llm["promptName"], llm["promptVersion"]) == ("GENERATION", name, 1)

    observations = eventually(
        lambda: langfuse_client.api.observations.get_many(
            trace_id=trace_id, fields="core,basic,prompt,metadata,trace_context"
        ),
        lambda p: len(p.data) == 2,
    )
    llm_v2 = next(o for o in observations.data if o.name == "llm")
    assert (llm_v2.prompt_name, llm_v2.prompt_version, llm_v2.user_id) == (name, 1, "user-1")
    assert llm_v2.tags == tags and llm_v2.metadata == {"variant": "B"}
    by_prompt = langfuse_client.api.observations.get_many(
        filter=json.dumps(
            [
                {"type": "string", "column": "promptName", "operator": "=", "value": name},
                {"type": "number", "column": "promptVersion", "operator": "=", "value": 1},
            ]
        )
    )
    assert [(o.trace_id, o.name) for o in by_prompt.data] == [(trace_id, "llm")]


@pytest.mark.langfuse_tracing
def test_observation_filters_fields_and_paging(standin: LangfuseTestServer, langfuse_client: Langfuse) -> None:
    trace_ids = []
    for variant in ("A", "B", "B"):
        with langfuse_client.start_as_current_observation(name="root", as_type="span") as root:
            with propagate_attributes(tags=[f"ab:exp={variant}", "ab"]):
                langfuse_client.start_observation(name="gen", as_type="generation", metadata={"variant": variant}).end()
            trace_ids.append(root.trace_id)
    langfuse_client.flush()
    api = langfuse_client.api.observations

    def matching(*conditions: dict[str, Any]) -> list[str]:
        return sorted(o.trace_id or "" for o in api.get_many(filter=json.dumps(list(conditions))).data)

    tag_b = {"type": "arrayOptions", "column": "traceTags", "operator": "any of", "value": ["ab:exp=B"]}
    both = {"type": "arrayOptions", "column": "traceTags", "operator": "all of", "value": ["ab", "ab:exp=A"]}
    meta = {"type": "stringObject", "column": "metadata", "key": "variant", "operator": "=", "value": "B"}
    gens = {"type": "string", "column": "type", "operator": "=", "value": "GENERATION"}
    assert matching(tag_b, gens) == sorted(trace_ids[1:])
    assert matching(both, gens) == [trace_ids[0]]
    assert matching(meta) == sorted(trace_ids[1:])

    first = api.get_many(limit=4)
    second = api.get_many(limit=4, cursor=first.meta.cursor)
    assert len(first.data) == 4 and len(second.data) == 2 and second.meta.cursor is None
    core = api.get_many(type="GENERATION", fields="core").data[0]
    assert core.type == "GENERATION" and core.name is None
    assert len(standin.observations) == 6


def test_otlp_json_and_gzip_bodies_are_accepted(standin: LangfuseTestServer, http: httpx.Client) -> None:
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": []},
                "scopeSpans": [
                    {
                        "scope": {"name": "t"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "json-span",
                                "startTimeUnixNano": "1767225600000000000",
                                "endTimeUnixNano": "1767225601000000000",
                                "attributes": [
                                    {
                                        "key": "langfuse.trace.tags",
                                        "value": {"arrayValue": {"values": [{"stringValue": "x"}]}},
                                    },
                                    {"key": "langfuse.observation.prompt.name", "value": {"stringValue": "p"}},
                                    {"key": "langfuse.observation.prompt.version", "value": {"intValue": "3"}},
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    answer = http.post(
        "/api/public/otel/v1/traces",
        content=gzip.compress(json.dumps(body).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )

    assert (answer.status_code, answer.json()) == (200, {})
    trace = http.get(f"/api/public/traces/{trace_id}").json()
    assert (trace["name"], trace["tags"], trace["latency"]) == ("json-span", ["x"], 1.0)
    assert (trace["observations"][0]["promptName"], trace["observations"][0]["promptVersion"]) == ("p", 3)
    assert [(t["id"], t["tags"]) for t in standin.traces] == [(trace_id, ["x"])]
    assert standin.spans[0].attributes["langfuse.observation.prompt.version"] == 3
    assert http.get(f"/api/public/traces/{uuid.uuid4().hex}").json() == {
        "message": "Trace not found within authorized project",
        "error": "LangfuseNotFoundError",
    }


# -- request accounting and faults -------------------------------------------------------------


def test_request_accounting(standin: LangfuseTestServer, http: httpx.Client) -> None:
    standin.create_prompt("counted", "x", labels=["production"])
    http.get(f"{PROMPTS}/counted")
    http.get(f"{PROMPTS}/missing")
    http.get("/api/public/projects")

    assert standin.count("GET", PROMPTS) == 2
    assert standin.count("GET", PROMPTS, status=404) == 1
    assert [(r.method, r.path, r.status) for r in standin.requests][-1] == ("GET", "/api/public/projects", 200)
    standin.reset_counts()
    assert standin.count() == 0


def test_status_faults_are_scoped_and_counted(standin: LangfuseTestServer, http: httpx.Client) -> None:
    standin.create_prompt("p", "x", labels=["production"])
    with standin.inject(Fault.status(500), times=2) as fault:
        assert http.get("/api/public/projects").status_code == 200, "other paths are not hit"
        assert [http.get(f"{PROMPTS}/p").status_code for _ in range(3)] == [500, 500, 200]
        assert fault.hits == 2 and not fault.active

    with standin.inject(Fault.rate_limited(retry_after=3)):
        limited = http.get(f"{PROMPTS}/p")
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
    assert http.get(f"{PROMPTS}/p").status_code == 200, "the context manager removed the fault"


def test_latency_malformed_and_dropped(standin: LangfuseTestServer, http: httpx.Client) -> None:
    standin.create_prompt("p", "x", labels=["production"])
    standin.inject(Fault.latency(0.3), times=1)
    started = time.monotonic()
    assert http.get(f"{PROMPTS}/p").status_code == 200
    assert time.monotonic() - started >= 0.3

    standin.inject(Fault.malformed_json(), times=1)
    bad = http.get(f"{PROMPTS}/p")
    assert bad.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        bad.json()

    standin.inject(Fault.drop_connection(), times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(f"{PROMPTS}/p")
    assert http.get(f"{PROMPTS}/p").status_code == 200


def _wait_for_request(server: LangfuseTestServer, path: str) -> None:
    deadline = time.monotonic() + 10
    while server.count("GET", path) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # bounded readiness polling: the request has reached the server


def test_hang_until_cleared_then_answers(standin: LangfuseTestServer, http: httpx.Client) -> None:
    standin.create_prompt("p", "x", labels=["production"])
    standin.inject(Fault.hang())
    with pytest.raises(httpx.ReadTimeout):
        http.get(f"{PROMPTS}/p", timeout=0.2)

    standin.reset_counts()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        held = pool.submit(http.get, f"{PROMPTS}/p")
        _wait_for_request(standin, f"{PROMPTS}/p")
        assert not held.done()
        standin.clear_faults()
        assert held.result(timeout=10).status_code == 200
    assert [r.status for r in standin.requests] == [200]


def test_stop_does_not_deadlock_on_a_hung_request_and_start_keeps_data(
    standin: LangfuseTestServer,
) -> None:
    standin.create_prompt("p", "x", labels=["production"])
    url = standin.url
    standin.inject(Fault.hang())
    auth = (standin.public_key, standin.secret_key)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        held = pool.submit(httpx.get, f"{url}{PROMPTS}/p", auth=auth, timeout=10)
        _wait_for_request(standin, f"{PROMPTS}/p")
        started = time.monotonic()
        standin.stop()
        assert time.monotonic() - started < 5
        with pytest.raises(httpx.HTTPError):
            held.result(timeout=10)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}{PROMPTS}/p", auth=auth, timeout=2)

    standin.start()
    assert standin.url == url
    with pytest.raises(httpx.ReadTimeout):  # faults outlive a restart, like the data
        httpx.get(f"{url}{PROMPTS}/p", auth=auth, timeout=0.2)
    standin.clear_faults()
    assert httpx.get(f"{url}{PROMPTS}/p", auth=auth, timeout=5).json()["prompt"] == "x"


def test_no_request_is_held_while_the_server_stops() -> None:
    """A hang met by a request that arrives (on a kept-alive connection) while ``stop()`` runs."""
    board = FaultBoard()
    board.add(Fault.hang(), times=None, path_prefix=PROMPTS, method=None)
    held = board.plan("GET", f"{PROMPTS}/p").release
    board.close()  # what stop() does
    late = board.plan("GET", f"{PROMPTS}/p").release
    assert held is not None and late is not None
    assert held.is_set() and late.is_set(), "a request planned while stopping is released at once"

    board.open()  # what start() does: the fault holds requests again
    again = board.plan("GET", f"{PROMPTS}/p").release
    assert again is not None and not again.is_set()
    board.clear()
    assert again.is_set()


def test_chunked_request_body(standin: LangfuseTestServer, http: httpx.Client) -> None:
    name = unique("chunked")
    body = json.dumps({"name": name, "prompt": "streamed"}).encode()
    answer = http.post(PROMPTS, content=iter([body[:10], body[10:]]), headers={"Content-Type": "application/json"})
    assert answer.status_code == 201 and standin.get_prompt(name, label="latest")["prompt"] == "streamed"


def test_public_names_are_pinned() -> None:
    import langfuse_versioned_prompts.testing as testing

    assert sorted(testing.__all__) == [
        "Fault",
        "FaultHandle",
        "LangfuseTestServer",
        "RecordedRequest",
        "RedisTestServer",
        "RemoteLangfuse",
        "SpanRecord",
        "find_redis_server",
    ]
