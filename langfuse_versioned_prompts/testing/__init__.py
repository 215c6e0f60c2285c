"""Test bench for code that uses Langfuse prompts: a Langfuse API stand-in and a real Redis.

``LangfuseTestServer`` answers the Langfuse public API on 127.0.0.1 (prompts, scores, OTLP traces,
observations) with fault injection and request accounting; ``RemoteLangfuse`` offers the same data
helpers against a real Langfuse; ``RedisTestServer`` runs a throwaway ``redis-server``.
"""

from ._langfuse_faults import Fault, FaultHandle
from ._langfuse_otel import SpanRecord
from ._langfuse_remote import RemoteLangfuse
from ._langfuse_server import LangfuseTestServer, RecordedRequest
from ._redis_server import RedisTestServer, find_redis_server

__all__ = [
    "Fault",
    "FaultHandle",
    "LangfuseTestServer",
    "RecordedRequest",
    "RedisTestServer",
    "RemoteLangfuse",
    "SpanRecord",
    "find_redis_server",
]
