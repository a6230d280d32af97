"""The syslog parser (alarm_ingest/syslog.py): RFC 5424, RFC 3164 and the headers Huawei VRP and
ZTE ZXR10 print; refusals that name the problem; total on any bytes (fuzzed)."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alarm_ingest.syslog import MAX_LINE, SyslogLine, parse_syslog
from shared.model import Rejected

SHANGHAI = ZoneInfo("Asia/Shanghai")
ARRIVAL = datetime(2026, 12, 7, 10, 0, 5, tzinfo=SHANGHAI).timestamp()


def at(*args, tz=SHANGHAI) -> float:
    return datetime(*args, tzinfo=tz).timestamp()


def parse(data: bytes, arrival: float = ARRIVAL) -> SyslogLine:
    line = parse_syslog(data, arrival=arrival, zone=SHANGHAI)
    assert isinstance(line, SyslogLine), line
    return line


def test_rfc5424_with_structured_data_and_offset():
    line = parse(
        b"<13>1 2026-12-07T10:00:00.123456+00:00 vm root 42 ID47 "
        b'[timeQuality tzKnown="1" isSynced="0"][x@1 a="b\\"]"] link down'
    )
    assert (line.rfc, line.facility, line.severity, line.host, line.app, line.procid, line.msgid) == (
        "5424",
        1,
        5,
        "vm",
        "root",
        "42",
        "ID47",
    )
    assert line.time == at(2026, 12, 7, 10, 0, 0, 123456, tz=timezone.utc)
    assert line.structured == '[timeQuality tzKnown="1" isSynced="0"][x@1 a="b\\"]"]'
    assert line.message == line.content == "link down"


def test_rfc5424_nil_fields_and_bom():
    line = parse("<187>1 - - - - - - \ufeffport down".encode())
    assert (line.time, line.host, line.app, line.structured, line.message) == (
        None,
        None,
        None,
        "",
        "port down",
    )
    assert (line.facility, line.severity) == (23, 3)


def test_rfc3164_takes_the_year_nearest_the_arrival_and_the_source_zone():
    line = parse(b"<13>Dec  7 10:00:00 vm root: link down")
    assert (line.rfc, line.host, line.app, line.message) == ("3164", "vm", "root", "link down")
    assert line.time == at(2026, 12, 7, 10, 0, 0)
    new_year = at(2027, 1, 1, 0, 0, 30)  # a December line read just after New Year
    assert parse(b"<13>Dec 31 23:59:50 vm x: y", new_year).time == at(2026, 12, 31, 23, 59, 50)


def test_huawei_vrp_header_with_year_milliseconds_and_offset():
    line = parse(
        b"<187>Dec  7 2026 10:00:00.250+08:00 GZ-PE-01 %%01IFNET/4/LINK_STATE(l)[12]:The line "
        b"protocol IP on the interface GigabitEthernet0/0/1 has entered the DOWN state."
    )
    assert line.host == "GZ-PE-01" and line.time == at(2026, 12, 7, 10, 0, 0, 250000)
    assert line.content.startswith("%%01IFNET/4/LINK_STATE(l)[12]:The line protocol")
    utc8 = parse(b"<187>Dec  7 2026 02:00:00 UTC+08:00 GZ-PE-01 %%01X/4/Y:z")
    assert utc8.time == at(2026, 12, 7, 2, 0, 0)


def test_iso_header_without_version_is_read_in_the_source_zone():
    line = parse(
        b"<189>2026-12-07 10:00:00 GZ-CE-02 %LINEPROTOCOL-5-UPDOWN: Line protocol on Interface "
        b"gei-0/2/0/1, changed state to down"
    )
    assert line.host == "GZ-CE-02" and line.time == at(2026, 12, 7, 10, 0, 0)
    assert line.app is None and line.content.startswith("%LINEPROTOCOL-5-UPDOWN")


def test_a_line_without_pri_or_header_is_user_notice_with_no_time():
    line = parse(b"GE0/0/1 down")
    assert (line.facility, line.severity, line.time, line.host, line.content) == (
        1,
        5,
        None,
        None,
        "GE0/0/1 down",
    )


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"  \r\n", "empty"),
        (b"<999>x", "PRI <999> is out of range"),
        (b"<1x>x", "malformed PRI"),
        (b"<13>1 2026-12-07T10:00:00Z", "header ends at TIMESTAMP"),
        (b"<13>1 yesterday h a p m - x", "not an RFC 3339 time"),
        (b"<13>1 2026-12-07T10:00:00Z h a p m [bad x", "malformed STRUCTURED-DATA"),
        (b"<13>1 2026-12-07T10:00:00Z h a p m nope", "expected STRUCTURED-DATA"),
        (b"<13>Feb 30 2026 10:00:00 h x: y", "impossible time"),
        (b"<13>2026-13-01 10:00:00 h x", "impossible time"),
        (b"<13>Dec  7 10:00:00 ", "no text"),
        (b"a\x00b", "NUL"),
        (b"x" * (MAX_LINE + 1), "more than 16,384"),
    ],
)
def test_refusals_name_the_problem(data, words):
    got = parse_syslog(data, arrival=ARRIVAL, zone=SHANGHAI)
    assert isinstance(got, Rejected) and words in got.reason and got.reason.startswith("syslog: ")


SAMPLES = [
    b"<187>Dec  7 2026 10:00:00.250+08:00 GZ-PE-01 %%01IFNET/4/LINK_STATE(l)[12]:x",
    b'<13>1 2026-12-07T10:00:00.123456+00:00 vm root 42 ID47 [a b="c"] m',
    b"<13>Dec  7 10:00:00 vm root: link down",
    b"<189>2026-12-07 10:00:00 GZ %X-5-Y: z",
]


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.tuples(st.sampled_from(SAMPLES), st.integers(0, 120), st.binary(max_size=8)).map(
            lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
        ),
    ),
    st.floats(-1e12, 1e12),
)
def test_the_parser_is_total(data, arrival):
    got = parse_syslog(data, arrival=arrival, zone=SHANGHAI)
    assert isinstance(got, SyslogLine | Rejected)
    if isinstance(got, SyslogLine):
        assert 0 <= got.severity <= 7 and 0 <= got.facility <= 23 and got.content


def test_a_long_line_of_spaces_and_brackets_is_quick():
    import time

    data = b"<13>1 - - - - - " + b"[a" + b' b="' * 2000 + b"x"
    started = time.perf_counter()
    parse_syslog(data[:MAX_LINE], arrival=ARRIVAL, zone=SHANGHAI)
    parse_syslog(b"<13>Dec  7 10:00:00 " + b" " * 16000, arrival=ARRIVAL, zone=SHANGHAI)
    assert time.perf_counter() - started < 1.0
