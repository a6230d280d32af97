"""Raw feeds → normalized alarms: one entry, `normalize(format, payload)`, for every way a
raw message comes in (the raw topics, replay's `raw` lines, the TMF642 API). The
normalized form and TMF642 `Alarm` JSON are read here; syslog lines, SNMP traps and NMS
export rows go through the vendor mappings (alarm_ingest/feeds.py, alarm_ingest/mapping.py).
"""

from __future__ import annotations

import base64
import binascii

import orjson

from alarm_ingest.feeds import from_export, from_syslog, from_trap
from alarm_ingest.mapping import Mappings, default_mappings
from alarm_ingest.normalized import alarm_from_dict
from shared.clock import TimeFormatError, parse_time
from shared.model import MAX_CAUSE, MAX_NAME, SEVERITIES, Alarm, Rejected
from shared.wire import show

FORMATS = ("tmf642", "syslog", "snmp", "normalized", "export")

# TMF642 perceivedSeverity is already X.733; `cleared` is a state in our model.
_TMF_STATES = {"raised": "raised", "updated": "raised", "cleared": "cleared"}


def _decode(payload: object, where: str) -> object:
    if type(payload) is str:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError as err:   # also lone surrogates and nesting past 1024
            return Rejected(f"{where}.payload: not JSON ({err})")
    return payload


def normalize(fmt: object, payload: object, where: str = "raw", *, arrival: float | None = None,
              sender: str | None = None, mappings: Mappings | None = None) -> Alarm | Rejected:
    """One raw message → an alarm or the reason it is refused. A syslog payload is the line
    (text), an SNMP one the datagram in base64, an export one `{mapping, row}`. `arrival`
    (epoch seconds): when it came, the time of a message that carries none; `sender`: the
    address it came from (a syslog line without a host, a v2c trap); `mappings`: the vendor
    mappings (None: the built-in ones)."""
    if fmt is None:
        return Rejected(f"{where}: missing field format")
    if type(fmt) is not str:
        return Rejected(f"{where}.format: expected a string, got {show(fmt)}")
    if fmt not in FORMATS:
        return Rejected(f"{where}.format: {show(fmt)} is not one of {', '.join(FORMATS)}")
    if fmt in ("syslog", "snmp", "export"):
        return _by_mapping(fmt, payload, where, arrival, sender, mappings or default_mappings())
    doc = _decode(payload, where)
    if isinstance(doc, Rejected):
        return doc
    if fmt == "normalized":
        return alarm_from_dict(doc, f"{where}.payload")
    return _from_tmf642(doc, f"{where}.payload")


def _by_mapping(fmt: str, payload: object, where: str, arrival: float | None, sender: str | None,
                mappings: Mappings) -> Alarm | Rejected:
    if fmt == "export":
        doc = _decode(payload, where)
        if isinstance(doc, Rejected):
            return doc
        return from_export(doc, mappings, f"{where}.payload")      # a row carries its own times
    if type(payload) is not str:
        return Rejected(f"{where}.payload: expected the {fmt} message as a string, got {show(payload)}")
    if arrival is None:
        return Rejected(f"{where}: a {fmt} message needs the time it came (at)")
    if fmt == "syslog":
        return from_syslog(payload.encode("utf-8", "surrogatepass"), sender, arrival, mappings, where)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return Rejected(f"{where}.payload: an SNMP trap is sent as base64 of the datagram; "
                        "this is not base64")
    return from_trap(data, sender, arrival, mappings, where)


def _tmf_str(doc: dict, names: tuple[str, ...], where: str, longest: int | None = MAX_NAME,
             ) -> str | None | Rejected:
    """The first of `names` holding a non-empty string; absent, null or "" fall through to
    the next (TMF642 leaves optional fields out or empty); any other type is refused, and
    so is what the read model cannot store (too long, a NUL), naming the TMF642 field."""
    for name in names:
        value = doc.get(name)
        if value is None or value == "":
            continue
        if type(value) is not str:
            return Rejected(f"{where}.{name}: expected a string, got {show(value)}")
        if longest is not None and len(value) > longest:
            return Rejected(f"{where}.{name}: longer than {longest} characters ({len(value):,})")
        if "\x00" in value:
            return Rejected(f"{where}.{name}: holds a NUL character (\\u0000), which cannot be stored")
        return value
    return None


def _from_tmf642(doc: object, where: str) -> Alarm | Rejected:
    """TMF642 Alarm: id, alarmedObject.id, probableCause, perceivedSeverity, state, eventTime.
    Every field is type-checked here, so a refusal names the TMF642 field."""
    if type(doc) is not dict:
        return Rejected(f"{where}: expected a TMF642 Alarm object, got {show(doc)}")
    alarm_id = _tmf_str(doc, ("id",), where)
    if alarm_id is None:
        return Rejected(f"{where}: missing field id")
    obj = doc.get("alarmedObject")
    if obj is None:
        return Rejected(f"{where}: missing field alarmedObject")
    if type(obj) is not dict:
        return Rejected(f"{where}.alarmedObject: expected an object with id, got {show(obj)}")
    resource_id = _tmf_str(obj, ("id",), f"{where}.alarmedObject")
    if resource_id is None:
        return Rejected(f"{where}.alarmedObject: missing field id")
    cause = _tmf_str(doc, ("probableCause",), where, MAX_CAUSE)
    severity = _tmf_str(doc, ("perceivedSeverity",), where)
    tmf_state = _tmf_str(doc, ("state",), where)
    source = _tmf_str(doc, ("sourceSystemId", "reportingSystemId"), where)
    text = _tmf_str(doc, ("specificProblem", "alarmDetails"), where, None)
    for value in (alarm_id, resource_id, cause, severity, tmf_state, source, text):
        if isinstance(value, Rejected):
            return value
    state = _TMF_STATES.get(tmf_state or "raised", "raised")
    if severity == "cleared":
        state, severity = "cleared", "indeterminate"
    elif severity is not None and severity not in SEVERITIES:
        return Rejected(f"{where}.perceivedSeverity: {show(severity)} is not one of cleared, "
                        f"{', '.join(sorted(SEVERITIES))}")
    time_field = "eventTime"
    if state == "cleared" and doc.get("alarmClearedTime") not in (None, ""):
        time_field = "alarmClearedTime"
    elif doc.get("eventTime") is None and doc.get("alarmRaisedTime") is not None:
        time_field = "alarmRaisedTime"        # TMF642 v4's own name for when it was raised
    if doc.get(time_field) is None:
        return Rejected(f"{where}: missing field {time_field}")
    try:
        parse_time(doc[time_field])
    except TimeFormatError as err:
        return Rejected(f"{where}.{time_field}: {err}")
    normalized = {
        "source": source or "tmf642", "alarm_id": alarm_id, "resource_id": resource_id,
        "probable_cause": cause or "OTHER", "severity": severity or "indeterminate", "state": state,
        "event_time": doc[time_field], "text": text or "",
    }
    return alarm_from_dict(normalized, where)
