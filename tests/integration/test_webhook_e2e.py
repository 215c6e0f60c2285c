"""Fleet invalidation end to end: two resolver processes, a label move, one signed webhook.

Both processes cache for 10 minutes (L1 and L2 TTL 600 s) and subscribe to the invalidation
channel. After the label moves at the Langfuse stand-in, unsigned, forged and replayed webhooks
change nothing; the signed one makes both processes serve the new version within one second.
This is an end-to-end latency bound (wall time from the POST to the first line with the new
version), not a benchmark.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from langfuse_versioned_prompts import PromptKey, RedisCache
from langfuse_versioned_prompts.testing import LangfuseTestServer
from langfuse_versioned_prompts.webhook import WebhookServer, sign, webhook_app

pytestmark = pytest.mark.redis
SECRET = "lf-whsec_" + "c0" * 32
LATENCY_BOUND_SECONDS = 1.0

WORKER = textwrap.dedent("""\
    import sys, time
    from langfuse import Langfuse
    from langfuse_versioned_prompts import LangfuseSource, MemoryCache, PromptResolver, RedisCache
    from langfuse_versioned_prompts._invalidation import InvalidationSubscriber

    url, public_key, secret_key, redis_url, name = sys.argv[1:6]
    client = Langfuse(public_key=public_key, secret_key=secret_key, base_url=url,
                      tracing_enabled=False)
    resolver = PromptResolver(memory=MemoryCache(ttl=600),
                              redis=RedisCache.from_url(redis_url, ttl=600),
                              langfuse=LangfuseSource(client))
    subscriber = InvalidationSubscriber(resolver, redis_url).start()
    if not subscriber.wait_ready(10):
        print("not subscribed", flush=True)
        sys.exit(1)
    print("ready", flush=True)
    while True:
        prompt = resolver.get(name, label="production")
        print(f"version {prompt.version} {prompt.source}", flush=True)
        time.sleep(0.005)
""")


@dataclass
class Worker:
    """One resolver process; a thread stamps each stdout line with the monotonic time it arrived."""

    process: subprocess.Popen[str]
    lines: queue.Queue[tuple[float, str]] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put((time.monotonic(), line.strip()))
        self.lines.put((time.monotonic(), "<exit>"))

    def wait_for(self, prefix: str, timeout: float, since: float = 0.0) -> tuple[float, list[str]]:
        """Time of the first line starting with ``prefix`` (arrived after ``since``), and the lines read."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                at, line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} line within {timeout}s; last: {seen[-5:]}") from None
            if line == "<exit>":
                raise AssertionError(f"worker exited: {seen[-5:]} {self.process.stderr.read()}")  # type: ignore[union-attr]
            seen.append(line)
            if at >= since and line.startswith(prefix):
                return at, seen

    def drain(self) -> list[str]:
        """Every line that arrived so far."""
        found = []
        while True:
            try:
                found.append(self.lines.get_nowait()[1])
            except queue.Empty:
                return found


@pytest.fixture
def workers(langfuse_server: LangfuseTestServer, redis_url: str, tmp_path: Path) -> Iterator[tuple[str, list[Worker]]]:
    name = f"t{uuid.uuid4().hex[:8]}/fleet"
    langfuse_server.create_prompt(name, "old {{x}}", labels=["production"])
    langfuse_server.create_prompt(name, "new {{x}}", labels=["staging"])
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "LVP_"))}
    started = [
        Worker(
            subprocess.Popen(
                [
                    sys.executable,
                    "-u",
                    str(script),
                    langfuse_server.url,
                    langfuse_server.public_key,
                    langfuse_server.secret_key,
                    redis_url,
                    name,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
        for _ in range(2)
    ]
    try:
        yield name, started
    finally:
        for worker in started:
            worker.process.kill()
            worker.process.wait(timeout=10)


def test_both_processes_serve_the_new_version_within_a_second_of_the_signed_webhook(
    langfuse_server: LangfuseTestServer, redis_url: str, workers: tuple[str, list[Worker]]
) -> None:
    name, fleet = workers
    for worker in fleet:
        worker.wait_for("ready", timeout=30)
        worker.wait_for("version 1", timeout=30)

    langfuse_server.move_labels(name, 2, ["production"])  # the change the webhook reports
    cache = RedisCache.from_url(redis_url)
    key = cache.key(PromptKey.create(name, label="production"))
    client = redis.Redis.from_url(redis_url)
    server = WebhookServer(webhook_app(SECRET, redis_url)).start()
    try:
        body = (
            '{"id":"e1","timestamp":"2026-01-01T00:00:00.000Z","type":"prompt-version",'
            '"apiVersion":"v1","action":"updated","prompt":{"id":"p","name":"' + name + '",'
            '"version":2,"labels":["production","staging","latest"],"type":"text"}}'
        ).encode()
        other = body.replace(b'"e1"', b'"e2"')
        bad = {
            "unsigned": None,
            "forged": sign(SECRET, other),  # a valid signature of a different body
            "wrong secret": sign("lf-whsec_" + "11" * 32, body),
            "replayed": sign(SECRET, body, timestamp=int(time.time()) - 600),
        }
        for what, signature in bad.items():
            headers = {"content-type": "application/json"}
            if signature is not None:
                headers["x-langfuse-signature"] = signature
            response = httpx.post(server.url, content=body, headers=headers, timeout=5)
            assert response.status_code == 401, (what, response.text)

        checked_from = time.monotonic()
        for worker in fleet:
            worker.drain()
        time.sleep(0.3)  # give a wrongly accepted request time to show; then nothing may have changed
        for worker in fleet:
            lines = worker.drain()
            assert lines and all(line.startswith("version 1") for line in lines), lines[-5:]
        assert client.exists(key) and time.monotonic() > checked_from

        posted_at = time.monotonic()
        response = httpx.post(
            server.url,
            content=body,
            timeout=5,
            headers={"content-type": "application/json", "x-langfuse-signature": sign(SECRET, body)},
        )
        assert response.status_code == 200, response.text
        assert response.json()["receivers"] == 2
        latencies = [worker.wait_for("version 2", timeout=5, since=posted_at)[0] - posted_at for worker in fleet]
    finally:
        server.stop()
        client.close()
    assert max(latencies) < LATENCY_BOUND_SECONDS, latencies
