"""A trace as a terminal waterfall: one line per span, indented under its parent, with a bar."""

from __future__ import annotations

from emma.traces.store import SpanRecord, TraceSummary, summarise

BAR_WIDTH = 32
_SERVICE_WIDTH = 16
_NAME_WIDTH = 48
# Shown after the bar: what an operator asks of a span. emma.keep only steers sampling.
_HIDDEN = {"emma.keep"}
_MAX_ATTRIBUTE_CHARS = 60


def _ms(nanoseconds: int) -> str:
    return f"{nanoseconds / 1e6:.1f} ms"


def _key_attributes(span: SpanRecord) -> str:
    shown = []
    for key, value in sorted(span.attributes.items()):
        if key.startswith("emma.") and key not in _HIDDEN and value != "":
            shown.append(f"{key.removeprefix('emma.')}={value[:_MAX_ATTRIBUTE_CHARS]}")
    status = span.attributes.get("rpc.grpc.status_code", "0")
    if status != "0":
        shown.append(f"grpc_status={status}")
    return " ".join(shown)


def _bar(span: SpanRecord, start_ns: int, total_ns: int) -> str:
    total = max(total_ns, 1)
    left = min(BAR_WIDTH - 1, int((span.start_ns - start_ns) * BAR_WIDTH / total))
    length = max(1, min(BAR_WIDTH - left, round(span.duration_ns * BAR_WIDTH / total)))
    return " " * left + ("!" if span.error else "█") * length + " " * (BAR_WIDTH - left - length)


def ordered(spans: list[SpanRecord]) -> list[tuple[int, SpanRecord]]:
    """(depth, span) in waterfall order: each span after its parent, siblings by start time.

    Spans whose parent is missing (not exported, or still in flight) start trees of their own.
    """
    ids = {span.span_id for span in spans}
    children: dict[str, list[SpanRecord]] = {}
    roots = []
    for span in spans:
        if span.parent_span_id and span.parent_span_id in ids:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)
    out: list[tuple[int, SpanRecord]] = []
    stack = [(0, span) for span in sorted(roots, key=lambda s: s.start_ns, reverse=True)]
    while stack:
        depth, span = stack.pop()
        out.append((depth, span))
        below = sorted(children.get(span.span_id, ()), key=lambda s: s.start_ns, reverse=True)
        stack.extend((depth + 1, child) for child in below)
    return out


def render(spans: list[SpanRecord]) -> str:
    """The waterfall of one trace's spans, headed by its id, span count and duration."""
    if not spans:
        return "(no spans)"
    summary = summarise(spans[0].trace_id, spans)
    lines = [
        f"trace {summary.trace_id}  {summary.spans} spans  {len(summary.services)} services  "
        f"{_ms(summary.duration_ns)}{'  ERROR' if summary.error else ''}",
        f"{'service':<{_SERVICE_WIDTH}} {'span':<{_NAME_WIDTH}} {'start':>9}  "
        f"{'':<{BAR_WIDTH}} {'duration':>9}  attributes",
    ]
    for depth, span in ordered(spans):
        name = ("  " * depth + span.name)[:_NAME_WIDTH]
        lines.append(
            f"{span.service[:_SERVICE_WIDTH]:<{_SERVICE_WIDTH}} {name:<{_NAME_WIDTH}} "
            f"{_ms(span.start_ns - summary.start_ns):>9}  "
            f"{_bar(span, summary.start_ns, summary.duration_ns)} {_ms(span.duration_ns):>9}  "
            f"{_key_attributes(span)}".rstrip()
        )
    return "\n".join(lines)


def render_list(summaries: list[TraceSummary]) -> str:
    """One line per trace: id, duration, span count, services and root span."""
    if not summaries:
        return "(no traces kept yet)"
    lines = [f"{'trace id':<32}  {'duration':>10}  {'spans':>5}  root"]
    for summary in summaries:
        flag = "  ERROR" if summary.error else ""
        lines.append(
            f"{summary.trace_id}  {_ms(summary.duration_ns):>10}  {summary.spans:>5}  "
            f"{summary.root}{flag}"
        )
    return "\n".join(lines)
