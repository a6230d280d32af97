"""Complaints (RULES.md §5, SV-5, SV-6, SF-6a/b) and operator actions (SV-2, SV-3, SV-8, CL-4).

Functions over the Correlator's state; they share its pure contract: `now` is the arrival of
the complaint or action, which is also its event time (RULES.md T-1).
"""

from __future__ import annotations

from correlator import records
from correlator.engine import Correlator, Out
from correlator.faults import Fault
from shared.facts import ACK, CONFIRMED, ESCALATE, Notice
from shared.model import Action, Alarm, Complaint, Rejected, Select


def on_input(c: Correlator, event: Alarm | Complaint | Action, now: float,
             pick: str | None = None) -> list[Out] | Rejected:
    """Any input of the correlator: an alarm, a complaint or an operator action. `pick`: the
    fault a split pipeline found a complaint to join or an action to mean, asking every
    shard that may hold one (services/drivers/sharding.py); still open, as nothing came
    between the asking and the input."""
    if type(event) is Alarm:
        return c.on_alarm(event, now)
    if type(event) is Complaint:
        return on_complaint(c, event, now, pick)
    return on_action(c, event, now, pick)


def on_complaint(c: Correlator, complaint: Complaint, now: float,
                 pick: str | None = None) -> list[Out] | Rejected:
    cust = c.inventory.customers.get(complaint.customer_id)
    if cust is None:
        return Rejected(f"complaint {complaint.complaint_id}: customer {complaint.customer_id} "
                        "is not in the inventory")
    if complaint.complaint_id in c.complaint_ids:
        return []                                             # a repeated complaint changes nothing
    c.complaint_ids.add(complaint.complaint_id)
    rb = c.rulebook
    all_users = complaint.scope == "all_users"
    sf6a = cust.important and all_users                      # CP-3, SF-6a
    counts_6b = not cust.important and all_users              # CP-3, SF-6b
    outs: list[Out] = []
    key6b = (complaint.city, complaint.service_type)
    target = c.open_faults.get(pick) if pick is not None else _joinable_fault(c, complaint)
    if target is not None:                                    # SV-5
        target.customer_reported = True
        target.complaints.append(complaint.complaint_id)
        if sf6a and target.severity == "general" and not target.tm1_running:
            target.sf_rule = "SF-6a"
            c.start_tm1(target, now + rb.complaint_threshold_s)
    elif not cust.important and key6b in c.sf6b_open:         # SV-6: joins the open SF-6b fault
        target = c.sf6b_open[key6b]
        target.complaints.append(complaint.complaint_id)
        counts_6b = False
    else:                                                      # CP-1
        target = _open_complaint_fault(c, complaint, cust, now, outs)
        if sf6a:
            target.sf_rule = "SF-6a"
            c.start_tm1(target, now + rb.complaint_threshold_s)
    if counts_6b:
        _count_towards_sf6b(c, complaint, target, now, outs)
    return outs


def complaint_seen(c: Correlator, complaint: Complaint) -> tuple[bool, Fault | None]:
    """Whether this correlator has had the complaint already, and the fault it would join
    (SV-5) among those it holds: what a split pipeline asks each shard before a complaint."""
    return complaint.complaint_id in c.complaint_ids, _joinable_fault(c, complaint)


def _joinable_fault(c: Correlator, complaint: Complaint) -> Fault | None:
    """SV-5: the earliest open fault of this customer's service in the complaint's city."""
    city, st = complaint.city, complaint.service_type
    found: list[Fault] = []
    for circuit in c.inventory.circuits_of(complaint.customer_id):
        if circuit.service_type != st or city not in (circuit.a_city, circuit.z_city):
            continue
        cs = c.circuits.get(circuit.circuit_id)
        if cs is None:                                        # kept by another city's shard
            continue
        found.extend(f for f in (cs.outage_fault, cs.deg_fault, cs.flap_fault) if f is not None)
    found.extend(c.complaint_faults.get((complaint.customer_id, st, city), ()))
    if not found:
        return None
    return min(found, key=lambda f: (f.opened_at, f.seq))


def _open_complaint_fault(c: Correlator, complaint: Complaint, cust, now: float,
                          outs: list[Out]) -> Fault:
    rb = c.rulebook
    matches = [ci for ci in c.inventory.circuits_of(cust.customer_id)
               if ci.service_type == complaint.service_type
               and complaint.city in (ci.a_city, ci.z_city)]
    circuit = matches[0] if len(matches) == 1 else None       # CP-1: only when exactly one
    f = c.new_fault("complaint", circuit=circuit, customer=cust, city=complaint.city,
                    service_type=complaint.service_type, important=cust.important,
                    cause_side="unknown", root=None, probable_cause=None, opened_at=now)
    f.complaints.append(complaint.complaint_id)
    f.green = rb.is_green(complaint.channel, cust.grade)          # CP-2
    f.found_by_city = f.green                                  # ES-1: a complaint the city took
    c.complaint_faults.setdefault((cust.customer_id, complaint.service_type, complaint.city), []).append(f)
    cs = c.circuits.get(circuit.circuit_id) if circuit is not None else None
    if cs is not None:
        cs.complaint_faults.append(f)
    c.opened(f, now, outs)
    return f


def _count_towards_sf6b(c: Correlator, complaint: Complaint, fault: Fault, now: float,
                        outs: list[Out]) -> None:
    """SF-6b/SV-6: three distinct ordinary customers within 30 minutes open a city fault."""
    rb = c.rulebook
    key = (complaint.city, complaint.service_type)
    window = c.sf6b_window.setdefault(key, [])
    window.append((now, complaint.customer_id, fault))
    while window and window[0][0] < now - rb.sf6b_window_s:
        window.pop(0)
    if key in c.sf6b_open or len({cid for _t, cid, _f in window}) < rb.sf6b_customers:
        return
    f = c.new_fault("complaint", circuit=None, customer=None, city=complaint.city,
                    service_type=complaint.service_type, important=False, cause_side="unknown",
                    root=None, probable_cause=None, opened_at=now)
    for _t, _cid, child in window:
        if child not in f.listed:
            f.listed.append(child)
            child.listed_in.append(f)
    f.complaints.extend(child_id for child in f.listed for child_id in child.complaints)
    f.sf_rule = "SF-6b"
    c.sf6b_open[key] = f
    window.clear()
    c.opened(f, now, outs)
    c.start_tm1(f, now + rb.sf6b_threshold_s)


# ---------------------------------------------------------------------- operator actions

def select_fault(c: Correlator, sel: Select) -> Fault | Rejected:
    """CONTRACT §3 `select`: exactly one open fault, or a reason (CL-4)."""
    if sel.fault_id is not None:
        f = c.open_faults.get(sel.fault_id)
        if f is not None:
            return f
        known = "has ended" if sel.fault_id in c.faults else "is unknown"
        return Rejected(f"select {sel.describe()}: fault {sel.fault_id} {known}")
    found = matching_faults(c, sel)
    return found[0] if len(found) == 1 else not_one_match(sel, [f.fault_id for f in found])


def matching_faults(c: Correlator, sel: Select) -> list[Fault]:
    """The open faults a `select` without fault_id matches, in the order they were opened.
    A split pipeline asks each shard that may hold one (services/drivers/sharding.py)."""
    if sel.circuit_id is not None:
        return [f for f in c.open_faults.values() if f.circuit and f.circuit.circuit_id == sel.circuit_id]
    if sel.customer_id is not None:
        return [f for f in c.open_faults.values()
                if f.customer and f.customer.customer_id == sel.customer_id
                and (sel.service_type is None or f.service_type == sel.service_type)
                and (sel.city is None or f.city == sel.city
                     or (f.circuit is not None and sel.city in (f.circuit.a_city, f.circuit.z_city)))]
    f = c.sf6b_open.get((sel.city, sel.service_type))
    return [f] if f is not None else []


def not_one_match(sel: Select, fault_ids: list[str]) -> Rejected:
    """CL-4's refusal of a select that matches no open fault, or several (these)."""
    if not fault_ids:
        return Rejected(f"select {sel.describe()} matches no open fault")
    return Rejected(f"select {sel.describe()} matches {len(fault_ids)} open faults "
                    f"({', '.join(fault_ids)}); name one by fault_id")


def on_action(c: Correlator, action: Action, now: float, pick: str | None = None) -> list[Out] | Rejected:
    f = c.open_faults.get(pick) if pick is not None else None
    if f is None:
        f = select_fault(c, action.select)
    if isinstance(f, Rejected):
        return f
    if action.kind == "confirm":
        return _confirm(c, f, action.impact, now)
    if action.kind == "attribution":
        if f.attribution == action.attribution:
            return []
        f.attribution = action.attribution                    # SV-4, SV-8: routing unchanged
        return [(records.fault_attributed(f, now), None)]
    if action.kind == "resolve":
        return _resolve(c, f, now)
    if action.kind == "ack":
        return [(None, Notice(ACK, f.facts(), action.queue))]
    if action.kind == "escalate":
        return [(None, Notice(ESCALATE, f.facts(), action.reason))]
    return Rejected(f"unknown action {action.kind}")


def _confirm(c: Correlator, f: Fault, impact: str | None, now: float) -> list[Out]:
    outs: list[Out] = []
    cust = f.customer
    if impact == "full_block":
        eligible = cust is not None and (cust.level == "provincial" or cust.grade == "diamond")
        if eligible and f.severity == "general" and f.sf_rule is not None and not f.sf_long:
            c.make_serious(f, f.sf_rule, "confirmed", now, outs)          # SV-2
    elif f.severity == "general" and f.tm1_running:
        c.cancel_tm1(f)                                                   # SV-3
    outs.append((None, Notice(CONFIRMED, f.facts())))                     # TM-10: contact made
    return outs


def _resolve(c: Correlator, f: Fault, now: float) -> list[Out] | Rejected:
    cs = f.circuit_state
    if f.kind == "outage" or (cs is not None and (cs.interrupted or (not f.is_flapping and cs.deg_count))):
        circuit = f.circuit.circuit_id if f.circuit else "?"
        how = "interrupted" if cs is not None and cs.interrupted else "degraded"
        return Rejected(f"resolve {f.fault_id}: circuit {circuit} is still {how}; "
                        "the fault ends when its alarms clear")
    outs: list[Out] = []
    c.end_fault(f, now, now, outs)
    return outs
