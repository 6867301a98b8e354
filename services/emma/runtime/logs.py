"""Structured JSON logs that carry the current trace and span ids."""

from __future__ import annotations

import logging
import os
import sys

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter


class _TraceContextFilter(logging.Filter):
    """Adds trace_id and span_id of the active span, so a log line leads to its trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


def configure_logging(service: str, level: str | None = None) -> None:
    """Sends JSON log lines to stderr, tagged with the service name and trace context."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_TraceContextFilter())
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("EMMA_LOG_LEVEL", "INFO")).upper())
