"""The production pipeline on a real Kafka-protocol broker (Tansu) and real PostgreSQL:
`faultline correlate` and `faultline dispatch` as OS processes (issue 3 §8)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from pathlib import Path

import orjson
from scenario import CROSS_CITY_ROOT, RULEBOOK, action, alarm, cross_city_trunk, t
from select_files import canonical_reasons, fed_lines, issue_13_cases, seeded_files, select_inventory

from services.drivers.pipeline import Pipeline
from services.drivers.split import SplitPipeline
from shared.inventory import load_inventory
from shared.topics import ACTIONS, ALARMS, CORRELATOR_INPUTS, DEADLETTER, DECISIONS, FAULTS
from shared.transport.kafka import KafkaConfig, ensure_topics
from tools.kafka_events import canonical, published, read_decisions, replay_records, send

from .pipeline_support import (
    Proc,
    alarm_rows,
    assert_fed_in_time,
    http_get,
    outbox_decisions,
    stage_env,
    stored_alarm_rows,
    storm,
    wait_http,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
INVENTORY = load_inventory(SAMPLES / "inventory.json")

PIPELINE_TOPICS = (ALARMS, ACTIONS, CORRELATOR_INPUTS, FAULTS, DECISIONS, DEADLETTER)


async def wait_stored(db_url: str, n: int, timeout_s: float = 240) -> list[dict]:
    """The stored decisions, once at least `n` are there (or the timeout passed)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        stored = await outbox_decisions(db_url)
        if len(stored) >= n or asyncio.get_running_loop().time() > deadline:
            return stored
        await asyncio.sleep(1)


async def run_stages(env: dict, tmp_path: Path, stages=("correlate", "dispatch")) -> list[Proc]:
    procs = [Proc(s, env, tmp_path).start() for s in stages]
    try:
        await asyncio.gather(*(wait_http(p.port) for p in procs))
    except TimeoutError:
        raise AssertionError("\n\n".join(f"{p.stage}:\n{p.tail()}" for p in procs)) from None
    return procs


@contextlib.asynccontextmanager
async def stages_running(env: dict, tmp_path: Path, stages=("correlate", "dispatch")):
    """The stage processes, up; SIGTERMed on the way out (their exit codes: p.proc.returncode)."""
    procs = await run_stages(env, tmp_path, stages)
    try:
        yield procs
    finally:
        for p in procs:
            p.terminate()


async def test_equivalence_live_pipeline_decides_as_replay(broker, pg_url, tmp_path):
    lines = (SAMPLES / "replay_events.jsonl").read_bytes().splitlines()
    until = "2026-11-25T19:00:00+08:00"
    expected = replay_records(INVENTORY, RULEBOOK, lines, until)
    env = stage_env(broker.bootstrap, pg_url, SAMPLES / "inventory.json")
    async with stages_running(env, tmp_path) as procs:
        await send(broker.bootstrap, lines, until)
        got = await read_decisions(broker.bootstrap, expect=published(expected))
        metrics = await http_get(procs[0].port, "/metrics")      # correlate's (late ones: in its log)
    assert_fed_in_time(tmp_path)
    want = canonical(expected)
    have = canonical(got)
    assert have == want, ("\n\n".join(f"{p.stage}:\n{p.tail()}" for p in procs), *diff(want, have))
    assert [p.proc.returncode for p in procs] == [0, 0], "SIGTERM drains and exits 0"
    assert "faultline_router_late_messages_total 0.0" in metrics


async def test_equivalence_AL6_RT13_cross_city_incident_decides_as_replay(broker, pg_url, tmp_path):
    """A trunk under circuits of two A-end cities: one incident and one specialist order, an
    SZ fault confirmed by id upgrading it once (RT-12), as in replay (issue 9, deliverable 3)."""
    root = CROSS_CITY_ROOT
    inventory_path = tmp_path / "inventory.json"
    inventory_path.write_bytes(orjson.dumps(cross_city_trunk().doc()))
    inventory = load_inventory(inventory_path)

    def lines(confirm: dict) -> list[bytes]:
        return [orjson.dumps(e) for e in (alarm(0, root, alarm_id="X1"),
                                          action(10, "confirm", confirm, impact="full_block"),
                                          alarm(40, root, state="cleared", alarm_id="X1"))]
    until = t(600)
    expected = replay_records(inventory, RULEBOOK, lines({"fault_id": "F-000002"}), until)
    specialist = [r["work_order_id"] for r in expected if r["type"] == "work_order.created"
                  and r["queue"] == "prov.specialist.transmission"]
    assert len(specialist) == 1                                            # RT-13: one order
    assert [r["type"] for r in expected if r.get("work_order_id") == specialist[0]].count(
        "work_order.upgraded") == 1                                        # RT-12: once
    env = stage_env(broker.bootstrap, pg_url, inventory_path)
    async with stages_running(env, tmp_path) as procs:
        # The SZ circuit's fault is the second its group's shard (named GZ) opened.
        await send(broker.bootstrap, lines({"fault_id": "F-GZ-000002"}), until)
        got = await read_decisions(broker.bootstrap, expect=published(expected))
    assert_fed_in_time(tmp_path)
    want, have = canonical(expected), canonical(got)
    assert have == want, ("\n\n".join(f"{p.stage}:\n{p.tail()}" for p in procs), *diff(want, have))
    assert not [r for r in got if r["type"] == "input.rejected"]


def distinct_instants(events: list[dict]) -> list[dict]:
    """Each event i seconds later than its file says: no two share a millisecond, which Kafka
    would order by fetch between its two topics (README, known limits)."""
    return [{**e, "at": (datetime.fromisoformat(e["at"]) + timedelta(seconds=i)).isoformat()}
            for i, e in enumerate(events)]


async def test_equivalence_CL4_SV5_selects_and_complaints_across_shards_decide_as_replay(
        broker, pg_url, tmp_path):
    """Issue 13 through the real processes, scaled out: two correlators (one router active,
    the shards split between them) and a dispatcher. The issue's cases, then random files of
    alarms on shared and cross-city resources, complaints, and every action kind with every
    select form; one correlator is killed half-way: the survivor takes over its shards (and
    maybe the router: asks in flight are asked again). The decisions are replay's, each
    stored once, and so are the refusals (the dead letters' reasons, fault ids replaced by
    what the faults are)."""
    inventory_path = tmp_path / "inventory.json"
    inventory_path.write_bytes(orjson.dumps(select_inventory().doc()))
    events, until = seeded_files([1, 2, 3])
    events = distinct_instants(issue_13_cases() + events)
    expected, _ = fed_lines(Pipeline, events, until)
    _split, lines = fed_lines(SplitPipeline, events, until)          # production's fault ids
    refused = [r["reason"] for r in expected if r["type"] == "input.rejected"]
    assert any("matches 2 open faults" in r for r in refused)       # the comparison is not vacuous
    env = whole_store_env(broker.bootstrap, pg_url, inventory_path)
    async with stages_running(env, tmp_path, ("correlate", "correlate", "dispatch")) as procs:
        half = len(lines) // 2
        await send(broker.bootstrap, lines[:half])
        await asyncio.sleep(1.5)
        procs[0].kill()                              # one correlator dies mid-stream; its shards move
        await send(broker.bootstrap, lines[half:], until)
        got, stored = await decisions_and_store(broker, pg_url, expected)
        letters = await read_decisions(broker.bootstrap, expect=len(refused), topic=DEADLETTER)
    assert_fed_in_time(tmp_path)
    assert_once_each(expected, got, stored)
    want_r = canonical_reasons(refused, expected)
    have_r = canonical_reasons([letter["reason"] for letter in letters], got)
    assert have_r == want_r, diff(want_r, have_r)


async def decisions_and_store(broker, pg_url: str, expected: list[dict]) -> tuple[list[dict], list[dict]]:
    """What reached faultline.decisions (once all arrived) and what the stages stored."""
    got = await read_decisions(broker.bootstrap, expect=published(expected), timeout_s=240)
    return got, await outbox_decisions(pg_url)


def whole_store_env(bootstrap: str, db_url: str, inventory: Path) -> dict[str, str]:
    """stage_env with the log and the published outbox kept whole: assert_once_each compares
    the whole store with replay, and retention would let go of what the storm's busiest shard
    (one correlation group holds most of the bench inventory's cities) logged first."""
    return stage_env(bootstrap, db_url, inventory) | {"FAULTLINE_LOG_RETENTION": "keep"}


def assert_once_each(expected: list[dict], got: list[dict], stored: list[dict]) -> None:
    want = canonical(expected)
    # The store holds every decision exactly once: no work order, SMS or timer firing twice.
    assert canonical(stored) == want, diff(want, canonical(stored))
    # What reached faultline.decisions is all of it (a re-published record counted once).
    assert canonical(got) == want, diff(want, canonical(got))


def diff(want, have) -> tuple:
    return list((want - have).elements())[:3], list((have - want).elements())[:3]


async def test_crash_sigkill_correlate_and_dispatch_mid_storm_loses_and_duplicates_nothing(
        broker, pg_url, tmp_path):
    inventory_path, lines, until = storm(300, 20_000, 11, tmp_path)
    expected = replay_records(load_inventory(inventory_path), RULEBOOK, lines, until)
    env = whole_store_env(broker.bootstrap, pg_url, inventory_path)
    procs = await run_stages(env, tmp_path)
    half = len(lines) // 2
    await send(broker.bootstrap, lines[:half])
    await wait_stored(pg_url, 200, timeout_s=60)    # the stages are at work on the first half
    for p in procs:
        p.kill()                                    # SIGKILL: no drain, no goodbye
    before = len(await outbox_decisions(pg_url))
    assert 0 < before < len(expected), "the kill lands in the middle of the storm"
    async with stages_running(env, tmp_path):
        await send(broker.bootstrap, lines[half:], until)
        got, stored = await decisions_and_store(broker, pg_url, expected)
    assert_fed_in_time(tmp_path)
    assert_once_each(expected, got, stored)
    assert sum(1 for r in expected if r["type"] == "work_order.created") > 100
    # Every alarm kept once in the alarms table (redelivered ones not counted twice).
    kept, want = await stored_alarm_rows(pg_url), alarm_rows(lines)
    assert kept == want, [(k, kept.get(k), want.get(k)) for k in set(kept) ^ set(want) or
                          [k for k in want if kept[k] != want[k]]][:3]


async def test_outage_postgres_connections_killed_and_broker_restarted_lose_nothing(broker, pg_url, tmp_path):
    from .pg_fixtures import pg_terminate

    inventory_path, lines, until = storm(200, 6_000, 3, tmp_path)
    inventory = load_inventory(inventory_path)
    expected = replay_records(inventory, RULEBOOK, lines, until)
    half = len(lines) // 2
    half_until = orjson.loads(lines[half - 1])["at"]              # a tick closes the first half
    first_expected = replay_records(inventory, RULEBOOK, lines[:half], half_until)
    env = whole_store_env(broker.bootstrap, pg_url, inventory_path)
    async with stages_running(env, tmp_path):
        feeding = asyncio.create_task(send(broker.bootstrap, lines[:half], half_until))
        for _ in range(3):                          # the database drops every connection, mid-stream
            await asyncio.sleep(0.7)
            await pg_terminate(pg_url)
        await feeding
        first = await wait_stored(pg_url, published(first_expected), timeout_s=90)
        # Tansu keeps topics in memory: a restart empties them (records, groups, offsets), so
        # it is restarted once the first half is consumed. Its topics come back empty, and
        # the clients' metadata must catch up before anything is sent (Tansu acknowledges and
        # drops records for a topic it lost: FAULTLINE_KAFKA_METADATA_MAX_AGE_MS=2000 here).
        broker.restart()
        await ensure_topics(KafkaConfig(broker.bootstrap, partitions=4), {t: 4 for t in PIPELINE_TOPICS})
        await asyncio.sleep(5)
        await send(broker.bootstrap, lines[half:], until)
        stored = await wait_stored(pg_url, published(expected), timeout_s=90)
    assert_fed_in_time(tmp_path)
    first_want = canonical(first_expected)
    assert canonical(first) == first_want, ("first half", diff(first_want, canonical(first)))
    want = canonical(expected)
    assert canonical(stored) == want, diff(want, canonical(stored))
