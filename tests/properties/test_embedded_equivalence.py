"""`faultline run` decides as `faultline replay` does (ids aside): the equivalence tests of
the split pipeline and the Kafka pipeline, on the embedded runtime — every loop of the
production processes in one process, over the local transport and SQLite (issue 8)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from prometheus_client import CollectorRegistry
from scenario import RULEBOOK
from service.support import T0, FakeClock
from test_split_equivalence import INVENTORY, SAMPLES, days

from services.live import Embedded
from services.pipeline import Pipeline
from shared.topics import DEADLETTER, DECISIONS
from tools.kafka_events import canonical, messages, replay_records


async def embedded_records(lines: list[bytes], until: str | None, db_dir: Path) -> tuple[list[dict], int]:
    """Feed the lines as producers would (each message stamped with its line's `at`; stream
    clock), wait until every loop is done; the decisions published and the dead letters."""
    svc = Embedded(INVENTORY, RULEBOOK, f"sqlite+aiosqlite:///{db_dir / 'run.sqlite3'}", FakeClock(T0),
                   registry=CollectorRegistry(), stream=True)
    await svc.start()
    try:
        reader = svc.transport.consumer([DECISIONS, DEADLETTER], "test-reader")
        await reader.start()
        await svc.producer.send_many(messages(lines, until))
        await svc.settle(60)
        got, letters = [], 0
        while msgs := await reader.fetch(timeout_ms=50, max_records=10_000):
            for m in msgs:
                if m.topic == DECISIONS:
                    got.append(orjson.loads(m.value))
                else:
                    letters += 1
        await reader.stop()
    finally:
        await svc.stop()
    return got, letters


def assert_same(lines: list[bytes], until: str | None, got: list[dict], letters: int) -> None:
    expected = replay_records(INVENTORY, RULEBOOK, lines, until, pipeline=Pipeline)
    a, b = canonical(expected), canonical(got)
    assert a == b, {"only in replay": list((a - b).elements())[:5],
                    "only in run": list((b - a).elements())[:5]}
    # Every line replay refuses is refused (and kept) by the runtime too.
    assert letters == sum(1 for r in expected if r["type"] == "input.rejected")


async def test_sample_walkthrough_decides_as_replay(tmp_path):
    lines = (SAMPLES / "replay_events.jsonl").read_bytes().splitlines()
    until = "2026-11-25T19:00:00+08:00"
    got, letters = await embedded_records(lines, until, tmp_path)
    assert_same(lines, until, got, letters)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days())
def test_random_days_decide_as_replay(day):
    import asyncio

    lines, until = day
    with tempfile.TemporaryDirectory() as tmp:
        got, letters = asyncio.run(embedded_records(lines, until, Path(tmp)))
    assert_same(lines, until, got, letters)


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
