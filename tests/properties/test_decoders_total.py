"""Every decoder is total (issue 7): any JSON value in any field decodes or is refused with a
reason naming the field, never an exception.

Decoders: the normalized alarm, `normalize` for each raw format (object and string payloads),
complaints, `select`, each operator action, the §3 envelope (`decode_input`), the notice off
faultline.faults (`notice_from_dict`, `decode_notice`) and `Replay.feed_line`.

Two kinds of test:
- systematic: every JSON type (and "missing") substituted in every field of a valid example,
  one test per field × type;
- hypothesis: arbitrary JSON values, bytes and strings, and arbitrary JSON in one field of a
  valid example.

The hypothesis tests run a modest number of examples so the file takes a few seconds; set
`FAULTLINE_FUZZ_EXAMPLES` (e.g. `FAULTLINE_FUZZ_EXAMPLES=20000`) for a long run.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonfields import MISSING, field_paths, with_field
from scenario import RULEBOOK

from alarm_ingest.normalized import alarm_from_dict
from alarm_ingest.raw import FORMATS, normalize
from services.commands.replay import Replay
from services.drivers.envelope import decode_input
from services.drivers.pipeline import Pipeline
from shared.clock import TIME_MAX, TIME_MIN, TimeFormatError, fmt_time, parse_time
from shared.facts import (
    NOTICE_KINDS,
    OPENED,
    FaultFacts,
    Notice,
    decode_notice,
    encode_notice,
    facts_from_dict,
    notice_from_dict,
    notice_to_dict,
)
from shared.inventory import load_inventory
from shared.model import Action, Alarm, Complaint, Rejected, Select
from shared.wire import ACTION_KINDS, INPUT_KINDS, action_from_dict, complaint_from_dict, select_from_dict

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = load_inventory(ROOT / "samples" / "inventory.json")
EXAMPLES = int(os.environ.get("FAULTLINE_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

AT = "2026-11-25T10:00:05+08:00"
ALARM = {"source": "gd-otn-nms-1", "alarm_id": "884213", "resource_id": "GZ-OTN-A:1-3-1",
         "probable_cause": "LOS", "severity": "critical", "state": "raised",
         "event_time": "2026-11-25T10:00:00+08:00", "text": "R_LOS"}
COMPLAINT = {"complaint_id": "CSP-1", "channel": "10086-8", "customer_id": "C-NH", "city": "GZ",
             "service_type": "internet", "scope": "all_users", "text": "全部无法上网"}
TMF = {"id": "884213", "alarmedObject": {"id": "GZ-OTN-A:1-3-1"}, "probableCause": "LOS",
       "perceivedSeverity": "critical", "state": "raised", "eventTime": "2026-11-25T10:00:00+08:00",
       "alarmClearedTime": "2026-11-25T10:05:00+08:00", "sourceSystemId": "gd-otn-nms-1",
       "reportingSystemId": "gd-otn-nms-1", "specificProblem": "R_LOS", "alarmDetails": "x"}
ACTION_FIELDS = {"confirm": {"impact": "full_block"}, "attribution": {"attribution": "ours"},
                 "ack": {"queue": "prov.monitoring"}, "resolve": {}, "escalate": {"reason": "ES-6"}}


def _facts() -> FaultFacts:
    circuit = INVENTORY.circuits["GZ-INT-0001"]
    return FaultFacts(
        seq=1, fault_id="F-000001", incident_id="I-000001", kind="outage", circuit=circuit,
        customer=INVENTORY.customers[circuit.customer_id], city="GZ", service_type="internet",
        important=True, cause_side="core", root_resource="GZ-OTN-A:1-3-1", layer="transmission",
        root_maintainer="province", probable_cause="LOS", opened_at=parse_time(ALARM["event_time"]),
        green=False, found_by_city=False, severity="general", serious_at=None, ended_at=None, listed=0)


NOTICE = notice_to_dict(Notice(OPENED, _facts(), "prov.monitoring"))


# ---------------------------------------------------------------- what each decoder accepts

def _decoded_ok(result: object, kinds: tuple[type, ...]) -> str | None:
    """None when `result` is a decoded value of the right type or a Rejected with a reason;
    otherwise what is wrong."""
    if isinstance(result, Rejected):
        return None if isinstance(result.reason, str) and result.reason.strip() else "empty reason"
    if isinstance(result, kinds):
        return None
    return f"returned {type(result).__name__}"


def _notice_ok(result: object) -> str | None:
    if isinstance(result, Rejected):
        return _decoded_ok(result, ())
    notice, key, now = result
    if not (isinstance(notice, Notice) and len(key) == 3 and all(type(x) is float for x in key)
            and type(now) is float and math.isfinite(now)):
        return f"returned {result!r}"
    return None


# Each sample: a valid example, the decoder (a callable of the example), the types it decodes
# to, the field paths that may be null or missing, and those the decoder does not read (any
# value decodes: `at` is the replay's, an action's `kind` the caller's, a TMF642 fallback
# field when the field before it is given).
TMF_OPTIONAL = {"probableCause", "perceivedSeverity", "state", "sourceSystemId", "specificProblem"}
TMF_IGNORED = {"alarmClearedTime", "reportingSystemId", "alarmDetails"}
SAMPLES: dict[str, tuple[object, object, tuple[type, ...], set[str], set[str]]] = {
    "alarm": (ALARM, alarm_from_dict, (Alarm,), {"text"}, set()),
    "complaint": (COMPLAINT, complaint_from_dict, (Complaint,), {"text"}, set()),
    "select-fault": ({"fault_id": "F-000001"}, select_from_dict, (Select,), set(), set()),
    "select-customer": ({"customer_id": "C-NH", "service_type": "internet", "city": "GZ"},
                        select_from_dict, (Select,), {"city", "customer_id"}, set()),
    "raw-normalized": ({"kind": "raw", "format": "normalized", "payload": ALARM},
                       decode_input, (Alarm,), {"payload.text"}, set()),
    "raw-tmf642": ({"kind": "raw", "format": "tmf642", "payload": TMF}, decode_input, (Alarm,),
                   {f"payload.{n}" for n in TMF_OPTIONAL}, {f"payload.{n}" for n in TMF_IGNORED}),
    "tmf642-payload": (TMF, lambda d: normalize("tmf642", d), (Alarm,), TMF_OPTIONAL, TMF_IGNORED),
    "envelope-alarm": ({"kind": "alarm", "at": AT, "alarm": ALARM}, decode_input, (Alarm,),
                       {"alarm.text"}, {"at"}),
    "envelope-complaint": ({"kind": "complaint", "at": AT, "complaint": COMPLAINT}, decode_input,
                           (Complaint,), {"complaint.text"}, {"at"}),
    **{f"action-{kind}": ({"kind": kind, "at": AT, "select": {"circuit_id": "GZ-INT-0001"}, **extra},
                          (lambda d, kind=kind: action_from_dict(kind, d)), (Action,), set(), {"at", "kind"})
       for kind, extra in ACTION_FIELDS.items()},
    **{f"envelope-{kind}": ({"kind": kind, "at": AT, "select": {"circuit_id": "GZ-INT-0001"}, **extra},
                            decode_input, (Action,), set(), {"at"})
       for kind, extra in ACTION_FIELDS.items()},
    "notice": (NOTICE, lambda d: notice_from_dict(d, INVENTORY), (Notice,),
               {"arg", "facts.circuit_id", "facts.customer_id", "facts.root_resource", "facts.layer",
                "facts.root_maintainer", "facts.probable_cause", "facts.serious_at", "facts.ended_at"},
               set()),
}


def _lookup(example: object, path: str) -> object:
    node = example
    for p in path.split("."):
        node = node[p]
    return node


def _deep(n: int) -> list:
    value: list = []
    for _ in range(n):
        value = [value]
    return value


# One value of every JSON type (and of the values a Python caller can pass that JSON cannot
# carry: NaN, ±inf, ints beyond 64 bits), plus "missing".
TYPES = {
    "missing": MISSING, "null": None, "true": True, "false": False, "zero": 0, "int": -7,
    "int-huge": 10**30, "int-enormous": 10**5000, "float": 1.5, "nan": math.nan, "inf": math.inf,
    "empty-string": "", "string": "zzz", "string-long": "x" * 20_000, "surrogate": "\ud800",
    "time-9999": "9999-01-01T00:00:00+08:00", "time-0001": "0001-01-01T00:00:00+08:00",
    "empty-list": [], "list": ["critical"], "empty-object": {}, "object": {"id": "x"},
    "deep-list": _deep(2000),
}

CASES = [(name, path, tname) for name, (example, *_rest) in SAMPLES.items()
         for path in field_paths(example) for tname in TYPES]


def _names_field(reason: str, path: str) -> bool:
    last = path.split(".")[-1]
    return re.search(rf"(?<![\w-]){re.escape(last)}(?![\w-])", reason) is not None


@pytest.mark.parametrize(("sample", "path", "tname"), CASES,
                         ids=[f"{s}:{p}:{t}" for s, p, t in CASES])
def test_issue_7_each_json_type_in_each_field_decodes_or_is_refused_naming_the_field(sample, path, tname):
    example, decoder, kinds, optional, ignored = SAMPLES[sample]
    new = TYPES[tname]
    result = decoder(with_field(example, path, new))
    assert _decoded_ok(result, kinds) is None, type(result)
    if isinstance(result, Rejected):
        assert len(result.reason) < 1000 and _names_field(result.reason, path), result.reason[:300]
        return
    # Decoded: only a value of the field's own JSON type, or null/missing for an optional
    # field, or anything in a field the decoder does not read.
    original = _lookup(example, path)
    nullish = new is MISSING or new is None
    assert (path in ignored or (nullish and path in optional)
            or (not nullish and type(new) is type(original))), f"{path}={tname} was accepted"


# ---------------------------------------------------------------- arbitrary JSON

def json_values(max_leaves: int = 12) -> st.SearchStrategy:
    scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**64, max_value=2**200)
               | st.integers(max_value=-(2**64), min_value=-(2**200))
               | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
               | st.sampled_from(list(SEVERITY_LIKE)))
    return st.recursive(scalars, lambda c: st.lists(c, max_size=4)
                        | st.dictionaries(st.text(max_size=10) | st.sampled_from(FIELD_NAMES), c, max_size=5),
                        max_leaves=max_leaves)


SEVERITY_LIKE = ("critical", "raised", "cleared", "alarm", "raw", "complaint", "confirm", "resolve",
                 "tmf642", "normalized", "2026-11-25T10:00:00+08:00", "GZ-INT-0001", "F-000001")
FIELD_NAMES = sorted({p.split(".")[-1] for ex, *_r in SAMPLES.values() for p in field_paths(ex)})

ALL_DECODERS = [
    ("alarm_from_dict", alarm_from_dict, (Alarm,)),
    ("complaint_from_dict", complaint_from_dict, (Complaint,)),
    ("select_from_dict", select_from_dict, (Select,)),
    ("decode_input", decode_input, (Alarm, Complaint, Action)),
    ("notice_from_dict", lambda v: notice_from_dict(v, INVENTORY), (Notice,)),
    ("facts_from_dict", lambda v: facts_from_dict(v, INVENTORY), (FaultFacts,)),
    *[(f"action_from_dict:{k}", (lambda v, k=k: action_from_dict(k, v)), (Action,)) for k in ACTION_KINDS],
    *[(f"normalize:{f}", (lambda v, f=f: normalize(f, v)), (Alarm,)) for f in FORMATS],
]


@FUZZ
@given(json_values())
def test_issue_7_every_decoder_takes_any_json_value(value):
    for name, decoder, kinds in ALL_DECODERS:
        assert _decoded_ok(decoder(value), kinds) is None, name


@FUZZ
@given(st.sampled_from(FORMATS + ("bogus",)) | json_values(4), st.text(max_size=200)
       | json_values().map(lambda v: json.dumps(v, allow_nan=True)))
def test_issue_7_normalize_takes_any_format_and_any_string_payload(fmt, payload):
    assert _decoded_ok(normalize(fmt, payload), (Alarm,)) is None
    assert _decoded_ok(action_from_dict(fmt, {"select": {"fault_id": "F-1"}}), (Action,)) is None


@FUZZ
@given(st.sampled_from(sorted(SAMPLES)), st.data())
def test_issue_7_arbitrary_json_in_one_field_of_a_valid_example_decodes_or_names_the_field(sample, data):
    example, decoder, kinds, _optional, _ignored = SAMPLES[sample]
    path = data.draw(st.sampled_from(field_paths(example)))
    new = data.draw(json_values())
    result = decoder(with_field(example, path, new))
    assert _decoded_ok(result, kinds) is None
    # Another valid kind or format asks for other fields: the refusal names one of those.
    switched = path.split(".")[-1] in ("kind", "format") and new in INPUT_KINDS + FORMATS + NOTICE_KINDS
    if isinstance(result, Rejected) and not switched:
        assert _names_field(result.reason, path), (path, result.reason)


# ---------------------------------------------------------------- the dispatcher's input

GOOD_NOTICE = encode_notice(Notice(OPENED, _facts()), (parse_time(AT), 1.0, 1.0), parse_time(AT))


def test_issue_7_decode_notice_round_trips_a_good_notice():
    notice, key, now = decode_notice(GOOD_NOTICE, INVENTORY)
    assert notice.facts == _facts() and key == (parse_time(AT), 1.0, 1.0) and now == parse_time(AT)
    notice, key, _ = decode_notice(encode_notice(Notice(OPENED, _facts()), (-math.inf,) * 3, 1.8e9),
                                   INVENTORY)
    assert key == (-math.inf,) * 3


@pytest.mark.parametrize(("field", "value", "named"), [
    ("now", "soon", "now"), ("now", 1e300, "now"), ("now", None, "now"), ("now", True, "now"),
    ("key", [1, 2], "key"), ("key", "inf", "key"), ("key", [1e300, 1, 1], "key[0]"),
    ("key", [1.8e9, "nan", 1], "key[1]"), ("key", [1.8e9, 1, [1]], "key[2]"),
    ("notice", [], "notice"), ("notice", {"kind": "opened"}, "facts"),
])
def test_issue_7_decode_notice_refuses_a_bad_envelope_naming_the_field(field, value, named):
    d = orjson.loads(GOOD_NOTICE)
    d[field] = value
    result = decode_notice(orjson.dumps(d), INVENTORY)
    assert isinstance(result, Rejected) and named in result.reason, result


@FUZZ
@given(st.binary(max_size=300) | json_values().map(lambda v: json.dumps(v, allow_nan=True).encode())
       | st.builds(lambda cut: GOOD_NOTICE[:cut], st.integers(min_value=0, max_value=len(GOOD_NOTICE))))
def test_issue_7_decode_notice_takes_any_bytes(raw):
    assert _notice_ok(decode_notice(raw, INVENTORY)) is None


# ---------------------------------------------------------------- Replay.feed_line

def _replay() -> tuple[Replay, io.BytesIO]:
    out = io.BytesIO()
    return Replay(Pipeline(INVENTORY, RULEBOOK), out), out


def _rejections(out: io.BytesIO) -> dict[int, str]:
    recs = [orjson.loads(x) for x in out.getvalue().splitlines()]
    got: dict[int, str] = {}
    for r in recs:
        if r["type"] == "input.rejected":
            assert r["line"] not in got, f"line {r['line']} rejected twice"
            got[r["line"]] = r["reason"]
    return got


def _line_bytes(example: dict, path: str, tname: str) -> bytes:
    """The line as bytes; values json cannot write (deep, enormous ints) go in as raw text."""
    value = TYPES[tname]
    if tname in ("deep-list", "int-enormous", "nan", "inf"):
        raw = {"deep-list": b"[" * 2000 + b"]" * 2000, "int-enormous": b"1" + b"0" * 5000,
               "nan": b"NaN", "inf": b"Infinity"}[tname]
        text = json.dumps(with_field(example, path, "\u0000SUBST"), ensure_ascii=False).encode()
        return text.replace(b'"\\u0000SUBST"', raw)
    return json.dumps(with_field(example, path, value), ensure_ascii=False).encode(
        "utf-8", "surrogatepass")


LINE_SAMPLES = [name for name in SAMPLES if name.startswith(("envelope-", "raw-"))]
LINE_CASES = [(name, path) for name in LINE_SAMPLES for path in field_paths(SAMPLES[name][0])]


@pytest.mark.parametrize(("sample", "path"), LINE_CASES, ids=[f"{s}:{p}" for s, p in LINE_CASES])
def test_issue_7_replay_line_with_each_json_type_in_each_field_is_used_or_rejected(sample, path):
    """One Replay per field, a line per type: each is used or yields one input.rejected, and
    a refused decoding is reported with the decoder's reason (which names the field)."""
    replay, out = _replay()
    example = {**SAMPLES[sample][0], "at": AT} if "at" not in SAMPLES[sample][0] else SAMPLES[sample][0]
    expected: dict[int, Rejected] = {}
    for lineno, tname in enumerate(TYPES, 1):
        raw = _line_bytes(example, path, tname)
        replay.feed_line(lineno, raw)
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            expected[lineno] = Rejected("not valid JSON")
            continue
        decoded = decode_input(obj)
        if isinstance(decoded, Rejected) and path not in ("at",):
            expected[lineno] = decoded
    replay.finish(None)
    got = _rejections(out)
    for lineno, want in expected.items():
        assert lineno in got, (lineno, want)
        if not want.reason.startswith("not valid JSON"):
            assert got[lineno] == want.reason
    if path == "at":            # a missing or unreadable `at` is refused naming it
        for lineno, tname in enumerate(TYPES, 1):
            if tname not in ("deep-list", "int-enormous", "nan", "inf"):
                assert lineno in got and "at" in got[lineno], (tname, got.get(lineno))


GOOD_LINE = orjson.dumps({"kind": "alarm", "at": AT, "alarm": ALARM})


@FUZZ
@given(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b" "))
       | json_values().map(lambda v: json.dumps(v, allow_nan=True).encode())
       | st.builds(lambda cut: GOOD_LINE[:cut], st.integers(min_value=1, max_value=len(GOOD_LINE) - 1)))
def test_issue_7_feed_line_takes_any_bytes_and_any_json_line(raw):
    replay, out = _replay()
    replay.feed_line(1, GOOD_LINE)
    replay.feed_line(2, raw)
    replay.finish(None)
    got = _rejections(out)
    assert 1 not in got
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        obj = None
    if type(obj) is not dict or isinstance(decode_input(obj), Rejected) or not _readable_from(obj, AT):
        assert 2 in got and got[2].strip()


def _readable_from(obj: dict, clock: str) -> bool:
    """Is the line's `at` a time in the window and not before `clock`?"""
    try:
        return parse_time(obj.get("at")) >= parse_time(clock)
    except TimeFormatError:
        return False


@FUZZ
@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-(2**62), max_value=2**62))
def test_issue_7_fmt_time_is_total(ts):
    text = fmt_time(ts)
    assert isinstance(text, str) and text
    if TIME_MIN <= ts < TIME_MAX:            # in the window: the ISO-8601 text reads back
        assert abs(parse_time(text) - ts) < 1e-6


# ---------------------------------------------------------------- what a database can hold

GOOD_ALARM = {"source": "gd-otn-nms-1", "alarm_id": "884213", "resource_id": "GZ-OTN-A:1-3-1",
              "probable_cause": "LOS", "severity": "critical", "state": "raised",
              "event_time": "2026-11-25T10:00:00+08:00", "text": "R_LOS"}


@pytest.mark.parametrize(("field", "longest"), [("source", 255), ("alarm_id", 255), ("resource_id", 255),
                                                ("probable_cause", 64)])
def test_issue_7_an_alarm_field_longer_than_its_column_is_refused_naming_it(field, longest):
    assert type(alarm_from_dict({**GOOD_ALARM, field: "x" * longest})) is Alarm
    refused = alarm_from_dict({**GOOD_ALARM, field: "x" * (longest + 1)})
    assert refused == Rejected(f"alarm.{field}: longer than {longest} characters ({longest + 1:,})")


@pytest.mark.parametrize("field", ["source", "alarm_id", "resource_id", "probable_cause", "text"])
def test_issue_7_a_nul_in_any_alarm_string_is_refused_naming_the_field(field):
    refused = alarm_from_dict({**GOOD_ALARM, field: "a\x00b"})
    assert type(refused) is Rejected and refused.reason.startswith(f"alarm.{field}: holds a NUL")


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("city", "G" * 33, "complaint.city: longer than 32 characters (33)"),
    ("complaint_id", "C" * 65, "complaint.complaint_id: longer than 64 characters (65)"),
    ("text", "全部\x00无法上网", "complaint.text: holds a NUL character (\\u0000), which cannot be stored"),
])
def test_issue_7_a_complaint_field_the_database_cannot_hold_is_refused(field, value, reason):
    good = {"complaint_id": "CSP-1", "channel": "400", "customer_id": "C-NH", "city": "GZ",
            "service_type": "internet", "scope": "all_users", "text": "全部无法上网"}
    assert complaint_from_dict({**good, field: value}) == Rejected(reason)


def test_issue_7_a_tmf642_field_too_long_is_refused_naming_the_tmf642_field():
    doc = {"id": "x" * 256, "alarmedObject": {"id": "GZ-OTN-A:1-3-1"}, "perceivedSeverity": "critical",
           "eventTime": "2026-11-25T10:00:00+08:00"}
    assert normalize("tmf642", doc) == Rejected("raw.payload.id: longer than 255 characters (256)")
