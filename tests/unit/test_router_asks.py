"""Issue 13: an input asked of several shards (services/drivers/sharding.py, Ask) — what the
router sends, how it settles the answers, what a shard answers (again, after a redelivery,
a snapshot or a rebuild from its log), and the router's loop holding later inputs behind an
ask, across a restart, on the local transport."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from scenario import RULEBOOK, action, alarm, complaint, t
from select_files import INVENTORY

from services.drivers import snapshots
from services.drivers.city_router import Asking, route_or_dead
from services.drivers.sharding import UNMAPPED, checked_answer
from services.drivers.stage_logic import CorrelateLogic, Entry
from services.runtime.router_loop import Behind, RouterRunner
from shared.clock import parse_time
from shared.topics import ACTIONS, ALARMS, ANSWERS, CORRELATOR_INPUTS, DEADLETTER
from shared.transport.local import LocalTransport
from shared.transport.port import Msg

NH_INTERNET = {"customer_id": "P-NH", "service_type": "internet"}
EVERY_SHARD = ("DG", "FS", "GZ", "HZ", UNMAPPED)


def _msg(value: dict, offset: int = 3, topic: str = ACTIONS) -> Msg:
    return Msg(topic, 0, offset, None, orjson.dumps({k: v for k, v in value.items() if k != "at"}
                                                     if topic == ALARMS else value),
               int(parse_time(value["at"]) * 1000))


def _asking(event: dict, offset: int = 3) -> Asking:
    routed = route_or_dead(INVENTORY, _msg(event, offset))
    assert isinstance(routed, Asking)
    return routed


def test_CL4_a_customer_select_without_a_city_is_asked_of_every_shard():
    asking = _asking(action(5, "resolve", NH_INTERNET))
    asks = asking.asks()
    assert [k for _t, _v, k in asks] == list(EVERY_SHARD) and asking.shards == EVERY_SHARD
    body = orjson.loads(asks[0][1])
    assert body == {"at": parse_time(t(5)), "source": asking.msg.coordinates + "?DG",
                    "ask": {"id": asking.msg.coordinates, "input": action(5, "resolve", NH_INTERNET)}}


def test_CL4_the_answers_settle_to_the_one_match_or_replays_refusal():
    one = _asking(action(5, "resolve", NH_INTERNET))
    for shard in EVERY_SHARD:
        one.take(shard, {"matches": [["F-FS-000001", 1.0, [9, 0, 0, 1], 1]] if shard == "FS" else []})
    assert one.waiting_on == []
    ((topic, value, key),) = one.settled(INVENTORY)
    routed = orjson.loads(value)
    assert (topic, key, routed["pick"], routed["source"]) == (CORRELATOR_INPUTS, "FS", "F-FS-000001",
                                                               one.msg.coordinates)
    two = _asking(action(5, "ack", NH_INTERNET, queue="prov.monitoring"))
    two.take("GZ", {"matches": [["F-GZ-000004", 9.0, [12, 0, 0, 5], 1]]})
    two.take("DG", {"matches": [["F-DG-000001", 1.0, [10, 0, 0, 2], 1]]})
    assert two.waiting_on == ["FS", "HZ", UNMAPPED]
    two.take("XX", {"matches": []})                    # not asked: not counted
    for shard in two.waiting_on:
        two.take(shard, {"matches": []})
    ((topic, value, _k),) = two.settled(INVENTORY)
    # Listed in replay's opening order: the input that opened the DG fault came first.
    assert topic == DEADLETTER and orjson.loads(value)["reason"] == (
        "select {customer_id=P-NH, service_type=internet} matches 2 open faults (F-DG-000001, "
        "F-GZ-000004); name one by fault_id")


def test_SV5_a_complaint_goes_to_the_shard_that_had_it_else_to_its_earliest_fault_else_home():
    event = complaint(5, "P-NH", "GZ", "internet", cid="K1")
    had = _asking(event)
    for shard in EVERY_SHARD:
        join = ["F-GZ-000001", 1.0, [1], 1] if shard == "GZ" else None
        had.take(shard, {"seen": shard == "FS", "join": join})
    assert [(k, "pick" in orjson.loads(v)) for _t, v, k in had.settled(INVENTORY)] == [("FS", False)]
    join = _asking(event)
    for shard in EVERY_SHARD:
        join.take(shard, {"seen": False, "join": {"GZ": ["F-GZ-000002", 5.0, [4], 1],
                                                  "DG": ["F-DG-000001", 5.0, [2], 1]}.get(shard)})
    ((_t, value, key),) = join.settled(INVENTORY)
    assert (key, orjson.loads(value)["pick"]) == ("DG", "F-DG-000001")      # same opening time: first opened
    home = _asking(event)
    for shard in EVERY_SHARD:
        home.take(shard, {"seen": False, "join": None})
    assert [(k, "pick" in orjson.loads(v)) for _t, v, k in home.settled(INVENTORY)] == [("GZ", False)]


@pytest.mark.parametrize("said", [None, 1, [], {}, {"matches": None}, {"matches": [["F", 1.0, [1]]]},
                                  {"matches": [[1, 1.0, [1], 1]]}, {"seen": "yes", "join": None},
                                  {"seen": True, "join": ["F", "x", [1], 1]}, {"matches": [["F", 1, {}, 1]]},
                                  {"matches": [["F", 1, ["x"], 1]]},
                                  {"matches": [["F", 1, list(range(9)), 1]]}])
def test_an_answer_not_of_the_shape_a_shard_gives_is_not_taken(said):
    assert checked_answer(said, complaint=False) is None and checked_answer(said, complaint=True) is None


def test_an_answer_of_the_other_kinds_shape_or_from_a_stranger_is_not_taken():
    """An action's ask takes only {matches}; the router keeps answers only from the
    inventory's shards, with an ask id a message could have (what it keeps stays bounded)."""
    asking = _asking(action(5, "resolve", NH_INTERNET))
    asking.take("FS", {"seen": True, "join": None})
    assert "FS" in asking.waiting_on
    behind = Behind(list(EVERY_SHARD))
    strangers = [{"ask": "a", "shard": ["FS"], "answer": {"matches": []}},
                 {"ask": "a", "shard": "XX", "answer": {"matches": []}},
                 {"ask": "a" * 2000, "shard": "FS", "answer": {"matches": []}},
                 {"ask": "a", "shard": "FS"}, [], "x"]
    behind.take([Msg(ANSWERS, 0, i, None, orjson.dumps(v), 0) for i, v in enumerate(strangers)]
                + [Msg(ANSWERS, 0, 9, None, b"{not json", 0)])
    assert behind.early == {}


def test_a_select_no_shard_can_match_is_refused_at_once_with_replays_words():
    for select, reason in (({"circuit_id": "XX-1"}, "select {circuit_id=XX-1} matches no open fault"),
                           ({"customer_id": "C-NOPE", "service_type": "voice"},
                            "select {customer_id=C-NOPE, service_type=voice} matches no open fault"),
                           ({"fault_id": "F-000001"},
                            "select {fault_id=F-000001}: fault F-000001 is unknown")):
        ((topic, value, _k),) = route_or_dead(INVENTORY, _msg(action(1, "resolve", select)))
        assert topic == DEADLETTER and orjson.loads(value)["reason"] == reason


# ---------------------------------------------------------------------- the shard's side


def _ask_body(asking: Asking) -> dict:
    return orjson.loads(asking.asks()[0][1])


def test_a_shard_answers_a_redelivered_ask_as_it_first_did_after_a_snapshot_and_a_rebuild_too():
    logic = CorrelateLogic(INVENTORY, RULEBOOK)
    core = logic.new_shard("FS")
    raise_ = {"at": parse_time(t(0)), "source": "a:0:0@0", "input": alarm(0, "NH-FS-1-CPE", alarm_id="X1")}
    asking = _asking(action(2, "resolve", NH_INTERNET))
    ask = _ask_body(asking)
    steps = []
    for seq, body in enumerate((raise_, ask), 1):
        step, _clock = logic.step(core, body, seq)
        steps.append(Entry(seq, "input", _clock, body, body["source"]))
    assert ANSWERS not in step.outgoing            # said at once, before the batch is stored
    ((topic, first),) = step.at_once
    said = orjson.loads(first)
    assert (said["ask"], said["shard"], [m[0] for m in said["answer"]["matches"]]) == \
        (asking.msg.coordinates, "FS", ["F-FS-000001"])
    clear = {"at": parse_time(t(3)), "source": "a:0:1@0",
             "input": alarm(3, "NH-FS-1-CPE", state="cleared", alarm_id="X1")}
    logic.step(core, clear, 3)
    assert core.correlator.open_faults == {}                    # the state moved on: the answer did not
    assert topic == ANSWERS and logic.redelivered(core, ask) == [(ANSWERS, first)]
    again = snapshots.load(snapshots.dump(core), logic)
    assert logic.redelivered(again, ask) == [(ANSWERS, first)]
    rebuilt = logic.new_shard("FS")
    for entry in steps:
        logic.rerun(rebuilt, entry)
    assert logic.redelivered(rebuilt, ask) == [(ANSWERS, first)]
    assert logic.redelivered(core, raise_) == []                # nothing to say again for an input


@pytest.mark.parametrize("ask", [None, "x", {"id": 5, "input": {}}, {"id": "a", "input": {"kind": "alarm"}},
                                 {"id": "a", "input": {"kind": "resolve", "select": {}}}])
def test_an_ask_a_shard_cannot_use_is_refused_with_a_reason(ask):
    logic = CorrelateLogic(INVENTORY, RULEBOOK)
    step, _clock = logic.step(logic.new_shard("FS"), {"at": parse_time(t(0)), "source": "s?", "ask": ask}, 1)
    assert step.refused and step.refused.startswith("ask: ") and not step.log


@pytest.mark.parametrize("extra", [{"pick": 5}, {"pos": "x"}, {"pos": [1.5]}, {"pos": list(range(9))}])
def test_a_routed_input_with_an_unusable_pick_or_position_is_refused(extra):
    logic = CorrelateLogic(INVENTORY, RULEBOOK)
    body = {"at": parse_time(t(0)), "source": "s", "input": alarm(0, "NH-FS-1-CPE"), **extra}
    step, _clock = logic.step(logic.new_shard("FS"), body, 1)
    assert step.refused and not step.log


# ---------------------------------------------------------------------- the router's loop


class _Reader:
    """What the router sent to the shards and the dead letters, as it comes (batches opened)."""

    def __init__(self, transport: LocalTransport) -> None:
        self.consumer = transport.consumer([CORRELATOR_INPUTS, DEADLETTER], "reader")
        self.got: list[dict] = []

    async def read(self) -> list[dict]:
        for m in await self.consumer.fetch(timeout_ms=20, max_records=1000):
            value = orjson.loads(m.value)
            for item in value["batch"] if type(value) is dict and "batch" in value else [value]:
                self.got.append({"key": m.key, **item})
        return self.got

    def asks(self) -> list[dict]:
        return [i for i in self.got if "ask" in i]

    def inputs(self) -> list[dict]:
        return [i for i in self.got if "input" in i]


async def _router_until(transport: LocalTransport, producer, reader: _Reader, done,
                        timeout_s: float = 10) -> None:
    """A router runs until `done()` holds of what the reader has seen, then stops."""
    router = RouterRunner(INVENTORY, transport, producer, hold_s=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(router.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not done():
            assert asyncio.get_running_loop().time() < deadline, reader.got
            await reader.read()
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task


async def test_CL4_the_router_holds_later_inputs_behind_an_ask_and_settles_it_after_a_restart():
    """An action asked of every shard: nothing after it is routed until all have answered.
    The router stops before they do; the next one asks again (the same ask ids: a shard that
    answered says it again), and settles on the one match, then routes the alarm behind it."""
    transport = LocalTransport()
    await transport.open()
    producer = transport.producer()
    await producer.start()
    reader = _Reader(transport)
    await reader.consumer.start()
    resolve = action(5, "resolve", NH_INTERNET)
    later = alarm(6, "NH-GZ-1-CPE", alarm_id="X9")
    await producer.send(ACTIONS, orjson.dumps(resolve), timestamp_ms=int(parse_time(t(5)) * 1000))
    await producer.send(ALARMS, orjson.dumps(later["alarm"]), timestamp_ms=int(parse_time(t(6)) * 1000))
    await _router_until(transport, producer, reader, lambda: len(reader.asks()) == len(EVERY_SHARD))
    await asyncio.sleep(0.2)
    await reader.read()
    assert [i["key"] for i in reader.asks()] == list(EVERY_SHARD)
    assert reader.inputs() == []                                 # the alarm waits behind the ask
    ask_id = reader.asks()[0]["ask"]["id"]
    # The shards answer (the router has stopped meanwhile): FS holds the one match.
    answers = {s: {"matches": [["F-FS-000001", 1.0, [1], 1]] if s == "FS" else []} for s in EVERY_SHARD}
    await producer.send_many([(ANSWERS, orjson.dumps({"ask": ask_id, "shard": s, "answer": said}), s,
                               None, None) for s, said in answers.items()])
    await _router_until(transport, producer, reader, lambda: len(reader.inputs()) == 2)
    assert [(i["key"], i["input"]["kind"], i.get("pick")) for i in reader.inputs()] == [
        ("FS", "resolve", "F-FS-000001"), ("GZ", "alarm", None)]
    # Asked again after the restart, with the same ids (a shard that answered says it again);
    # the answers that came before the ask was made again were kept for it.
    assert len(reader.asks()) == 2 * len(EVERY_SHARD) and {i["ask"]["id"] for i in reader.asks()} == {ask_id}
    await reader.consumer.stop()
    await producer.stop()


def test_a_snapshot_from_before_asks_loads_and_answers():
    """A correlate shard's snapshot dumped before issue 13 (no answers, no input positions)
    loads in the same format — refusing it would lose the state of a pruned log — and the
    shard answers asks: its faults count as opened before every later input."""
    logic = CorrelateLogic(INVENTORY, RULEBOOK)
    core = logic.new_shard("FS")
    logic.step(core, {"at": parse_time(t(0)), "source": "a:0:0@0", "input": alarm(0, "NH-FS-1-CPE")}, 1)
    del core.answers, core.correlator.position                 # as an older version's state
    for fault in core.correlator.faults.values():
        del fault.position
    old = snapshots.load(snapshots.dump(core), logic)
    assert old.answers == {} and old.correlator.position == ()
    step, _clock = logic.step(old, _ask_body(_asking(action(2, "resolve", NH_INTERNET))), 2)
    ((_topic, said),) = step.at_once
    assert orjson.loads(said)["answer"]["matches"] == [["F-FS-000001", parse_time(t(0)), [], 1]]
