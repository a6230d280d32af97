"""Syslog lines → their parts: RFC 5424, RFC 3164 and the BSD variants network devices print.

A small parser of our own, fuzzed (tests/unit/test_syslog_parser.py): the maintained PyPI
parsers each read one RFC only (syslog-rfc5424-parser, whose last release is from 2020) and
none reads the Huawei VRP and ZTE ZXR10 headers (a year, milliseconds, an offset after the
time), so they would still need this code around them. It is total: any bytes give a
`SyslogLine` or a `Rejected` naming what was wrong, and it never raises.

Accepted headers, after an optional `<PRI>` (absent: user.notice, RFC 3164 §4.3.3):
- RFC 5424: `1 2026-12-07T10:00:00.123+08:00 HOST APP PROCID MSGID [SD…] MSG`
- RFC 3164: `Dec  7 10:00:00 HOST TAG[pid]: MSG`
- Huawei VRP: `Dec  7 2026 10:00:00[.123][+08:00] HOST %%01IFNET/4/LINK_STATE(l)[0]:MSG`
- ISO time (ZTE and others): `2026-12-07 10:00:00 HOST MSG`
A time without a year takes the year that puts it nearest the arrival; a time without an
offset is read in the source's zone (`zone`, the operator's by default).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from shared.model import Rejected

MAX_LINE = 16384          # bytes of one message; RFC 5424 asks receivers for 2048 at least

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
                                       "Oct", "Nov", "Dec"), 1)}
_PRI = re.compile(r"<(\d{1,3})>")
_BSD = re.compile(r"([A-Z][a-z]{2}) {1,2}(\d{1,2})(?: (\d{4}))? (\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?"
                  r"(Z|[+-]\d{2}:?\d{2}| UTC[+-]\d{2}:\d{2})? +")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})? +")
_HOST = re.compile(r"([^\s:\[\]]{1,255}) +")
_TAG = re.compile(r"([A-Za-z0-9_.\-/]{1,48})(?:\[([^\]\s]{1,32})\])?: ?")
_SD_ELEMENT = re.compile(r'\[[^\s\]="]{1,32}(?: [^\s\]="]{1,32}="(?:[^"\\]|\\.){0,4096}")*\]', re.S)


@dataclass(frozen=True, slots=True)
class SyslogLine:
    """One message's parts. `content` is what follows the host (tag included): what vendor
    mappings match, since Huawei and ZTE print their module and alarm name there."""

    facility: int
    severity: int                    # 0 emergency … 7 debug
    time: float | None               # epoch seconds; None: the line carried no time
    host: str | None
    app: str | None
    procid: str | None
    msgid: str | None
    structured: str                  # RFC 5424 STRUCTURED-DATA as sent ("" when none)
    content: str
    message: str                     # content without the tag
    rfc: str                         # "5424" or "3164"


def parse_syslog(data: bytes, *, arrival: float, zone: tzinfo) -> SyslogLine | Rejected:
    """Parse one syslog message. `arrival` (epoch seconds) fixes a missing year; `zone` reads
    a time that has no offset."""
    if len(data) > MAX_LINE:
        return Rejected(f"syslog: a message of {len(data):,} bytes, more than {MAX_LINE:,}")
    text = data.decode("utf-8", "replace").rstrip("\r\n\x00")
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        return Rejected("syslog: an empty message")
    if "\x00" in text:
        return Rejected("syslog: the message holds a NUL byte")
    facility, severity, pos = 1, 5, 0
    pri = _PRI.match(text)
    if pri:
        value = int(pri.group(1))
        if value > 191:
            return Rejected(f"syslog: PRI <{value}> is out of range (0-191)")
        facility, severity, pos = value >> 3, value & 7, pri.end()
    elif text.startswith("<"):
        return Rejected(f"syslog: a malformed PRI at the start: {text[:12]!r}")
    try:
        if text.startswith("1 ", pos):
            return _rfc5424(text, pos + 2, facility, severity, zone)
        return _rfc3164(text, pos, facility, severity, arrival, zone)
    except (ValueError, OverflowError, OSError) as err:       # an impossible date, say Feb 30
        return Rejected(f"syslog: an impossible time in the header ({err})")


def _rfc5424(text: str, pos: int, facility: int, severity: int, zone: tzinfo) -> SyslogLine | Rejected:
    fields: list[str | None] = []
    for name in ("TIMESTAMP", "HOSTNAME", "APP-NAME", "PROCID", "MSGID"):
        end = text.find(" ", pos)
        if end < 0:
            return Rejected(f"syslog: RFC 5424 header ends at {name} (expected VERSION TIMESTAMP "
                            "HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG)")
        word = text[pos:end]
        fields.append(None if word == "-" else word)
        pos = end + 1
    stamp, host, app, procid, msgid = fields
    when = None
    if stamp is not None:
        iso = _ISO.match(stamp + " ")
        if not iso:
            return Rejected(f"syslog: RFC 5424 TIMESTAMP {stamp[:40]!r} is not an RFC 3339 time")
        when = _iso_time(iso, zone)
    structured = ""
    if text.startswith("-", pos):
        pos += 1
    else:
        start = pos
        while text.startswith("[", pos):
            element = _SD_ELEMENT.match(text, pos)
            if not element:
                return Rejected(f"syslog: malformed STRUCTURED-DATA at character {pos + 1}")
            pos = element.end()
        if pos == start:
            return Rejected(f"syslog: expected STRUCTURED-DATA or '-' at character {pos + 1}")
        structured = text[start:pos]
    if pos < len(text) and text[pos] != " ":
        return Rejected(f"syslog: expected a space after STRUCTURED-DATA at character {pos + 1}")
    message = text[pos + 1:].removeprefix("\ufeff")
    return SyslogLine(facility, severity, when, host, app, procid, msgid, structured, message, message,
                      "5424")


def _rfc3164(text: str, pos: int, facility: int, severity: int, arrival: float,
             zone: tzinfo) -> SyslogLine | Rejected:
    when = None
    bsd = _BSD.match(text, pos)
    iso = None if bsd else _ISO.match(text, pos)
    if bsd:
        month = _MONTHS.get(bsd.group(1))
        if month is None:
            return Rejected(f"syslog: {bsd.group(1)!r} is not a month")
        when = _bsd_time(bsd, month, arrival, zone)
        pos = bsd.end()
    elif iso:
        when = _iso_time(iso, zone)
        pos = iso.end()
    host = None
    if when is not None:                         # RFC 3164: a HOSTNAME follows a TIMESTAMP
        named = _HOST.match(text, pos)
        if named and not named.group(1).startswith("%"):
            host, pos = named.group(1), named.end()
    content = text[pos:]
    if not content.strip():
        return Rejected("syslog: the message has a header but no text")
    app = procid = None
    message = content
    tag = _TAG.match(content)
    if tag:
        app, procid, message = tag.group(1), tag.group(2), content[tag.end():]
    return SyslogLine(facility, severity, when, host, app, procid, None, "", content, message, "3164")


def _offset(text: str | None, zone: tzinfo, naive: datetime) -> timedelta:
    if not text:
        return naive.replace(tzinfo=zone).utcoffset() or timedelta(0)
    text = text.strip().removeprefix("UTC")
    if text == "Z":
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError(f"offset {text} out of range")
    return sign * timedelta(hours=hours, minutes=minutes)


def _fraction(text: str | None) -> int:
    return int((text[1:] + "000000")[:6]) if text else 0


def _iso_time(m: re.Match, zone: tzinfo) -> float:
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    naive = datetime(year, month, day, hour, minute, min(second, 59), _fraction(m.group(7)))
    return (naive - _offset(m.group(8), zone, naive) - datetime(1970, 1, 1)).total_seconds()


def _bsd_time(m: re.Match, month: int, arrival: float, zone: tzinfo) -> float:
    day, hour, minute, second = int(m.group(2)), int(m.group(4)), int(m.group(5)), int(m.group(6))
    years = [int(m.group(3))] if m.group(3) else [datetime.fromtimestamp(arrival, timezone.utc).year + d
                                                   for d in (0, -1, 1)]
    best = None
    for year in years:                            # no year: the one nearest the arrival
        try:
            naive = datetime(year, month, day, hour, minute, min(second, 59), _fraction(m.group(7)))
        except ValueError:
            continue                              # Feb 29 in a year without one
        ts = (naive - _offset(m.group(8), zone, naive) - datetime(1970, 1, 1)).total_seconds()
        if best is None or abs(ts - arrival) < abs(best - arrival):
            best = ts
    if best is None:
        raise ValueError(f"{m.group(1)} {day} is not a day of the year")
    return best
