"""Raw feeds → normalized alarms. This build reads the normalized form and TMF642 `Alarm`
JSON; syslog and SNMP traps are refused with a reason until their parsers land."""

from __future__ import annotations

import orjson

from alarm_ingest.normalized import alarm_from_dict
from shared.model import Alarm, Rejected

FORMATS = ("tmf642", "syslog", "snmp", "normalized")

# TMF642 perceivedSeverity is already X.733; `cleared` is a state in our model.
_TMF_STATES = {"raised": "raised", "updated": "raised", "cleared": "cleared"}


def _decode(payload: object, where: str) -> object:
    if isinstance(payload, str):
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError as err:
            return Rejected(f"{where}: payload is not JSON ({err})")
    return payload


def normalize(fmt: str, payload: object, where: str = "raw") -> Alarm | Rejected:
    if fmt not in FORMATS:
        return Rejected(f"{where}.format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt in ("syslog", "snmp"):
        return Rejected(f"{where}.format: {fmt} parsing is not available in this build; "
                        "send the normalized form or TMF642")
    doc = _decode(payload, where)
    if isinstance(doc, Rejected):
        return doc
    if fmt == "normalized":
        return alarm_from_dict(doc, f"{where}.payload")
    return _from_tmf642(doc, f"{where}.payload")


def _from_tmf642(doc: object, where: str) -> Alarm | Rejected:
    """TMF642 Alarm: id, alarmedObject.id, probableCause, perceivedSeverity, state, eventTime."""
    if type(doc) is not dict:
        return Rejected(f"{where}: expected a TMF642 Alarm object")
    obj = doc.get("alarmedObject")
    severity = doc.get("perceivedSeverity")
    state = _TMF_STATES.get(doc.get("state", "raised"), "raised")
    if severity == "cleared":
        state, severity = "cleared", "indeterminate"
    source = doc.get("sourceSystemId") or doc.get("reportingSystemId") or "tmf642"
    normalized = {
        "source": source, "alarm_id": doc.get("id"),
        "resource_id": obj.get("id") if isinstance(obj, dict) else None,
        "probable_cause": doc.get("probableCause") or "OTHER",
        "severity": severity or "indeterminate", "state": state,
        "event_time": doc.get("alarmClearedTime") if state == "cleared" and doc.get("alarmClearedTime")
        else doc.get("eventTime"),
        "text": doc.get("specificProblem") or doc.get("alarmDetails") or "",
    }
    return alarm_from_dict(normalized, where)
