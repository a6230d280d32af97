"""The engine as one pipeline: ingest → correlator → dispatcher, on an injected clock.

Replay and the embedded service both drive this object; neither reads the wall clock here.
`submit(event, now)` fires every timer due by `now` (T-3: a timer due at t fires before an
input arriving at t), handles the event, then fires what the event made overdue.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator

from correlator.engine import Correlator
from correlator.operator import on_input
from dispatcher.engine import Dispatcher
from shared.inventory import Inventory
from shared.model import Action, Alarm, Complaint, Rejected
from shared.rulebook import Rulebook
from shared.timers import due_in_order

_INF = float("inf")

# Records per piece of advance_chunks: small enough to bound memory, big enough that the
# writer's per-call cost does not matter.
ADVANCE_CHUNK = 4096


class Pipeline:
    def __init__(self, inventory: Inventory, rulebook: Rulebook,
                 warn: Callable[[str], None] | None = None, *, catch_up_s: float | None = None) -> None:
        self.inventory = inventory
        self.catch_up_s = catch_up_s      # the live service's (shared.timers.LIVE_CATCH_UP_S); replay: None
        self.rulebook = rulebook
        self.correlator = Correlator(inventory, rulebook)
        self.dispatcher = Dispatcher(rulebook, warn)
        self.clock: float | None = None
        self.alarms_in = 0
        self._corr_heap = self.correlator.timers.heap
        self._disp_heap = self.dispatcher.timers.heap
        self._sources = (self.correlator, self.dispatcher)     # T-7: the correlator's first on a tie

    def settle(self) -> None:
        """Hide the start-up objects (inventory, rule tables, indexes) from the cyclic garbage
        collector: they live as long as the process, and rescanning them costs every alarm of
        a storm a little. Composition roots call this once, after building the pipeline."""
        gc.collect()
        gc.freeze()

    def next_due(self) -> float:
        a, b = self.correlator.timers.next_due(), self.dispatcher.timers.next_due()
        return a if a < b else b

    def _due_by(self, now: float) -> bool:
        """Is any timer due by `now`? Reads the heads of both heaps: no call per alarm."""
        ch, dh = self._corr_heap, self._disp_heap
        return bool((ch and ch[0][0] <= now) or (dh and dh[0][0] <= now))

    def advance(self, to: float) -> list[dict]:
        """Move the clock to `to`, firing due timers in (due, fault, §7 rank) order (T-7)."""
        out: list[dict] = []
        self._fire_due(to, out, 0)
        return out

    def advance_chunks(self, to: float, size: int = ADVANCE_CHUNK) -> Iterator[list[dict]]:
        """advance(to) in pieces of about `size` records (a timer's records stay together):
        the same records in the same order, but a clock moved over years of 2-hourly
        timers never holds them all in one list."""
        while True:
            out: list[dict] = []
            done = self._fire_due(to, out, size)
            if out:
                yield out
            if done:
                return

    def _fire_due(self, to: float, out: list[dict], limit: int) -> bool:
        """Fire the timers due by `to` into `out`; with a limit, stop once `out` holds that
        many records. True when every timer due by `to` has fired and the clock is at `to`."""
        if self.clock is None:
            self.clock = to
        corr, disp = self.correlator, self.dispatcher
        skip_to = None if self.catch_up_s is None else to - self.catch_up_s
        for source, at in due_in_order(self._sources, (to, _INF, _INF), lambda: self.clock):
            self.clock = at
            if source == 0:
                self._route(corr.fire_next(at), at, out)
            else:
                out.extend(disp.fire_next(at, skip_to))
            if limit and len(out) >= limit:
                return False
        if to > self.clock:
            self.clock = to
        return True

    def submit_alarm(self, alarm: Alarm, now: float) -> list[dict]:
        """submit() for an alarm, the storm's input: no refusal to return, fewer checks."""
        ch, dh = self._corr_heap, self._disp_heap
        if (ch and ch[0][0] <= now) or (dh and dh[0][0] <= now):
            return self.submit(alarm, now)[0]
        if self.clock is None or now > self.clock:
            self.clock = now
        self.alarms_in += 1
        result = self.correlator.on_alarm(alarm, now)
        if not result:                       # a repeat, a clear that changes nothing, noise
            return result
        out: list[dict] = []
        self._route(result, now, out)
        if self._due_by(now):
            out.extend(self.advance(now))
        return out

    def submit(self, event: Alarm | Complaint | Action, now: float) -> tuple[list[dict], Rejected | None]:
        """Handle one input at clock `now`; returns its records and a refusal, if any."""
        if self._due_by(now):
            out = self.advance(now)
        else:                                # the storm's common case: no timer due
            out = []
            if self.clock is None or now > self.clock:
                self.clock = now
        if type(event) is Alarm:
            self.alarms_in += 1
            result = self.correlator.on_alarm(event, now)    # the hot path, without a hop
            if not result:                   # a repeat, a clear that changes nothing, noise
                return out, None
        else:
            result = on_input(self.correlator, event, now)
        if isinstance(result, Rejected):
            return out, result
        rejected = self._route(result, now, out)
        if self._due_by(now):
            out.extend(self.advance(now))
        return out, rejected

    def _route(self, outs: list, now: float, out: list[dict]) -> Rejected | None:
        for record, notice in outs:
            if record is not None:
                out.append(record)
            if notice is not None:
                made = self.dispatcher.handle(notice, now)
                if isinstance(made, Rejected):
                    return made
                out.extend(made)
        return None
