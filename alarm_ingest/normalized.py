"""The normalized alarm (CONTRACT §2): validation from a decoded JSON object.

Hand-written checks rather than a pydantic model: this runs once per alarm in a storm.
A well-formed alarm passes one boolean expression; only a refused one pays for working
out which field was wrong, and every refusal names the field and the problem.
"""

from __future__ import annotations

from shared.clock import TimeFormatError, parse_time, parse_time_cached
from shared.model import ALARM_STATES, MAX_CAUSE, MAX_NAME, SEVERITIES, Alarm, Rejected
from shared.wire import show

_FIELDS = ("source", "alarm_id", "resource_id", "probable_cause", "severity", "state", "event_time")
_STRINGS = ("source", "alarm_id", "resource_id", "probable_cause")
# What the read model's columns hold (shared/db/models.py): a longer value, or a NUL, which
# PostgreSQL text cannot hold, is refused here, not by the database a whole batch later.
_LENGTHS = {"source": MAX_NAME, "alarm_id": MAX_NAME, "resource_id": MAX_NAME, "probable_cause": MAX_CAUSE}


def alarm_from_dict(d: object, where: str = "alarm") -> Alarm | Rejected:
    if type(d) is dict:
        try:
            source = d["source"]
            alarm_id = d["alarm_id"]
            resource_id = d["resource_id"]
            cause = d["probable_cause"]
            severity = d["severity"]
            state = d["state"]
            et = parse_time_cached(d["event_time"])
        except KeyError:
            return _diagnose(d, where)
        text = d.get("text")
        if text is None:                     # absent or null: no text
            text = ""
        # type() before `in`: a list or object is unhashable, and frozenset membership raises.
        if (et is not None and type(source) is str and type(alarm_id) is str
                and type(resource_id) is str and type(cause) is str
                and 0 < len(source) <= MAX_NAME and 0 < len(alarm_id) <= MAX_NAME
                and 0 < len(resource_id) <= MAX_NAME and 0 < len(cause) <= MAX_CAUSE
                and type(severity) is str and severity in SEVERITIES
                and type(state) is str and state in ALARM_STATES and type(text) is str
                and "\x00" not in source and "\x00" not in alarm_id and "\x00" not in resource_id
                and "\x00" not in cause and "\x00" not in text):
            return Alarm(source, alarm_id, resource_id, cause, severity, state, et, text)
    return _diagnose(d, where)


def _diagnose(d: object, where: str) -> Rejected:
    """Why an alarm object was refused, naming the first bad field."""
    if type(d) is not dict:
        return Rejected(f"{where}: expected an object, got {show(d)}")
    for name in _FIELDS:
        if name not in d:
            return Rejected(f"{where}: missing field {name}")
    for name in _STRINGS:
        value = d[name]
        if type(value) is not str:
            return Rejected(f"{where}.{name}: expected a string, got {show(value)}")
        if not value:
            return Rejected(f"{where}.{name}: must not be empty")
        if len(value) > _LENGTHS[name]:
            return Rejected(f"{where}.{name}: longer than {_LENGTHS[name]} characters ({len(value):,})")
    for name, allowed in (("severity", sorted(SEVERITIES)), ("state", ("raised", "cleared"))):
        value = d[name]
        if type(value) is not str:
            return Rejected(f"{where}.{name}: expected a string, got {show(value)}")
        if value not in allowed:
            return Rejected(f"{where}.{name}: {show(value)} is not one of {', '.join(allowed)}")
    try:
        parse_time(d["event_time"])
    except TimeFormatError as err:
        return Rejected(f"{where}.event_time: {err}")
    text = d.get("text")
    if text is not None and type(text) is not str:
        return Rejected(f"{where}.text: expected a string, got {show(text)}")
    for name in (*_STRINGS, "text"):
        if "\x00" in (d.get(name) or ""):
            return Rejected(f"{where}.{name}: holds a NUL character (\\u0000), which cannot be stored")
    return Rejected(f"{where}: not a normalized alarm")
