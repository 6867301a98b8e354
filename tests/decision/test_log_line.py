"""A decision's DSJSON line in its log entry: compressed, read back by any client, and
plain lines of entries written before still read."""

from __future__ import annotations

import json

import pytest

from emma.decision.log_line import (
    LINE_FIELD,
    PLAIN_LINE_FIELD,
    WINDOW_BITS,
    line_of,
    line_text,
    pack_line,
)

# A line of the benchmark catalog's shape: fifty actions, each a few namespaces.
ACTIONS = [
    {
        "A": {f"offer=offer-{i % 25}": 1.0, f"cat=cat-{i % 7}": 1.0, "discount": 20.0},
        "H": {f"ch={('receipt', 'push', 'in_app')[i % 3]}": 1.0},
        "M": {"match=category": 1.0},
    }
    for i in range(50)
]
LINE = json.dumps(
    {
        "_label_cost": 0.0,
        "EventId": "e" * 32,
        "a": list(range(1, 51)),
        "p": [0.02] * 50,
        "c": {"U": {"profile=known": 1.0, "aff=cheese": 0.8}, "_multi": ACTIONS},
        "_emma": {"customer": "p-0123456789abcdef", "reasons": []},
    },
    separators=(",", ":"),
)


def test_a_packed_line_reads_back_as_it_was_from_str_and_bytes_fields() -> None:
    packed = pack_line(LINE)
    assert packed.isascii()  # a text field: clients that decode responses read it too
    assert line_text({LINE_FIELD: packed}) == LINE
    assert line_text({LINE_FIELD.encode(): packed.encode()}) == LINE
    assert line_of({LINE_FIELD: packed}) == json.loads(LINE)


def test_the_scored_actions_repeat_so_the_line_shrinks_several_times() -> None:
    assert len(pack_line(LINE)) * 4 < len(LINE)


def test_a_plain_line_of_an_entry_written_before_is_read() -> None:
    assert line_text({PLAIN_LINE_FIELD: LINE}) == LINE
    assert line_of({PLAIN_LINE_FIELD.encode(): LINE.encode()})["EventId"] == "e" * 32
    # When both are there, the compressed line is the entry's.
    assert line_text({LINE_FIELD: pack_line(LINE), PLAIN_LINE_FIELD: "{}"}) == LINE


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"event_id": "e"}, "no zjson"),
        ({LINE_FIELD: "not base64!"}, "zjson: not a compressed line"),
        ({LINE_FIELD: "aGVsbG8="}, "zjson: not a compressed line"),  # base64, not zlib
        ({PLAIN_LINE_FIELD: "{"}, "not JSON"),
        ({LINE_FIELD: pack_line("[1, 2]")}, "not a JSON object"),
    ],
)
def test_an_entry_without_a_readable_line_is_refused_by_name(
    fields: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        line_of(fields)


def test_a_line_longer_than_the_compression_window_reads_back() -> None:
    # Lines far longer than the 16 KB window (a catalog scoring hundreds of actions).
    long_line = json.dumps({"c": {"_multi": ACTIONS * 20}}, separators=(",", ":"))
    assert len(long_line) > 4 * 2**WINDOW_BITS
    assert line_text({LINE_FIELD: pack_line(long_line)}) == long_line
