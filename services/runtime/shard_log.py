"""The shard runners' durable log (PostgreSQL or SQLite through SQLAlchemy async).

Per (stage, shard) an ordered input log and, written in the same transaction, the outbox
of what those inputs produced and the read model they change. The log is the truth: a
shard's state is rebuilt by re-running its log through a fresh shard (the rules are pure
and deterministic), so timers, faults and work orders survive any crash. Unique keys do
the rest: (stage, shard, seq) fences a zombie writer after a rebalance, and
(stage, shard, source_key) makes a redelivered message a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.drivers.stage_logic import Entry
from shared.clock import fmt_time
from shared.db.errors import UnstorableInput
from shared.db.models import audit, input_log, outbox, rejected, timers
from shared.db.projection import project_batch


@dataclass(slots=True)
class Outgoing:
    """One outbox row: the messages one input produced for one topic."""

    seq: int
    topic: str
    key: str | None
    values: list[bytes]


@dataclass(slots=True)
class Batch:
    shard_entries: list[tuple[str, Entry]] = field(default_factory=list)
    outgoing: list[tuple[str, Outgoing]] = field(default_factory=list)
    records: list[tuple[str, dict]] = field(default_factory=list)        # to project
    refusals: list[tuple[str, str | None, str, dict | None]] = field(default_factory=list)
    timers: dict[str, list[tuple[str, str, float]]] = field(default_factory=dict)   # shard → pending
    inputs: list[tuple[str, dict, float]] = field(default_factory=list)  # alarms, complaints to keep
    state: list[tuple[str, dict, dict]] = field(default_factory=list)    # (table, key, values) updates

    def __bool__(self) -> bool:
        return bool(self.shard_entries or self.outgoing or self.records or self.refusals)


@dataclass(slots=True)
class Unpublished:
    id: int
    shard: str
    seq: int
    topic: str
    key: str | None
    values: list[bytes]


class ShardLog:
    def __init__(self, engine: AsyncEngine, stage: str) -> None:
        self.engine = engine
        self.stage = stage

    async def shards(self) -> list[str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(input_log.c.shard).where(input_log.c.stage == self.stage)
                                      .distinct())
            return sorted(r[0] for r in rows)

    async def entries(self, shard: str) -> list[Entry]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(input_log.c.seq, input_log.c.kind, input_log.c.clock, input_log.c.body,
                       input_log.c.source_key)
                .where(input_log.c.stage == self.stage, input_log.c.shard == shard)
                .order_by(input_log.c.seq))
            return [Entry(r.seq, r.kind, r.clock, orjson.loads(r.body) if r.body else None, r.source_key)
                    for r in rows]

    async def stored_records(self, shard: str) -> int:
        """How many decision records the shard stored (the audit trail keeps each once)."""
        async with self.engine.connect() as conn:
            query = (select(func.count()).select_from(audit)
                     .where(audit.c.stage == self.stage, audit.c.shard == shard))
            return (await conn.execute(query)).scalar_one()

    async def append(self, batch: Batch, at: str) -> None:
        """Everything a batch did, in one transaction (or nothing: the caller rebuilds).

        Raises UnstorableInput, before writing, when an entry's body does not encode (JSON
        nested deeper than orjson writes): a fault of a message, not of the database."""
        stage = self.stage
        try:
            entries = [{"stage": stage, "shard": shard, "seq": e.seq, "kind": e.kind, "clock": e.clock,
                        "body": orjson.dumps(e.body).decode() if e.body is not None else None,
                        "source_key": e.source_key} for shard, e in batch.shard_entries]
            refusals = [{"at": at, "stage": stage, "source_key": source_key, "reason": reason,
                         "body": orjson.dumps(body).decode()}
                        for _shard, source_key, reason, body in batch.refusals]
        except (TypeError, ValueError) as err:          # orjson.JSONEncodeError is a TypeError
            raise UnstorableInput(f"cannot encode an input: {err}") from err
        async with self.engine.begin() as conn:
            if entries:
                await conn.execute(input_log.insert(), entries)
            if batch.outgoing:
                await conn.execute(outbox.insert(), [
                    {"stage": stage, "shard": shard, "seq": o.seq, "topic": o.topic, "key": o.key,
                     "value": orjson.dumps([v.decode() for v in o.values]).decode()}
                    for shard, o in batch.outgoing])
            if refusals:
                await conn.execute(rejected.insert(), refusals)
            for shard, pending in batch.timers.items():       # the due times, for operators
                await conn.execute(delete(timers).where(timers.c.stage == stage, timers.c.shard == shard))
                rows = {(f, k, d): None for f, k, d in pending}
                if rows:
                    await conn.execute(timers.insert(), [{"stage": stage, "shard": shard, "fault_id": f,
                                                          "kind": k, "due": d} for f, k, d in rows])
            if batch.records or batch.inputs or batch.state:
                kept = [(kind, body, fmt_time(at)) for kind, body, at in batch.inputs]
                await conn.run_sync(project_batch, kept, batch.records, stage=stage, state=batch.state)

    async def unpublished(self, shards: set[str] | None = None, limit: int = 1000) -> list[Unpublished]:
        query = (select(outbox.c.id, outbox.c.shard, outbox.c.seq, outbox.c.topic, outbox.c.key,
                        outbox.c.value)
                 .where(outbox.c.stage == self.stage, outbox.c.published.is_(False))
                 .order_by(outbox.c.id).limit(limit))
        if shards is not None:
            query = query.where(outbox.c.shard.in_(sorted(shards)))
        async with self.engine.connect() as conn:
            rows = await conn.execute(query)
            return [Unpublished(r.id, r.shard, r.seq, r.topic, r.key,
                                [v.encode() for v in orjson.loads(r.value)]) for r in rows]

    async def mark_published(self, ids: list[int]) -> None:
        if not ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(published=True))
