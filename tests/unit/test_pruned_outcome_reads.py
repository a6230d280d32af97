"""services/http/reads.input_outcome once retention has let go of log entries, on rows written
by hand as services/runtime/shard_log.py keeps them: the horizon of each shard, the notices
kept open, the archive and what its inputs sent (tests/unit/test_http_app.py has the outcome
of entries still in the log)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from services.http.reads import input_outcome
from shared.db.migrate import upgrade_async
from shared.db.models import (
    input_log,
    input_log_archive,
    input_log_archive_sent,
    input_log_horizon,
    outbox,
    pruned_notices,
    rejected,
)
from shared.topics import DECISIONS, FAULTS

TS = 1764036000000
ALARMS = "faultline.alarms"


def _id(offset: int, ts: int = TS) -> str:
    return f"{ALARMS}:0:{offset}@{ts}"


@pytest.fixture
async def db(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'reads.sqlite3'}"
    await upgrade_async(url)
    engine = create_async_engine(url)
    yield engine
    await engine.dispose()


async def _rows(engine, table, *rows: dict) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(table), list(rows))


async def _horizon(engine, stage: str, shard: str, kind: str, origin: str, low: tuple, high: tuple) -> None:
    await _rows(engine, input_log_horizon, {"stage": stage, "shard": shard, "kind": kind, "origin": origin,
                                            "partition": 0, "low": low[0], "low_ts": low[1], "high": high[0],
                                            "high_ts": high[1]})


def _entry(stage: str, shard: str, seq: int, key: str, kind: str = "input") -> dict:
    return {"stage": stage, "shard": shard, "seq": seq, "kind": kind, "clock": 1.0, "body": "{}",
            "source_key": key}


def _notices(*ids: str) -> str:
    return orjson.dumps([orjson.dumps({"id": i, "notice": {}, "now": 1.0}).decode() for i in ids]).decode()


async def _outcome(engine, input_id: str, **kw) -> dict:
    async with engine.connect() as conn:
        return await input_outcome(conn, input_id, **kw)


async def test_an_input_within_a_shards_horizon_is_accepted_its_records_let_go(db):
    await _horizon(db, "correlate", "GZ", "source", ALARMS, (0, TS), (10, TS + 500))
    pruned = {"status": "accepted", "reason": None, "records": None, "pruned": True}
    assert await _outcome(db, _id(4)) == {"input_id": _id(4), **pruned}
    assert await _outcome(db, _id(4), expect=["GZ"]) == {"input_id": _id(4), **pruned}
    assert (await _outcome(db, _id(4), shards=["FS"]))["status"] == "pending"      # not a shard of it
    assert (await _outcome(db, _id(4), expect=["GZ", "FS"]))["status"] == "pending"  # FS to come
    for never in (_id(11), _id(4, TS + 501), _id(4, TS - 1), f"{ALARMS}:1:4@{TS}"):
        assert await _outcome(db, never) == {"input_id": never, "status": "pending", "reason": None,
                                             "records": None}
    # One shard still holds it, another let it go: the latter's records are no longer known.
    await _rows(db, input_log, _entry("correlate", "FS", 3, _id(4)))
    await _rows(db, outbox, {"stage": "correlate", "shard": "FS", "seq": 3, "topic": DECISIONS, "key": "FS",
                             "value": orjson.dumps(["{}", "{}"]).decode()})
    assert (await _outcome(db, _id(4), expect=["GZ", "FS"]))["pruned"] is True
    assert await _outcome(db, _id(4)) == {"input_id": _id(4), "status": "accepted", "reason": None,
                                          "records": 2}


async def test_a_refusal_holds_after_pruning_and_without_it(db):
    refused = _id(5)
    await _rows(db, rejected, {"at": "2026-11-25T10:25:00+08:00", "stage": "correlate", "source_key": refused,
                               "reason": "resolve: still down"})
    assert await _outcome(db, refused, expect=["GZ"]) == {"input_id": refused, "status": "refused",
                                                          "reason": "resolve: still down", "records": 0}
    await _horizon(db, "correlate", "GZ", "source", ALARMS, (0, TS), (10, TS))
    got = await _outcome(db, refused, expect=["GZ"])
    assert (got["status"], got["reason"], got["records"], got["pruned"]) == (
        "refused", "resolve: still down", None, True)


async def test_the_notices_of_a_deleted_entry_still_wait_or_refuse(db):
    await _horizon(db, "correlate", "GZ", "source", ALARMS, (0, TS), (10, TS))
    waits, refuses = _id(6), _id(7)
    await _rows(db, pruned_notices, {"source_key": waits, "notice_id": "GZ:6:0", "shard": "GZ"},
                {"source_key": refuses, "notice_id": "GZ:7:1", "shard": "GZ"})
    assert (await _outcome(db, waits))["status"] == "pending"                  # dispatch has not seen it
    await _rows(db, input_log, _entry("dispatch", "GZ", 1, "GZ:6:0"), _entry("dispatch", "GZ", 2, "GZ:7:1"))
    assert (await _outcome(db, waits))["status"] == "accepted"
    await _rows(db, rejected, {"at": "2026-11-25T10:25:00+08:00", "stage": "dispatch", "source_key": "GZ:7:1",
                               "reason": "ack: queue x holds no open work order"})
    got = await _outcome(db, refuses)
    assert (got["status"], got["reason"]) == ("refused", "ack: queue x holds no open work order")


async def test_a_notice_within_dispatchs_horizon_is_handled(db):
    i = _id(8)
    await _rows(db, input_log, _entry("correlate", "GZ", 8, i))
    await _rows(db, outbox, {"stage": "correlate", "shard": "GZ", "seq": 8, "topic": FAULTS, "key": "GZ",
                             "value": _notices("GZ:8:0", "GZ:8:3")})
    assert (await _outcome(db, i))["status"] == "pending"
    await _horizon(db, "dispatch", "GZ", "notice", "GZ", (1, 0), (8, 0))          # up to GZ:8:0 only
    assert (await _outcome(db, i))["status"] == "pending"
    await _rows(db, input_log, _entry("dispatch", "GZ", 30, "GZ:8:3"))
    assert await _outcome(db, i) == {"input_id": i, "status": "accepted", "reason": None, "records": None,
                                     "pruned": True}


async def test_an_archived_input_is_answered_in_full(db):
    i = _id(9)
    await _horizon(db, "correlate", "GZ", "source", ALARMS, (0, TS), (10, TS))
    await _horizon(db, "dispatch", "GZ", "notice", "GZ", (1, 0), (9, 9))
    await _rows(db, input_log_archive, {"id": 1, **_entry("correlate", "GZ", 9, i)},
                {"id": 2, **_entry("dispatch", "GZ", 4, "GZ:9:1")})
    assert (await _outcome(db, i))["pruned"] is True             # archived before 0006: not kept
    await _rows(db, input_log_archive_sent,
                {"stage": "correlate", "shard": "GZ", "seq": 9, "records": 2, "notices": '["GZ:9:1"]'},
                {"stage": "dispatch", "shard": "GZ", "seq": 4, "records": 3, "notices": None})
    assert await _outcome(db, i, expect=["GZ"]) == {"input_id": i, "status": "accepted", "reason": None,
                                                    "records": 5}
