"""The dispatcher: faults in, work orders, escalations and notices out (RULES.md §4, §6, §8,
TM-2…TM-10, CL-2). A pure core like the correlator: `now` is always passed in."""

from __future__ import annotations

import math
from collections.abc import Callable

from dispatcher import routing, texts
from dispatcher.orders import DispatchFault, WorkOrder
from shared.clock import fmt_time
from shared.facts import ACK, CLEARED, CONFIRMED, ESCALATE, OPENED, SERIOUS, Notice
from shared.model import Rejected
from shared.rulebook import Rulebook
from shared.timers import TimerQueue


class Dispatcher:
    def __init__(self, rulebook: Rulebook, warn: Callable[[str], None] | None = None, *,
                 id_prefix: str = "") -> None:
        self.rulebook = rulebook
        self.id_prefix = id_prefix
        self.warn = warn
        self.timers = TimerQueue()
        self.faults: dict[str, DispatchFault] = {}
        self.orders: dict[str, WorkOrder] = {}
        self.incident_orders: dict[tuple[str, str], WorkOrder] = {}
        self.order_count = 0

    def handle(self, notice: Notice, now: float) -> list[dict] | Rejected:
        f = notice.facts
        if notice.kind == OPENED:
            df = self.faults[f.fault_id] = DispatchFault(f)
            return self._opened(df, now)
        df = self.faults.get(f.fault_id)
        if df is None:      # a notice off the wire about a fault this dispatcher never saw open
            return Rejected(f"notice {notice.kind}: fault {f.fault_id} was never opened here")
        df.facts = f
        if notice.kind == SERIOUS:
            return self._serious(df, now)
        if notice.kind == CLEARED:
            return self._cleared(df, now)
        if notice.kind == CONFIRMED:
            df.confirmed = True
            return []
        if notice.kind == ACK:
            return self._ack(df, notice.arg or "")
        if notice.kind == ESCALATE:
            reason = notice.arg or ""
            if reason in df.escalations:
                return Rejected(f"escalate {f.fault_id}: already escalated for {reason}")
            out: list[dict] = []
            self._escalate(df, reason, now, out)
            return out
        return Rejected(f"notice: unknown kind {notice.kind!r}")

    # ------------------------------------------------------------------ opening

    def _opened(self, df: DispatchFault, now: float) -> list[dict]:
        f, rb = df.facts, self.rulebook
        out: list[dict] = []
        for queue, rule, cc in routing.opening_targets(f, rb):
            self._order(df, queue, rule, cc, now, out)
        self._escalate_at_opening(df, now, out)
        if f.cause_side in ("customer", "unknown"):
            self.timers.schedule(f.opened_at + rb.tm2_s, f.seq, "TM-2", df)
        if f.cause_side == "unknown":
            self.timers.schedule(f.opened_at + rb.tm9_s, f.seq, "TM-9", df)
        cust, circuit = f.customer, f.circuit
        if (f.kind == "outage" and cust is not None and cust.level == "city"
                and circuit is not None and circuit.span == "cross_city"):
            self.timers.schedule(f.opened_at + rb.tm8_s, f.seq, "TM-8", df)
        return out

    def _escalate_at_opening(self, df: DispatchFault, now: float, out: list[dict]) -> None:
        f = df.facts
        cust = f.customer
        key_fault = (f.provincial or (cust is not None and cust.grade == "diamond")
                     or (f.kind == "outage" and f.circuit is not None
                         and f.circuit.span == "cross_province"))
        held = [wo.queue for wo in df.open_orders()]
        if key_fault and f.found_by_city and not any(q.startswith("prov.") for q in held):
            self._escalate(df, "ES-1", now, out)                               # ES-1
            held = [wo.queue for wo in df.open_orders()]
        if f.root_maintainer == "province" and held and all(q.startswith("city.") for q in held):
            self._escalate(df, "ES-3", now, out)                               # ES-3

    def _order(self, df: DispatchFault, queue: str, rule: str, cc: tuple[str, ...], now: float,
               out: list[dict], arrive_by: float | None = None) -> None:
        """Give `queue` an order for the fault unless it holds one (RT-13, RT-15)."""
        f = df.facts
        specialist = ".specialist." in queue
        if df.holds(queue):
            return
        if specialist:
            shared = self.incident_orders.get((f.incident_id, queue))
            if shared is not None and shared.open:
                shared.fault_ids.append(f.fault_id)
                shared.open_faults.add(f.fault_id)
                df.orders[queue] = shared
                out.append(shared.updated(now))                                  # RT-13
                if df.serious and shared.priority != "urgent":
                    shared.priority = "urgent"
                    out.append(shared.upgraded(now, False))
                return
        self.order_count += 1
        wo = WorkOrder(f"W-{self.id_prefix}{self.order_count:06d}", queue, f.fault_id,
                       f.incident_id if specialist else None, cc,
                       "urgent" if df.serious else "normal",
                       texts.title(f, self.rulebook, df.serious), rule, now)
        if queue == f"city.{f.city}.monitoring" and f.provincial and not df.serious:
            wo.contact_by = f.opened_at + self.rulebook.tm5_s                     # TM-5
            self.timers.schedule(wo.contact_by, f.seq, "TM-10", df)
        wo.arrive_by = arrive_by
        self.orders[wo.work_order_id] = wo
        if specialist:
            self.incident_orders[(f.incident_id, queue)] = wo
        df.orders[queue] = wo
        out.append(wo.created(now))

    def _escalate(self, df: DispatchFault, reason: str, now: float, out: list[dict]) -> None:
        """§6: an escalation record and an order for prov.monitoring (RT-15 applies)."""
        if reason in df.escalations:
            return
        df.escalations.add(reason)
        out.append({"type": "escalation", "at": fmt_time(now), "fault_id": df.facts.fault_id,
                    "reason": reason, "to": routing.PROV_MONITORING})
        self._order(df, routing.PROV_MONITORING, reason, (), now, out)

    # ------------------------------------------------------------------ serious

    def _serious(self, df: DispatchFault, now: float) -> list[dict]:
        f, rb = df.facts, self.rulebook
        out: list[dict] = []
        arrive_by = None
        if f.provincial:                                                          # TM-4
            office = rb.is_office_hours(now, self.warn)
            arrive_by = now + (rb.tm4_office_s if office else rb.tm4_outside_s)
        for wo in df.open_orders():                                               # RT-12
            tm4 = arrive_by is not None and wo.queue == routing.PROV_NETSERVICE
            if tm4:
                wo.arrive_by = arrive_by
            if wo.priority != "urgent" or tm4:
                wo.priority = "urgent"
                out.append(wo.upgraded(now, tm4))
        for queue, rule, cc in routing.serious_targets(f):                        # RT-1, RT-12, TM-4
            tm4 = arrive_by if queue == routing.PROV_NETSERVICE else None
            self._order(df, queue, rule, cc, now, out, tm4)
        self._onsite(df, "TM-3", now + rb.tm3_deadline_s, now, out)               # TM-3
        self._sms(df, "new", now, out)                                            # NT-1
        out.append({"type": "phone.notify", "at": fmt_time(now), "fault_id": f.fault_id,
                    "target": routing.PROV_NETSERVICE})                           # NT-5
        df.tm6_gen += 1
        self.timers.schedule(now + rb.tm6_s, f.seq, "TM-6", (df, df.tm6_gen))     # TM-6
        return out

    def _onsite(self, df: DispatchFault, rule: str, deadline: float, now: float, out: list[dict]) -> None:
        queue = routing.netservice_queue(df.facts)
        if queue in df.onsite:
            return
        df.onsite.add(queue)
        out.append({"type": "onsite.required", "at": fmt_time(now), "fault_id": df.facts.fault_id,
                    "queue": queue, "deadline": fmt_time(deadline), "rule": rule})

    def _sms(self, df: DispatchFault, stage: str, now: float, out: list[dict]) -> None:
        f, rb = df.facts, self.rulebook
        out.append({"type": "sms", "at": fmt_time(now), "fault_id": f.fault_id, "stage": stage,
                    "recipients": texts.sms_recipients(f, rb), "text": texts.sms_text(f, rb, stage, now)})

    # ------------------------------------------------------------------ end and operator actions

    def _cleared(self, df: DispatchFault, now: float) -> list[dict]:
        f = df.facts
        out: list[dict] = []
        for wo in df.open_orders():                                               # CL-2, RT-13
            wo.open_faults.discard(f.fault_id)
            if not wo.open_faults:
                wo.status = "resolved"
                out.append(wo.resolved(now))
        if df.serious:
            self._sms(df, "recovered", now, out)                                  # NT-3
            assert f.ended_at is not None
            out.append({"type": "report.due", "at": fmt_time(now), "fault_id": f.fault_id,
                        "due": fmt_time(f.ended_at + self.rulebook.tm7_s)})       # TM-7
        return out

    def _ack(self, df: DispatchFault, queue: str) -> list[dict] | Rejected:
        wo = df.orders.get(queue)
        if wo is None or not wo.open:
            return Rejected(f"ack {df.facts.fault_id}: queue {queue} holds no open work order "
                            "of this fault")
        if wo.status == "acknowledged":
            wo.status = "inProgress"
        df.acked = True
        return []

    # ------------------------------------------------------------------ timers

    def _next_slot(self, due: float, now: float) -> float:
        """TM-6's next due time: due + one period, or, when that is not after `now`, the
        first slot due + k·period after it (the missed slots are skipped)."""
        period = self.rulebook.tm6_s
        nxt = due + period
        if nxt > now or period <= 0 or not math.isfinite(now):
            return nxt
        nxt = due + ((now - due) // period + 1) * period
        # Float rounding far from 1970 could land on `now` itself, which would fire again at
        # once: never schedule at or before `now`.
        return nxt if nxt > now else max(now + period, math.nextafter(now, math.inf))

    def next_timer_key(self) -> tuple[float, int, int, int] | None:
        return self.timers.peek_key()

    def fire_next(self, now: float, skip_to: float | None = None) -> list[dict]:
        """Fire the next timer at clock `now`. `skip_to`: the live service is catching up on
        time it could not run (a downtime, a wall clock set forward by years) up to there;
        a repeating timer (TM-6) then fires this slot and resumes after `skip_to` instead of
        sending one stage SMS per missed slot. Replay gives none: it walks every slot."""
        due, kind, payload = self.timers.pop()
        out: list[dict] = []
        if kind == "TM-6":
            df, gen = payload
            if df.open and df.serious and df.tm6_gen == gen:
                self._sms(df, "update", now, out)                                 # NT-2
                after = now if skip_to is None or skip_to < now else skip_to
                self.timers.schedule(self._next_slot(due, after), df.facts.seq, "TM-6", (df, gen))
            return out
        df = payload
        if not df.open:
            return out
        f = df.facts
        if kind == "TM-2":
            self._onsite(df, "TM-2", now, now, out)
        elif kind == "TM-9" and not df.acked:
            out.append({"type": "deadline.missed", "at": fmt_time(now), "fault_id": f.fault_id,
                        "rule": "TM-9", "deadline": fmt_time(due)})
        elif kind == "TM-10" and not df.serious and not df.confirmed:
            out.append({"type": "deadline.missed", "at": fmt_time(now), "fault_id": f.fault_id,
                        "rule": "TM-10", "deadline": fmt_time(due)})
        elif kind == "TM-8":
            self._escalate(df, "ES-2", now, out)                                  # ES-2
        return out
