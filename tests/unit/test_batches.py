"""Batch messages on the pipeline's own topics (services/drivers/batches.py)."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from services.drivers.batches import BATCHED_TOPICS, items_of, pack, pack_records
from shared.topics import CORRELATOR_INPUTS, DEADLETTER, DECISIONS, FAULTS

scalars = st.integers(-2**63, 2**63 - 1) | st.text(max_size=20)
objects = st.dictionaries(st.text(max_size=5), scalars, max_size=4)


@given(st.lists(objects, max_size=40), st.integers(min_value=20, max_value=400))
def test_packed_values_come_back_in_order_and_within_the_limit(values, limit) -> None:
    encoded = [orjson.dumps(v) for v in values]
    packed = pack(encoded, limit)
    back = []
    for message in packed:
        body = orjson.loads(message)
        items = items_of(body)
        if items is None:                       # too large to share a message: sent alone
            assert len(message) + 12 > limit
            back.append(body)
        else:
            assert len(message) <= limit
            back.extend(items)
    assert back == values


def test_only_the_pipeline_s_own_topics_are_packed_each_city_in_order() -> None:
    assert BATCHED_TOPICS == {CORRELATOR_INPUTS, FAULTS}
    records = [(CORRELATOR_INPUTS, b'{"n":1}', "GZ"), (DECISIONS, b'{"d":1}', None),
               (CORRELATOR_INPUTS, b'{"n":2}', "SZ"), (CORRELATOR_INPUTS, b'{"n":3}', "GZ"),
               (DEADLETTER, b'{"x":1}', None)]
    out = pack_records(records)
    assert out == [(CORRELATOR_INPUTS, b'{"batch":[{"n":1},{"n":3}]}', "GZ"), (DECISIONS, b'{"d":1}', None),
                   (CORRELATOR_INPUTS, b'{"batch":[{"n":2}]}', "SZ"), (DEADLETTER, b'{"x":1}', None)]


def test_only_a_one_key_object_with_a_list_is_a_batch() -> None:
    assert items_of({"batch": [1]}) == [1]
    for body in ({"batch": 1}, {"batch": [], "at": 1}, [1], "batch", None, {"tick": 1}):
        assert items_of(body) is None
