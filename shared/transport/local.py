"""The local transport: Kafka's semantics inside one process, for `faultline run`.

Topics of partitions with offsets, consumer groups whose single member owns every
partition of its topics and commits the offsets it has durably handled, keyed sends
acknowledged with (partition, offset): what the runtime's loops expect of Kafka
(shared/transport/port.py), so `faultline run` runs the same loops as the production
processes. Messages and committed offsets are kept in the service's own database (the
`transport_messages` and `transport_offsets` tables of the migrations), written before a
send is acknowledged or a commit returns, so a crash loses no message and redoes only what
was not committed — as with Kafka. Without a database (`db=None`) they live in memory:
the same loops, fast, for tests.

A member's fetch returns the messages of all its topics in the order they were appended
(one global order), so a consumer of two topics sees them as they came. Messages below
every group's committed offset are deleted (retention); a topic that no group consumes
(decisions, work-order queues, dead letters in one process) keeps its latest
`keep_unconsumed` messages per partition, for a reader to come.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.bulk import driver_rows, insert_statement
from shared.db.models import transport_messages as messages_t
from shared.db.models import transport_offsets as offsets_t
from shared.transport.port import TP, Msg, PartitionCallback, Record, partition_for

log = logging.getLogger("faultline.transport")

_MESSAGES_INSERT = insert_statement(messages_t, ("topic", "partition", "offset", "key", "value",
                                                "timestamp_ms"))
FETCH_MAX_BYTES = 4 * 2**20    # a fetch returns at least one message, and stops past this much
TRIM_EVERY = 1000           # appends to a partition between two trims of unconsumed topics


class TransportClosed(RuntimeError):
    """A client of a transport that was closed, or was not started."""


@dataclass(slots=True)
class _Partition:
    base: int = 0                                   # offset of the first message kept (memory)
    end: int = 0                                    # the next offset to give
    msgs: list[tuple[int, Msg]] = field(default_factory=list)   # (global seq, msg), memory only
    since_trim: int = 0


class LocalTransport:
    """The broker of `faultline run`. `now_ms` stamps messages sent without a timestamp (the
    service's clock, so an accelerated demo clock reaches the router as Kafka's time would)."""

    name = "local"

    def __init__(self, db: AsyncEngine | None = None, *, partitions: int = 1,
                 now_ms: Callable[[], int] | None = None, keep_unconsumed: int = 10_000) -> None:
        self.db = db
        self.partitions = partitions
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.keep_unconsumed = keep_unconsumed
        self._parts: dict[TP, _Partition] = {}
        self._committed: dict[str, dict[TP, int]] = {}      # group → tp → next offset
        self._members: dict[str, _LocalConsumer] = {}
        self._seq = 0
        self._appended = asyncio.Event()
        self._lock = asyncio.Lock()                  # one writer: offsets are given in order
        self._waiting: list[tuple[Sequence[Record], asyncio.Future]] = []   # sends for the next write
        self._writer: asyncio.Task | None = None
        self._opened = False

    # ------------------------------------------------------------------ broker

    async def open(self) -> None:
        """Load the partitions' ends and the committed offsets (a restart goes on from them)."""
        if self._opened:
            return
        if self.db is not None:
            async with self.db.connect() as conn:
                rows = await conn.execute(select(messages_t.c.topic, messages_t.c.partition,
                                                 func.max(messages_t.c.offset), func.min(messages_t.c.offset),
                                                 func.max(messages_t.c.id))
                                          .group_by(messages_t.c.topic, messages_t.c.partition))
                for topic, partition, last, first, top in rows:
                    self._parts[(topic, partition)] = _Partition(base=first, end=last + 1)
                    self._seq = max(self._seq, top)
                for group, topic, partition, offset in await conn.execute(
                        select(offsets_t.c.group_id, offsets_t.c.topic, offsets_t.c.partition,
                               offsets_t.c.next_offset)):
                    self._committed.setdefault(group, {})[(topic, partition)] = offset
                    part = self._parts.get((topic, partition))
                    if part is None:                 # every message trimmed: it starts at the mark
                        self._parts[(topic, partition)] = _Partition(base=offset, end=offset)
        self._opened = True

    def producer(self) -> _LocalProducer:
        return _LocalProducer(self)

    def consumer(self, topics: Sequence[str], group_id: str, *,
                 on_assigned: PartitionCallback | None = None, on_revoked: PartitionCallback | None = None,
                 single_active: bool = False) -> _LocalConsumer:
        # One process, one member per group: every group is single-active here.
        return _LocalConsumer(self, list(topics), group_id, on_assigned, on_revoked)

    async def ensure_topics(self, topics: Mapping[str, int], *, deadline_s: float | None = 60.0) -> None:
        await self.open()
        for topic in topics:
            for p in range(self.partitions):
                self._parts.setdefault((topic, p), _Partition())

    async def problem(self) -> str | None:
        """None: the transport is its database, which readiness checks on its own."""
        return None

    def end(self, tp: TP) -> int:
        part = self._parts.get(tp)
        return part.end if part is not None else 0

    async def settled(self, timeout_s: float = 10.0, groups: Iterable[str] | None = None) -> bool:
        """Wait until every started group (or those of `groups`) has committed every message of
        its topics: nothing in flight between the loops. For tests and the outcome of an
        input; False on timeout."""
        deadline = time.monotonic() + timeout_s
        wanted = None if groups is None else set(groups)
        while time.monotonic() < deadline:
            members = [m for g, m in list(self._members.items()) if wanted is None or g in wanted]
            if all(self._caught_up(m) for m in members):
                return True
            await asyncio.sleep(0.005)
        return False

    def _caught_up(self, member: _LocalConsumer) -> bool:
        done = self._committed.get(member.group_id, {})
        return all(done.get(tp, self._parts[tp].base) >= self._parts[tp].end for tp in member.owned)

    # ------------------------------------------------------------------ storage

    async def _append(self, records: Sequence[Record]) -> list[tuple[int, int]]:
        """Append and acknowledge once durable. Group commit: sends that come while a write
        is under way wait for the next one, which stores them all in one transaction (one
        sync of the file for many requests under a storm), each acknowledged with its own
        offsets. A send whose caller gave up is still stored, as a Kafka send may be."""
        await self.open()
        for topic, _value, _key, partition, _ts in records:
            if partition is not None and not 0 <= partition < self.partitions:
                raise ValueError(f"{topic} has no partition {partition}")
        if self.db is None:
            return await self._append_now(records)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiting.append((records, fut))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting(), name="local-transport-writer")
        return await fut

    async def _write_waiting(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                acks = await self._append_now([r for records, _f in group for r in records])
            except BaseException as err:
                failed = err if isinstance(err, Exception) else TransportClosed("the transport was stopped")
                for _records, fut in group:
                    if not fut.done():
                        fut.set_exception(failed)
                if not isinstance(err, Exception):
                    for _records, fut in self._waiting:
                        if not fut.done():
                            fut.set_exception(failed)
                    self._waiting = []
                    raise
                continue
            at = 0
            for records, fut in group:
                if not fut.done():
                    fut.set_result(acks[at:at + len(records)])
                at += len(records)

    async def _append_now(self, records: Sequence[Record]) -> list[tuple[int, int]]:
        async with self._lock:
            out: list[tuple[int, int]] = []
            rows: list[dict] = []
            made: list[tuple[TP, int, Msg]] = []
            nexts: dict[TP, int] = {}                # the next offset of each partition sent to
            for topic, value, key, partition, ts in records:
                if partition is None:
                    partition = partition_for(key, self.partitions) if key is not None else 0
                if not 0 <= partition < self.partitions:
                    raise ValueError(f"{topic} has no partition {partition}")
                tp = (topic, partition)
                offset = nexts.get(tp)
                if offset is None:
                    offset = self._parts.setdefault(tp, _Partition()).end
                nexts[tp] = offset + 1
                msg = Msg(topic, partition, offset, key, bytes(value), self.now_ms() if ts is None else ts)
                made.append((tp, offset, msg))
                out.append((partition, offset))
                if self.db is not None:
                    rows.append({"p_topic": topic, "p_partition": partition, "p_offset": offset, "p_key": key,
                                 "p_value": msg.value, "p_timestamp_ms": msg.timestamp_ms})
            if rows:
                async with self.db.begin() as conn:      # durable before it is acknowledged
                    await conn.exec_driver_sql(*driver_rows(conn.dialect, _MESSAGES_INSERT, rows))
            trims = set()
            for tp, offset, msg in made:
                part = self._parts[tp]
                part.end = offset + 1
                self._seq += 1
                if self.db is None:
                    part.msgs.append((self._seq, msg))
                part.since_trim += 1
                if part.since_trim >= TRIM_EVERY:
                    part.since_trim = 0
                    trims.add(tp)
            for tp in trims:
                await self._trim(tp)
        self._appended.set()
        self._appended = asyncio.Event()
        return out

    async def _read(self, positions: Mapping[TP, int], limit: int) -> list[Msg]:
        """The next messages of these partitions from their positions, in append order."""
        wanted = {tp: pos for tp, pos in positions.items() if pos < self.end(tp)}
        if not wanted:
            return []
        if self.db is None:
            found: list[tuple[int, Msg]] = []
            for tp, pos in wanted.items():
                part = self._parts[tp]
                start = max(0, pos - part.base)
                found.extend(part.msgs[start:start + limit])
            found.sort(key=lambda x: x[0])
            return [m for _s, m in found[:limit]]
        c = messages_t.c
        where = or_(*(and_(c.topic == t, c.partition == p, c.offset >= pos)
                      for (t, p), pos in wanted.items()))
        async with self.db.connect() as conn:
            # At most FETCH_MAX_BYTES of values (and at least one message), as Kafka's
            # fetch_max_bytes: batch messages are large, and a backlog of them fetched at once
            # would be held (and decoded) all together. The sizes are read first, cheaply.
            sizes = (await conn.execute(select(c.id, func.length(c.value)).where(where).order_by(c.id)
                                        .limit(limit))).all()
            if not sizes:
                return []
            total, last = 0, sizes[-1][0]
            for row_id, size in sizes:
                total += size or 0
                if total >= FETCH_MAX_BYTES:
                    last = row_id
                    break
            rows = await conn.execute(select(c.topic, c.partition, c.offset, c.key, c.value, c.timestamp_ms)
                                      .where(where, c.id <= last).order_by(c.id).limit(limit))
            return [Msg(r.topic, r.partition, r.offset, r.key, bytes(r.value), r.timestamp_ms)
                    for r in rows]

    async def _commit(self, group: str, offsets: Mapping[TP, int]) -> None:
        done = self._committed.setdefault(group, {})
        changed = {tp: off for tp, off in offsets.items() if off > done.get(tp, -1)}
        if not changed:
            return
        if self.db is not None:
            async with self.db.begin() as conn:
                c = offsets_t.c
                for (topic, partition), off in changed.items():
                    await conn.execute(delete(offsets_t).where(c.group_id == group, c.topic == topic,
                                                               c.partition == partition))
                    await conn.execute(offsets_t.insert(), [{"group_id": group, "topic": topic,
                                                             "partition": partition, "next_offset": off}])
        done.update(changed)
        for tp in changed:
            part = self._parts.get(tp)
            if part is not None:
                part.since_trim += 1
                if part.since_trim >= TRIM_EVERY:
                    part.since_trim = 0
                    await self._trim(tp)

    async def _trim(self, tp: TP) -> None:
        """Retention: drop what every group consuming `tp` has committed; for a partition no
        group consumes, keep the latest `keep_unconsumed` messages. A running member whose
        group has committed nothing of `tp` yet still needs all of it: nothing is dropped."""
        part = self._parts[tp]
        if any(tp in m.owned and tp not in self._committed.get(g, {}) for g, m in self._members.items()):
            return
        marks = [g[tp] for g in self._committed.values() if tp in g]
        below = min(marks) if marks else part.end - self.keep_unconsumed
        if below <= part.base:
            return
        if self.db is None:
            part.msgs = part.msgs[below - part.base:]
        else:
            c = messages_t.c
            async with self.db.begin() as conn:
                await conn.execute(delete(messages_t).where(c.topic == tp[0], c.partition == tp[1],
                                                            c.offset < below))
        part.base = below


class _LocalProducer:
    def __init__(self, transport: LocalTransport) -> None:
        self._t = transport
        self._started = False

    async def start(self, *, deadline_s: float | None = 60.0) -> None:
        await self._t.open()
        self._started = True

    async def stop(self) -> None:
        self._started = False

    async def send(self, topic: str, value: bytes, *, key: str | None = None, partition: int | None = None,
                   timestamp_ms: int | None = None) -> tuple[int, int]:
        return (await self.send_many([(topic, value, key, partition, timestamp_ms)]))[0]

    async def send_many(self, records: Sequence[Record]) -> list[tuple[int, int]]:
        if not self._started:
            raise TransportClosed("Producer.start() was not called, or it was stopped")
        if not records:
            return []
        return await self._t._append(records)


class _LocalConsumer:
    """The one member of its group: it owns every partition of its topics."""

    def __init__(self, transport: LocalTransport, topics: list[str], group_id: str,
                 on_assigned: PartitionCallback | None, on_revoked: PartitionCallback | None) -> None:
        self._t = transport
        self.topics = topics
        self.group_id = group_id
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self.owned: set[TP] = set()
        self._position: dict[TP, int] = {}

    async def start(self, *, deadline_s: float | None = 60.0) -> None:
        t = self._t
        await t.ensure_topics({topic: t.partitions for topic in self.topics})
        other = t._members.get(self.group_id)
        if other is not None and other is not self:
            raise RuntimeError(f"group {self.group_id} already has a member in this process")
        t._members[self.group_id] = self
        self.owned = {(topic, p) for topic in self.topics for p in range(t.partitions)}
        done = t._committed.get(self.group_id, {})
        self._position = {tp: max(done.get(tp, 0), t._parts[tp].base) for tp in self.owned}
        if self._on_assigned is not None:
            await self._on_assigned(set(self.owned))

    async def stop(self) -> None:
        try:                                         # still the owner: on_revoked may commit (as on Kafka)
            if self.owned and self._on_revoked is not None:
                await self._on_revoked(set(self.owned))
        finally:
            self.owned = set()
            if self._t._members.get(self.group_id) is self:
                del self._t._members[self.group_id]

    def assignment(self) -> set[TP]:
        return set(self.owned)

    async def fetch(self, timeout_ms: int = 1000, max_records: int | None = 500) -> list[Msg]:
        if not self.owned:
            raise TransportClosed("Consumer.start() was not called, or it was stopped")
        limit = max_records or 500
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            appended = self._t._appended
            msgs = await self._t._read(self._position, limit)
            if msgs:
                for m in msgs:
                    self._position[(m.topic, m.partition)] = m.offset + 1
                return msgs
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            try:
                await asyncio.wait_for(appended.wait(), left)
            except TimeoutError:
                return []

    async def commit(self, offsets: Mapping[TP, int], *, deadline_s: float | None = None) -> None:
        await self._t._commit(self.group_id, {tp: off for tp, off in offsets.items() if tp in self.owned})

    async def lag(self) -> dict[TP, int]:
        return {tp: max(0, self._t.end(tp) - pos) for tp, pos in self._position.items()}

    async def drained(self, tps: Iterable[TP], timeout_s: float = 5.0) -> set[TP]:
        return {tp for tp in tps if tp in self.owned and self._position.get(tp, 0) >= self._t.end(tp)}
