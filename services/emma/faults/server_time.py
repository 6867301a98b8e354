"""Decide's own time per call, read from the decision service's server spans."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from emma.faults.load import DECIDE, Call
from emma.traces.store import TraceStore
from emma.traces.waterfall import render

DECIDE_SPAN = "/emma.decision.v1.DecisionService/Decide"
DECISION_SERVICE = "emma-decision"


def with_server_times(calls: Sequence[Call], store: TraceStore) -> list[Call]:
    """The calls, each answered Decide with the duration of its server span (from the
    request's arrival in the decision service to its answer) when the span reached `store`.

    The caller's latency adds its own queueing and the network, which no budget can bound;
    a budget is the decision service's, so this is what it is held to. A replica killed
    mid-run loses the spans it had not exported yet: those calls keep `server_ms` None.
    """
    out = []
    for call in calls:
        if call.kind == DECIDE and call.trace_id and not call.error:
            spans = store.trace(call.trace_id)
            server = next(
                (s for s in spans if s.name == DECIDE_SPAN and s.service == DECISION_SERVICE),
                None,
            )
            if server is not None:
                call = dataclasses.replace(call, server_ms=server.duration_ns / 1e6)
        out.append(call)
    return out


def over_budget_waterfalls(calls: Sequence[Call], store: TraceStore, budget_ms: float) -> str:
    """The traces of the Decide calls whose own time exceeded the budget by over 1 ms, as
    terminal waterfalls: where each of them spent its time."""
    late = [c for c in calls if c.server_ms is not None and c.server_ms > budget_ms + 1]
    return "\n\n".join(render(store.trace(c.trace_id)) for c in late)
