"""The router's merge of faultline.alarms and faultline.actions partitions into one stream
in message-time order (services/drivers/city_router.py ArrivalOrder), on an injected clock."""

from __future__ import annotations

from services.drivers.city_router import ArrivalOrder
from shared.transport.port import Msg

A0, A1, ACT = ("faultline.alarms", 0), ("faultline.alarms", 1), ("faultline.actions", 0)
OWNED = {A0, A1, ACT}


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def msg(tp: tuple[str, int], offset: int, ts: int) -> Msg:
    return Msg(tp[0], tp[1], offset, None, b"{}", ts)


def order_with_clock(hold_s: float = 0.3) -> tuple[ArrivalOrder, Clock]:
    clock = Clock()
    return ArrivalOrder(hold_s, now=clock), clock


def times(msgs: list[Msg]) -> list[int]:
    return [m.timestamp_ms for m in msgs]


def test_partitions_merge_by_message_time_once_each_showed_a_later_message() -> None:
    order, clock = order_with_clock()
    order.add([msg(A0, 0, 1000), msg(A0, 1, 3000)])
    order.add([msg(A1, 0, 2000), msg(A1, 1, 4000)])
    order.add([msg(ACT, 0, 5000)])
    assert order.release(OWNED) == [], "nothing leaves before its hold"
    clock.t += 0.3
    assert times(order.release(OWNED)) == [1000, 2000, 3000]
    assert order.pending() == 2, "4000 waits: alarms/0 has shown nothing as late"


def test_a_quiet_partition_holds_the_stream_until_a_late_enough_check_finds_it_drained() -> None:
    order, clock = order_with_clock()
    order.add([msg(A0, 0, 1000), msg(A1, 0, 1500)])
    assert order.waiting_on(OWNED) == set(), "no check is asked for within the hold: it would come too early"
    clock.t += 0.3
    assert order.waiting_on(OWNED) == {ACT}, "alarms/1 has shown a later message"
    order.drained({ACT}, asked_at=clock.t - 0.01)            # begun before fetched + hold: not trusted
    assert order.release(OWNED) == []
    order.drained({ACT}, asked_at=clock.t)
    assert times(order.release(OWNED)) == [1000]
    assert order.waiting_on(OWNED) == {A0}, "the next message needs alarms/0 checked too"


def test_a_message_that_reaches_the_broker_within_the_hold_still_goes_first() -> None:
    """A producer's two partitions: the later-stamped message lands first; the earlier one
    lands 0.2 s after it, within the hold, and is released before it."""
    order, clock = order_with_clock()
    order.add([msg(A1, 0, 2000)])
    clock.t += 0.2
    order.add([msg(A0, 0, 1000)])
    clock.t += 0.1
    order.drained({A0, ACT}, asked_at=clock.t)
    assert order.release(OWNED) == [], "the earlier message's own hold is not over"
    clock.t += 0.2
    order.drained({A0, A1, ACT}, asked_at=clock.t)
    assert times(order.release(OWNED)) == [1000, 2000]


def test_equal_times_go_in_the_order_they_were_fetched() -> None:
    """A tie in message time keeps the fetch order (one partition's messages come in offset
    order): on the local transport the order they were sent, as a replay file lists an
    alarm and an action of the same instant; later times still go after."""
    order, clock = order_with_clock(hold_s=0)
    order.add([msg(A1, 0, 1000), msg(A0, 0, 1000), msg(A0, 1, 1000)])
    order.add([msg(ACT, 0, 1000), msg(A1, 1, 999)])
    order.drained(OWNED, asked_at=clock.t)
    assert [(m.topic, m.partition, m.offset) for m in order.release(OWNED)] == [
        ("faultline.alarms", 1, 1), ("faultline.alarms", 1, 0), ("faultline.alarms", 0, 0),
        ("faultline.alarms", 0, 1), ("faultline.actions", 0, 0)]


def test_revoked_partitions_are_forgotten_and_no_longer_hold_the_rest() -> None:
    order, clock = order_with_clock()
    order.add([msg(A0, 0, 1000), msg(A1, 0, 900)])
    clock.t += 0.3
    order.forget({A1})
    order.drained({ACT}, asked_at=clock.t)
    assert times(order.release({A0, ACT})) == [1000]
    assert order.pending() == 0
