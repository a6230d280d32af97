"""`faultline run` decides as `faultline replay` does (ids aside): the equivalence tests of
the split pipeline and the Kafka pipeline, on the embedded runtime — every loop of the
production processes in one process, over the local transport and SQLite (issue 8)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from prometheus_client import CollectorRegistry
from scenario import RULEBOOK, t
from select_files import INVENTORY as SELECT_INVENTORY
from select_files import canonical_reasons, event_files, fed_lines, issue_13_cases
from service.support import T0, FakeClock
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from test_split_equivalence import INVENTORY, SAMPLES, days

from services.commands.replay import Replay
from services.commands.run import Embedded
from services.drivers.pipeline import Pipeline
from services.drivers.split import SplitPipeline
from shared.clock import fmt_time, parse_time
from shared.db.models import faults, work_orders
from shared.topics import DEADLETTER, DECISIONS
from tools.kafka_events import canonical, messages, replay_records


async def embedded_records(lines: list[bytes], until: str | None, db_dir: Path,
                           inventory=INVENTORY) -> tuple[list[dict], list[dict]]:
    """Feed the lines as producers would (each message stamped with its line's `at`; stream
    clock), wait until every loop is done; the decisions published and the dead letters."""
    svc = Embedded(inventory, RULEBOOK, f"sqlite+aiosqlite:///{db_dir / 'run.sqlite3'}", FakeClock(T0),
                   registry=CollectorRegistry(), stream=True)
    await svc.start()
    try:
        reader = svc.transport.consumer([DECISIONS, DEADLETTER], "test-reader")
        await reader.start()
        await svc.producer.send_many(messages(lines, until))
        await svc.settle(60)
        got, letters = [], []
        while msgs := await reader.fetch(timeout_ms=50, max_records=10_000):
            for m in msgs:
                (got if m.topic == DECISIONS else letters).append(orjson.loads(m.value))
        await reader.stop()
    finally:
        await svc.stop()
    return got, letters


def assert_same(lines: list[bytes], until: str | None, got: list[dict], letters: list[dict]) -> None:
    expected = replay_records(INVENTORY, RULEBOOK, lines, until, pipeline=Pipeline)
    a, b = canonical(expected), canonical(got)
    assert a == b, {"only in replay": list((a - b).elements())[:5],
                    "only in run": list((b - a).elements())[:5]}
    # Every line replay refuses is refused (and kept) by the runtime too.
    assert len(letters) == sum(1 for r in expected if r["type"] == "input.rejected")


async def test_sample_walkthrough_decides_as_replay(tmp_path):
    lines = (SAMPLES / "replay_events.jsonl").read_bytes().splitlines()
    until = "2026-11-25T19:00:00+08:00"
    got, letters = await embedded_records(lines, until, tmp_path)
    assert_same(lines, until, got, letters)
    await assert_same_state(lines, until, tmp_path / "run.sqlite3", sample=True)


async def assert_same_state(lines: list[bytes], until: str | None, db: Path, *, sample: bool = False,
                            inventory=INVENTORY) -> None:
    """What no record says — a fault's complaints, that its customer reported it, a work
    order taken in hand by `ack` — is in the read model as the engine of replay holds it."""
    pipe = Pipeline(inventory, RULEBOOK)
    end = parse_time(until) if until else None
    Replay(pipe, io.BytesIO()).run(io.BytesIO(b"\n".join(lines) + b"\n"), end)
    want_faults = {_fault_key(f.kind, f.circuit.circuit_id if f.circuit else None, f.city,
                              fmt_time(f.opened_at)): (sorted(f.complaints), f.customer_reported)
                   for f in pipe.correlator.faults.values()}
    want_orders = sorted((wo.queue, wo.title, wo.status) for wo in pipe.dispatcher.orders.values())
    engine = create_async_engine(f"sqlite+aiosqlite:///{db}")
    async with engine.connect() as conn:
        rows = (await conn.execute(select(faults))).mappings().all()
        orders = (await conn.execute(select(work_orders.c.queue, work_orders.c.title,
                                            work_orders.c.status))).all()
    await engine.dispose()
    have_faults = {_fault_key(r["kind"], r["circuit_id"], r["city"], r["opened_at"]):
                   (sorted(orjson.loads(r["complaints"])), r["customer_reported"]) for r in rows}
    assert have_faults == want_faults
    assert sorted(tuple(o) for o in orders) == want_orders
    if sample:                    # the walk-through has both: the comparison is not vacuous
        assert any(c for c, _r in want_faults.values())
        assert any(status == "inProgress" for _q, _t, status in want_orders)


def _fault_key(kind, circuit_id, city, opened_at) -> str:
    return f"{kind}|{circuit_id}|{city}|{opened_at}"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days())
def test_random_days_decide_as_replay(day):
    import asyncio

    lines, until = day
    with tempfile.TemporaryDirectory() as tmp:
        got, letters = asyncio.run(embedded_records(lines, until, Path(tmp)))
        assert_same(lines, until, got, letters)
        asyncio.run(assert_same_state(lines, until, Path(tmp) / "run.sqlite3"))


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


TIE = [
    b'{"kind":"alarm","at":"2026-11-25T10:31:00+08:00","alarm":{"source":"nms-1","alarm_id":"E0",'
    b'"resource_id":"GD-OTN-GZ-HN:4-1-2","probable_cause":"LOS","severity":"critical","state":"raised",'
    b'"event_time":"2026-11-25T10:31:00+08:00","text":"LOS"}}',
    b'{"kind":"escalate","at":"2026-11-25T10:31:00+08:00","select":{"circuit_id":"GZ-CL-0105"},"reason":"ES-6"}',
]


async def test_T_5_an_alarm_and_an_action_of_the_same_instant_go_in_the_order_sent(tmp_path):
    """On two topics with the same message time, the alarm sent first opens the fault the
    escalation then finds (the router's tie goes to the order sent, as the file lists them);
    found by the random days."""
    until = "2026-11-25T11:00:00+08:00"
    got, letters = await embedded_records(TIE, until, tmp_path)
    assert_same(TIE, until, got, letters)
    assert any(r["type"] == "escalation" for r in got) and letters == []


# ---------------------------------------------------------------------- issue 13: every select form


def assert_decides_as_replay(events: list[dict], until: str, db_dir: Path) -> None:
    """The events through `faultline run`'s runtime decide as replay: the same decisions and
    the same refusals (their reasons, ids replaced by what the faults are), and the same
    read-model state (complaints joined, customer reported, orders in hand)."""
    import asyncio

    expected, replay_lines = fed_lines(Pipeline, events, until)
    _split, lines = fed_lines(SplitPipeline, events, until)     # production's fault ids
    got, letters = asyncio.run(embedded_records(lines, until, db_dir, SELECT_INVENTORY))
    a, b = canonical(expected), canonical(got)
    assert a == b, {"only in replay": list((a - b).elements())[:5],
                    "only in run": list((b - a).elements())[:5]}
    want = canonical_reasons([r["reason"] for r in expected if r["type"] == "input.rejected"], expected)
    have = canonical_reasons([letter["reason"] for letter in letters], got)
    assert want == have, {"only in replay": list((want - have).elements()),
                          "only in run": list((have - want).elements())}
    asyncio.run(assert_same_state(replay_lines, until, db_dir / "run.sqlite3", inventory=SELECT_INVENTORY))


def test_CL4_SV5_the_cases_of_issue_13_decide_in_faultline_run_as_in_replay(tmp_path):
    assert_decides_as_replay(issue_13_cases(), t(60), tmp_path)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_files())
def test_CL4_random_select_files_decide_in_faultline_run_as_in_replay(file):
    events, until = file
    with tempfile.TemporaryDirectory() as tmp:
        assert_decides_as_replay(events, until, Path(tmp))
