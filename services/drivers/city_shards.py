"""One shard's correlator and dispatcher (a city or a group of cities, services/drivers/sharding.py)
as separate stages, connected only by notices.

In replay one Pipeline fires every timer in (due, fault, §7 rank) order across both stages
(RULES.md T-3, T-7). Split across processes, the correlator shard stamps every notice with
an ordering key: a timer's (due, fault seq, rank), or (clock, ∞, ∞) for a notice caused by
an input or a tick. Before the dispatcher shard handles a notice it fires its own timers
whose keys sort before it. The same decisions come out, in the same order per city, as
from one Pipeline — the equivalence tests hold the two to that. Both shards are pure: the
runners around them do the I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from correlator.engine import Correlator
from correlator.operator import complaint_seen, matching_faults, on_input
from dispatcher.engine import Dispatcher
from services.drivers.sharding import answer, shard_cities
from shared.facts import Notice
from shared.inventory import Inventory
from shared.model import Action, Alarm, Complaint, Rejected
from shared.rulebook import Rulebook
from shared.timers import Key, due_in_order

INF = float("inf")
NO_FIRE: Key = (-INF, -INF, -INF)

RECORD, NOTICE, TICK = "record", "notice", "tick"
ANSWERS_KEPT = 1000     # far more asks than a router can have in flight when it stops


class CorrelatorShard:
    """The correlator for the circuits of one shard's cities (services/drivers/sharding.py).
    Outputs are tagged tuples:
    (RECORD, record) for faultline.decisions, (NOTICE, notice, key, now) and (TICK, t) for
    the dispatcher of the same city."""

    def __init__(self, shard: str, inventory: Inventory, rulebook: Rulebook) -> None:
        self.shard = shard
        cities = shard_cities(inventory, shard)
        owns = lambda c: c.a_city in cities          # noqa: E731 (the correlator's predicate)
        self.correlator = Correlator(inventory, rulebook, owns=owns, id_prefix=f"{shard}-")
        self.clock: float | None = None
        # The latest answers to the router's asks (`ask`), by ask id: a redelivered ask is
        # answered as it was first, at its own place in the input order, not from the state
        # of now. The router asks again only what it had not finished when it stopped.
        self.answers: dict[str, dict] = {}

    def _advance(self, t: float, out: list) -> float:
        """The clock to t (never back: T-5), firing the timers due by then first (T-3); the
        clock it is at."""
        if self.clock is not None and t < self.clock:
            t = self.clock
        self._fire_until(t, out)
        self.clock = t
        return t

    def _fire_until(self, t: float, out: list) -> None:
        corr = self.correlator
        for _source, at in due_in_order((corr,), (t, INF, INF), lambda: self.clock):
            key = corr.next_timer_key()
            self.clock = at
            self._emit(corr.fire_next(at), (key[0], key[1], key[2]), at, out)

    @staticmethod
    def _emit(outs: list, key: Key, now: float, out: list) -> None:
        for record, notice in outs:
            if record is not None:
                out.append((RECORD, record))
            if notice is not None:
                out.append((NOTICE, notice, key, now))

    def handle(self, event: Alarm | Complaint | object, t: float, pick: str | None = None,
               position: tuple = ()) -> tuple[list, Rejected | None]:
        """An input arriving at clock t (never before the shard's clock: T-5). `pick`: the
        fault an asked input was settled to mean (services/drivers/sharding.py); `position`:
        the input's place in the whole input order."""
        out: list = []
        t = self._advance(t, out)
        self.correlator.position = position
        result = on_input(self.correlator, event, t, pick)
        if isinstance(result, Rejected):
            return out, result
        # The first notice of an input lets the dispatcher fire its timers due by t (replay
        # fires every timer due by t before an input); the input's later notices fire
        # nothing, so timers they create wait for the correlator's own (T-7 order).
        first = len(out)
        self._emit(result, NO_FIRE, t, out)
        for i in range(first, len(out)):
            if out[i][0] == NOTICE:
                out[i] = (NOTICE, out[i][1], (t, INF, INF), t)
                break
        self._fire_until(t, out)              # what the input made overdue (T-3)
        return out, None

    def ask(self, ask_id: str, event: Action | Complaint, t: float) -> tuple[list, dict]:
        """This shard's answer about an input asked of several shards (sharding.Ask) at clock
        t, once the timers due by then have fired as before any input at t: the open faults
        an action's select matches, or whether it had the complaint and what it would join.
        Kept as the answer to `ask_id` (the newest ANSWERS_KEPT)."""
        out: list = []
        self._advance(t, out)
        corr = self.correlator
        if type(event) is Complaint:
            seen, join = complaint_seen(corr, event)
            said = answer(event, seen, [join] if join is not None else [])
        else:
            said = answer(event, False, matching_faults(corr, event.select))
        self.answers.pop(ask_id, None)
        self.answers[ask_id] = said
        while len(self.answers) > ANSWERS_KEPT:
            del self.answers[next(iter(self.answers))]
        return out, said

    def pending_timers(self) -> list[tuple[str, str, float]]:
        """(fault_id, TM-…, due) of the timers that will still fire: the `timers` table."""
        out = []
        for due, _seq, kind, payload in self.correlator.timers.pending():
            if kind == "TM-1":
                fault, gen = payload
                if fault.open and fault.tm1_gen == gen:
                    out.append((fault.fault_id, kind, due))
            elif kind == "AL-5":
                cs, gen = payload
                if cs.flap_fault is not None and cs.quiet_gen == gen:
                    out.append((cs.flap_fault.fault_id, kind, due))
        return out

    def tick(self, t: float) -> list:
        """Advance the clock to t: fire due timers, then tell the dispatcher the time."""
        out: list = []
        out.append((TICK, self._advance(t, out)))
        return out


class DispatcherShard:
    """The dispatcher for one city's faults, driven by its correlator shard's notices."""

    def __init__(self, shard: str, rulebook: Rulebook, warn: Callable[[str], None] | None = None, *,
                 catch_up_s: float | None = None) -> None:
        self.shard = shard
        self.dispatcher = Dispatcher(rulebook, warn, id_prefix=f"{shard}-")
        self.clock: float | None = None
        self.catch_up_s = catch_up_s          # as Pipeline's: TM-6 does not walk a downtime

    def _fire_before(self, key: Key, out: list[dict]) -> None:
        disp = self.dispatcher
        skip_to = None if self.catch_up_s is None else key[0] - self.catch_up_s
        for _source, at in due_in_order((disp,), key, lambda: self.clock):
            self.clock = at
            out.extend(disp.fire_next(at, skip_to))

    def handle(self, notice: Notice, key: Key, now: float) -> tuple[list[dict], Rejected | None]:
        out: list[dict] = []
        self._fire_before(key, out)
        if self.clock is None or now > self.clock:
            self.clock = now
        made = self.dispatcher.handle(notice, now)
        if isinstance(made, Rejected):
            return out, made
        out.extend(made)
        return out, None

    def pending_timers(self) -> list[tuple[str, str, float]]:
        """(fault_id, TM-…, due) of the dispatcher's timers whose fault is still open."""
        out = []
        for due, _seq, kind, payload in self.dispatcher.timers.pending():
            df = payload[0] if kind == "TM-6" else payload
            if df.open:
                out.append((df.facts.fault_id, kind, due))
        return out

    def tick(self, t: float) -> list[dict]:
        out: list[dict] = []
        self._fire_before((t, INF, INF), out)
        if self.clock is None or t > self.clock:
            self.clock = t
        return out
