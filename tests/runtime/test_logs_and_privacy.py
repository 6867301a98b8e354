"""JSON logs carry trace ids; pseudonyms are stable, keyed and not the identifier."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from emma.runtime.logs import configure_logging
from emma.runtime.privacy import pseudonymise


@pytest.fixture
def captured_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("emma-test", "INFO")
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_log_lines_are_json_with_service_and_trace_ids(captured_log: io.StringIO) -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("emma.test").info("decided", extra={"emma.offer_id": "o-1"})
        expected_trace = format(span.get_span_context().trace_id, "032x")
    line = json.loads(captured_log.getvalue().strip().splitlines()[-1])
    assert line["service"] == "emma-test"
    assert line["message"] == "decided"
    assert line["level"] == "INFO"
    assert line["trace_id"] == expected_trace
    assert len(line["span_id"]) == 16
    assert line["emma.offer_id"] == "o-1"


def test_log_lines_outside_a_span_have_no_trace_id(captured_log: io.StringIO) -> None:
    logging.getLogger("emma.test").warning("idle")
    line = json.loads(captured_log.getvalue().strip().splitlines()[-1])
    assert "trace_id" not in line


def test_pseudonyms_are_stable_keyed_and_hide_the_identifier() -> None:
    first = pseudonymise("anna@example.com", b"key-1")
    assert first == pseudonymise("anna@example.com", b"key-1")
    assert first != pseudonymise("anna@example.com", b"key-2")
    assert first != pseudonymise("ben@example.com", b"key-1")
    assert "anna" not in first
    assert first.startswith("p-")
    assert len(first) == 18
