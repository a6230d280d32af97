"""The correlator: alarms and complaints in, faults out (RULES.md §2, §3, §5, TM-1, CL-1).

A pure core. Every method takes `now`, the clock (RULES.md T-1): the arrival of the input
or the due time of a timer. Nothing here reads the wall clock or does I/O, so replay and
the live service run the same code. Each call returns a list of outputs, each a pair
(record or None, Notice or None): the record is printed, the notice goes to the dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable

from correlator import records
from correlator.faults import AlarmState, CircuitState, Fault, ResourceState
from shared.facts import CLEARED, OPENED, SERIOUS, Notice
from shared.inventory import Circuit, Inventory, Resource
from shared.model import CORE_LAYERS, Alarm
from shared.rulebook import Rulebook
from shared.timers import TimerQueue

Out = tuple  # (record | None, Notice | None)


class Correlator:
    """State and rules of the correlator. Complaints and operator actions: correlator.operator."""

    def __init__(self, inventory: Inventory, rulebook: Rulebook, *,
                 owns: Callable[[Circuit], bool] | None = None, id_prefix: str = "") -> None:
        """`owns` limits the circuits whose state this instance keeps (one city's shard in the
        production pipeline; all of them in replay); `id_prefix` keeps shards' ids apart."""
        self.inventory = inventory
        self.rulebook = rulebook
        self.owns = owns
        self.id_prefix = id_prefix
        self.timers = TimerQueue()
        self.alarms: dict[tuple[str, str], AlarmState] = {}
        self.unmapped: dict[tuple[str, str], str] = {}   # AL-7: kept, counted, never dropped
        self.open_faults: dict[str, Fault] = {}
        self.faults: dict[str, Fault] = {}
        self.circuits: dict[str, CircuitState] = {}
        self.resources: dict[str, ResourceState] = {}
        self.complaint_faults: dict[tuple[str, str, str], list[Fault]] = {}
        self.complaint_ids: set[str] = set()
        self.sf6b_open: dict[tuple[str, str], Fault] = {}
        self.sf6b_window: dict[tuple[str, str], list[tuple[float, str, Fault]]] = {}
        self.fault_count = 0
        self.incident_count = 0
        # Where the input being handled stands in the whole input order (a split pipeline's
        # shards compare their faults' places by it; one correlator needs none: `seq` is it).
        self.position: tuple = ()
        self._cause_class = rulebook.cause_class            # AL-2, bound once for the hot path
        self._build_state()

    def _build_state(self) -> None:
        """The circuits this instance keeps, and the resources on their paths. With `owns` (a
        city's shard) other resources get their state when an alarm first names them
        (resource_state): a shard holds its city's share of the inventory, not all of it."""
        inv = self.inventory
        if self.owns is None:
            for rid, res in inv.resources.items():
                self.resources[rid] = ResourceState(res)
        for cid, circuit in inv.circuits.items():
            if self.owns is not None and not self.owns(circuit):
                continue
            cs = CircuitState(circuit, inv.customers[circuit.customer_id])
            self.circuits[cid] = cs
            seen: set[str] = set()
            for pidx, path in enumerate(circuit.paths):
                for rid in dict.fromkeys(path):
                    rs = self.resources.get(rid) or self.resource_state(rid)
                    rs.memberships.append((cs, pidx))
                    if rid not in seen:
                        seen.add(rid)
                        rs.circuits.append(cs)
                        cs.resources.append(rs)

    def resource_state(self, resource_id: str) -> ResourceState | None:
        """The state of an inventory resource (made on first use); None for a resource the
        inventory does not have (AL-7)."""
        rs = self.resources.get(resource_id)
        if rs is None:
            res = self.inventory.resources.get(resource_id)
            if res is None:
                return None
            rs = self.resources[resource_id] = ResourceState(res)
        return rs

    # ------------------------------------------------------------------ alarms (AL-1..AL-8)

    def on_alarm(self, alarm: Alarm, now: float) -> list[Out]:
        key = (alarm.source, alarm.alarm_id)
        st = self.alarms.get(key)
        et = alarm.event_time
        if alarm.state == "raised":
            if st is not None:
                if st.active:                       # AL-1: a repeat of the same alarm
                    st.count += 1
                    st.last_seen = et
                    return []
                if st.last_clear is not None and et <= st.last_clear:
                    return []                       # born cleared (AL-1 tombstone)
            return self._raise(key, alarm, now)
        if st is None:                              # AL-1: a clear for an unknown key
            tomb = AlarmState(alarm.resource_id, "other", alarm.probable_cause, et)
            tomb.active = False
            tomb.last_clear = et
            self.alarms[key] = tomb
            return []
        if not st.active:
            if st.last_clear is None or et > st.last_clear:
                st.last_clear = et
            return []
        st.active = False
        st.last_clear = et
        return self._clear(key, st, et, now)

    def _raise(self, key: tuple[str, str], alarm: Alarm, now: float) -> list[Out]:
        cause = alarm.probable_cause
        cls = self._cause_class(cause)
        et = alarm.event_time
        self.alarms[key] = AlarmState(alarm.resource_id, cls, cause, et)
        rs = self.resources.get(alarm.resource_id) or self.resource_state(alarm.resource_id)
        if rs is None:
            self.unmapped[key] = alarm.resource_id
            return [(records.alarm_unmapped(alarm.source, alarm.alarm_id, alarm.resource_id, now), None)]
        if cls == "other":
            return []
        if cls == "outage":
            rs.outage[key] = (et, cause)
            if len(rs.outage) > 1:
                return []
            outs: list[Out] = []
            for cs, pidx in rs.memberships:
                cs.path_down[pidx] += 1
                if cs.path_down[pidx] == 1:
                    cs.paths_down += 1
                    if cs.paths_down == cs.npaths and not cs.interrupted:
                        self._interrupt(cs, rs, key, now, outs)
            return outs
        rs.degr[key] = (et, cause)
        if len(rs.degr) > 1:
            return []
        outs = []
        for cs in rs.circuits:
            cs.deg_count += 1
            if cs.deg_count == 1 and not cs.interrupted:
                self._open_circuit_fault(cs, "degradation", et, rs, cause, key, now, outs)
        return outs

    def _clear(self, key: tuple[str, str], st: AlarmState, et: float, now: float) -> list[Out]:
        rs = self.resources.get(st.resource_id) or self.resource_state(st.resource_id)
        if rs is None or st.cls == "other":
            return []
        outs: list[Out] = []
        if st.cls == "outage":
            rs.outage.pop(key, None)
            if rs.outage:
                return outs
            for cs, pidx in rs.memberships:
                cs.path_down[pidx] -= 1
                if cs.path_down[pidx] == 0:
                    cs.paths_down -= 1
                    if cs.interrupted:
                        self._recover(cs, et, now, outs)
            return outs
        rs.degr.pop(key, None)
        if rs.degr:
            return outs
        for cs in rs.circuits:
            cs.deg_count -= 1
            if cs.deg_count == 0 and cs.deg_fault is not None:
                self.end_fault(cs.deg_fault, et, now, outs)
        return outs

    def _interrupt(self, cs: CircuitState, trigger: ResourceState, key: tuple[str, str],
                   now: float, outs: list[Out]) -> None:
        """AL-3: every path is down; the fault opens at the latest time a path went down."""
        cs.interrupted = True
        cs.quiet_gen += 1                           # AL-5: the circuit is no longer up
        opened_at, cause = trigger.earliest_outage()
        root = trigger
        paths = cs.circuit.paths
        for pidx in range(cs.npaths):
            best: tuple[float, str, ResourceState] | None = None
            for rid in paths[pidx]:
                rs = self.resources[rid]
                if rs.outage:
                    t, c = rs.earliest_outage()
                    if best is None or t < best[0]:
                        best = (t, c, rs)
            if best is not None and best[0] > opened_at:
                opened_at, cause, root = best
        if cs.deg_fault is not None:                # AL-8: degradation turns into outage
            self.end_fault(cs.deg_fault, opened_at, now, outs)
        root_key = key if root is trigger else min(root.outage, key=root.outage.__getitem__)
        self._open_circuit_fault(cs, "outage", opened_at, root, cause, root_key, now, outs)

    def _recover(self, cs: CircuitState, et: float, now: float, outs: list[Out]) -> None:
        """AL-3: one path is clean again: the outage fault ends (AL-5 flaps, AL-8)."""
        cs.interrupted = False
        fault = cs.outage_fault
        if fault is not None:
            self.end_fault(fault, et, now, outs)
            if et - fault.opened_at <= self.rulebook.flap_max_s:
                self._flap(cs, fault, et, now, outs)
        if cs.flap_fault is not None:
            self.timers.schedule(et + self.rulebook.flap_quiet_s, cs.flap_fault.seq, "AL-5",
                                 (cs, cs.quiet_gen))
        if cs.deg_count > 0 and cs.deg_fault is None:   # AL-8: outage back to degradation
            best: tuple[float, str, ResourceState] | None = None
            for rs in cs.resources:
                if rs.degr:
                    t, c = rs.earliest_degradation()
                    if best is None or t < best[0]:
                        best = (t, c, rs)
            assert best is not None
            _t, cause, rs = best
            key = min(rs.degr, key=rs.degr.__getitem__)
            self._open_circuit_fault(cs, "degradation", et, rs, cause, key, now, outs)

    def _flap(self, cs: CircuitState, flap: Fault, et: float, now: float, outs: list[Out]) -> None:
        """AL-5: the third flap within 30 minutes opens a FLAPPING degradation fault."""
        rb = self.rulebook
        if cs.flap_fault is not None:
            cs.flap_fault.flaps.append(flap.fault_id)
            return
        cs.flaps.append(flap.opened_at)
        del cs.flaps[:-rb.flap_count]
        if len(cs.flaps) == rb.flap_count and cs.flaps[-1] - cs.flaps[0] <= rb.flap_window_s:
            cs.flaps.clear()
            rs = self.resources[flap.root_resource] if flap.root_resource else None
            assert rs is not None
            self._open_circuit_fault(cs, "degradation", et, rs, "FLAPPING", flap.root_alarm, now,
                                     outs, flapping=True)

    # ------------------------------------------------------------------ faults

    def new_fault(self, kind: str, **fields) -> Fault:
        self.fault_count += 1
        seq = self.fault_count
        incident_id = fields.pop("incident_id", None)
        if incident_id is None:
            incident_id = self.new_incident()
        f = Fault(seq, f"F-{self.id_prefix}{seq:06d}", incident_id, kind, **fields)
        f.position = self.position
        self.open_faults[f.fault_id] = f
        self.faults[f.fault_id] = f
        return f

    def new_incident(self) -> str:
        self.incident_count += 1
        return f"I-{self.id_prefix}{self.incident_count:06d}"

    def _incident_for(self, rs: ResourceState, opened_at: float) -> str:
        """AL-6: same root within 5 minutes of the incident's first fault (not chained)."""
        window = self.rulebook.incident_window_s
        if rs.incident_id is not None and abs(opened_at - rs.incident_first) <= window:
            return rs.incident_id
        rs.incident_id = self.new_incident()
        rs.incident_first = opened_at
        return rs.incident_id

    def _open_circuit_fault(self, cs: CircuitState, kind: str, opened_at: float, rs: ResourceState,
                            cause: str, root_key, now: float, outs: list[Out],
                            flapping: bool = False) -> None:
        root: Resource = rs.resource
        circuit = cs.circuit
        f = self.new_fault(
            kind, incident_id=self._incident_for(rs, opened_at), circuit=circuit, customer=cs.customer,
            city=circuit.a_city, service_type=circuit.service_type, important=cs.customer.important,
            cause_side="core" if root.layer in CORE_LAYERS else "customer", root=root,
            probable_cause=cause, opened_at=opened_at)
        f.root_alarm = root_key
        f.circuit_state = cs
        if root_key is not None and root_key[0] in self.rulebook.city_sources:
            f.found_by_city = True
        if flapping:
            f.is_flapping = True
            cs.flap_fault = f
        elif kind == "outage":
            cs.outage_fault = f
            self._apply_serious_row(f)
        else:
            cs.deg_fault = f
        self.opened(f, now, outs)
        self._absorb_complaints(cs, f, now, outs)

    def _apply_serious_row(self, f: Fault) -> None:
        """SV-1: the first SF row that fits an important customer's outage starts TM-1."""
        if not f.important:
            return
        row = self.rulebook.serious_row(f.service_type, f.layer, f.probable_cause)
        if row is None:
            return
        cust, circuit = f.customer, f.circuit
        threshold = row.threshold_s
        if circuit is not None and cust is not None and row.long_applies(cust.level, cust.grade,
                                                                         circuit.span):
            threshold = row.long_threshold_s
            f.sf_long = True
        f.sf_rule = row.id
        self.start_tm1(f, f.opened_at + threshold)

    def start_tm1(self, f: Fault, due: float) -> None:
        f.tm1_gen += 1
        f.tm1_running = True
        self.timers.schedule(due, f.seq, "TM-1", (f, f.tm1_gen))

    def cancel_tm1(self, f: Fault) -> None:
        f.tm1_gen += 1
        f.tm1_running = False

    def _absorb_complaints(self, cs: CircuitState, f: Fault, now: float, outs: list[Out]) -> None:
        """SV-9: an open general complaint fault naming this circuit joins the new fault."""
        if not cs.complaint_faults:
            return
        for cf in list(cs.complaint_faults):
            if cf.open and cf.severity == "general":
                f.customer_reported = True
                f.complaints.extend(cf.complaints)
                if cf.sf_rule == "SF-6a" and cf.tm1_running and not f.tm1_running:
                    # The complaint joins the new fault (SV-5): SF-6a's TM-1 comes with it.
                    f.sf_rule = "SF-6a"
                    self.start_tm1(f, cf.opened_at + self.rulebook.complaint_threshold_s)
                self.end_fault(cf, f.opened_at, now, outs)

    def opened(self, f: Fault, now: float, outs: list[Out]) -> None:
        outs.append((records.fault_opened(f, now), Notice(OPENED, f.facts())))

    def make_serious(self, f: Fault, rule: str, trigger: str, now: float, outs: list[Out]) -> None:
        f.severity = "serious"
        f.serious_at = now
        f.rule = rule
        f.trigger = trigger
        self.cancel_tm1(f)
        outs.append((records.fault_serious(f, now), Notice(SERIOUS, f.facts())))

    def end_fault(self, f: Fault, ended_at: float, now: float, outs: list[Out]) -> None:
        """CL-1: the fault ends, exactly once; SF-6b faults listing it may end with it."""
        if not f.open:
            return
        f.ended_at = ended_at
        self.cancel_tm1(f)
        del self.open_faults[f.fault_id]
        cs = f.circuit_state
        if cs is not None:
            if cs.outage_fault is f:
                cs.outage_fault = None
            elif cs.deg_fault is f:
                cs.deg_fault = None
            elif cs.flap_fault is f:
                cs.flap_fault = None
        if f.kind == "complaint":
            self._forget_complaint_fault(f)
        outs.append((records.fault_cleared(f, now), Notice(CLEARED, f.facts())))
        for parent in f.listed_in:
            if parent.open and all(not child.open for child in parent.listed):
                self.end_fault(parent, ended_at, now, outs)

    def _forget_complaint_fault(self, f: Fault) -> None:
        if f.customer is None:
            self.sf6b_open.pop((f.city, f.service_type), None)
            return
        key = (f.customer.customer_id, f.service_type, f.city)
        group = self.complaint_faults.get(key)
        if group and f in group:
            group.remove(f)
        cs = self.circuits.get(f.circuit.circuit_id) if f.circuit is not None else None
        if cs is not None:
            if f in cs.complaint_faults:
                cs.complaint_faults.remove(f)

    # ------------------------------------------------------------------ timers

    def next_timer_key(self) -> tuple[float, int, int, int] | None:
        return self.timers.peek_key()

    def fire_next(self, now: float) -> list[Out]:
        """Fire the earliest timer; `now` is its due time, or the clock when it is overdue."""
        _due, kind, payload = self.timers.pop()
        outs: list[Out] = []
        if kind == "TM-1":
            f, gen = payload
            if f.open and f.severity == "general" and f.tm1_gen == gen:
                self.make_serious(f, f.sf_rule, "duration", now, outs)
        elif kind == "AL-5":
            cs, gen = payload
            f = cs.flap_fault
            if f is not None and cs.quiet_gen == gen and not cs.interrupted:
                self.end_fault(f, _due, now, outs)
        return outs
