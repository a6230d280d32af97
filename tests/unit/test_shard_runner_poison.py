"""A city shard's runner never stops on one message (issue 7): garbage on its topic is
refused with a reason and dead-lettered once (a redelivery refuses nothing twice), and a
message whose handling raises is refused while the shard is rebuilt from its log — the
decisions of the good messages are exactly those of a run without the bad one.

The shard log is real (SQLite, migrated); the producer is a recorder (no broker here: the
same paths run against Tansu and PostgreSQL in tests/integration/test_poison_messages.py)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from runner_doubles import POISON, PoisonCorrelate, Recorder
from sqlalchemy.ext.asyncio import create_async_engine

from services.drivers.stage_logic import CorrelateLogic, DispatchLogic
from services.runtime.shard_log import ShardLog
from services.runtime.shard_runner import ShardRunner, TimersFailing
from shared.clock import parse_time
from shared.db.errors import UnstorableInput
from shared.db.migrate import upgrade_async
from shared.inventory import load_inventory
from shared.rulebook import load_rulebook
from shared.topics import CORRELATOR_INPUTS, DEADLETTER, DECISIONS, FAULTS
from shared.transport.local import LocalTransport
from shared.transport.port import Msg
from shared.wire import INTERNAL

ROOT = Path(__file__).resolve().parents[2]
T0 = parse_time("2026-11-25T10:00:05+08:00")


@pytest.fixture(scope="module")
def config():
    return load_inventory(ROOT / "samples" / "inventory.json"), load_rulebook()


@pytest.fixture
async def make_runner(tmp_path: Path):
    """make_runner(name, logic) → a runner on its own migrated SQLite file, and its recorder."""
    engines = []

    async def make(name: str, logic) -> tuple[ShardRunner, Recorder]:
        url = f"sqlite+aiosqlite:///{tmp_path / name}.sqlite3"
        await upgrade_async(url)
        engines.append(create_async_engine(url))
        producer = Recorder()
        runner = ShardRunner(logic, ShardLog(engines[-1], logic.stage), LocalTransport(partitions=4),
                             producer, group_id="test", wall_clock=None)
        runner.known_topics = {DECISIONS, FAULTS, DEADLETTER}     # no broker to create topics on
        return runner, producer

    yield make
    for engine in engines:
        await engine.dispose()


def _alarm(offset: int, resource: str, alarm_id: str, **extra) -> dict:
    return {"at": T0 + offset, "source": f"faultline.alarms:0:{offset}@1",
            "input": {"kind": "alarm", "alarm": {
                "source": "gd-otn-nms-1", "alarm_id": alarm_id, "resource_id": resource,
                "probable_cause": "LOS", "severity": "critical", "state": "raised",
                "event_time": "2026-11-25T10:00:00+08:00", "text": "R_LOS", **extra}}}


def _msgs(values: list[object], topic: str = CORRELATOR_INPUTS, key: str | None = "GZ") -> list[Msg]:
    return [Msg(topic, 0, i, key, v if isinstance(v, bytes) else orjson.dumps(v), 1_000 + i)
            for i, v in enumerate(values)]


def _without_ids(notices: list[dict]) -> list[dict]:
    return [{k: v for k, v in n.items() if k != "id"} for n in notices]


async def test_a_message_whose_step_raises_is_refused_and_the_shard_is_rebuilt(make_runner, config):
    inventory, rulebook = config
    good_a, good_b = _alarm(1, "GZ-OTN-A:1-3-1", "a"), _alarm(3, "GZ-OTN-B:2-1-5", "b")
    poison = _alarm(2, "GZ-OTN-A:1-3-2", POISON)

    runner, sent = await make_runner("poison", PoisonCorrelate(inventory, rulebook))
    batch = _msgs([good_a, poison, good_b])
    await runner.process(batch)
    reference, ref_sent = await make_runner("reference", CorrelateLogic(inventory, rulebook))
    await reference.process(_msgs([good_a, good_b]))

    # Exactly the decisions (and notices) of a run that never saw the poison: the half-way
    # change was rolled back by the rebuild, and nothing was re-made or re-sent by it.
    assert sent.on(DECISIONS) and sent.on(DECISIONS) == ref_sent.on(DECISIONS)
    # (a notice's id names its log seq, which the refusal's entry took one of)
    assert _without_ids(sent.on(FAULTS)) == _without_ids(ref_sent.on(FAULTS))
    letters = sent.on(DEADLETTER)
    assert len(letters) == 1
    assert letters[0]["reason"] == f"{INTERNAL}: RuntimeError: boom in the rules"
    assert letters[0]["source"] == poison["source"] and letters[0]["value"] == poison
    entries = await runner.log.entries("GZ")
    assert [(e.kind, e.source_key) for e in entries] == [
        ("input", good_a["source"]), ("refused", poison["source"]), ("input", good_b["source"])]

    # A redelivery of the whole batch (a crash before the commit) changes nothing.
    before = len(sent.sent)
    await runner.process(batch)
    assert len(sent.sent) == before
    # And a rebuild from the log gives the state the reference has.
    rebuilt = await runner.open_shard("GZ")
    ref_state = reference.shards["GZ"]
    assert sorted(rebuilt.core.correlator.open_faults) == sorted(ref_state.core.correlator.open_faults)
    assert rebuilt.seq == 3 and runner.healthy is False        # healthy is the session loop's


GARBAGE: list[object] = [
    b"\xff\xfe not json", b"", b"[1, 2]", b"42", b'"text"', b"null", b"true",
    {"at": "x", "source": "s-1", "input": {"kind": "alarm"}},
    {"tick": []}, {"tick": "soon"}, {"tick": 1e300}, {"tick": -5},
    {"source": "s-2", "input": {"kind": "alarm"}},               # no at
    {"at": T0, "source": "s-3"},                                  # no input
    {"at": T0, "source": "s-4", "input": [1, 2]},
    {"at": T0, "source": ["not", "a", "key"], "input": {}},
    {"at": T0, "source": "k" * 300, "input": {}},
    {"at": 1e300, "source": "s-5", "input": {"kind": "alarm"}},
    {"at": T0, "source": "s-6", "input": {"kind": "alarm", "alarm": {"severity": ["critical"]}}},
    {"at": T0, "source": "s-7", "input": {"kind": "confirm", "select": 7}},
]


async def test_garbage_on_the_correlator_inputs_is_refused_once_each(make_runner, config):
    inventory, rulebook = config
    runner, sent = await make_runner("garbage", CorrelateLogic(inventory, rulebook))
    # Nested 600 deep: orjson reads it (up to 1,024) but cannot write it back (254).
    deep = b'{"at": %d, "source": "s-8", "input": {"kind": "alarm", "alarm": {"text": %s1%s}}}' % (
        T0, b"[" * 600, b"]" * 600)
    good = _alarm(len(GARBAGE) + 1, "GZ-OTN-A:1-3-1", "a")
    batch = _msgs([*GARBAGE, deep, good])
    await runner.process(batch)
    letters = sent.on(DEADLETTER)
    assert len(letters) == len(GARBAGE) + 1
    assert all(letter["reason"] and letter["topic"] == CORRELATOR_INPUTS for letter in letters)
    assert sorted(letter["offset"] for letter in letters) == list(range(len(GARBAGE) + 1))
    assert any(d["type"] == "fault.opened" for d in sent.on(DECISIONS))
    before = len(sent.sent)
    await runner.process(batch)                 # redelivered: nothing refused or sent twice
    assert len(sent.sent) == before


async def test_garbage_on_the_faults_topic_is_refused(make_runner, config):
    inventory, rulebook = config
    runner, sent = await make_runner("dispatch", DispatchLogic(inventory, rulebook))
    garbage = [b"{", b"[]", {"id": "GZ:1:0"}, {"id": "GZ:1:1", "notice": {}, "key": [1, 2, 3], "now": T0},
               {"id": "GZ:1:2", "notice": {"kind": "opened"}, "key": "k", "now": "later"},
               {"id": 5, "notice": None}, {"tick": None}, {"tick": float("1e308")}]
    await runner.process(_msgs(garbage, topic=FAULTS))
    assert len(sent.on(DEADLETTER)) == len(garbage)
    await runner.tick_all(T0)                   # the shard still runs
    assert runner.failing == {}


class TimerTrap(CorrelateLogic):
    """Raises on GZ's timer steps while `armed`."""

    armed = False

    def tick(self, core, now, seq):
        if self.armed and core.shard == "GZ":
            raise RuntimeError("timer trap")
        return super().tick(core, now, seq)


async def test_a_timer_that_raises_on_one_shard_is_retried_and_the_others_go_on(make_runner, config):
    inventory, rulebook = config
    logic = TimerTrap(inventory, rulebook)
    runner, sent = await make_runner("timers", logic)
    await runner.process(_msgs([_alarm(1, "GZ-OTN-A:1-3-1", "a"), _alarm(2, "GZ-OTN-B:2-1-4", "b")]))
    await runner.open_shard("FS")
    logic.armed = True
    await runner.tick_all(T0 + 40 * 60)                  # TM-1 (SF-3, 30 min) is due on GZ
    assert set(runner.failing) == {"GZ"}
    assert runner.degraded == ["correlate GZ: a due timer fails; retrying"]     # for /readyz
    assert not [d for d in sent.on(DECISIONS) if d["type"] == "fault.serious"]
    await runner.tick_all(T0 + 41 * 60)                  # within the back-off: not retried
    assert runner.failing["GZ"][0] == 1
    logic.armed = False
    runner.failing["GZ"] = (1, 0.0)                      # the back-off is over
    await runner.tick_all(T0 + 42 * 60)
    assert runner.failing == {} and runner.degraded == []
    serious = [d for d in sent.on(DECISIONS) if d["type"] == "fault.serious"]
    assert serious and {d["rule"] for d in serious} == {"SF-3"}


class FireTrap(CorrelateLogic):
    """GZ's correlator raises whenever a timer fires while `armed`: in a tick and in the
    timer step that comes before each input (T-3) alike."""

    armed = False

    def new_shard(self, shard):
        core = super().new_shard(shard)
        fire = core.correlator.fire_next

        def fire_next(now):
            if self.armed and shard == "GZ":
                raise RuntimeError("timer trap")
            return fire(now)
        core.correlator.fire_next = fire_next
        return core


async def test_a_message_behind_a_failing_timer_is_not_refused_and_comes_again(make_runner, config):
    inventory, rulebook = config
    logic = FireTrap(inventory, rulebook)
    runner, sent = await make_runner("behind", logic)
    await runner.process(_msgs([_alarm(1, "GZ-OTN-A:1-3-1", "a")]))
    logic.armed = True
    late = _msgs([_alarm(40 * 60, "GZ-OTN-B:2-1-4", "b")])      # TM-1 (30 min) is due before it
    with pytest.raises(TimersFailing):
        await runner.process(late)
    assert sent.on(DEADLETTER) == [] and "refused" not in {e.kind for e in await runner.log.entries("GZ")}
    logic.armed = False
    await runner.open_shard("GZ")                               # a new session rebuilds it
    await runner.process(late)                                  # the redelivery is handled
    assert sent.on(DEADLETTER) == []
    assert {d["rule"] for d in sent.on(DECISIONS) if d["type"] == "fault.serious"} == {"SF-3"}


async def test_timers_whose_records_cannot_be_stored_hold_back_only_their_shard(make_runner, config):
    """The database refuses what GZ's timers made (as PostgreSQL refuses a value too long
    for its column; SQLite enforces no lengths, so the log's append is made to refuse it):
    the batch is redone shard by shard, GZ waits like a failing timer, FS goes on."""
    inventory, rulebook = config
    runner, sent = await make_runner("unstorable-tick", CorrelateLogic(inventory, rulebook))
    await runner.process(_msgs([_alarm(1, "GZ-OTN-A:1-3-1", "a")]))
    await runner.process(_msgs([_alarm(2, "FS-SDH-GM-01:1-1-4", "f")], key="FS"))
    append, armed = runner.log.append, {"on": True}

    async def refusing_append(batch, at):
        if armed["on"] and any(s == "GZ" and e.kind == "tick" for s, e in batch.shard_entries):
            raise UnstorableInput("value too long for type character varying(255)")
        await append(batch, at)
    runner.log.append = refusing_append
    await runner.tick_all(T0 + 40 * 60)                  # no exception: the session goes on
    assert set(runner.failing) == {"GZ"}                 # FS is not held back
    assert "tick" not in [e.kind for e in await runner.log.entries("GZ")]
    await runner.process(_msgs([_alarm(3, "FS-SDH-CC-02:1-2-1", "g")], key="FS"))
    assert [e.kind for e in await runner.log.entries("FS")] == ["input", "input"]
    armed["on"] = False
    runner.failing["GZ"] = (1, 0.0)
    await runner.tick_all(T0 + 41 * 60)
    assert runner.failing == {} and "tick" in [e.kind for e in await runner.log.entries("GZ")]


async def test_garbage_keys_make_no_new_shards(make_runner, config):
    """A rogue producer's keys on the shards' topic: kept under "-", refused, no shard each."""
    inventory, rulebook = config
    runner, sent = await make_runner("keys", CorrelateLogic(inventory, rulebook))
    for i in range(50):
        await runner.process([Msg(CORRELATOR_INPUTS, 0, i, f"ZZ{i}", b'{"at": "x"}', 1_000 + i)])
    assert set(runner.shards) <= set(runner.logic.known_shards) and "ZZ0" not in runner.shards
    assert len(sent.on(DEADLETTER)) == 50
    assert set(await runner.log.shards()) <= set(runner.logic.known_shards)


async def test_garbage_inside_a_batch_message_is_refused_input_by_input(make_runner, config):
    """A batch message (services/drivers/batches.py) is taken input by input: each bad one is
    refused with its place in the batch (`…#i`), the good ones decide as single messages
    would, and the batch delivered again — or its inputs batched otherwise — changes nothing."""
    inventory, rulebook = config
    runner, sent = await make_runner("batched", CorrelateLogic(inventory, rulebook))
    garbage = [g for g in GARBAGE if not isinstance(g, bytes)]      # a batch holds JSON values
    good = _alarm(len(GARBAGE) + 1, "GZ-OTN-A:1-3-1", "a")
    value = orjson.dumps({"batch": [*garbage, good]})
    await runner.process([Msg(CORRELATOR_INPUTS, 0, 0, "GZ", value, 1_000)])
    letters = sent.on(DEADLETTER)
    assert len(letters) == len(garbage)
    sources = {letter["source"] for letter in letters}
    keyless = [i for i, g in enumerate(garbage)
               if not (isinstance(g, dict) and isinstance(g.get("source"), str) and len(g["source"]) <= 200)]
    assert {f"{CORRELATOR_INPUTS}:0:0@1000#{i}" for i in keyless} <= sources
    assert any(d["type"] == "fault.opened" for d in sent.on(DECISIONS))
    before = len(sent.sent)
    await runner.process([Msg(CORRELATOR_INPUTS, 0, 0, "GZ", value, 1_000)])
    await runner.process(_msgs([good]))          # the good input alone, as after a re-batching
    assert len(sent.sent) == before
