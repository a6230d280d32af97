"""The outcome of an input (services/http/reads.input_outcomes, GET /inputs/{id}) once log
retention has let go of the entries that handled it (services/runtime/shard_log.py).

A seeded storm (bench/engine.py) goes through the real correlate and dispatch ShardRunners
over a migrated database, as in tests/integration/test_shard_snapshots.py, with a snapshot
every few entries and a small window, and again with the log kept whole. Every input's
outcome must be the same in both, first while dispatch has handled nothing yet (an input
whose entry is gone waits for its notices), then once it has handled everything: the same
status and reason; the same records, unless `pruned` says they are no longer kept (never
with FAULTLINE_LOG_RETENTION=archive, which answers in full). What is kept for it stays
bounded by the shards and the window, not by the inputs."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from runner_doubles import Recorder, RouterDouble, bench
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from services.drivers.sharding import all_shards
from services.drivers.stage_logic import CorrelateLogic, DispatchLogic
from services.http.reads import input_outcomes
from services.runtime.shard_log import ShardLog, covers, horizon_marks, key_position
from services.runtime.shard_runner import ShardRunner
from shared.db.migrate import upgrade_async
from shared.db.models import input_log, input_log_archive, input_log_horizon, pruned_notices, rejected
from shared.inventory import parse_inventory
from shared.rulebook import load_rulebook
from shared.topics import CORRELATOR_INPUTS, DEADLETTER, DECISIONS, FAULTS
from shared.transport.local import LocalTransport
from shared.transport.port import Msg
from tools.kafka_events import messages

ROOT = Path(__file__).resolve().parents[2]
RULEBOOK = load_rulebook()

BATCH = 100
EVERY = 10            # FAULTLINE_SNAPSHOT_EVERY
WINDOW = 15           # FAULTLINE_LOG_RETENTION_ENTRIES


@pytest.fixture(scope="module")
def storm():
    """The inventory, the messages the router sends the city shards, and each input's id → the
    cities it went to."""
    rng = random.Random(11)
    topo = bench.gen_inventory(200, rng)
    lines, _bad = bench.gen_storm(topo, 2500, rng, hours=2.0)
    inventory = parse_inventory(topo.doc)
    routed: list[Msg] = []
    cities: dict[str, list[str]] = {}
    router = RouterDouble(inventory, RULEBOOK)
    for i, (topic, value, key, _p, ts) in enumerate(messages(lines, bench.BASE.replace(hour=13).isoformat())):
        msg = Msg(topic, 0, i, key, value, ts)
        for j, (out_topic, v, city) in enumerate(router.route(msg)):
            if out_topic == CORRELATOR_INPUTS:
                routed.append(Msg(CORRELATOR_INPUTS, 0, len(routed), city, v, ts + j))
                if "source" in orjson.loads(v):          # a stream-clock tick has none: not traced
                    cities.setdefault(msg.coordinates, []).append(city)
    return inventory, routed, cities


@pytest.fixture
async def whole_db(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'whole.sqlite3'}"
    await upgrade_async(url)
    engine = create_async_engine(url)
    yield engine
    await engine.dispose()


class Run:
    """The correlate and dispatch runners of one database; dispatch is fed what correlate sent."""

    def __init__(self, inventory, engine, retention: str) -> None:
        self.engine = engine
        recovery = {"snapshot_every": EVERY, "snapshot_bytes_per_entry": 0, "retention": retention,
                    "retention_entries": WINDOW}
        self.corr, self.corr_out = self._runner(CorrelateLogic(inventory, RULEBOOK), **recovery)
        self.disp, _ = self._runner(DispatchLogic(inventory, RULEBOOK, None), **recovery)

    def _runner(self, logic, **recovery) -> tuple[ShardRunner, Recorder]:
        producer = Recorder()
        r = ShardRunner(logic, ShardLog(self.engine, logic.stage), LocalTransport(partitions=4), producer,
                        group_id="test", wall_clock=None, **recovery)
        r.known_topics = {DECISIONS, FAULTS, DEADLETTER}
        return r, producer

    async def correlate(self, msgs: list[Msg]) -> None:
        for i in range(0, len(msgs), BATCH):
            await self.corr.process(msgs[i:i + BATCH])

    async def dispatch(self) -> None:
        sent = [(k, v) for t, v, k in self.corr_out.sent if t == FAULTS]
        notices = [Msg(FAULTS, 0, i, key, value, 0) for i, (key, value) in enumerate(sent)]
        for i in range(0, len(notices), BATCH):
            await self.disp.process(notices[i:i + BATCH])

    async def outcomes(self, inputs: dict, shards) -> dict[str, dict]:
        async with self.engine.connect() as conn:
            return await input_outcomes(conn, inputs, shards=shards)

    async def count(self, table) -> int:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


def _same(pruned: dict, whole: dict, *, full: bool) -> None:
    """The outcome of an input after pruning against the one of the whole log."""
    assert (pruned["status"], pruned["reason"]) == (whole["status"], whole["reason"]), (pruned, whole)
    if full or not pruned.get("pruned"):
        assert pruned == whole
    else:
        assert pruned["records"] is None and pruned["status"] != "pending"


async def _compare(run: Run, ref: Run, storm, *, full: bool) -> int:
    """Every input's outcome, with and without the cities it went to; how many were `pruned`."""
    inventory, _routed, cities = storm
    shards = all_shards(inventory)
    expected = await ref.outcomes(cities, shards)
    got = await run.outcomes(cities, shards)
    for input_id in cities:
        _same(got[input_id], expected[input_id], full=full)
    # Without the cities (GET /inputs/{id}): the status still, and the records of an input
    # of one city (of several, those of the shards whose logs still hold it).
    anyone = {i: None for i in cities}
    expected_any, got_any = await ref.outcomes(anyone, None), await run.outcomes(anyone, None)
    for input_id, n in cities.items():
        if len(n) == 1 or full:
            _same(got_any[input_id], expected_any[input_id], full=full)
        else:
            assert got_any[input_id]["status"] == expected_any[input_id]["status"]
    return sum(1 for o in got.values() if o.get("pruned"))


@pytest.mark.parametrize("mode", ["delete", "archive"])
async def test_outcomes_after_pruning_are_those_of_the_whole_log(storm, any_db, whole_db, mode):
    inventory, routed, cities = storm
    ref, run = Run(inventory, whole_db, "keep"), Run(inventory, any_db, mode)
    await ref.correlate(routed)
    await run.correlate(routed)
    total = sum(s.seq for s in run.corr.shards.values())
    assert await run.count(input_log) < total // 2                 # most correlate entries are gone

    # Dispatch has handled nothing: an input that sent notices waits for them, entry or not.
    early = await ref.outcomes(cities, all_shards(inventory))
    assert {o["status"] for o in early.values()} == {"pending", "accepted"}
    await _compare(run, ref, storm, full=mode == "archive")
    if mode == "delete":
        waiting = await run.count(pruned_notices)
        assert waiting > 0                  # the notices of deleted entries, dispatch to come

    await ref.dispatch()
    await run.dispatch()
    assert all(o["status"] != "pending" for o in (await ref.outcomes(cities, all_shards(inventory))).values())
    pruned = await _compare(run, ref, storm, full=mode == "archive")
    if mode == "delete":
        assert 0 < pruned < len(cities)
        # Bounded: the notices kept open now are those dispatch's log still holds (its window),
        # or that it refused; the others went with dispatch's own retention.
        async with run.engine.connect() as conn:
            still = set((await conn.execute(select(pruned_notices.c.notice_id))).scalars())
            held = set((await conn.execute(select(input_log.c.source_key).where(
                input_log.c.stage == "dispatch"))).scalars())
            refused = set((await conn.execute(select(rejected.c.source_key))).scalars())
        assert still <= held | refused and len(still) < waiting
    else:
        assert pruned == 0 and await run.count(input_log_archive) > 0
    # The horizon: a row per stage, shard and topic partition (one partition here), or city;
    # dispatch's retention ran too.
    async with run.engine.connect() as conn:
        horizon = (await conn.execute(select(input_log_horizon.c.stage, input_log_horizon.c.shard))).all()
    assert len(horizon) == len(set(horizon))
    assert {stage for stage, _shard in horizon} == {"correlate", "dispatch"}


async def test_an_input_never_seen_stays_pending_after_pruning(storm, whole_db):
    inventory, routed, cities = storm
    run = Run(inventory, whole_db, "delete")
    await run.correlate(routed)
    await run.dispatch()
    first = next(iter(cities))
    topic, partition, rest = first.split(":")
    offset, ts = rest.split("@")
    never = [f"{topic}:{partition}:{len(cities) * 10}@{ts}",         # past what was sent
             f"{topic}:{partition}:{offset}@0",                        # a time nothing removed had
             f"{topic}:{int(partition) + 1}:{offset}@{ts}",            # a partition never sent to
             f"elsewhere:{partition}:{offset}@{ts}"]
    got = await run.outcomes({i: None for i in never}, None)
    assert [got[i]["status"] for i in never] == ["pending"] * 4
    assert (await run.outcomes({first: None}, None))[first]["status"] == "accepted"


def test_the_horizon_spans_what_was_let_go_and_nothing_of_another_shape():
    keys = ["faultline.alarms:0:5@1000", "faultline.alarms:0:9@900", "faultline.alarms:1:2@3000",
            "GZ:12:3", "GZ:12:7", "GZ:9:20", "faultline.alarms:0:x@1", "line 7"]
    marks = horizon_marks(keys)
    assert marks == {("source", "faultline.alarms", 0): ((5, 900), (9, 1000)),
                     ("source", "faultline.alarms", 1): ((2, 3000), (2, 3000)),
                     ("notice", "GZ", 0): ((9, 20), (12, 7))}
    span = marks[("source", "faultline.alarms", 0)]
    assert covers("source", span, (7, 950)) and not covers("source", span, (10, 950))
    assert not covers("source", span, (7, 1001)) and not covers("source", span, (4, 950))
    notices = marks[("notice", "GZ", 0)]
    assert covers("notice", notices, (10, 0)) and covers("notice", notices, (12, 7))
    assert not covers("notice", notices, (12, 8)) and not covers("notice", notices, (9, 19))
    assert key_position("a:b:1:2@-5") == (("source", "a:b", 1), (2, -5))      # topics may hold ':'
    assert key_position("faultline.alarms:0:1") == (("notice", "faultline.alarms", 0), (0, 1))
    assert key_position("x") is None and key_position("faultline.alarms:0:1@") is None


async def test_retention_keep_leaves_no_horizon(storm, whole_db):
    inventory, routed, _cities = storm
    run = Run(inventory, whole_db, "keep")
    await run.correlate(routed[:1000])
    assert await run.count(input_log_horizon) == 0 and await run.count(pruned_notices) == 0
