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

What the pruned entries were is not all lost: the outcome of an input (GET /inputs/{id},
services/http/reads.py) must still tell that it was handled. So the same transaction widens
the shard's `input_log_horizon` to span the source positions it removed (`horizon_marks`:
per topic partition of the input ids, per city of the notice ids), a few rows per shard
whatever the history; an archived input keeps its records' count and its notices' ids
(`input_log_archive_sent`: its outbox rows go); and a deleted correlate entry's notices
that dispatch has not yet handled, or refused, are kept in `pruned_notices` until
dispatch's own retention lets them go unrefused (a refused one stays, as its refusal does).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from sqlalchemy import delete, func, insert, select, tuple_, union, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.drivers.stage_logic import DispatchLogic, Entry
from shared.clock import fmt_time
from shared.db.bulk import driver_rows, insert_statement
from shared.db.errors import UnstorableInput
from shared.db.models import (
    audit,
    input_log,
    input_log_archive,
    input_log_archive_sent,
    input_log_horizon,
    outbox,
    pruned_notices,
    rejected,
    shard_snapshots,
    timers,
)
from shared.db.projection import project_batch
from shared.topics import DECISIONS, FAULTS

# The log's and the outbox's rows, many per batch: through the driver's executemany.
_LOG_INSERT = insert_statement(input_log, ("stage", "shard", "seq", "kind", "clock", "body", "source_key"))
_OUTBOX_INSERT = insert_statement(outbox, ("stage", "shard", "seq", "topic", "key", "value"))
_ARCHIVE_SENT_INSERT = insert_statement(input_log_archive_sent,
                                        ("stage", "shard", "seq", "records", "notices"))


# ---------------------------------------------------------------------- the horizon of a pruned log

SOURCE, NOTICE = "source", "notice"        # input_log_horizon.kind
NOTICE_STAGE = DispatchLogic.stage          # the stage that logs notices under their ids
_SOURCE_KEY = re.compile(r"(?s)(.+):([0-9]+):([0-9]+)@(-?[0-9]+)")    # topic:partition:offset@timestamp_ms
_NOTICE_ID = re.compile(r"(?s)(.+):([0-9]+):([0-9]+)")               # city:seq:n
_CHUNK = 500                               # keys per IN list

Mark = tuple[str, str, int]                # (kind, origin, partition): one horizon row of a shard
Position = tuple[int, int]                 # a source's (offset, timestamp_ms); a notice's (seq, n)
Span = tuple[Position, Position]           # the lowest and the highest removed


def key_position(key: str) -> tuple[Mark, Position] | None:
    """Where a source key stands in its origin: an input's id `topic:partition:offset@timestamp_ms`
    (the router's `source`, the correlate stage's key) at ((source, topic, partition), (offset,
    timestamp_ms)); a notice id `city:seq:n` (dispatch's key) at ((notice, city, 0), (seq, n)).
    None for a key of another shape: no outcome is ever asked of it."""
    m = _SOURCE_KEY.fullmatch(key)
    if m is not None:
        return (SOURCE, m[1], int(m[2])), (int(m[3]), int(m[4]))
    m = _NOTICE_ID.fullmatch(key)
    if m is not None:
        return (NOTICE, m[1], 0), (int(m[2]), int(m[3]))
    return None


def _widen(kind: str, span: Span, other: Span) -> Span:
    """Two spans as one: a source's offsets and times each range on their own; a notice's
    (seq, n) range in one order."""
    (lo, hi), (lo2, hi2) = span, other
    if kind == SOURCE:
        return (min(lo[0], lo2[0]), min(lo[1], lo2[1])), (max(hi[0], hi2[0]), max(hi[1], hi2[1]))
    return min(lo, lo2), max(hi, hi2)


def covers(kind: str, span: Span, at: Position) -> bool:
    """Is a key at `at` within what a shard let go of (so handled there)? A source: its offset
    within the offsets removed and its time within their times (a topic recreated starts its
    offsets again, later; a made-up time is seldom within); a notice: within the (seq, n) removed."""
    lo, hi = span
    if kind == SOURCE:
        return lo[0] <= at[0] <= hi[0] and lo[1] <= at[1] <= hi[1]
    return lo <= at <= hi


def horizon_marks(keys: Iterable[str]) -> dict[Mark, Span]:
    """The horizon the entries of these source keys make, once let go."""
    marks: dict[Mark, Span] = {}
    for key in keys:
        found = key_position(key)
        if found is not None:
            mark, at = found
            old = marks.get(mark)
            marks[mark] = (at, at) if old is None else _widen(mark[0], old, (at, at))
    return marks


def _chunks(items: Sequence, n: int = _CHUNK) -> Iterator[Sequence]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _notice_ids(value: str) -> list[str]:
    """The ids of the notices in an outbox row of faultline.faults (a tick has none)."""
    ids = []
    for message in orjson.loads(value):
        notice = orjson.loads(message)
        if isinstance(notice, dict) and isinstance(notice.get("id"), str):
            ids.append(notice["id"])
    return ids


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
        removed = {seq: key for seq, key in await conn.execute(
            select(input_log.c.seq, input_log.c.source_key).where(*old))}
        if removed:
            await self._let_go(conn, shard, removed, cut, retention.mode)
        await conn.execute(delete(outbox).where(outbox.c.stage == stage, outbox.c.shard == shard,
                                                outbox.c.seq <= cut, outbox.c.published.is_(True)))

    async def _let_go(self, conn: AsyncConnection, shard: str, removed: Mapping[int, str | None], cut: int,
                      mode: str) -> None:
        """Delete (or archive) the shard's entries up to `cut` (seq → source key), keeping what the
        outcome of their inputs needs: the horizon, the archive's summaries, the open notices."""
        old = (input_log.c.stage == self.stage, input_log.c.shard == shard, input_log.c.seq <= cut)
        keys = {seq: key for seq, key in removed.items() if key is not None}
        horizon = await self._raise_horizon(conn, shard, horizon_marks(keys.values()))
        if mode == "archive":
            columns = [c.name for c in input_log_archive.columns]
            await conn.execute(insert(input_log_archive).from_select(
                columns, select(*(input_log.c[name] for name in columns)).where(*old)))
            if keys:
                await self._archive_sent(conn, shard, keys, cut)
        elif keys:
            await self._keep_open_notices(conn, shard, keys, cut)
        await conn.execute(delete(input_log).where(*old))
        if any(kind == NOTICE for kind, _origin, _p in horizon):
            await self._settle_notices(conn, shard, horizon)

    async def _raise_horizon(self, conn: AsyncConnection, shard: str,
                             marks: Mapping[Mark, Span]) -> dict[Mark, Span]:
        """Widen the shard's horizon to the positions the removed entries held; the whole horizon."""
        h = input_log_horizon.c
        rows = await conn.execute(select(h.kind, h.origin, h.partition, h.low, h.low_ts, h.high, h.high_ts)
                                  .where(h.stage == self.stage, h.shard == shard))
        horizon: dict[Mark, Span] = {(r.kind, r.origin, r.partition): ((r.low, r.low_ts), (r.high, r.high_ts))
                                     for r in rows}
        for mark, span in marks.items():
            old = horizon.get(mark)
            new = span if old is None else _widen(mark[0], old, span)
            (low, low_ts), (high, high_ts) = new
            if old is None:
                await conn.execute(input_log_horizon.insert().values(
                    stage=self.stage, shard=shard, kind=mark[0], origin=mark[1], partition=mark[2],
                    low=low, low_ts=low_ts, high=high, high_ts=high_ts))
            elif new != old:
                await conn.execute(update(input_log_horizon).where(
                    h.stage == self.stage, h.shard == shard, h.kind == mark[0], h.origin == mark[1],
                    h.partition == mark[2]).values(low=low, low_ts=low_ts, high=high, high_ts=high_ts,
                                                   updated_at=func.now()))
            horizon[mark] = new
        return horizon

    async def _sent(self, conn: AsyncConnection, shard: str, low: int, cut: int,
                    topics: Sequence[str]) -> dict[int, tuple[int, list[str]]]:
        """seq → (its decision records, its notices' ids) of the outbox rows of seqs low..cut."""
        o = outbox.c
        sent: dict[int, tuple[int, list[str]]] = {}
        for seq, topic, value in await conn.execute(
                select(o.seq, o.topic, o.value).where(o.stage == self.stage, o.shard == shard, o.seq >= low,
                                                      o.seq <= cut, o.topic.in_(list(topics)))):
            records, notices = sent.get(seq, (0, []))
            if topic == DECISIONS:
                records += len(orjson.loads(value))
            else:
                notices = notices + _notice_ids(value)
            sent[seq] = (records, notices)
        return sent

    async def _archive_sent(self, conn: AsyncConnection, shard: str, keys: Mapping[int, str],
                            cut: int) -> None:
        """What the outbox rows of the inputs just archived said of them (the rows are dropped),
        for their outcome: the records each made, the notices each sent (input_log_archive_sent)."""
        sent = await self._sent(conn, shard, min(keys), cut, (DECISIONS, FAULTS))
        rows = []
        for seq in keys:
            records, notices = sent.get(seq, (0, []))
            rows.append({"p_stage": self.stage, "p_shard": shard, "p_seq": seq, "p_records": records,
                         "p_notices": orjson.dumps(notices).decode() if notices else None})
        await conn.exec_driver_sql(*driver_rows(conn.dialect, _ARCHIVE_SENT_INSERT, rows))

    async def _keep_open_notices(self, conn: AsyncConnection, shard: str, keys: Mapping[int, str],
                                 cut: int) -> None:
        """The notices of the inputs about to be deleted that dispatch has not handled yet, or
        has refused: kept under the input's id (pruned_notices), so its outcome still waits for
        them, or says the refusal."""
        pairs = [(keys[seq], notice_id) for seq, (_r, notices)
                 in (await self._sent(conn, shard, min(keys), cut, (FAULTS,))).items()
                 if seq in keys for notice_id in notices]
        if not pairs:
            return
        open_ = await self._open_notices(conn, shard, sorted({n for _k, n in pairs}))
        rows = [{"source_key": key, "notice_id": notice_id, "shard": shard}
                for key, notice_id in dict.fromkeys(pairs) if notice_id in open_]
        if rows:
            await conn.execute(pruned_notices.insert(), rows)

    async def _open_notices(self, conn: AsyncConnection, shard: str, notice_ids: Sequence[str]) -> set[str]:
        """Of these notices of the shard, those dispatch has not handled (no entry, not within its
        horizon) or has refused."""
        handled: set[str] = set()
        refused: set[str] = set()
        for chunk in _chunks(notice_ids):
            handled.update((await conn.execute(select(input_log.c.source_key).where(
                input_log.c.stage == NOTICE_STAGE, input_log.c.shard == shard,
                input_log.c.source_key.in_(chunk)))).scalars())
            refused.update((await conn.execute(select(rejected.c.source_key).where(
                rejected.c.source_key.in_(chunk)))).scalars())
        h = input_log_horizon.c
        horizon = {r.origin: ((r.low, r.low_ts), (r.high, r.high_ts)) for r in await conn.execute(
            select(h.origin, h.low, h.low_ts, h.high, h.high_ts)
            .where(h.stage == NOTICE_STAGE, h.shard == shard, h.kind == NOTICE))}
        out = set()
        for notice_id in notice_ids:
            if notice_id not in handled:
                found = key_position(notice_id)
                behind = horizon.get(found[0][1]) if found is not None else None
                if behind is None or not covers(NOTICE, behind, found[1]):
                    out.add(notice_id)
                    continue
            if notice_id in refused:
                out.add(notice_id)
        return out

    async def _settle_notices(self, conn: AsyncConnection, shard: str,
                              horizon: Mapping[Mark, Span]) -> None:
        """Drop the kept notices of the shard this (dispatch) shard has now let go of unrefused:
        handled, and nothing to tell. A refused one stays."""
        p = pruned_notices.c
        behind = []
        for key, notice_id in await conn.execute(select(p.source_key, p.notice_id).where(p.shard == shard)):
            found = key_position(notice_id)
            if found is not None and found[0] in horizon and covers(NOTICE, horizon[found[0]], found[1]):
                behind.append((key, notice_id))
        for chunk in _chunks(behind):
            refused = set((await conn.execute(select(rejected.c.source_key).where(
                rejected.c.source_key.in_(sorted({n for _k, n in chunk}))))).scalars())
            done = [pair for pair in chunk if pair[1] not in refused]
            if done:
                await conn.execute(delete(pruned_notices).where(tuple_(p.source_key, p.notice_id).in_(done)))

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
