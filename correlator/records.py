"""The correlator's output records (CONTRACT §3), built in the contract's field order."""

from __future__ import annotations

from correlator.faults import Fault
from shared.clock import fmt_time, whole_seconds


def fault_opened(f: Fault, now: float) -> dict:
    return {
        "type": "fault.opened", "at": fmt_time(now), "fault_id": f.fault_id,
        "incident_id": f.incident_id, "kind": f.kind,
        "circuit_id": f.circuit.circuit_id if f.circuit else None,
        "customer_id": f.customer.customer_id if f.customer else None,
        "city": f.city, "service_type": f.service_type, "important": f.important,
        "cause_side": f.cause_side, "root_resource": f.root_resource, "layer": f.layer,
        "probable_cause": f.probable_cause, "opened_at": fmt_time(f.opened_at),
    }


def fault_serious(f: Fault, now: float) -> dict:
    return {"type": "fault.serious", "at": fmt_time(now), "fault_id": f.fault_id,
            "rule": f.rule, "trigger": f.trigger}


def fault_cleared(f: Fault, now: float) -> dict:
    assert f.ended_at is not None
    return {"type": "fault.cleared", "at": fmt_time(now), "fault_id": f.fault_id,
            "severity": f.severity, "ended_at": fmt_time(f.ended_at),
            "duration_s": whole_seconds(f.opened_at, f.ended_at)}


def fault_attributed(f: Fault, now: float) -> dict:
    return {"type": "fault.attributed", "at": fmt_time(now), "fault_id": f.fault_id,
            "attribution": f.attribution}


def alarm_unmapped(source: str, alarm_id: str, resource_id: str, now: float) -> dict:
    return {"type": "alarm.unmapped", "at": fmt_time(now), "source": source,
            "alarm_id": alarm_id, "resource_id": resource_id}
