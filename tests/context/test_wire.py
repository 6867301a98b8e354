"""Wire fragments: the hand-assembled ones are the bytes protobuf itself would write."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from emma.context import wire
from emma.context.v1 import context_pb2

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,150}", fullmatch=True)


@given(name=NAMES, value=st.floats(allow_nan=False))
def test_a_number_fragment_is_what_protobuf_writes(name: str, value: float) -> None:
    fragment = wire.number_fragment(name, value)
    assert fragment == wire.features_fragment([(name, value)])
    (feature,) = context_pb2.Context.FromString(fragment).features
    assert (feature.name, feature.number) == (name, value)


def test_fragments_parse_one_after_another_in_order() -> None:
    fragment = (
        wire.features_fragment([("daypart", "lunch"), ("hour", 12.0)])
        + wire.number_fragment("basket_value", 14.38)
        + wire.features_fragment([("typical_temp_c", 2.0)], signals=True)
    )
    context = context_pb2.Context.FromString(fragment)
    assert [f.name for f in context.features] == ["daypart", "hour", "basket_value"]
    assert context.features[0].text == "lunch"
    assert context.features[2].number == 14.38
    assert [(s.name, s.number) for s in context.signals] == [("typical_temp_c", 2.0)]
