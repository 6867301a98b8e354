"""The decision log: DSJSON lines on a Redis stream, and the activations and rewards beside it.

Each decision entry holds its line compressed (emma.decision.log_line) beside plain fields
that the learner and delivery systems read without it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as redis
from redis.asyncio.client import Pipeline
from redis.typing import EncodableT, FieldT

from emma.decision.log_line import LINE_FIELD, pack_line

# Keys carry no customer data, only the random event id.
DECISION_KEY = "emma:decision:{}"
ACTIVATION_KEY = "emma:activation:{}"
# Reward-stream entry types.
REWARD = "reward"
ACTIVATION = "activation"
# Emma's own fields of a DSJSON line. VW's DSJSON reader skips unknown top-level keys, so
# `vw --dsjson` reads the line as it is; the leading underscore marks it as no feature.
EMMA_FIELD = "_emma"


# Stands for the context in the line's JSON text until the pre-encoded context replaces it.
_CONTEXT_SLOT = '"__emma_context__"'


# KEYS and ARGV: EncodedDecision.script_keys() and .script_args().
_APPEND = """
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 4))
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1
"""

# An activation, in one round trip. KEYS: the decision's marker, its activation marker,
# the outcome stream. ARGV: 1 to record it only for a known decision, the time, the
# markers' TTL, the stream's cap, the entry's JSON, the event id, the entry's type. Returns
# 1 for the first
# activation, 0 for a repeat, -1 for an unknown decision (nothing recorded).
_ACTIVATE = """
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local first = redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[3])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*',
  'json', ARGV[5], 'event_id', ARGV[6], 'type', ARGV[7])
if first then return 1 end
return 0
"""


def encode_json(value: Any) -> str:
    """Compact JSON, as every part of a logged line is encoded (pre-encoded parts included).

    By orjson: each float in its shortest round-trip form (as `repr`, the exponent
    without padding: 1.5e-5), text as UTF-8. The standard library's encoder spent about
    570 thousand instructions per decision on a line's two sets of fifty probabilities
    and its context, orjson about 35 (docs/performance.md). NumPy numbers (probabilities
    computed with NumPy) are written as the numbers they are, as json.dumps wrote them.
    """
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


@dataclasses.dataclass(frozen=True)
class EncodedContext:
    """The DSJSON `c` object with each action's part already JSON text.

    An action's part is the same in every decision that offers it, so it is encoded once
    (emma.decision.features.ActionFeatureCache) and only the shared part per decision.
    """

    shared: Mapping[str, Mapping[str, float]]
    actions: Sequence[str]

    def text(self) -> str:
        shared = encode_json({ns: f for ns, f in self.shared.items() if f})
        head = shared[:-1] + "," if len(shared) > 2 else "{"
        return f'{head}"_multi":[{",".join(self.actions)}]}}'

    def as_dict(self) -> dict[str, Any]:
        context: dict[str, Any] = {ns: dict(f) for ns, f in self.shared.items() if f}
        context["_multi"] = [json.loads(action) for action in self.actions]
        return context


def dsjson_timestamp(instant: datetime) -> str:
    """DSJSON's timestamp form: UTC, milliseconds, `Z` (e.g. 2021-07-29T10:00:00.999Z)."""
    # isoformat cuts the microseconds down to milliseconds, as the form asks.
    utc = instant.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


@dataclasses.dataclass(frozen=True)
class LoggedDecision:
    """One decision as the learner and offline evaluation need it, plus what delivery needs."""

    event_id: str
    timestamp: datetime
    context: dict[str, Any] | EncodedContext
    pmf: list[float]
    index: int
    model_version: str
    deferred: bool
    offer_id: str
    channel: str
    customer: str  # pseudonym, never the raw identifier
    fallback: bool
    # The policy mode that chose, and the action the baseline would have chosen (0-based).
    policy: str = "learner"
    baseline: int = 0
    reasons: Sequence[tuple[str, str]] = ()
    # The proactive moment (rule, kind, trigger event) a trigger decision was made for.
    moment: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def dsjson(self) -> dict[str, Any]:
        """A DSJSON CB line: `a` lists 1-based action ids chosen first, `p` their probabilities.

        The label holds the default cost 0; the learner sets `_label_cost` when it joins
        the rewards. `_skipLearn` marks a deferred decision: VW skips it unless an
        activation arrives. `_emma` carries the policy mode, the baseline's action, the
        pseudonymous customer and the reasons, which VW ignores.
        """
        context = self.context
        return self._line(context.as_dict() if isinstance(context, EncodedContext) else context)

    def _line(self, context: Any) -> dict[str, Any]:
        # The chosen action first, then the others in order (DSJSON's `a` and `p`).
        chosen, pmf = self.index, self.pmf
        line: dict[str, Any] = {
            "_label_cost": 0.0,
            "_label_probability": self.pmf[self.index],
            "_label_Action": self.index + 1,
            "_labelIndex": self.index,
            "o": [],
            "Timestamp": dsjson_timestamp(self.timestamp),
            "Version": "1",
            "EventId": self.event_id,
            "a": [chosen + 1, *range(1, chosen + 1), *range(chosen + 2, len(pmf) + 1)],
            "c": context,
            "p": [pmf[chosen], *pmf[:chosen], *pmf[chosen + 1 :]],
            "VWState": {"m": self.model_version},
            EMMA_FIELD: {
                "policy": self.policy,
                "baselineIndex": self.baseline,
                "customer": self.customer,
                "reasons": [{"code": code, "detail": detail} for code, detail in self.reasons],
            },
        }
        if self.moment:
            line[EMMA_FIELD]["moment"] = dict(self.moment)
        if self.deferred:
            line["_skipLearn"] = True
        return line

    def dsjson_text(self) -> str:
        """The DSJSON line as compact JSON text: `encode_json(self.dsjson())`, with a
        pre-encoded context spliced in rather than encoded again."""
        if not isinstance(self.context, EncodedContext):
            return encode_json(self.dsjson())
        line = encode_json(self._line(_CONTEXT_SLOT[1:-1]))
        return line.replace(_CONTEXT_SLOT, self.context.text(), 1)


@dataclasses.dataclass(frozen=True)
class EncodedDecision:
    """A decision's log writes, ready to send: the stream entry and the event id's marker."""

    stream: str
    fields: Mapping[str, str | int]
    maxlen: int
    marker_key: str
    marker: str
    marker_ttl_s: int

    def script_keys(self) -> list[str]:
        """KEYS of a script that writes the entry: the stream, then the marker."""
        return [self.stream, self.marker_key]

    def script_args(self) -> list[str | int]:
        """ARGV of such a script: the stream's approximate maxlen, the marker, its ttl in
        seconds, then the entry's fields and values."""
        fields = [item for pair in self.fields.items() for item in pair]
        return [self.maxlen, self.marker, self.marker_ttl_s, *fields]

    def queue(self, pipe: Pipeline) -> None:
        """Adds both writes to a pipeline."""
        fields: dict[FieldT, EncodableT] = {name: value for name, value in self.fields.items()}
        pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
        pipe.set(self.marker_key, self.marker, ex=self.marker_ttl_s)


class DecisionStore:
    """Writes decisions, activations and rewards to Redis streams trimmed to ~maxlen.

    Activations and rewards are appended on every call, retries included: the learner
    drops repeated activations and rewards with a repeated idempotency key, so a retry
    after a lost answer can never lose an outcome nor count it twice.
    """

    def __init__(
        self,
        client: redis.Redis,
        decision_stream: str,
        reward_stream: str,
        maxlen: int,
        window_s: float,
    ) -> None:
        self.client = client
        self.decision_stream = decision_stream
        self.reward_stream = reward_stream
        self.maxlen = maxlen
        # Markers outlive the window by a little, so an outcome at its very end still finds one.
        self.marker_ttl_s = max(1, int(window_s) + 1)
        # Waits (bounded) until this replica's buffered decision entries are written
        # (emma.decision.log_buffer), so an outcome finds its decision's marker and usually
        # lands after its entry (the learner holds an earlier one for a grace period).
        self.settle_log: Callable[[], Awaitable[None]] | None = None
        self._append = client.register_script(_APPEND)
        self._activate = client.register_script(_ACTIVATE)

    def encode(self, decision: LoggedDecision) -> EncodedDecision:
        """The stream entry (the DSJSON line and the fields delivery filters on) and the
        marker that tells Reward and Activate the decision is known."""
        marker = encode_json(
            {
                "offer_id": decision.offer_id,
                "channel": decision.channel,
                "deferred": decision.deferred,
            }
        )
        return EncodedDecision(
            stream=self.decision_stream,
            fields={
                LINE_FIELD: pack_line(decision.dsjson_text()),
                "event_id": decision.event_id,
                "offer_id": decision.offer_id,
                "channel": decision.channel,
                "customer": decision.customer,
                "deferred": int(decision.deferred),
                "fallback": int(decision.fallback),
                "actions": len(decision.pmf),
            },
            maxlen=self.maxlen,
            marker_key=DECISION_KEY.format(decision.event_id),
            marker=marker,
            marker_ttl_s=self.marker_ttl_s,
        )

    async def append(self, decision: LoggedDecision) -> None:
        """One round trip: the DSJSON line on the stream and the event id's marker key."""
        entry = self.encode(decision)
        # One script call costs the client less than a two-command pipeline, on every Decide.
        await self._append(keys=entry.script_keys(), args=entry.script_args())

    async def append_encoded(self, entries: Sequence[EncodedDecision]) -> None:
        """One round trip for several encoded decisions, written in the order given
        (catching up)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for entry in entries:
                entry.queue(pipe)
            await pipe.execute()

    async def activate(self, event_id: str, time: datetime) -> bool:
        """Records that the decision was shown; False when it already was."""
        return await self._record_activation(event_id, time, known_only=False) == 1

    async def activate_known(self, event_id: str, time: datetime) -> bool | None:
        """As `activate`, for a decision some replica logged within the reward window;
        None (and nothing recorded) for any other."""
        recorded = await self._record_activation(event_id, time, known_only=True)
        return None if recorded < 0 else recorded == 1

    async def _record_activation(self, event_id: str, time: datetime, known_only: bool) -> int:
        if self.settle_log is not None:
            await self.settle_log()
        at = dsjson_timestamp(time)
        activation = {"EventId": event_id, "ActionTaken": True, "Timestamp": at}
        keys = [DECISION_KEY.format(event_id), ACTIVATION_KEY.format(event_id), self.reward_stream]
        args: list[str | int] = [
            int(known_only),
            at,
            self.marker_ttl_s,
            self.maxlen,
            json.dumps(activation),
            event_id,
            ACTIVATION,
        ]
        return int(await self._activate(keys=keys, args=args))

    async def reward(
        self, event_id: str, value: float, kind: str, time: datetime, key: str = ""
    ) -> bool:
        """Appends an outcome (DSJSON observation: EventId and value `v`); True if the
        decision is known. `key` makes retries of one outcome count once."""
        if self.settle_log is not None:
            await self.settle_log()
        outcome: dict[str, Any] = {
            "EventId": event_id,
            "v": value,
            "kind": kind,
            "Timestamp": dsjson_timestamp(time),
        }
        if key:
            outcome["key"] = key
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xadd(
                self.reward_stream,
                {"json": json.dumps(outcome), "event_id": event_id, "type": REWARD, "key": key},
                maxlen=self.maxlen,
                approximate=True,
            )
            pipe.exists(DECISION_KEY.format(event_id))
            _, known = await pipe.execute()
        return bool(known)
