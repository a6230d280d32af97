"""The engine shell: one task owns the Pipeline; every step is logged before it is published.

Durability is an input log (shared/store.py). For each input the engine reads the clock
once, submits the input, and in one transaction appends the input, the records it
produced and any refusal; only then does it publish them on the bus. Timer ticks are
logged as `advance` entries when they produce records. On start-up a fresh Pipeline
re-runs the log (the rules are pure and deterministic, so the same records come out and
are neither stored nor published again), then advances to the current clock so timers
that fell due while the service was down fire once, and are stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from services.metrics import EngineMetrics
from services.pipeline import Pipeline
from services.replay import decode_event
from shared.bus import DEADLETTER, DECISIONS, Bus, workorders_topic
from shared.clock import fmt_time
from shared.liveclock import Clock
from shared.model import Alarm, Rejected
from shared.store import Batch, LogEntry, Refusal, Store, StoredRecord
from shared.wire import INPUT_KINDS

log = logging.getLogger("faultline.engine")

MAX_SLEEP = 60.0      # real seconds; re-read the clock at least this often (wall-clock jumps)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one input: its log seq (None when it never reached the rules)."""

    seq: int | None
    records: int
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


@dataclass(slots=True)
class _Job:
    body: object | None          # None: a tick
    source: str
    done: asyncio.Future
    refuse: str | None = None    # refused before it reached the engine (e.g. not JSON)


_STOP = object()


class EngineStopped(RuntimeError):
    """The engine task is not running; inputs cannot be handled (HTTP answers 503)."""


class Engine:
    def __init__(self, pipeline_factory: Callable[[], Pipeline], store: Store, bus: Bus,
                 clock: Clock, metrics: EngineMetrics) -> None:
        self._factory = pipeline_factory
        self.store = store
        self.bus = bus
        self.clock = clock
        self.metrics = metrics
        self.pipeline = pipeline_factory()
        self._jobs: asyncio.Queue = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._input_seq = 0
        self._record_seq = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.recover()
        await self._commit(self._advance_to(self._now()))
        self._task = asyncio.create_task(self._run(), name="faultline-engine")

    async def stop(self) -> None:
        if self._task is None or self._task.done():
            return
        await self._jobs.put(_STOP)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 10)
        except TimeoutError:
            self._task.cancel()

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def recover(self) -> int:
        """Rebuild state from the input log; returns the number of entries re-run."""
        entries = await self.store.log()
        pipe = self.pipeline = self._factory()
        replayed = 0
        for e in entries:
            if e.body is None:
                replayed += len(pipe.advance(e.arrival))
                continue
            event = decode_event(e.body)
            if isinstance(event, Rejected):     # cannot happen for a logged input; keep going
                log.warning("input %d no longer decodes: %s", e.seq, event.reason)
                continue
            replayed += len(pipe.submit(event, e.arrival)[0])
        self._input_seq, self._record_seq, stored = await self.store.counts()
        if replayed != stored:
            log.warning("recovery re-made %d records but %d are stored; has the inventory or "
                        "rulebook changed since they were written?", replayed, stored)
        if entries:
            log.info("recovered %d inputs, %d records, clock %s", len(entries), stored,
                     fmt_time(pipe.clock) if pipe.clock is not None else "-")
        return len(entries)

    @property
    def logged_inputs(self) -> int:
        return self._input_seq

    # ------------------------------------------------------------------ intake

    async def submit(self, body: object, source: str, *, refuse: str | None = None) -> Outcome:
        """Hand one CONTRACT §3 input object (without `at`) to the engine and wait for it.

        With `refuse`, the body is only kept as refused for that reason (an unreadable body).
        """
        self._check_alive()
        job = _Job(body, source, asyncio.get_running_loop().create_future(), refuse)
        await self._jobs.put(job)
        return await job.done

    async def tick(self) -> None:
        """Fire whatever timers are due now (the loop does this by itself; tests call it)."""
        self._check_alive()
        job = _Job(None, "timer", asyncio.get_running_loop().create_future())
        await self._jobs.put(job)
        await job.done

    def _check_alive(self) -> None:
        if not self.alive:
            raise EngineStopped("the engine is not running")

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        while True:
            try:
                job = await asyncio.wait_for(self._jobs.get(), self._sleep_for())
            except TimeoutError:
                job = None
            if job is _STOP:
                return
            try:
                result = await self._step(job)
            except BaseException as err:
                # State may now differ from the store: stop; a restart rebuilds from the log.
                log.exception("engine step failed; the engine stops")
                if job is not None and not job.done.done():
                    job.done.set_exception(err)
                self._fail_waiting(err)
                raise
            if job is not None and not job.done.done():
                job.done.set_result(result)

    async def _step(self, job: _Job | None) -> Outcome | None:
        started = time.perf_counter()
        if job is None or job.body is None:
            batch = self._advance_to(self._now())
            step = "timer"
        else:
            batch, outcome = self._handle(job.body, job.source, job.refuse)
            step = "input"
        await self._commit(batch)
        self.metrics.engine_seconds.labels(step).observe(time.perf_counter() - started)
        return None if job is None or job.body is None else outcome

    def _fail_waiting(self, err: BaseException) -> None:
        while not self._jobs.empty():
            job = self._jobs.get_nowait()
            if isinstance(job, _Job) and not job.done.done():
                job.done.set_exception(EngineStopped(f"engine stopped: {err!r}"))

    def _now(self) -> float:
        now = self.clock.now()
        clock = self.pipeline.clock
        return now if clock is None or now > clock else clock

    def _next_due(self) -> float | None:
        keys = [k for k in (self.pipeline.correlator.next_timer_key(),
                            self.pipeline.dispatcher.next_timer_key()) if k is not None]
        return min(k[0] for k in keys) if keys else None

    def _sleep_for(self) -> float:
        due = self._next_due()
        if due is None:
            return MAX_SLEEP
        return min(MAX_SLEEP, max(0.0, self.clock.real_seconds(due - self._now())))

    # ------------------------------------------------------------------ steps (no await inside)

    def _advance_to(self, now: float) -> Batch:
        due = self._next_due()
        if due is None or due > now:
            return Batch()
        made = self.pipeline.advance(now)
        if not made:
            return Batch()
        self._input_seq += 1
        entry = LogEntry(self._input_seq, now, "advance", "timer")
        return Batch(entry=entry, records=self._stored(made))

    def _handle(self, body: object, source: str, reason: str | None) -> tuple[Batch, Outcome]:
        now = self._now()
        obj, reason = ({}, reason) if reason is not None else _as_input(body)
        event = decode_event(obj) if reason is None else Rejected(reason)
        if isinstance(event, Rejected):
            refusal = Refusal(now, source, event.reason, body)
            return Batch(refusal=refusal), Outcome(None, 0, event.reason)
        if type(event) is Alarm:
            self.metrics.alarms.inc()
        made, refused = self.pipeline.submit(event, now)
        self._input_seq += 1
        entry = LogEntry(self._input_seq, now, obj["kind"], source, {**obj, "at": fmt_time(now)},
                         refused.reason if refused else None)
        batch = Batch(entry=entry, records=self._stored(made))
        if refused is not None:
            batch.refusal = Refusal(now, source, refused.reason, body)
            return batch, Outcome(entry.seq, len(made), refused.reason)
        return batch, Outcome(entry.seq, len(made))

    def _stored(self, made: list[dict]) -> list[StoredRecord]:
        out = []
        orders = self.pipeline.dispatcher.orders
        for rec in made:
            self._record_seq += 1
            wid = rec.get("work_order_id")
            queue = rec.get("queue") or rec.get("to")
            if wid is not None and queue is None and wid in orders:
                queue = orders[wid].queue
            out.append(StoredRecord(self._record_seq, rec["type"], rec["at"], rec.get("fault_id"),
                                    wid, queue, rec))
        return out

    # ------------------------------------------------------------------ commit, then publish

    async def _commit(self, batch: Batch) -> None:
        if batch.entry is None and batch.refusal is None:
            return
        await self.store.append(batch)
        for rec in batch.records:
            value = orjson.dumps(rec.body)
            key = self._city_of(rec)
            await self.bus.publish(DECISIONS, key, value)
            if rec.type.startswith("work_order.") and rec.queue:
                await self.bus.publish(workorders_topic(rec.queue), key, value)
        self.metrics.observe_records(r.body for r in batch.records)
        if batch.refusal is not None:
            f = batch.refusal
            self.metrics.rejected.labels(f.source).inc()
            await self.bus.publish(DEADLETTER, f.source, orjson.dumps(
                {"reason": f.reason, "source": f.source, "arrival": fmt_time(f.arrival), "input": f.body}))

    def _city_of(self, rec: StoredRecord) -> str | None:
        """The bus key: the fault's city, so one city's records stay in order (CONTRACT §4)."""
        fid = rec.fault_id
        if fid is None and rec.work_order_id is not None:
            order = self.pipeline.dispatcher.orders.get(rec.work_order_id)
            fid = order.fault_ids[0] if order is not None else None
        fault = self.pipeline.correlator.faults.get(fid) if fid else None
        return fault.city if fault is not None else None


def _as_input(body: object) -> tuple[dict, str | None]:
    """A body is usable when it is an object whose kind is one of CONTRACT §3's."""
    if type(body) is not dict:
        return {}, f"expected a JSON object, got {type(body).__name__}"
    kind = body.get("kind")
    if kind not in INPUT_KINDS:
        return {}, f"kind: {kind!r} is not one of {', '.join(INPUT_KINDS)}"
    return {k: v for k, v in body.items() if k != "at"}, None
