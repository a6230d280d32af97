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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from services.shardlog import Batch, Entry, Outgoing, ShardLog
from shared.bus import DEADLETTER
from shared.clock import fmt_time
from shared.kafka import Consumer, KafkaConfig, Msg, Producer, ensure_topics, next_offsets, partition_for

log = logging.getLogger("faultline.shards")


@dataclass(slots=True)
class Step:
    """What one input or tick did to a shard, for the log and the outbox."""

    log: bool                                            # store it in the shard's log
    outgoing: dict[str, list[bytes]] = field(default_factory=dict)   # topic → message values
    records: list[dict] = field(default_factory=list)    # decision records (read model)
    refused: str | None = None
    inputs: list[tuple[str, dict, float]] = field(default_factory=list)   # (kind, body, at) kept


class StageLogic(Protocol):
    stage: str
    input_topic: str

    def new_shard(self, shard: str) -> Any: ...

    def rerun(self, state: Any, entry: Entry) -> None: ...

    def source_key(self, body: dict) -> str | None: ...

    def step(self, state: Any, body: dict, seq: int) -> tuple[Step, float]: ...

    def tick(self, state: Any, now: float, seq: int) -> Step: ...


@dataclass(slots=True)
class ShardState:
    shard: str
    core: Any
    seq: int = 0
    seen: set[str] = field(default_factory=set)


class ShardRunner:
    def __init__(self, logic: StageLogic, shard_log: ShardLog, kafka: KafkaConfig, producer: Producer, *,
                 group_id: str, input_partitions: int, wall_clock: Callable[[], float] | None = time.time,
                 tick_every_s: float = 1.0, batch_size: int = 2000, metrics=None) -> None:
        self.logic = logic
        self.log = shard_log
        self.kafka = kafka
        self.producer = producer
        self.group_id = group_id
        self.input_partitions = input_partitions
        self.wall_clock = wall_clock          # None: stream time only (ticks come as inputs)
        self.tick_every_s = tick_every_s
        self.batch_size = batch_size
        self.shards: dict[str, ShardState] = {}
        self.owned: set[int] = set()
        self.unflushed = False                # shards were taken over: publish what they stored
        self.known_topics: set[str] = set()
        self.healthy = False
        self.metrics = metrics                # services.metrics.EngineMetrics, or None

    # ------------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`; any failure drops every shard and starts a fresh session."""
        def failed(backoff: float) -> None:
            self.healthy = False
            log.exception("%s: session failed; rebuilding from the log in %.1fs", self.logic.stage, backoff)
            self.shards.clear()

        await run_sessions(lambda: self._session(stop), stop, failed)

    async def _session(self, stop: asyncio.Event) -> None:
        consumer = Consumer(self.kafka, [self.logic.input_topic], self.group_id,
                            on_assigned=self._assigned, on_revoked=self._revoked)
        if not await until_stopped(consumer.start(deadline_s=None), stop):
            return
        try:
            self.healthy = True
            next_tick = 0.0
            while not stop.is_set():
                msgs = await consumer.fetch(timeout_ms=200, max_records=self.batch_size)
                owned = consumer.assignment()
                if {p for _t, p in owned} != self.owned:      # a rebalance the callback missed or failed
                    await self._assigned(owned)
                if self.unflushed:                            # what the shards just taken stored
                    await self.flush_outbox()
                if msgs:
                    await self.process(msgs)
                    await consumer.commit(next_offsets(msgs))
                if self.wall_clock is not None and time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.tick_every_s
                    await self.tick_all(self.wall_clock())
        finally:
            await consumer.stop()

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

    async def open_shard(self, shard: str) -> ShardState:
        """Rebuild a shard from its log (the pure core re-run; nothing is re-emitted)."""
        state = ShardState(shard, self.logic.new_shard(shard))
        for entry in await self.log.entries(shard):
            self.logic.rerun(state.core, entry)
            state.seq = entry.seq
            if entry.source_key is not None:
                state.seen.add(entry.source_key)
        self.shards[shard] = state
        return state

    # ------------------------------------------------------------------ processing

    async def process(self, msgs: list[Msg]) -> None:
        batch = Batch()
        last_clock, alarms = 0.0, 0
        for msg in msgs:
            shard = msg.key or "-"
            state = self.shards.get(shard) or await self.open_shard(shard)
            try:
                body = orjson.loads(msg.value)
            except orjson.JSONDecodeError as err:
                self._refuse(batch, state, f"{msg.topic}:{msg.partition}:{msg.offset}",
                             f"not valid JSON: {err}", {"raw": msg.value.decode(errors="replace")})
                continue
            source_key = self.logic.source_key(body)
            if source_key is not None and source_key in state.seen:
                continue                                          # a redelivery: already done
            step, clock = self.logic.step(state.core, body, state.seq + 1)
            alarms += (body.get("input") or {}).get("kind") == "alarm"
            last_clock = max(last_clock, clock)
            self._collect(batch, state, step, "input", clock, body, source_key)
        if self.metrics is not None and alarms:
            self.metrics.alarms.inc(alarms)
        await self._store(batch, last_clock)

    async def tick_all(self, now: float) -> None:
        """Advance every owned shard to `now`; what fires is logged and published."""
        batch = Batch()
        quiet: list[tuple[str, Outgoing]] = []
        for state in list(self.shards.values()):
            step = self.logic.tick(state.core, now, state.seq + 1)
            if step.log:
                self._collect(batch, state, step, "tick", now, None, None)
            else:
                quiet.extend((state.shard, Outgoing(0, t, state.shard, v)) for t, v in step.outgoing.items())
        await self._store(batch, now)
        if quiet and not await self.log.unpublished(set(self.shards), limit=1):
            await self._send([(shard, o) for shard, o in quiet])   # ticks only follow a flushed outbox

    def _collect(self, batch: Batch, state: ShardState, step: Step, kind: str, clock: float,
                 body: dict | None, source_key: str | None) -> None:
        if step.log:
            state.seq += 1
            batch.shard_entries.append((state.shard, Entry(state.seq, kind, clock, body, source_key)))
            if source_key is not None:
                state.seen.add(source_key)
            for topic, values in step.outgoing.items():
                batch.outgoing.append((state.shard, Outgoing(state.seq, topic, state.shard, values)))
            batch.records.extend((state.shard, r) for r in step.records)
            batch.inputs.extend(step.inputs)
        if step.refused is not None:
            self._refuse(batch, state, source_key, step.refused, body, logged=step.log)

    def _refuse(self, batch: Batch, state: ShardState, source_key: str | None, reason: str,
                body: dict | None, *, logged: bool = False) -> None:
        """Keep a refused input (the rejected table and the dead-letter topic), never drop it.

        A `refused` log entry carries the dead letter's outbox row and, unless the input
        itself was logged, its source key, so a redelivery is not refused twice."""
        log.info("%s %s refused %s: %s", self.logic.stage, state.shard, source_key, reason)
        batch.refusals.append((state.shard, source_key, reason, body))
        letter = orjson.dumps({"reason": reason, "stage": self.logic.stage, "source": source_key,
                               "value": body})
        state.seq += 1
        key = None if logged else source_key
        if key is not None:
            state.seen.add(key)
        batch.shard_entries.append((state.shard, Entry(state.seq, "refused", 0.0, None, key)))
        batch.outgoing.append((state.shard, Outgoing(state.seq, DEADLETTER, state.shard, [letter])))

    async def _store(self, batch: Batch, clock: float) -> None:
        if not batch:
            return
        for shard in {s for s, _e in batch.shard_entries}:
            state = self.shards.get(shard)
            if state is not None:
                batch.timers[shard] = state.core.pending_timers()
        started = time.perf_counter()
        await self.log.append(batch, fmt_time(clock) if clock else "")
        await self.flush_outbox()
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

    async def _send(self, outgoing: list[tuple[str, Outgoing]]) -> None:
        new = {o.topic for _s, o in outgoing} - self.known_topics
        if new:
            await ensure_topics(self.kafka, {t: self.kafka.partitions for t in new})
            self.known_topics |= new
        await self.producer.send_many([(o.topic, v, o.key, None, None)
                                       for _s, o in outgoing for v in o.values])


async def run_sessions(session: Callable[[], Awaitable[None]], stop: asyncio.Event,
                       failed: Callable[[float], None]) -> None:
    """Run `session` again and again until `stop`. After a failure `failed(backoff)` (inside
    the except block: it may log the exception) and a wait, doubling up to 10 s."""
    backoff = 0.2
    while not stop.is_set():
        try:
            await session()
            backoff = 0.2
        except asyncio.CancelledError:
            raise
        except Exception:
            failed(backoff)
            await _sleep_or_stop(stop, backoff)
            backoff = min(backoff * 2, 10.0)


async def until_stopped(coro, stop: asyncio.Event) -> bool:
    """Await `coro` unless `stop` comes first (then cancel it): SIGTERM must not wait for a
    broker that is not coming back. True when `coro` finished."""
    task = asyncio.ensure_future(coro)
    waiter = asyncio.ensure_future(stop.wait())
    done, _pending = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()
        return True
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass
    return False


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
