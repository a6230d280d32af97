"""The normalized alarm (CONTRACT §2): validation from a decoded JSON object.

Hand-written checks rather than a pydantic model: this runs once per alarm in a storm,
and a few dict look-ups cost a fraction of a model's validation. Every refusal names
the field and what was wrong.
"""

from __future__ import annotations

from shared.clock import TimeFormatError, parse_time
from shared.model import ALARM_STATES, SEVERITIES, Alarm, Rejected

_REQUIRED_STR = ("source", "alarm_id", "resource_id", "probable_cause")


def alarm_from_dict(d: object, where: str = "alarm") -> Alarm | Rejected:
    if type(d) is not dict:
        return Rejected(f"{where}: expected an object, got {type(d).__name__}")
    try:
        source = d["source"]
        alarm_id = d["alarm_id"]
        resource_id = d["resource_id"]
        cause = d["probable_cause"]
        severity = d["severity"]
        state = d["state"]
        event_time = d["event_time"]
    except KeyError as missing:
        return Rejected(f"{where}: missing field {missing.args[0]}")
    if not (type(source) is str and type(alarm_id) is str and type(resource_id) is str
            and type(cause) is str):
        for name in _REQUIRED_STR:
            if type(d[name]) is not str:
                return Rejected(f"{where}.{name}: expected a string, got {type(d[name]).__name__}")
    for name, value in (("source", source), ("alarm_id", alarm_id), ("resource_id", resource_id),
                        ("probable_cause", cause)):
        if not value:
            return Rejected(f"{where}.{name}: must not be empty")
    if severity not in SEVERITIES:
        return Rejected(f"{where}.severity: {severity!r} is not one of {', '.join(sorted(SEVERITIES))}")
    if state not in ALARM_STATES:
        return Rejected(f"{where}.state: {state!r} is not one of raised, cleared")
    try:
        et = parse_time(event_time)
    except TimeFormatError as err:
        return Rejected(f"{where}.event_time: {err}")
    text = d.get("text", "")
    if type(text) is not str:
        text = str(text)
    return Alarm(source, alarm_id, resource_id, cause, severity, state, et, text)
