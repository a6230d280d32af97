"""The shell around a city shard in the Kafka pipeline: consume, decide, log, publish, commit.

For every batch of messages the runner hands each one to its shard (the pure core), then
in ONE database transaction appends the inputs to the shard's log, the messages they
produced to the outbox and the records to the read model. Only then does it publish the
outbox and commit the consumer offsets (STYLE.md 11). A crash anywhere re-delivers
messages whose source keys the log already holds — skipped — or whose results were never
stored — redone. A shard is rebuilt, on assignment or after any failure, by re-running its
log through a fresh shard; timers come back with it and overdue ones fire once, at the
first tick. Ticks that change nothing are not logged: each logged input carries the clock
it was handled at, so a rebuild never depends on them.

No message stops a shard. A message that is not a JSON object, or whose handling raises (a
case the stage's checks did not foresee), is refused — kept in `rejected` and sent to
faultline.deadletter — and passed. A raise may leave the shard half-changed, so what the
batch did before it is stored first and the shard is rebuilt from its log, which never
holds the bad message. A batch the database refuses for its data (a value too long for a
column…) is redone one message at a time, so only the culprit is refused. A refused
message without a source key is known by its coordinates, so a redelivery is not refused
twice. A timer that raises on one shard is retried later, with backoff, the shard reported
`degraded` in /readyz meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from sqlalchemy.exc import DBAPIError

from services.drivers import snapshots
from services.drivers.batches import items_of, pack_records
from services.drivers.dead_letters import MAX_KEPT, dead_letter, kept_value
from services.drivers.stage_logic import Entry, Step
from services.runtime.sessions import Commits, SessionLoop, joined
from services.runtime.shard_log import Batch, Outgoing, Retention, ShardLog, Snapshot
from shared.clock import fmt_time
from shared.db.errors import UnstorableInput, data_fault
from shared.model import MAX_NAME
from shared.topics import DEADLETTER
from shared.transport.port import Msg, Producer, Transport, next_offsets, partition_for
from shared.wire import INTERNAL, describe

log = logging.getLogger("faultline.shards")
KEY_MAX = MAX_NAME          # shared.db.models.NAME (source_key)
TICK_RETRY_MAX_S = 60.0

# The decisions a monitoring room asks about afterwards, each logged once with its ids (the
# rest is on faultline.decisions and in the read model): few, so cheap even in a storm.
NOTED = {"fault.serious", "work_order.created", "work_order.upgraded", "escalation", "deadline.missed"}


def note_record(record: dict, stage: str, shard: str) -> None:
    rule = record.get("rule") or record.get("reason")
    ids = {"stage": stage, "shard": shard, "fault_id": record.get("fault_id"),
           "work_order_id": record.get("work_order_id"),
           "queue": record.get("queue") or record.get("to_queue"), "rule": rule}
    what = record.get("work_order_id") or record.get("fault_id") or ""
    log.info("%s %s: %s %s %s", stage, shard, record["type"], what, rule or "",
             extra={k: v for k, v in ids.items() if v is not None})


class _Unstorable(Exception):
    """The database refused a batch for its data (DataError): some message in it is bad."""


def _storable(text: str, limit: int) -> bool:
    """Fits its column, and holds no NUL (PostgreSQL text cannot)."""
    return len(text) <= limit and "\x00" not in text


class StageLogic(Protocol):
    stage: str
    input_topic: str

    def new_shard(self, shard: str) -> Any: ...

    def rerun(self, state: Any, entry: Entry) -> int: ...

    known_shards: frozenset[str]

    def source_key(self, body: dict) -> str | None: ...

    def redelivered(self, state: Any, body: dict) -> list[tuple[str, bytes]]: ...

    def clock_of(self, body: dict) -> float | None: ...

    def step(self, state: Any, body: dict, seq: int) -> tuple[Step, float]: ...

    def tick(self, state: Any, now: float, seq: int) -> Step: ...


@dataclass(slots=True)
class ShardState:
    shard: str
    core: Any
    seq: int = 0
    seen: set[str] = field(default_factory=set)


class ShardRunner(SessionLoop):
    def __init__(self, logic: StageLogic, shard_log: ShardLog, transport: Transport, producer: Producer, *,
                 group_id: str, wall_clock: Callable[[], float] | None = time.time,
                 tick_every_s: float = 1.0, batch_size: int = 2000, metrics=None,
                 message_clock: Callable[[], float] = time.time,
                 ready_to_tick: Callable[[], bool] = lambda: True, snapshot_every: int = 5000,
                 snapshot_bytes_per_entry: int = 100,
                 retention: str = "delete", retention_entries: int = 10_000) -> None:
        self.logic = logic
        self.log = shard_log
        self.transport = transport
        self.producer = producer
        self.group_id = group_id
        self.input_partitions = transport.partitions
        self.wall_clock = wall_clock          # None: stream time only (ticks come as inputs)
        self.tick_every_s = tick_every_s
        self.batch_size = batch_size
        self.shards: dict[str, ShardState] = {}
        self.owned: set[int] = set()
        self.unflushed = False                # shards were taken over: publish what they stored
        self.known_topics: set[str] = set()
        # /healthz (liveness): a session runs. False from a session failure until the next one
        # has started; not while it takes over its shards (a long rebuild is not a dead loop).
        # A shard whose timers fail is `degraded` (/readyz), not dead.
        self.healthy = False
        self.failing: dict[str, tuple[int, float]] = {}   # shard → (failed ticks, retry at)
        self.name = logic.stage
        self.metrics = metrics                # services.runtime.metrics.EngineMetrics, or None
        self.message_clock = message_clock    # the clock that stamps messages (latency metrics)
        # Upstream has handed on all it had (the router of this process: RouterRunner.idle);
        # with this shard's own partitions drained, a wall-clock tick overtakes no input.
        self.ready_to_tick = ready_to_tick
        self._tick_asked: list[asyncio.Future] = []
        # Bounded recovery (open_shard, _snapshot): a shard's state is snapshotted with the
        # batch that brings it `snapshot_every` log entries past its last snapshot (0: never),
        # and the log behind it is let go as `retention` says (FAULTLINE_SNAPSHOT_EVERY,
        # FAULTLINE_LOG_RETENTION, FAULTLINE_LOG_RETENTION_ENTRIES).
        self.snapshot_every = snapshot_every
        # A big state is snapshotted less often: after a snapshot of B bytes (uncompressed), the
        # next waits max(snapshot_every, B / snapshot_bytes_per_entry) entries (0: never longer).
        # Dumping costs ~120 ns a byte and re-running an entry ~25 µs, so at 100 snapshots cost
        # a few µs per entry at most, and a rebuild's tail costs about what loading its snapshot
        # does: recovery grows with the state, never with history.
        self.snapshot_bytes_per_entry = snapshot_bytes_per_entry
        self.snapshot_interval: dict[str, int] = {}   # shard → entries between its snapshots
        self.retention = Retention(retention, retention_entries)
        self.snapshot_seq: dict[str, int] = {}    # shard → seq of its latest snapshot (0: none)
        self.rerun_entries = 0                    # log entries re-run by rebuilds, all told
        self._fingerprint: str | None = None

    async def tick_now(self) -> None:
        """Fire the timers due by the clock now, at the loop's next pass (instead of waiting up
        to `tick_every_s`), and return once that tick is stored and published."""
        fut = asyncio.get_running_loop().create_future()
        self._tick_asked.append(fut)
        await fut

    @property
    def degraded(self) -> list[str]:
        """For /readyz: the owned shards whose due timers fail (retried with backoff)."""
        return [f"{self.logic.stage} {shard}: a due timer fails; retrying"
                for shard in sorted(self.failing.keys() & self.shards.keys())]

    # ------------------------------------------------------------------ lifecycle

    def _down(self, *, failed: bool) -> None:
        self.healthy = False
        if failed:                         # the next session rebuilds every shard from its log
            self.shards.clear()

    async def _session(self, stop: asyncio.Event) -> None:
        consumer = self.transport.consumer([self.logic.input_topic], self.group_id,
                                           on_assigned=self._assigned, on_revoked=self._revoked)
        async with joined(consumer, stop) as consumer:
            self.healthy = consumer is not None
            commits = Commits(consumer)
            try:
                await self._passes(consumer, commits, stop)
            finally:
                await commits.settle()               # the last commit lands before the consumer stops

    async def _passes(self, consumer, commits: Commits, stop: asyncio.Event) -> None:
        next_tick = 0.0
        while consumer is not None and not stop.is_set():
            msgs = await consumer.fetch(timeout_ms=200, max_records=self.batch_size)
            owned = consumer.assignment()
            if {p for _t, p in owned} != self.owned:      # a rebalance the callback missed or failed
                await self._assigned(owned)
            if self.unflushed:                            # what the shards just taken stored
                await self.flush_outbox()
            if msgs:
                await self.process(msgs)
                await commits.commit(next_offsets(msgs))
            if (self.wall_clock is not None and (time.monotonic() >= next_tick or self._tick_asked)
                    and await self._caught_up(consumer, owned)):
                next_tick = time.monotonic() + self.tick_every_s
                asked, self._tick_asked = self._tick_asked, []
                try:
                    await self.tick_all(self.wall_clock())
                except BaseException:
                    self._tick_asked[:0] = asked          # asked again by the next session's tick
                    raise
                for fut in asked:
                    if not fut.done():
                        fut.set_result(None)

    async def _caught_up(self, consumer, owned: set[tuple[str, int]]) -> bool:
        """Has upstream handed on all it had, and every owned partition been handed out in
        full? Only then may the wall clock tick: inputs still waiting carry earlier times, and
        a tick first would fire timers due after them before them (T-3 fires the timers due
        by an input's time as it comes)."""
        if not self.ready_to_tick():
            return False
        return not owned or await consumer.drained(owned) == owned

    async def _assigned(self, tps: set[tuple[str, int]]) -> None:
        owned = {p for _t, p in tps}
        mine = lambda shard: partition_for(shard, self.input_partitions) in owned  # noqa: E731
        for shard in [s for s in self.shards if not mine(s)]:
            del self.shards[shard]                 # gone to another member: its log moves on there
        for shard in await self.log.shards():
            if mine(shard) and shard not in self.shards:
                await self.open_shard(shard)
        # Last: aiokafka swallows a callback's error, and then the session loop sees the
        # assignment still differ and tries again (an error there restarts the session).
        self.owned = owned
        self.unflushed = True
        log.info("%s: assigned partitions %s, shards %s", self.logic.stage, sorted(self.owned),
                 sorted(self.shards))

    async def _revoked(self, tps: set[tuple[str, int]]) -> None:
        gone = {p for _t, p in tps}
        for shard in [s for s in self.shards if partition_for(s, self.input_partitions) in gone]:
            del self.shards[shard]
        self.owned -= gone

    @property
    def fingerprint(self) -> str:
        """Of the inventory and rulebook the shards run on (services/drivers/snapshots.py)."""
        if self._fingerprint is None:
            self._fingerprint = snapshots.fingerprint(self.logic.inventory, self.logic.rulebook)
        return self._fingerprint

    async def open_shard(self, shard: str) -> ShardState:
        """Rebuild a shard: its latest snapshot made under this inventory and rulebook, then the
        log entries after it re-run through the pure core (nothing is re-emitted); without
        such a snapshot, the whole log from a fresh shard. `seen` (the source keys a
        redelivery is known by) holds every entry the log still has: the tail and the
        retention window behind the snapshot.

        When the inventory or rulebook changed since the snapshots were made and the log
        has been pruned (it no longer starts at seq 1), the latest snapshot is loaded bound
        again by id to the new inventory; if that fails (an id it names is gone), the error
        names the shard and what is missing, and the retained tail is re-run from a fresh
        shard (see services/drivers/snapshots.py)."""
        stage = self.logic.stage
        bounds = await self.log.bounds(shard)
        first, last = bounds if bounds is not None else (None, 0)
        taken = await self.log.snapshot_seqs(shard)          # (seq, fingerprint), latest first
        # A snapshot is of use only while the log holds every entry after it.
        usable = [(seq, fp) for seq, fp in taken if first is None or first <= seq + 1]
        whole = first == 1 or (first is None and not taken)  # the log holds every entry from seq 1
        pick = next(((seq, fp) for seq, fp in usable if fp == self.fingerprint), None)
        if pick is None and usable and not whole:
            pick = usable[0]                                 # made under another inventory or rulebook
        base: Snapshot | None = None
        core = None
        if pick is not None:
            base = await self.log.latest_snapshot(shard, pick[1], upto_seq=pick[0])
            try:
                core, size = snapshots.load_sized(base.state, self.logic) if base is not None else (None, 0)
                if core is not None and self.snapshot_bytes_per_entry:
                    # the interval that snapshot set, not snapshot_every: a big state's first
                    # batch after a restart would otherwise stop the loop to dump it again
                    self.snapshot_interval[shard] = max(self.snapshot_every,
                                                        size // self.snapshot_bytes_per_entry)
            except snapshots.SnapshotError as err:
                if whole:
                    log.error("%s %s: cannot use its snapshot of seq %d (%s); re-running the whole log",
                              stage, shard, pick[0], err)
                else:
                    log.error("%s %s: cannot use its snapshot of seq %d (%s); the log holds only the "
                              "entries from seq %s: re-running them from a fresh shard, so the state "
                              "before them is lost", stage, shard, pick[0], err, first)
            if core is None:
                base = None
        elif not whole:
            log.error("%s %s: its log was pruned (it starts at seq %s) and no snapshot covers the gap; "
                      "re-running the entries left from a fresh shard", stage, shard, first)
        state = ShardState(shard, core if core is not None else self.logic.new_shard(shard))
        after = base.seq if base is not None else 0
        if base is not None:
            state.seq = base.seq
            state.seen.update(await self.log.source_keys(shard, upto_seq=base.seq))
        remade = 0
        tail = await self.log.entries(shard, after_seq=after)
        for entry in tail:
            remade += self.logic.rerun(state.core, entry) or 0
            state.seq = entry.seq
            if entry.source_key is not None:
                state.seen.add(entry.source_key)
        self.rerun_entries += len(tail)
        # Seqs never go back, even where the log holds nothing past a snapshot (notice ids
        # and the outbox are keyed by them).
        state.seq = max(state.seq, last, taken[0][0] if taken else 0)
        if base is not None or whole:
            # What re-running made against what was stored by the same entries: after the
            # snapshot (its row counts the shard's audit rows when it was taken), or all.
            stored = await self.log.stored_records(shard) - (base.records if base is not None else 0)
            if remade != stored:
                log.warning("%s %s: re-running the log made %d records but %d are stored; has the "
                            "inventory or the rulebook changed since they were written?", stage, shard,
                            remade, stored)
        # (A tail re-run from a fresh shard after an error makes fewer: the error said so.)
        if base is not None:
            log.info("%s %s: rebuilt from its snapshot of seq %d and %d entries after it", stage, shard,
                     base.seq, len(tail))
        self.snapshot_seq[shard] = base.seq if base is not None else 0
        self.shards[shard] = state
        return state

    async def _snapshot(self, batch: Batch, skip: set[str]) -> None:
        """Add to `batch` (stored in its transaction) a snapshot of each shard it logs to that
        it brings `snapshot_every` entries past the shard's last snapshot, with the retention
        to apply behind it. Never of a shard in `skip` (its core may be half-changed by a
        failed step), nor of one whose core is not at the batch's last entry for it. Unless
        the log is kept whole, the shard's `seen` then keeps the keys of the entries the log
        keeps, as a rebuild would: memory stays bounded too."""
        if not self.snapshot_every or not batch.shard_entries:
            return
        upto: dict[str, int] = {}
        for shard, entry in batch.shard_entries:
            upto[shard] = entry.seq
        for shard, seq in upto.items():
            state = self.shards.get(shard)
            if (shard in skip or state is None or state.seq != seq
                    or seq - self.snapshot_seq.get(shard, 0)
                    < self.snapshot_interval.get(shard, self.snapshot_every)):
                continue
            self.snapshot_seq[shard] = seq          # (a failed store rebuilds the shard: reset there)
            try:
                blob, size = snapshots.dump_sized(state.core)
            except snapshots.SnapshotError as err:  # the log still holds everything: no harm
                log.error("%s %s: no snapshot at seq %d: %s", self.logic.stage, shard, seq, err)
                continue
            if self.snapshot_bytes_per_entry:
                self.snapshot_interval[shard] = max(self.snapshot_every,
                                                    size // self.snapshot_bytes_per_entry)
            batch.snapshots.append(Snapshot(shard, seq, self.fingerprint, blob))
            batch.retention = self.retention
            cut = seq - self.retention.entries
            if self.retention.mode != "keep" and cut > 0:
                kept = set(await self.log.source_keys(shard, after_seq=cut))
                kept.update(e.source_key for s, e in batch.shard_entries
                            if s == shard and e.seq > cut and e.source_key is not None)
                state.seen = kept

    # ------------------------------------------------------------------ processing

    async def process(self, msgs: list[Msg], *, alone: bool = False) -> None:
        """Handle consumed messages: each input (a message, or one of a batch message's:
        services/drivers/batches.py) in order, then store what they did in one transaction."""
        await self._process(list(_units(msgs)), alone=alone)
        if self.metrics is not None and msgs and not alone:       # a redone batch was counted once
            stage, now_ms = self.logic.stage, self.message_clock() * 1000
            self.metrics.batch_messages.labels(stage).observe(len(msgs))
            waited = self.metrics.decision_seconds.labels(stage)
            for m in msgs:                      # from reaching the broker to decided and published
                waited.observe(max(0.0, (now_ms - m.timestamp_ms) / 1000))

    async def _process(self, units: list[_Unit], *, alone: bool = False) -> None:
        batch = Batch()
        last_clock, alarms, first = 0.0, 0, 0
        again: list[tuple[str, str, bytes]] = []
        for i, unit in enumerate(units):
            msg, body = unit.msg, unit.body
            shard = msg.key or "-"
            if shard not in self.logic.known_shards:     # no city's key: kept under "-", so
                shard = "-"                              # garbage keys make no new shards
            state = self.shards.get(shard) or await self.open_shard(shard)
            if unit.problem is not None:
                self._refuse(batch, state, unit.label, unit.problem, body, msg=msg)
                continue
            if type(body) is not dict:
                self._refuse(batch, state, unit.label, f"expected a JSON object, got {type(body).__name__}",
                             body, msg=msg)
                continue
            source_key = self.logic.source_key(body)
            if source_key is not None and (type(source_key) is not str
                                           or not _storable(source_key, KEY_MAX)):
                self._refuse(batch, state, unit.label, "source key: expected a string of at most "
                             f"{KEY_MAX} characters, got {type(source_key).__name__}", body, msg=msg)
                continue
            if source_key is not None and source_key in state.seen:
                # A redelivery: already done. What it answered is said again (an ask of a
                # router that stopped before it had every answer), with what is said at once.
                again.extend((shard, topic, value)
                             for topic, value in self.logic.redelivered(state.core, body))
                continue
            try:
                step, clock = self.logic.step(state.core, body, state.seq + 1)
            except Exception as err:
                # The shard may be half-changed. Store what the batch did so far, rebuild the
                # shard from its log (which never holds this input), then refuse the input.
                log.exception("%s %s: internal error on %s; refused, rebuilding the shard",
                              self.logic.stage, shard, unit.label,
                              extra={"stage": self.logic.stage, "shard": shard, "input_id": unit.label})
                await self._store_or_isolate(batch, last_clock, units[first:i], alone, skip_timers={shard})
                state = await self.open_shard(shard)
                if await self._timers_raise(state, body):
                    # Its due timers raise, not the input (they fire first, T-3): nothing
                    # to refuse. The session ends before the commit; the input comes again.
                    raise TimersFailing(f"{self.logic.stage} {shard}: a due timer raises "
                                        f"({describe(err)}); {unit.label} waits") from err
                state = self.shards[shard]                        # rebuilt once more by the probe
                batch, first = Batch(), i
                self._refuse(batch, state, source_key or unit.label, f"{INTERNAL}: {describe(err)}",
                             body, msg=msg)
                continue
            if not (type(clock) in (int, float) and math.isfinite(clock)):
                clock = 0.0                                       # never let it break the store
            again.extend((shard, topic, value) for topic, value in step.at_once)
            inp = body.get("input")
            alarms += type(inp) is dict and inp.get("kind") == "alarm"
            last_clock = max(last_clock, clock)
            self._collect(batch, state, step, "input", clock, body, source_key,
                          None if source_key is not None or step.refused is None else unit.label, msg)
        if self.metrics is not None and alarms and not alone:     # a redone batch was counted once
            self.metrics.alarms.inc(alarms)
        if again:        # said at once (Step.at_once), or said again for a redelivery
            await self._send([(shard, Outgoing(0, topic, shard, [value])) for shard, topic, value in again])
        await self._store_or_isolate(batch, last_clock, units[first:], alone)

    async def _store_or_isolate(self, batch: Batch, clock: float, units: list[_Unit], alone: bool,
                                skip_timers: set[str] = frozenset()) -> None:
        """Store `batch` (what `units` did). If the database refuses its data, nothing of it was
        stored: rebuild the shards it touched and redo the inputs one at a time; an input
        refused alone is dead-lettered with the database's reason."""
        try:
            await self._store(batch, clock, skip_timers)
            return
        except _Unstorable as err:
            cause = err.__cause__ or err
        for shard in {s for s, _e in batch.shard_entries}:
            await self.open_shard(shard)
        if not alone:
            log.warning("%s: the database refused a batch of %d (%s); redoing it one by one",
                        self.logic.stage, len(units), describe(cause))
            for unit in units:
                await self._process([unit], alone=True)
            return
        unit = units[0]
        msg, body = unit.msg, unit.body
        shard = msg.key if msg.key in self.logic.known_shards else "-"
        state = self.shards.get(shard) or await self.open_shard(shard)
        retry = Batch()
        key = self.logic.source_key(body) if type(body) is dict and unit.problem is None else None
        if type(key) is not str or not _storable(key, KEY_MAX):
            key = unit.label
        reason = f"{INTERNAL}: {describe(cause)}".replace("\x00", "\ufffd")
        self._refuse(retry, state, key, reason, body, msg=msg)
        await self._store(retry, clock)

    async def _timers_raise(self, state: ShardState, body: dict) -> bool:
        """Do the shard's timers due by the message's clock raise on their own? Probed on the
        rebuilt shard, which is rebuilt once more either way (a probe's tick is not logged)."""
        clock = self.logic.clock_of(body)
        if clock is None:
            return False
        try:
            self.logic.tick(state.core, clock, state.seq + 1)
            raised = False
        except Exception:
            raised = True
        await self.open_shard(state.shard)
        return raised

    async def tick_all(self, now: float, shards: list[str] | None = None) -> None:
        """Advance every owned shard (or those named) to `now`; what fires is logged and
        published. A batch the database refuses for its data is redone shard by shard, and
        a shard whose timers' records it refuses waits like a failing timer."""
        batch = Batch()
        quiet: list[tuple[str, Outgoing]] = []
        for state in [self.shards[s] for s in shards] if shards is not None else list(self.shards.values()):
            failed = self.failing.get(state.shard)
            if failed is not None and time.monotonic() < failed[1]:
                continue                                  # a failing timer waits for its retry
            try:
                step = self.logic.tick(state.core, now, state.seq + 1)
            except Exception:
                # No message to refuse: rebuild the shard (its log is whole: a tick is the
                # shard's only step in this batch) and retry later, reported down meanwhile.
                log.exception("%s %s: a timer step failed; rebuilt", self.logic.stage, state.shard)
                await self._tick_failed(state.shard)
                continue
            self.failing.pop(state.shard, None)
            if step.log:
                self._collect(batch, state, step, "tick", now, None, None)
            else:
                quiet.extend((state.shard, Outgoing(0, t, state.shard, v)) for t, v in step.outgoing.items())
        try:
            await self._store(batch, now)
        except _Unstorable as err:
            touched = sorted({s for s, _e in batch.shard_entries})
            for shard in touched:
                await self.open_shard(shard)              # nothing of the batch was stored
            if shards is not None and len(touched) == 1:
                log.error("%s %s: the database refuses what its timers made (%s)", self.logic.stage,
                          touched[0], describe(err.__cause__ or err))
                await self._tick_failed(touched[0])
                return
            for shard in touched:
                await self.tick_all(now, [shard])
            return
        if quiet and not await self.log.unpublished(set(self.shards), limit=1):
            await self._send([(shard, o) for shard, o in quiet])   # ticks only follow a flushed outbox

    async def _tick_failed(self, shard: str) -> None:
        """Rebuild the shard and retry its timers later (doubling waits), `degraded` meanwhile."""
        failed = self.failing.get(shard)
        n = failed[0] + 1 if failed else 1
        await self.open_shard(shard)
        self.failing[shard] = (n, time.monotonic() + min(2.0 ** n, TICK_RETRY_MAX_S))

    def _collect(self, batch: Batch, state: ShardState, step: Step, kind: str, clock: float,
                 body: dict | None, source_key: str | None, refusal_key: str | None = None,
                 msg: Msg | None = None) -> None:
        """`refusal_key` names a refused input that has no source key (its coordinates)."""
        if step.log:
            state.seq += 1
            batch.shard_entries.append((state.shard, Entry(state.seq, kind, clock, body, source_key)))
            if source_key is not None:
                state.seen.add(source_key)
            for topic, values in step.outgoing.items():
                batch.outgoing.append((state.shard, Outgoing(state.seq, topic, state.shard, values)))
            batch.records.extend((state.shard, r) for r in step.records)
            batch.inputs.extend(step.inputs)
            batch.state.extend((len(batch.records), u) for u in step.state)   # after its records
        if step.refused is not None:
            self._refuse(batch, state, source_key or refusal_key, step.refused, body, logged=step.log,
                         msg=msg)

    def _refuse(self, batch: Batch, state: ShardState, source_key: str | None, reason: str,
                body: dict | None, *, logged: bool = False, msg: Msg | None = None) -> None:
        """Keep a refused input (the rejected table and the dead-letter topic), never drop it.
        The letter names the message it came from (topic, partition, offset) when given.

        A `refused` log entry carries the dead letter's outbox row and, unless the input
        itself was logged, its source key, so a redelivery is not refused twice."""
        if not logged and source_key is not None and source_key in state.seen:
            return                                  # refused on an earlier delivery
        log.info("%s %s refused %s: %s", self.logic.stage, state.shard, source_key, reason,
                 extra={"stage": self.logic.stage, "shard": state.shard, "input_id": source_key})
        kept = kept_value(body, MAX_KEPT)       # what encodes, and fits a message
        batch.refusals.append((state.shard, source_key, reason, kept))
        letter = dead_letter(reason, self.logic.stage, kept, source=source_key, msg=msg)
        state.seq += 1
        key = None if logged else source_key
        if key is not None:
            state.seen.add(key)
        batch.shard_entries.append((state.shard, Entry(state.seq, "refused", 0.0, None, key)))
        batch.outgoing.append((state.shard, Outgoing(state.seq, DEADLETTER, state.shard, [letter])))

    async def _store(self, batch: Batch, clock: float, skip_timers: set[str] = frozenset()) -> None:
        """Store the batch, then publish. `skip_timers`: shards whose core is not to be read
        (half-changed by a failed step; their timers row is written by their next batch)."""
        if not batch:
            return
        for shard in {s for s, _e in batch.shard_entries} - set(skip_timers):
            state = self.shards.get(shard)
            if state is not None:
                batch.timers[shard] = state.core.pending_timers()
        await self._snapshot(batch, skip_timers)       # in the batch's transaction
        started = time.perf_counter()
        try:
            at = fmt_time(clock) if clock else ""
        except (ValueError, OverflowError):      # a clock beyond what a date can show
            at = ""
        try:
            await self.log.append(batch, at)
        except (DBAPIError, UnstorableInput) as err:
            if not data_fault(err):
                raise                                # the database's own trouble: a new session
            raise _Unstorable(describe(err)) from err    # the data, not the database: see process()
        if self.unflushed:
            await self.flush_outbox()
        else:
            await self._publish_stored(batch)
        for shard, record in batch.records:
            if record["type"] in NOTED:
                note_record(record, self.logic.stage, shard)
        if self.metrics is not None:
            self.metrics.observe_records(r for _shard, r in batch.records)
            self.metrics.engine_seconds.labels(self.logic.stage).observe(time.perf_counter() - started)
            if batch.refusals:
                self.metrics.rejected.labels(self.logic.stage).inc(len(batch.refusals))

    # ------------------------------------------------------------------ outbox

    async def flush_outbox(self) -> None:
        """Publish what this member's shards stored and did not publish yet, in log order, then
        mark it (another member's rows are its own to publish)."""
        while self.shards:
            rows = await self.log.unpublished(set(self.shards))
            if not rows:
                break
            await self._send([(r.shard, Outgoing(r.seq, r.topic, r.key, r.values)) for r in rows])
            await self.log.mark_published([r.id for r in rows])
        self.unflushed = False

    async def _publish_stored(self, batch: Batch) -> None:
        """Publish what the batch just stored, from memory, then mark its rows: nothing older is
        unpublished (else `unflushed` is set and flush_outbox reads the rows back in order).
        A failure leaves the rows unpublished and the next pass flushes them (again: at
        least once, as a crash between publishing and marking would)."""
        if not batch.outgoing:
            return
        self.unflushed = True                     # until the batch's rows are marked
        await self._send(batch.outgoing)
        spans: dict[str, tuple[int, int]] = {}
        for shard, o in batch.outgoing:
            low, high = spans.get(shard, (o.seq, o.seq))
            spans[shard] = (min(low, o.seq), max(high, o.seq))
        await self.log.mark_published_spans(spans)
        self.unflushed = False

    async def _send(self, outgoing: list[tuple[str, Outgoing]]) -> None:
        new = {o.topic for _s, o in outgoing} - self.known_topics
        if new:
            await self.transport.ensure_topics({t: self.transport.partitions for t in new})
            self.known_topics |= new
        records = pack_records([(o.topic, v, o.key) for _s, o in outgoing for v in o.values])
        await self.producer.send_many([(topic, v, key, None, None) for topic, v, key in records])


@dataclass(slots=True)
class _Unit:
    """One input of consumed messages: a message, or one input of a batch message."""

    msg: Msg
    index: int            # its place in a batch message; -1 for a message of its own
    body: Any             # the decoded JSON value (or what is kept of what did not decode)
    problem: str | None   # why it is no JSON at all

    @property
    def label(self) -> str:
        """The message's coordinates; `…#i` for the i-th input of a batch message (made only
        when needed: a refusal's name)."""
        return self.msg.coordinates if self.index < 0 else f"{self.msg.coordinates}#{self.index}"


def _units(msgs: list[Msg]):
    for msg in msgs:
        try:
            body = orjson.loads(msg.value)
        except orjson.JSONDecodeError as err:
            yield _Unit(msg, -1, {"raw": msg.value.decode(errors="replace")}, f"not valid JSON: {err}")
            continue
        items = items_of(body)
        if items is None:
            yield _Unit(msg, -1, body, None)
        else:
            for i, item in enumerate(items):
                yield _Unit(msg, i, item, None)


class TimersFailing(RuntimeError):
    """A shard's due timers raise: the session restarts (with backoff) and retries them."""
