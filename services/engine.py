"""The engine shell: one task owns the Pipeline; every step is logged before it is published.

Durability is an input log (shared/store.py). For each input the engine reads the clock
once, submits the input, and in one transaction appends the input, the records it
produced and any refusal; only then does it publish them on the bus. Timer ticks are
logged as `advance` entries when they produce records. On start-up a fresh Pipeline
re-runs the log (the rules are pure and deterministic, so the same records come out and
are neither stored nor published again), then advances to the current clock so timers
that fell due while the service was down fire once, and are stored.

No input stops the engine. An unexpected error while handling one input (a bug the
decoders or rules did not foresee) refuses that input with the error — kept and
dead-lettered like any refusal, answered 422 — and rebuilds the pipeline from the log,
which never holds that input, since the failed step may have half-changed it. A failing
store is different: the input is answered 503 (not kept: its sender retries), /healthz
says down, and the engine rebuilds from the log as soon as the database answers again.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from services.envelope import decode_input
from services.metrics import EngineMetrics
from services.pipeline import Pipeline
from shared.bus import Bus
from shared.clock import fmt_time
from shared.liveclock import Clock
from shared.model import Alarm, Rejected
from shared.store import Batch, LogEntry, Refusal, Store, StoredRecord, data_fault, kept_value
from shared.topics import DEADLETTER, DECISIONS, workorders_topic
from shared.wire import INPUT_KINDS, INTERNAL, describe, kind_refusal

log = logging.getLogger("faultline.engine")

MAX_SLEEP = 60.0      # real seconds; re-read the clock at least this often (wall-clock jumps)
RETRY_MAX = 10.0      # real seconds: the longest wait between attempts to reach a failed store


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
    body: object                 # _TICK: fire due timers (a JSON null is an input, refused)
    source: str
    done: asyncio.Future
    refuse: str | None = None    # refused before it reached the engine (e.g. not JSON)


_STOP = object()
_TICK = object()


class EngineStopped(RuntimeError):
    """The engine task is not running; inputs cannot be handled (HTTP answers 503)."""


class TryAgain(EngineStopped):
    """The input was not kept and the engine cannot take it now (503): send it again."""


class StoreUnavailable(TryAgain):
    """The store failed: the input was not kept; the engine waits for the database (503)."""


class TimerFailing(TryAgain):
    """A due timer fails, and timers fire before any later input (T-3): the input waits (503)."""


class _RebuildFailed(RuntimeError):
    """Re-running the log raised: the state cannot be trusted, so the engine stops."""


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
        self._down: str | None = None        # why the store cannot be used now
        self._stopping = False
        self._timer_failures = 0             # consecutive timer steps that raised
        self._timer_retry_at = 0.0           # loop time before which due timers are not retried

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.recover()
        await self._fire_due(self._now())     # a store that fails here fails the start: one line
        self._task = asyncio.create_task(self._run(), name="faultline-engine")

    async def stop(self) -> None:
        if self._task is None or self._task.done():
            return
        self._stopping = True                 # ends a wait for the store (_await_store)
        await self._jobs.put(_STOP)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 10)
        except TimeoutError:
            self._task.cancel()

    @property
    def alive(self) -> bool:
        """The loop runs and can do its work (/healthz): False once the task ended, while the
        store is unreachable, and while a due timer keeps failing (a crash loop)."""
        return self._running and self._down is None and self._timer_failures == 0

    @property
    def problem(self) -> str | None:
        """Why `alive` is False, for /healthz's detail (None while alive)."""
        if not self._running:
            return "the engine task has stopped"
        if self._down is not None:
            return f"the store is unavailable: {self._down}"
        if self._timer_failures:
            return f"a due timer failed {self._timer_failures} time(s) in a row; retrying"
        return None

    @property
    def _running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def recover(self) -> int:
        """Rebuild state from the input log; returns the number of entries re-run."""
        entries = await self.store.log()
        pipe = self.pipeline = self._factory()
        if self._task is not None:            # a rebuild while running: a rule error is fatal
            try:
                replayed = self._replay(pipe, entries)
            except Exception as err:
                raise _RebuildFailed(f"re-running the log failed: {type(err).__name__}: {err}") from err
            # The old state was frozen out of the cyclic GC at start (Pipeline.settle): let it
            # go, and freeze the new one in its place.
            gc.unfreeze()
            pipe.settle()
        else:
            replayed = self._replay(pipe, entries)
        self._input_seq, self._record_seq, stored = await self.store.counts()
        if replayed != stored:
            log.warning("recovery re-made %d records but %d are stored; has the inventory or "
                        "rulebook changed since they were written?", replayed, stored)
        if entries:
            log.info("recovered %d inputs, %d records, clock %s", len(entries), stored,
                     fmt_time(pipe.clock) if pipe.clock is not None else "-")
        return len(entries)

    @staticmethod
    def _replay(pipe: Pipeline, entries: list[LogEntry]) -> int:
        """Re-run logged entries through a fresh pipeline: nothing is stored or published."""
        replayed = 0
        for e in entries:
            if e.body is None:
                replayed += len(pipe.advance(e.arrival))
                continue
            event = decode_input(e.body)
            if isinstance(event, Rejected):     # cannot happen for a logged input; keep going
                log.warning("input %d no longer decodes: %s", e.seq, event.reason)
                continue
            replayed += len(pipe.submit(event, e.arrival)[0])
        return replayed

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
        job = _Job(_TICK, "timer", asyncio.get_running_loop().create_future())
        await self._jobs.put(job)
        await job.done

    def _check_alive(self) -> None:
        if not self._running:
            raise EngineStopped("the engine is not running")
        if self._down is not None:
            raise StoreUnavailable(f"the store is unavailable ({self._down}); not kept, try again")

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
            except _RebuildFailed as err:
                # The log no longer re-runs: no state can be trusted. Stop (/healthz 503);
                # a restart tries the same rebuild and says why it fails.
                log.exception("engine cannot rebuild its state; the engine stops")
                self._fail(job, EngineStopped(f"engine stopped: {err}"))
                self._fail_waiting(err)
                raise
            except Exception as err:
                # The store (or bus) failed: what was handled may not be kept, and the
                # pipeline may be ahead of the log. Answer 503, then rebuild once it answers.
                log.exception("engine step failed: the store is unavailable")
                self._down = describe(err)
                self._fail(job, StoreUnavailable(f"the store failed ({self._down}); not kept, try again"))
                self._fail_waiting(err, StoreUnavailable)
                await self._await_store()
                continue
            except BaseException as err:          # cancelled: stop() or the process ends
                self._fail(job, EngineStopped(f"engine stopped: {err!r}"))
                self._fail_waiting(err)
                raise
            if job is not None and not job.done.done():
                job.done.set_result(result)

    @staticmethod
    def _fail(job: _Job | None, err: BaseException) -> None:
        if job is not None and not job.done.done():
            job.done.set_exception(err)

    async def _await_store(self) -> None:
        """Rebuild from the log until the store answers (doubling waits up to RETRY_MAX)."""
        wait = 0.2
        while not self._stopping:
            await asyncio.sleep(wait)
            try:
                await self.recover()
            except _RebuildFailed:
                log.exception("engine cannot rebuild its state; the engine stops")
                raise
            except Exception as err:
                self._down = describe(err)
                log.warning("store still unavailable (%s); again in %.1fs", self._down, wait)
                self._fail_waiting(err, StoreUnavailable)
                wait = min(wait * 2, RETRY_MAX)
                continue
            log.info("store available again; state rebuilt from the log")
            self._down = None
            return

    async def _step(self, job: _Job | None) -> Outcome | None:
        started = time.perf_counter()
        timer = job is None or job.body is _TICK
        failing = asyncio.get_running_loop().time() < self._timer_retry_at
        if timer:
            if not failing:
                await self._fire_due(self._now())
            self.metrics.engine_seconds.labels("timer").observe(time.perf_counter() - started)
            return None
        # Timers due by now fire first (T-3), as a step of their own: one that fails is the
        # timers' trouble, not this input's, which waits (503, not kept) instead of being refused.
        if failing or not await self._fire_due(self._now()):
            self._fail(job, TimerFailing(f"{self.problem}; not kept, try again"))
            return None
        try:
            batch, outcome = self._handle(job.body, job.source, job.refuse)
        except Exception as err:              # decode or rules: this input's fault
            outcome = await self._refuse_failed(job, err)
        else:
            try:
                await self._commit(batch)
            except Exception as err:
                if not data_fault(err):       # the store's own trouble: _run's business
                    raise
                outcome = await self._refuse_failed(job, err)   # this input's data
        self.metrics.engine_seconds.labels("input").observe(time.perf_counter() - started)
        return outcome

    async def _fire_due(self, now: float) -> bool:
        """Fire the timers due by `now` and store what they made; False when the rules raised
        (or the store refused their data): the pipeline is rebuilt from the log and the timers
        are retried later, the engine reported down meanwhile (alive, problem). A store that
        fails raises (while running: _run waits for it; at start: the start fails)."""
        if (due := self._next_due()) is None or due > now:
            return True
        try:
            batch = self._advance_to(now)
        except Exception as err:              # the rules raised
            return await self._timers_failed(err)
        try:
            await self._commit(batch)
        except Exception as err:
            if not data_fault(err):
                raise
            return await self._timers_failed(err)
        self._timer_failures = 0
        return True

    async def _timers_failed(self, err: Exception) -> bool:
        log.error("a due timer failed: %s; rebuilding from the log, timers again later",
                  describe(err), exc_info=err)
        await self.recover()
        self._timer_failures += 1
        wait = min(2.0 ** self._timer_failures, MAX_SLEEP)
        self._timer_retry_at = asyncio.get_running_loop().time() + wait
        return False

    async def _refuse_failed(self, job: _Job, err: Exception) -> Outcome:
        """Handling one input raised: rebuild the pipeline from the log (the failed step may
        have half changed it; the log never holds this input), then refuse it with the error."""
        reason = f"{INTERNAL}: {describe(err)}"
        log.error("%s (%s); rebuilding from the log", reason, job.source, exc_info=err)
        await self.recover()
        refusal = Refusal(self._now(), job.source, reason, kept_value(job.body))
        await self._commit(Batch(refusal=refusal))
        return Outcome(None, 0, reason)

    def _fail_waiting(self, err: BaseException, kind: type[EngineStopped] = EngineStopped) -> None:
        """Answer every queued input: `kind` StoreUnavailable while the engine waits for its
        store (their senders try again), EngineStopped when it stops."""
        stopping = False
        while not self._jobs.empty():
            job = self._jobs.get_nowait()
            if isinstance(job, _Job) and not job.done.done():
                job.done.set_exception(kind(f"engine: {describe(err)}; not kept, try again"
                                            if kind is not EngineStopped else f"engine stopped: {err!r}"))
            stopping |= job is _STOP
        if stopping:                          # stop() asked meanwhile: keep asking
            self._jobs.put_nowait(_STOP)

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
        wait = min(MAX_SLEEP, max(0.0, self.clock.real_seconds(due - self._now())))
        if self._timer_failures:              # no busy loop on a timer that keeps failing
            wait = max(wait, self._timer_retry_at - asyncio.get_running_loop().time())
        return wait

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
        event = decode_input(obj) if reason is None else Rejected(reason)
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
                {"reason": f.reason, "source": f.source, "arrival": fmt_time(f.arrival),
                 "input": kept_value(f.body)}))

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
    refused = kind_refusal(body.get("kind"), INPUT_KINDS)
    if refused is not None:
        return {}, refused
    return {k: v for k, v in body.items() if k != "at"}, None
