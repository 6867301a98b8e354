"""Redis command latency as a metric, measured from the Redis client spans as they end."""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.metrics import Meter
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from emma.runtime.metrics import meter

# The Redis instrumentation names each span after its command (GET, EVALSHA, a pipeline's
# commands joined by spaces); the first word keeps the label set small, and a pipeline is
# labelled as one.
_MAX_OPERATION_CHARS = 32


class RedisLatencyProcessor(SpanProcessor):
    """Records `emma.redis.duration` (seconds, by command) for every Redis client span.

    A span processor rather than the instrumentation's response hook: the hook is not called
    for pipelines' requests nor for commands that fail, and the span holds the exact start and
    end of each command. Spans the sampler drops are not seen, so at a ratio r the histogram
    holds about r of the commands (the latency distribution stays the same).
    """

    def __init__(self, on: Meter | None = None) -> None:
        self._duration = (on or meter()).create_histogram(
            "emma.redis.duration", unit="s", description="time of a Redis command or pipeline"
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        if attributes.get("db.system") != "redis" and attributes.get("db.system.name") != "redis":
            return
        if span.start_time is None or span.end_time is None:
            return
        operation = (span.name.split(" ", 1)[0] or "unknown")[:_MAX_OPERATION_CHARS]
        failed = span.status.status_code.name == "ERROR"
        self._duration.record(
            (span.end_time - span.start_time) / 1e9,
            {
                "db.operation": operation,
                "pipeline": "db.redis.pipeline_length" in attributes,
                "error": failed,
            },
        )

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
