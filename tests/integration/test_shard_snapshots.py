"""Bounded recovery of the city shards: snapshots of a shard's state in its log's transaction,
retention behind them, and a rebuild from the latest snapshot plus the tail of the log.

The runners are the real ShardRunner over a real, migrated database (SQLite; the retention
cases also on PostgreSQL); the producer is a recorder, as in tests/unit/test_shard_runner_poison.py.
A seeded storm (bench/engine.py) goes through the correlate and dispatch shards with a
restart in the middle, and must decide, publish and store exactly what an uninterrupted run
without snapshots does, while the log stays bounded and the restart re-runs only tails."""

from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path

import orjson
import pytest
from runner_doubles import POISON, PoisonCorrelate, Recorder, RouterDouble, bench
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import create_async_engine

from services.drivers import snapshots
from services.drivers.stage_logic import CorrelateLogic, DispatchLogic
from services.runtime.shard_log import Retention, ShardLog, Snapshot
from services.runtime.shard_runner import ShardRunner
from shared.clock import parse_time
from shared.db.migrate import upgrade_async
from shared.db.models import audit, input_log, input_log_archive, outbox, shard_snapshots
from shared.inventory import load_inventory, parse_inventory
from shared.rulebook import load_rulebook
from shared.topics import CORRELATOR_INPUTS, DEADLETTER, DECISIONS, FAULTS
from shared.transport.local import LocalTransport
from shared.transport.port import Msg
from tools.kafka_events import messages

ROOT = Path(__file__).resolve().parents[2]
RULEBOOK = load_rulebook()
SAMPLES = ROOT / "samples"
T0 = parse_time("2026-11-25T10:00:05+08:00")

BATCH = 100
EVERY = 60            # FAULTLINE_SNAPSHOT_EVERY
WINDOW = 150          # FAULTLINE_LOG_RETENTION_ENTRIES


@pytest.fixture(scope="module")
def storm():
    rng = random.Random(5)
    topo = bench.gen_inventory(300, rng)
    lines, _bad = bench.gen_storm(topo, 4000, rng, hours=2.0)
    inventory = parse_inventory(topo.doc)
    routed: list[Msg] = []
    router = RouterDouble(inventory, RULEBOOK)
    for i, (topic, value, key, _p, ts) in enumerate(messages(lines, bench.BASE.replace(hour=13).isoformat())):
        for j, (out_topic, v, city) in enumerate(router.route(Msg(topic, 0, i, key, value, ts))):
            if out_topic == CORRELATOR_INPUTS:
                routed.append(Msg(CORRELATOR_INPUTS, 0, len(routed), city, v, ts + j))
    return topo, inventory, routed


@pytest.fixture
async def db(tmp_path: Path):
    """db(name) → a migrated SQLite engine."""
    engines = []

    async def make(name: str):
        url = f"sqlite+aiosqlite:///{tmp_path / name}.sqlite3"
        await upgrade_async(url)
        engines.append(create_async_engine(url))
        return engines[-1]

    yield make
    for engine in engines:
        await engine.dispose()


def runner(logic, engine, **recovery) -> tuple[ShardRunner, Recorder]:
    """A runner on `engine`; snapshots every `snapshot_every` entries exactly unless the test
    gives `snapshot_bytes_per_entry`."""
    producer = Recorder()
    recovery.setdefault("snapshot_bytes_per_entry", 0)
    r = ShardRunner(logic, ShardLog(engine, logic.stage), LocalTransport(partitions=4), producer,
                    group_id="test", wall_clock=None, **recovery)
    r.known_topics = {DECISIONS, FAULTS, DEADLETTER}
    return r, producer


async def feed(r: ShardRunner, msgs: list[Msg]) -> None:
    for i in range(0, len(msgs), BATCH):
        await r.process(msgs[i:i + BATCH])


def notices(rec: Recorder, start: int = 0) -> list[Msg]:
    return [Msg(FAULTS, 0, start + i, key, value, 0)
            for i, (key, value) in enumerate((k, v) for t, v, k in rec.sent if t == FAULTS)]


def tails(msgs: list[Msg], n: int) -> list[Msg]:
    """The last `n` messages of each key (shard), in their order: a redelivery of what each
    shard took last."""
    seen: Counter = Counter()
    out = []
    for m in reversed(msgs):
        if seen[m.key] < n:
            seen[m.key] += 1
            out.append(m)
    return out[::-1]


async def tail_entries(engine, stage: str) -> int:
    """The log entries of a stage after each shard's latest snapshot: what a rebuild re-runs."""
    async with engine.connect() as conn:
        latest = dict((await conn.execute(
            select(shard_snapshots.c.shard, func.max(shard_snapshots.c.seq))
            .where(shard_snapshots.c.stage == stage).group_by(shard_snapshots.c.shard))).all())
        rows = (await conn.execute(select(input_log.c.shard, input_log.c.seq)
                                   .where(input_log.c.stage == stage))).all()
    return sum(1 for shard, seq in rows if seq > latest.get(shard, 0))


async def count(engine, table, **where) -> int:
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    async with engine.connect() as conn:
        return (await conn.execute(query)).scalar_one()


async def test_a_restart_rebuilds_from_snapshots_and_tails_and_decides_as_an_uninterrupted_run(storm, db):
    _topo, inventory, routed = storm
    corr_logic, disp_logic = CorrelateLogic(inventory, RULEBOOK), DispatchLogic(inventory, RULEBOOK, None)
    recovery = {"snapshot_every": EVERY, "retention": "delete", "retention_entries": WINDOW}

    # The reference: one uninterrupted run, no snapshots, the log kept whole.
    ref_db = await db("reference")
    ref_corr, ref_corr_out = runner(corr_logic, ref_db, snapshot_every=0, retention="keep")
    await feed(ref_corr, routed)
    ref_disp, ref_disp_out = runner(disp_logic, ref_db, snapshot_every=0, retention="keep")
    await feed(ref_disp, notices(ref_corr_out))
    total = await count(ref_db, input_log)

    # The same inputs, the process restarted in the middle (new runners on the same database).
    live = await db("live")
    half = (len(routed) // BATCH // 2) * BATCH
    a_corr, a_corr_out = runner(corr_logic, live, **recovery)
    await feed(a_corr, routed[:half])
    a_disp, a_disp_out = runner(disp_logic, live, **recovery)
    await feed(a_disp, notices(a_corr_out))
    assert await count(live, shard_snapshots, stage="correlate") > 0

    b_corr, b_corr_out = runner(corr_logic, live, **recovery)
    # What came before the restart comes again (not committed, or a producer's retry): known
    # by its source key, from the tail and from the window behind the snapshot alike.
    again = tails(routed[:half], 100)
    assert min(Counter(m.key for m in again).values()) > EVERY // 2
    assert max(Counter(m.key for m in again).values()) < WINDOW
    await feed(b_corr, again)
    assert b_corr_out.sent == []
    assert any(b_corr.snapshot_seq.values())                 # opened from snapshots
    await feed(b_corr, routed[half:])
    disp_tail = await tail_entries(live, "dispatch")
    b_disp, b_disp_out = runner(disp_logic, live, **recovery)
    first_b_notice = len(a_corr_out.values(FAULTS))
    again = tails(notices(a_corr_out), 100)
    assert max(Counter(m.key for m in again).values()) < WINDOW
    await feed(b_disp, again)                                # the dispatcher's redelivery too
    assert b_disp_out.sent == []
    await feed(b_disp, notices(b_corr_out, first_b_notice))

    # Exactly the same messages, in the same order, ids and all.
    for topic in (DECISIONS, FAULTS, DEADLETTER):
        assert a_corr_out.values(topic) + b_corr_out.values(topic) == ref_corr_out.values(topic), topic
    assert [(t, v) for t, v, _k in a_disp_out.sent + b_disp_out.sent] == \
        [(t, v) for t, v, _k in ref_disp_out.sent]
    assert len(ref_disp_out.values(DECISIONS)) > 100
    # The same read model: every record stored once.
    assert await count(live, audit) == await count(ref_db, audit)

    # The restart re-ran only tails: less than EVERY entries per shard it opened.
    opened = len(b_corr.shards)
    assert 0 < b_corr.rerun_entries < opened * EVERY
    assert b_corr.rerun_entries < total // 5
    # (a busy shard is snapshotted after most batches, so the dispatcher's tail may be empty)
    assert b_disp.rerun_entries == disp_tail < len(b_disp.shards) * EVERY
    # The log is bounded by the window and a tail per shard, far below what came in.
    kept = await count(live, input_log)
    shards = len(await b_corr.log.shards()) + len(await b_disp.log.shards())
    assert kept <= shards * (WINDOW + EVERY + BATCH)
    assert kept < total // 2
    assert await count(live, input_log_archive) == 0
    async with live.connect() as conn:                      # at most two snapshots per shard
        per_shard = (await conn.execute(select(shard_snapshots.c.stage, shard_snapshots.c.shard, func.count())
                                        .group_by(shard_snapshots.c.stage, shard_snapshots.c.shard))).all()
        published_old = (await conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.published.is_(True)))).scalar_one()
    assert per_shard and max(n for _s, _c, n in per_shard) <= 2
    assert published_old < await count(ref_db, outbox)

    # And a third start, from the snapshots alone, holds the state of the reference.
    c_corr, _ = runner(corr_logic, live, **recovery)
    for shard in await c_corr.log.shards():
        state = await c_corr.open_shard(shard)
        ref_state = ref_corr.shards[shard]
        assert state.seq == ref_state.seq
        ref_engine, engine = ref_state.core.correlator, state.core.correlator
        assert sorted(engine.open_faults) == sorted(ref_engine.open_faults)
        assert (engine.fault_count, engine.incident_count) == (ref_engine.fault_count,
                                                               ref_engine.incident_count)
        assert state.core.pending_timers() == ref_state.core.pending_timers()
        assert state.seen <= ref_state.seen and len(state.seen) <= WINDOW + EVERY + BATCH


async def test_no_warning_on_a_clean_rebuild_from_a_snapshot_and_one_when_the_tail_differs(storm, db, caplog):
    _topo, inventory, routed = storm
    engine = await db("warn")
    logic = CorrelateLogic(inventory, RULEBOOK)
    r, _out = runner(logic, engine, snapshot_every=EVERY, retention_entries=WINDOW)
    await feed(r, routed[:3000])
    tails = {}                                   # shard → (its latest snapshot, records made since)
    for s in r.shards:
        snap = await r.log.latest_snapshot(s)
        if snap is not None:
            tails[s] = (snap, await count(engine, audit, stage="correlate", shard=s) - snap.records)
    assert any(snap.records > 0 for snap, _n in tails.values())
    shard = next(s for s, (_snap, n) in tails.items() if n > 0)
    with caplog.at_level(logging.WARNING, logger="faultline"):
        again, _ = runner(logic, engine, snapshot_every=EVERY, retention_entries=WINDOW)
        for s in await again.log.shards():
            await again.open_shard(s)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # A record of the tail no longer stored: the rebuild says so.
    async with engine.begin() as conn:
        newest = (await conn.execute(select(func.max(audit.c.id)).where(
            audit.c.stage == "correlate", audit.c.shard == shard))).scalar_one()
        await conn.execute(delete(audit).where(audit.c.id == newest))
    with caplog.at_level(logging.WARNING, logger="faultline"):
        await runner(logic, engine, snapshot_every=EVERY, retention_entries=WINDOW)[0].open_shard(shard)
    made, stored = tails[shard][1], tails[shard][1] - 1
    assert any(f"correlate {shard}: re-running the log made {made} records but {stored} are stored"
               in r.getMessage() for r in caplog.records)




def _alarm(offset: int, resource: str, alarm_id: str) -> dict:
    return {"at": T0 + offset, "source": f"faultline.alarms:0:{offset}@1",
            "input": {"kind": "alarm", "alarm": {
                "source": "gd-otn-nms-1", "alarm_id": alarm_id, "resource_id": resource,
                "probable_cause": "LOS", "severity": "critical", "state": "raised",
                "event_time": "2026-11-25T10:00:00+08:00", "text": "R_LOS"}}}


def _msgs(values: list[dict]) -> list[Msg]:
    return [Msg(CORRELATOR_INPUTS, 0, i, "GZ", orjson.dumps(v), 1_000 + i) for i, v in enumerate(values)]


async def test_no_snapshot_of_a_shard_a_failed_step_may_have_half_changed(db):
    """The poison message half-changes GZ, then raises: what the batch did before it is stored
    without a snapshot of GZ; the snapshot comes with the next batch, of the rebuilt shard."""
    inventory = load_inventory(SAMPLES / "inventory.json")
    engine = await db("poison")
    r, _sent = runner(PoisonCorrelate(inventory, RULEBOOK), engine, snapshot_every=1)
    good_a, good_b = _alarm(1, "GZ-OTN-A:1-3-1", "a"), _alarm(3, "GZ-OTN-B:2-1-5", "b")
    await r.process(_msgs([good_a, _alarm(2, "GZ-OTN-A:1-3-2", POISON), good_b]))
    async with engine.connect() as conn:
        seqs = (await conn.execute(select(shard_snapshots.c.seq).where(shard_snapshots.c.shard == "GZ")
                                   .order_by(shard_snapshots.c.seq))).scalars().all()
    assert seqs == [3]                       # not 1: the store before the rebuild took none
    ref, _ = runner(CorrelateLogic(inventory, RULEBOOK), await db("poison-ref"), snapshot_every=0)
    await ref.process(_msgs([good_a, good_b]))
    loaded = snapshots.load((await r.log.latest_snapshot("GZ")).state, CorrelateLogic(inventory, RULEBOOK))
    assert sorted(loaded.correlator.open_faults) == sorted(ref.shards["GZ"].core.correlator.open_faults)
    assert "half-way" not in {k[1] for k in loaded.correlator.alarms}


# ---------------------------------------------------------------------- retention

async def test_archive_mode_moves_the_entries_behind_the_window_and_keeps_them_whole(storm, any_db):
    _topo, inventory, routed = storm
    r, _out = runner(CorrelateLogic(inventory, RULEBOOK), any_db, snapshot_every=EVERY, retention="archive",
                     retention_entries=WINDOW)
    await feed(r, routed)
    async with any_db.connect() as conn:
        cols = [input_log.c[c.name] for c in input_log_archive.columns]
        live = (await conn.execute(select(*cols))).all()
        archived = (await conn.execute(select(input_log_archive))).all()
    assert archived, "nothing was archived"
    assert {tuple(a) for a in archived}.isdisjoint({tuple(x) for x in live})
    everything = sorted([tuple(x) for x in live] + [tuple(a) for a in archived])
    by_shard: dict[str, list[int]] = {}
    for row in everything:
        by_shard.setdefault(row[2], []).append(row[3])
    for shard, seqs in by_shard.items():                     # every seq once, none lost
        assert sorted(seqs) == list(range(1, len(seqs) + 1)), shard
        assert len(seqs) == r.shards[shard].seq
    total = len(everything)
    assert len(live) < total
    # The archived rows are as they were (ids, bodies, keys); every shard is still listed.
    ids = {a.id for a in archived}
    assert len(ids) == len(archived)
    assert set(await r.log.shards()) == set(r.shards)
    again, _ = runner(CorrelateLogic(inventory, RULEBOOK), any_db, snapshot_every=EVERY, retention="archive",
                      retention_entries=WINDOW)
    shard = max(r.shards, key=lambda s: r.shards[s].seq)
    state = await again.open_shard(shard)
    assert state.seq == r.shards[shard].seq and again.rerun_entries < EVERY


async def test_delete_and_keep_modes(storm, db):
    _topo, inventory, routed = storm
    logic = CorrelateLogic(inventory, RULEBOOK)
    deleted, kept = await db("delete"), await db("keep")
    r1, _ = runner(logic, deleted, snapshot_every=EVERY, retention="delete", retention_entries=WINDOW)
    r2, _ = runner(logic, kept, snapshot_every=EVERY, retention="keep", retention_entries=WINDOW)
    await feed(r1, routed)
    await feed(r2, routed)
    total = sum(s.seq for s in r2.shards.values())
    assert await count(kept, input_log) == total
    assert await count(deleted, input_log) < total and await count(deleted, input_log_archive) == 0
    assert await count(kept, shard_snapshots) == await count(deleted, shard_snapshots)
    # keep: a restart still starts from the snapshot, and seen holds the whole log.
    again, _ = runner(logic, kept, snapshot_every=EVERY, retention="keep", retention_entries=WINDOW)
    shard = max(r2.shards, key=lambda s: r2.shards[s].seq)
    state = await again.open_shard(shard)
    assert again.rerun_entries < EVERY and state.seen == r2.shards[shard].seen


async def test_a_big_state_is_snapshotted_less_often_in_proportion_to_its_size(storm, db, monkeypatch):
    """After a snapshot of B bytes the next waits max(snapshot_every, B / bytes_per_entry)
    entries: snapshots of a big state cost a bounded amount per entry, and a rebuild's tail
    stays in proportion to the state (its snapshot's load), not to the history."""
    _topo, inventory, routed = storm
    logic = CorrelateLogic(inventory, RULEBOOK)
    exact, _ = runner(logic, await db("exact"), snapshot_every=EVERY, snapshot_bytes_per_entry=0)
    await feed(exact, routed)
    assert exact.snapshot_interval == {}
    taken: list[tuple[str, int, int]] = []                   # (shard, seq, bytes) of each snapshot
    dump_sized = snapshots.dump_sized

    def recording(core):
        blob, size = dump_sized(core)
        taken.append((core.shard, sized.shards[core.shard].seq, size))   # the entry it covers
        return blob, size

    sized, _ = runner(logic, await db("sized"), snapshot_every=EVERY, snapshot_bytes_per_entry=200)
    monkeypatch.setattr(snapshots, "dump_sized", recording)
    await feed(sized, routed)
    shard = max(sized.shards, key=lambda s: sized.shards[s].seq)
    mine = [(seq, size) for s, seq, size in taken if s == shard]
    assert mine[-1][1] // 200 > 2 * EVERY                     # the shard's state is "big" at 200
    for (seq, size), (next_seq, _next) in zip(mine, mine[1:], strict=False):
        interval = max(EVERY, size // 200)                    # the interval its size set
        assert interval <= next_seq - seq < interval + BATCH
    assert sized.snapshot_interval[shard] == mine[-1][1] // 200
    assert len(mine) < exact.snapshot_seq[shard] // EVERY // 3         # far fewer than every EVERY
    # A rebuild re-runs the tail behind the latest snapshot: at most one interval.
    again, _ = runner(logic, sized.log.engine, snapshot_every=EVERY, snapshot_bytes_per_entry=200)
    state = await again.open_shard(shard)
    assert state.seq == sized.shards[shard].seq
    assert 0 < again.rerun_entries == state.seq - mine[-1][0] < mine[-1][1] // 200 + BATCH
    # and the restarted runner keeps the interval that snapshot set: its first batch does not
    # stop to dump a big state again after only snapshot_every entries
    assert again.snapshot_interval[shard] == mine[-1][1] // 200


async def test_a_shard_whose_log_was_pruned_to_nothing_is_still_listed_and_opens_where_it_was(db):
    inventory = load_inventory(SAMPLES / "inventory.json")
    engine = await db("empty")
    logic = CorrelateLogic(inventory, RULEBOOK)
    r, _ = runner(logic, engine, snapshot_every=0)
    lines = (SAMPLES / "replay_events.jsonl").read_bytes().splitlines()
    router = RouterDouble(inventory, RULEBOOK)
    routed = [Msg(CORRELATOR_INPUTS, 0, n, city, v, ts)
              for n, (topic, value, key, _p, ts) in enumerate(messages(lines, None))
              for t, v, city in router.route(Msg(topic, 0, n, key, value, ts)) if t == CORRELATOR_INPUTS]
    await r.process(routed)
    gz = r.shards["GZ"]
    await r.log.save_snapshot(Snapshot("GZ", gz.seq, r.fingerprint, snapshots.dump(gz.core)),
                              Retention("delete", entries=0))
    assert await count(engine, input_log, shard="GZ") == 0
    assert "GZ" in await r.log.shards()
    again, _ = runner(logic, engine)
    state = await again.open_shard("GZ")
    assert (state.seq, again.rerun_entries) == (gz.seq, 0)
    assert sorted(state.core.correlator.open_faults) == sorted(gz.core.correlator.open_faults)


# ---------------------------------------------------------------------- inventory changes

def _doc(path: Path = SAMPLES / "inventory.json") -> dict:
    return orjson.loads(path.read_bytes())


async def _pruned_gz(db, name: str, retention: str = "delete") -> tuple:
    """GZ's shard with a snapshot and a pruned log (window 1, every 3 entries)."""
    inventory = load_inventory(SAMPLES / "inventory.json")
    engine = await db(name)
    r, _ = runner(CorrelateLogic(inventory, RULEBOOK), engine, snapshot_every=3, retention=retention,
                  retention_entries=1)
    lines = (SAMPLES / "replay_events.jsonl").read_bytes().splitlines()
    router = RouterDouble(inventory, RULEBOOK)
    for n, (topic, value, key, _p, ts) in enumerate(messages(lines, "2026-11-25T19:00:00+08:00")):
        routed = [Msg(CORRELATOR_INPUTS, 0, n, city, v, ts)
                  for t, v, city in router.route(Msg(topic, 0, n, key, value, ts))
                  if t == CORRELATOR_INPUTS]
        await r.process(routed)
    return engine, r


async def test_a_changed_inventory_with_the_whole_log_re_runs_it_all(db):
    engine, r = await _pruned_gz(db, "whole", retention="keep")
    doc = _doc()
    doc["customers"] = [{**c, "name": c["name"] + "（新）"} for c in doc["customers"]]
    changed = parse_inventory(doc)
    again, _ = runner(CorrelateLogic(changed, RULEBOOK), engine)
    assert again.fingerprint != r.fingerprint
    state = await again.open_shard("GZ")
    assert again.rerun_entries == r.shards["GZ"].seq == state.seq


async def test_a_changed_inventory_after_pruning_loads_the_snapshot_bound_by_id(db):
    engine, r = await _pruned_gz(db, "rebound")
    assert await count(engine, input_log, shard="GZ") < r.shards["GZ"].seq
    doc = _doc()
    doc["circuits"].append({**doc["circuits"][0], "circuit_id": "GZ-NEW-0001"})
    changed = parse_inventory(doc)
    again, _ = runner(CorrelateLogic(changed, RULEBOOK), engine)
    state = await again.open_shard("GZ")
    ref = r.shards["GZ"]
    assert state.seq == ref.seq and again.rerun_entries < 3
    assert sorted(state.core.correlator.faults) == sorted(ref.core.correlator.faults)
    f = next(f for f in state.core.correlator.faults.values() if f.circuit is not None)
    assert f.circuit is changed.circuits[f.circuit.circuit_id]


async def test_a_circuit_gone_after_pruning_is_named_and_the_tail_re_run_from_a_fresh_shard(db, caplog):
    engine, r = await _pruned_gz(db, "gone")
    ref = r.shards["GZ"]
    named = next(f.circuit.circuit_id for f in ref.core.correlator.faults.values() if f.circuit is not None)
    doc = _doc()
    doc["circuits"] = [c for c in doc["circuits"] if c["circuit_id"] != named]
    changed = parse_inventory(doc)
    with caplog.at_level(logging.ERROR, logger="faultline"):
        again, _ = runner(CorrelateLogic(changed, RULEBOOK), engine)
        state = await again.open_shard("GZ")
    errors = [x.getMessage() for x in caplog.records if x.levelno >= logging.ERROR]
    assert any("correlate GZ" in e and f"circuit {named}" in e for e in errors), errors
    assert state.seq == ref.seq                               # seqs never go back
    kept = await count(engine, input_log, shard="GZ")
    assert again.rerun_entries == kept
