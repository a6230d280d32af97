"""Syslog lines, SNMP traps and NMS export rows → normalized alarms, by the vendor mappings.

Pure and total: (bytes or row, sender, arrival, mappings) → `Alarm` or `Rejected` naming
the mapping, the rule and what was missing. The arrival (the raw message's time) stands in
for a time the message does not carry; nothing here reads a clock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping as Fields
from datetime import datetime

from alarm_ingest.mapping import CAUSE_WORD, Mapping, Mappings, Rule
from alarm_ingest.normalized import alarm_from_dict
from alarm_ingest.snmp import decode_trap
from alarm_ingest.syslog import _ISO, _iso_time, parse_syslog
from shared.clock import fmt_time
from shared.model import MAX_NAME, SEVERITIES, Alarm, Rejected

MAX_TEXT = 4096
# syslog severity (RFC 5424 §6.2.1) → X.733, for a rule that takes the line's own
_SYSLOG_SEVERITY = ("critical", "critical", "critical", "major", "warning",
                    "indeterminate", "indeterminate", "indeterminate")
_SYSLOG_WORD = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")


class _Missing(Exception):
    """A template named a field the message does not give."""


class _Values(dict):
    def __missing__(self, key: str) -> str:
        for name in key.split("|"):               # {ifName|ifDescr}: the first one given
            value = self.get(name)
            if value:
                return value
        raise _Missing(key.replace("|", " or "))


def _render(template: str, fields: Fields[str, str]) -> str:
    return template.format_map(_Values(fields)) if "{" in template else template


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=6).hexdigest()


def _alarm(m: Mapping, rule: Rule | None, fields: dict[str, str], *, cause: str, severity: str,
           state: str, when: float, text: str, where: str) -> Alarm | Rejected:
    """Resource, alarm id and source from the mapping's templates; then the one validation
    every ingest path shares (alarm_from_dict)."""
    label = f"{where}: mapping {m.name}" + (f" rule {rule.id}" if rule else "")
    try:
        fields["cause"] = cause
        if rule is not None:
            fields["resource"] = _render(rule.resource or m.resource, fields)
        resource = fields["resource"]
        alarm_id = _render(m.alarm_id, fields) if rule else \
            f"{fields.get('host') or fields.get('sender') or '-'}:{_digest(text)}"
        source = _render(m.source, fields)
    except _Missing as err:
        return Rejected(f"{label}: the message gives no {err.args[0]} for the templates")
    for name, value in (("resource_id", resource), ("alarm_id", alarm_id), ("source", source)):
        if not value:
            return Rejected(f"{label}: the {name} template gives an empty value")
        if len(value) > MAX_NAME:
            value = value[:MAX_NAME]
        fields[name] = value
    body = {"source": fields["source"], "alarm_id": fields["alarm_id"], "resource_id": fields["resource_id"],
            "probable_cause": cause, "severity": severity, "state": state,
            "event_time": fmt_time(when), "text": text[:MAX_TEXT].replace("\x00", "")}
    return alarm_from_dict(body, label)


def _decide(m: Mapping, rule: Rule, fields: dict[str, str], own_severity: str,
            where: str) -> tuple[str, str, str] | Rejected:
    """(cause, severity, state) of a matched rule: templates rendered, then looked up in the
    mapping's tables; a vendor cause the table does not know is OTHER (the text keeps it)."""
    label = f"{where}: mapping {m.name} rule {rule.id}"
    try:
        cause = _render(rule.cause, fields)
        severity = _render(rule.severity, {**fields, "severity": own_severity})
        state = _render(rule.state, fields)
    except _Missing as err:
        return Rejected(f"{label}: the message gives no {err.args[0]}")
    if "{" in rule.cause:                     # the vendor's word: the table's, else OTHER
        cause = m.causes.get(cause, "OTHER")
    if not CAUSE_WORD.fullmatch(cause):
        cause = "OTHER"
    severity = m.severities.get(severity, severity)
    state = m.states.get(state, state)
    if severity == "cleared":
        state = "cleared"
    if state == "cleared":                   # as TMF642 clears read (alarm_ingest/raw.py)
        severity = "indeterminate"
    if severity not in SEVERITIES:
        return Rejected(f"{label}: severity {severity[:40]!r} is not one of {', '.join(sorted(SEVERITIES))}"
                        " (add it to the mapping's severities table)")
    if state not in ("raised", "cleared"):
        return Rejected(f"{label}: state {state[:40]!r} is not raised or cleared (add it to the mapping's "
                        "states table)")
    return cause, severity, state


# ---------------------------------------------------------------------------------------
# syslog

def from_syslog(data: bytes, sender: str | None, arrival: float, mappings: Mappings,
                where: str = "syslog") -> Alarm | Rejected:
    """One syslog message: parsed, claimed by the first syslog mapping whose `claims` (and
    `hosts`) match, then the first of its rules whose `match` is found in the content."""
    candidates = mappings.of("syslog")
    if not candidates:
        return Rejected(f"{where}: no syslog mapping is loaded")
    # Parsed once; which mapping claims it reads the content and host, not the time, so only
    # a mapping in another time zone parses it again (for a time printed without an offset).
    line = parse_syslog(data, arrival=arrival, zone=candidates[0].zone)
    if isinstance(line, Rejected):
        return Rejected(f"{where}: {line.reason.removeprefix('syslog: ')}")
    host = line.host or sender or ""
    m = next((m for m in candidates if (m.claims is None or m.claims.search(line.content))
              and (m.hosts is None or m.hosts.search(host))), None)
    if m is None:
        return Rejected(f"{where}: no syslog mapping claims this line (host {host}); "
                        f"mappings tried: {', '.join(c.name for c in candidates)}")
    if m.zone != candidates[0].zone:
        line = parse_syslog(data, arrival=arrival, zone=m.zone)
        if isinstance(line, Rejected):           # cannot be: the same bytes parsed above
            return Rejected(f"{where}: {line.reason.removeprefix('syslog: ')}")
    when = arrival if line.time is None else line.time
    own = _SYSLOG_SEVERITY[line.severity]
    fields = {"host": line.host or sender or "", "sender": sender or "", "app": line.app or "",
              "msgid": line.msgid or "", "severity": own}
    for rule in m.rules:
        found = rule.match.search(line.content) if rule.match else None
        if found:
            fields.update({k: v for k, v in found.groupdict().items() if v is not None})
            decided = _decide(m, rule, fields, own, where)
            if isinstance(decided, Rejected):
                return decided
            cause, severity, state = decided
            return _alarm(m, rule, fields, cause=cause, severity=severity, state=state, when=when,
                          text=line.content, where=where)
    if line.severity > 4:
        return Rejected(f"{where}: mapping {m.name}: no rule matches and the line's severity is "
                        f"{_SYSLOG_WORD[line.severity]} (below warning): a log line, not an alarm")
    return _other(m, fields, own, when, line.content, where)


def _other(m: Mapping, fields: dict[str, str], severity: str, when: float, text: str,
           where: str) -> Alarm | Rejected:
    """A claimed message no rule knows: an OTHER alarm on the device, keeping the vendor text
    (its id is a digest of the text, so a repeat of the line is the same alarm, AL-1)."""
    try:
        resource = _render(m.resource, {**fields, "cause": "OTHER"})
    except _Missing:
        resource = fields.get("host") or fields.get("sender") or ""
    fields["resource"] = resource
    return _alarm(m, None, fields, cause="OTHER", severity=severity, state="raised", when=when,
                  text=text, where=where)


# ---------------------------------------------------------------------------------------
# SNMP traps

def from_trap(data: bytes, sender: str | None, arrival: float, mappings: Mappings,
              where: str = "snmp") -> Alarm | Rejected:
    """One trap: decoded (pysnmp), matched by its trap OID to the first mapping rule naming it;
    varbinds named by the mapping's `varbinds` (an OID prefix: the rest is `{name}_index`)."""
    trap = decode_trap(data, mappings.snmp_v3)
    if isinstance(trap, Rejected):
        return Rejected(f"{where}: {trap.reason.removeprefix('snmp: ')}")
    host = trap.agent or sender or ""             # the sender is an address (IPv6 too), no port
    for m in mappings.of("snmp"):
        rule = next((r for r in m.rules if r.trap == trap.trap_oid), None)
        if rule is None:
            continue
        if m.hosts is not None and not m.hosts.search(host):
            continue
        fields = {"host": host, "sender": sender or "", "community": trap.community,
                  "trap": trap.trap_oid, "severity": "indeterminate"}
        for oid, value in trap.varbinds:
            for name, prefix in m.varbinds:
                if oid == prefix or oid.startswith(prefix + "."):
                    fields.setdefault(name, value)
                    fields.setdefault(f"{name}_index", oid[len(prefix) + 1:])
                    break
        decided = _decide(m, rule, fields, "indeterminate", where)
        if isinstance(decided, Rejected):
            return decided
        cause, severity, state = decided
        text = f"trap {trap.trap_oid} from {host}: " + ", ".join(f"{o}={v}" for o, v in trap.varbinds)
        return _alarm(m, rule, fields, cause=cause, severity=severity, state=state, when=arrival,
                      text=text, where=where)
    return Rejected(f"{where}: no snmp mapping knows the trap {trap.trap_oid} (from {host})")


# ---------------------------------------------------------------------------------------
# NMS export rows (faultline import)

def from_export(doc: object, mappings: Mappings, where: str = "export") -> Alarm | Rejected:
    """One row of an NMS export: `{"mapping": name, "row": {column: value}}`. The row's alarm
    name is looked up among the rules (`name`), else in `causes`, else OTHER; the state is
    cleared when the clear-time column holds a time."""
    if type(doc) is not dict:
        return Rejected(f"{where}: expected {{mapping, row}}, got {type(doc).__name__}")
    name, row = doc.get("mapping"), doc.get("row")
    if type(name) is not str or type(row) is not dict:
        return Rejected(f"{where}: expected {{mapping: name, row: {{column: value}}}}")
    m = mappings.named(name)
    if m is None or m.format != "export":
        return Rejected(f"{where}.mapping: no export mapping named {name[:64]!r}")
    given = doc.get("source")
    fields: dict[str, str] = {"import_source": given if type(given) is str and given else "import"}
    for column, value in row.items():
        if type(column) is str and column.isidentifier() and type(value) in (str, int, float):
            fields[column] = str(value)
    for field, column in m.columns.items():
        value = row.get(column)
        if value is None or value == "":
            continue
        if type(value) not in (str, int, float):
            return Rejected(f"{where}.row[{column!r}]: expected text, got {type(value).__name__}")
        fields[field] = str(value).strip()
    for needed in ("alarm_id", "name", "time"):
        if not fields.get(needed):
            return Rejected(f"{where}.row: missing the {m.columns[needed]!r} column ({needed})")
    cleared = fields.get("cleared_time")
    when = _row_time(cleared or fields["time"], m)
    if isinstance(when, Rejected):
        column = m.columns["cleared_time" if cleared else "time"]
        return Rejected(f"{where}.row[{column!r}]: {when.reason}")
    rule = next((r for r in m.rules if r.name == fields["name"]), None)
    fields.setdefault("severity", "indeterminate")
    if rule is None:
        rule = Rule("causes", None, None, fields["name"], "{name}", "{severity}", "raised", None)
    decided = _decide(m, rule, fields, fields["severity"], where)
    if isinstance(decided, Rejected):
        return decided
    cause, severity, state = decided
    if cleared:
        state = "cleared"
    text = " ".join(f"{k}={v}" for k, v in row.items() if type(v) in (str, int, float))[:MAX_TEXT]
    return _alarm(m, rule, fields, cause=cause, severity=severity, state=state, when=when, text=text,
                  where=where)


_LOCAL = re.compile(r"\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})[T ](\d{1,2}):(\d{2})(?::(\d{2}))?\s*")


def _row_time(text: str, m: Mapping) -> float | Rejected:
    """An export's time: ISO 8601 with an offset, or `YYYY-MM-DD hh:mm[:ss]` (also with `/`)
    in the mapping's zone, as NMS exports print them."""
    iso = _ISO.match(text.strip() + " ")
    if iso and iso.group(8):
        try:
            return _iso_time(iso, m.zone)
        except (ValueError, OverflowError):
            return Rejected(f"{text[:40]!r} is not a time")
    local = _LOCAL.fullmatch(text)
    if not local:
        return Rejected(f"{text[:40]!r} is not a time (ISO 8601, or YYYY-MM-DD hh:mm:ss in {m.zone.key})")
    try:
        y, mo, d, h, mi = (int(local.group(i)) for i in range(1, 6))
        naive = datetime(y, mo, d, h, mi, int(local.group(6) or 0))
        return naive.replace(tzinfo=m.zone).timestamp()
    except (ValueError, OverflowError):
        return Rejected(f"{text[:40]!r} is not a time")
