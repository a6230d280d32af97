"""The shard runners' durable log (PostgreSQL or SQLite through SQLAlchemy async).

Per (stage, shard) an ordered input log and, written in the same transaction, the outbox
of what those inputs produced and the read model they change. The log is the truth: a
shard's state is rebuilt by re-running its log through a fresh shard (the rules are pure
and deterministic), so timers, faults and work orders survive any crash. Unique keys do
the rest: (stage, shard, seq) fences a zombie writer after a rebalance, and
(stage, shard, source_key) makes a redelivered message a no-op.

Bounded recovery: a batch may carry snapshots of its shards' state as of their last seq
(`Batch.snapshots`, services/drivers/snapshots.py), stored in the batch's transaction with
the shard's count of audit rows; a rebuild then re-runs only the entries after the
latest. With a `Batch.retention`, the same transaction drops what the snapshot makes
redundant: the entries more than `Retention.entries` behind it (deleted, or moved to
`input_log_archive`), the published outbox rows of those seqs, and all but the latest
`Retention.snapshots` snapshots. The entries kept behind the snapshot are the window in
which a redelivered message is still known by its source key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from sqlalchemy import delete, func, insert, select, union, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.drivers.stage_logic import Entry
from shared.clock import fmt_time
from shared.db.bulk import driver_rows, insert_statement
from shared.db.errors import UnstorableInput
from shared.db.models import audit, input_log, input_log_archive, outbox, rejected, shard_snapshots, timers
from shared.db.projection import project_batch

# The log's and the outbox's rows, many per batch: through the driver's executemany.
_LOG_INSERT = insert_statement(input_log, ("stage", "shard", "seq", "kind", "clock", "body", "source_key"))
_OUTBOX_INSERT = insert_statement(outbox, ("stage", "shard", "seq", "topic", "key", "value"))


@dataclass(slots=True)
class Outgoing:
    """One outbox row: the messages one input produced for one topic."""

    seq: int
    topic: str
    key: str | None
    values: list[bytes]


RETENTION_MODES = ("delete", "archive", "keep")


@dataclass(frozen=True, slots=True)
class Retention:
    """What a stored snapshot lets go (FAULTLINE_LOG_RETENTION, FAULTLINE_LOG_RETENTION_ENTRIES):
    `mode` delete | archive (entries moved to input_log_archive) | keep (the log stays whole);
    `entries` kept behind the latest snapshot (the redelivery window); `snapshots` kept per shard."""

    mode: str = "delete"
    entries: int = 10_000
    snapshots: int = 2

    def __post_init__(self) -> None:
        if self.mode not in RETENTION_MODES:
            raise ValueError(f"retention mode {self.mode!r} is not one of {', '.join(RETENTION_MODES)}")
        if self.entries < 0 or self.snapshots < 1:
            raise ValueError("retention keeps entries >= 0 and snapshots >= 1")


@dataclass(slots=True)
class Snapshot:
    """A shard's state (services/drivers/snapshots.dump) as of its log entry `seq`."""

    shard: str
    seq: int
    fingerprint: str
    state: bytes
    records: int = 0             # the shard's audit rows then (filled in when stored)


@dataclass(slots=True)
class Batch:
    shard_entries: list[tuple[str, Entry]] = field(default_factory=list)
    outgoing: list[tuple[str, Outgoing]] = field(default_factory=list)
    records: list[tuple[str, dict]] = field(default_factory=list)        # to project
    refusals: list[tuple[str, str | None, str, dict | None]] = field(default_factory=list)
    timers: dict[str, list[tuple[str, str, float]]] = field(default_factory=dict)   # shard → pending
    inputs: list[tuple[str, dict, float]] = field(default_factory=list)  # alarms, complaints to keep
    state: list[tuple[int, tuple[str, dict, dict]]] = field(default_factory=list)   # (records before, update)
    snapshots: list[Snapshot] = field(default_factory=list)   # stored after the rest, same transaction
    retention: Retention | None = None   # applied after each snapshot; None: nothing is dropped

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
        """Every shard with a log or a snapshot (a pruned log may have only the latter)."""
        query = union(select(input_log.c.shard).where(input_log.c.stage == self.stage),
                      select(shard_snapshots.c.shard).where(shard_snapshots.c.stage == self.stage))
        async with self.engine.connect() as conn:
            return sorted(r[0] for r in await conn.execute(query))

    async def entries(self, shard: str, after_seq: int = 0) -> list[Entry]:
        """The shard's log entries with seq > `after_seq`, in order."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(input_log.c.seq, input_log.c.kind, input_log.c.clock, input_log.c.body,
                       input_log.c.source_key)
                .where(input_log.c.stage == self.stage, input_log.c.shard == shard,
                       input_log.c.seq > after_seq)
                .order_by(input_log.c.seq))
            return [Entry(r.seq, r.kind, r.clock, orjson.loads(r.body) if r.body else None, r.source_key)
                    for r in rows]

    async def source_keys(self, shard: str, after_seq: int = 0, upto_seq: int | None = None) -> list[str]:
        """The source keys of the shard's entries with after_seq < seq <= upto_seq (a redelivery
        of any of them is skipped)."""
        query = (select(input_log.c.source_key)
                 .where(input_log.c.stage == self.stage, input_log.c.shard == shard,
                        input_log.c.seq > after_seq, input_log.c.source_key.is_not(None)))
        if upto_seq is not None:
            query = query.where(input_log.c.seq <= upto_seq)
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def bounds(self, shard: str) -> tuple[int, int] | None:
        """The first and last seq the shard's log still holds; None when it holds none."""
        query = (select(func.min(input_log.c.seq), func.max(input_log.c.seq))
                 .where(input_log.c.stage == self.stage, input_log.c.shard == shard))
        async with self.engine.connect() as conn:
            lo, hi = (await conn.execute(query)).one()
        return None if lo is None else (lo, hi)

    async def snapshot_seqs(self, shard: str) -> list[tuple[int, str]]:
        """(seq, fingerprint) of the shard's snapshots, the latest first (their states unread)."""
        s = shard_snapshots.c
        query = (select(s.seq, s.fingerprint).where(s.stage == self.stage, s.shard == shard)
                 .order_by(s.seq.desc()))
        async with self.engine.connect() as conn:
            return [(r.seq, r.fingerprint) for r in await conn.execute(query)]

    async def latest_snapshot(self, shard: str, fingerprint: str | None = None,
                              upto_seq: int | None = None) -> Snapshot | None:
        """The shard's snapshot of the highest seq (of that fingerprint and at most `upto_seq`,
        when given)."""
        s = shard_snapshots.c
        query = (select(s.seq, s.fingerprint, s.records, s.state)
                 .where(s.stage == self.stage, s.shard == shard).order_by(s.seq.desc()).limit(1))
        if fingerprint is not None:
            query = query.where(s.fingerprint == fingerprint)
        if upto_seq is not None:
            query = query.where(s.seq <= upto_seq)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            return None
        return Snapshot(shard, row.seq, row.fingerprint, bytes(row.state), row.records)

    async def save_snapshot(self, snapshot: Snapshot, retention: Retention | None = None) -> None:
        """Store a snapshot on its own (a batch stores its own in its transaction), then
        apply `retention` behind it."""
        async with self.engine.begin() as conn:
            await self._save_snapshot(conn, snapshot, retention)

    async def prune(self, shard: str, upto_seq: int, retention: Retention) -> None:
        """Apply `retention` as if a snapshot of `upto_seq` had just been stored."""
        async with self.engine.begin() as conn:
            await self._prune(conn, shard, upto_seq, retention)

    async def _save_snapshot(self, conn: AsyncConnection, snap: Snapshot,
                             retention: Retention | None) -> None:
        snap.records = (await conn.execute(
            select(func.count()).select_from(audit)
            .where(audit.c.stage == self.stage, audit.c.shard == snap.shard))).scalar_one()
        await conn.execute(shard_snapshots.insert().values(
            stage=self.stage, shard=snap.shard, seq=snap.seq, fingerprint=snap.fingerprint,
            records=snap.records, state=snap.state))
        if retention is not None:
            await self._prune(conn, snap.shard, snap.seq, retention)

    async def _prune(self, conn: AsyncConnection, shard: str, upto_seq: int, retention: Retention) -> None:
        stage = self.stage
        s = shard_snapshots.c
        kept = (await conn.execute(
            select(s.seq).where(s.stage == stage, s.shard == shard)
            .order_by(s.seq.desc()).offset(retention.snapshots - 1).limit(1))).scalar_one_or_none()
        if kept is not None:                          # all but the latest `snapshots`
            await conn.execute(delete(shard_snapshots)
                               .where(s.stage == stage, s.shard == shard, s.seq < kept))
        cut = upto_seq - retention.entries
        if retention.mode == "keep" or cut < 1:
            return
        old = (input_log.c.stage == stage, input_log.c.shard == shard, input_log.c.seq <= cut)
        if retention.mode == "archive":
            columns = [c.name for c in input_log_archive.columns]
            await conn.execute(insert(input_log_archive).from_select(
                columns, select(*(input_log.c[name] for name in columns)).where(*old)))
        await conn.execute(delete(input_log).where(*old))
        await conn.execute(delete(outbox).where(outbox.c.stage == stage, outbox.c.shard == shard,
                                                outbox.c.seq <= cut, outbox.c.published.is_(True)))

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
            entries = [{"p_stage": stage, "p_shard": shard, "p_seq": e.seq, "p_kind": e.kind,
                        "p_clock": e.clock,
                        "p_body": orjson.dumps(e.body).decode() if e.body is not None else None,
                        "p_source_key": e.source_key} for shard, e in batch.shard_entries]
            refusals = [{"at": at, "stage": stage, "source_key": source_key, "reason": reason,
                         "body": orjson.dumps(body).decode()}
                        for _shard, source_key, reason, body in batch.refusals]
        except (TypeError, ValueError) as err:          # orjson.JSONEncodeError is a TypeError
            raise UnstorableInput(f"cannot encode an input: {err}") from err
        async with self.engine.begin() as conn:
            if entries:
                await conn.exec_driver_sql(*driver_rows(conn.dialect, _LOG_INSERT, entries))
            if batch.outgoing:
                await conn.exec_driver_sql(*driver_rows(conn.dialect, _OUTBOX_INSERT, [
                    {"p_stage": stage, "p_shard": shard, "p_seq": o.seq, "p_topic": o.topic, "p_key": o.key,
                     "p_value": orjson.dumps([v.decode() for v in o.values]).decode()}
                    for shard, o in batch.outgoing]))
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
            for snap in batch.snapshots:                  # after the records: counted with them
                await self._save_snapshot(conn, snap, batch.retention)

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

    async def mark_published_spans(self, spans: dict[str, tuple[int, int]]) -> None:
        """Mark published the rows of each shard with seq from low to high (what one batch
        stored and published)."""
        if not spans:
            return
        async with self.engine.begin() as conn:
            for shard, (low, high) in spans.items():
                await conn.execute(update(outbox).where(
                    outbox.c.stage == self.stage, outbox.c.shard == shard, outbox.c.seq >= low,
                    outbox.c.seq <= high, outbox.c.published.is_(False)).values(published=True))

    async def mark_published(self, ids: list[int]) -> None:
        if not ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(published=True))
