"""Replay files of garbage (issue 7 §7): random bytes, truncated lines, JSON nested past any
limit, huge numbers, NaN, duplicate keys, times out of the window and valid lines with fields
of the wrong type, mixed into the sample walk-through and fed through `Replay` in process
(samples/inventory.json, the built-in rulebook).

Every line is used or yields exactly one `input.rejected`; every line that cannot be read or
decoded is among the rejected; the run ends; the status is 0, or 3 when anything was
rejected. A modest number of examples keeps this to seconds; set `FAULTLINE_FUZZ_EXAMPLES`
(e.g. `FAULTLINE_FUZZ_EXAMPLES=5000`) for a long run.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonfields import field_paths, with_field
from scenario import RULEBOOK

from services.commands.replay import EXIT_OK, EXIT_REJECTED, Replay
from services.drivers.envelope import decode_input
from services.drivers.pipeline import Pipeline
from shared.clock import TimeFormatError, parse_time
from shared.inventory import load_inventory
from shared.model import Rejected

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = load_inventory(ROOT / "samples" / "inventory.json")
SAMPLE = [x for x in (ROOT / "samples" / "replay_events.jsonl").read_bytes().splitlines() if x.strip()]
EXAMPLES = int(os.environ.get("FAULTLINE_FUZZ_EXAMPLES", "40"))


# Raw JSON texts no JSON writer makes, spliced in where a value belongs.
RAW_VALUES = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-0", b"1" + b"0" * 400,
              b"[" * 3000 + b"]" * 3000, b'{"a":' * 600 + b"1" + b"}" * 600,
              b'"\\ud800"', b'"' + b"x" * 200_000 + b'"', b"\"2026-11-25T10:00:00\"",
              b'"0001-01-01T00:00:00+08:00"', b'"9999-12-31T23:59:59+08:00"',
              b'"10000-01-01T00:00:00+08:00"', b"18446744073709551616", b"-9223372036854775809"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8)


def _dumps(value: object) -> bytes:
    # json, not orjson: the drawn values include integers beyond 64 bits
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def garbage_line(draw) -> bytes:
    base = draw(st.sampled_from(SAMPLE))
    how = draw(st.sampled_from(["valid", "bytes", "truncated", "raw-in-field", "json-in-field",
                                "duplicate-key", "raw-line", "not-an-object"]))
    if how == "valid":
        return base
    if how == "bytes":
        return draw(st.binary(max_size=200)).replace(b"\n", b" ")
    if how == "truncated":
        return base[:draw(st.integers(min_value=0, max_value=len(base) - 1))]
    if how == "raw-line":
        return draw(st.sampled_from(RAW_VALUES))
    if how == "not-an-object":
        return _dumps(draw(json_values.filter(lambda v: type(v) is not dict)))
    doc = orjson.loads(base)
    path = draw(st.sampled_from(field_paths(doc)))
    if how == "json-in-field":
        return _dumps(with_field(doc, path, draw(json_values)))
    if how == "raw-in-field":
        marker = "\u0000SPLICE"
        text = _dumps(with_field(doc, path, marker))
        return text.replace(_dumps(marker), draw(st.sampled_from(RAW_VALUES)))
    # duplicate-key: the same key again, with a garbage value, before or after the real one
    key = path.split(".")[0]
    extra = b'"' + key.encode() + b'": ' + _dumps(draw(json_values))
    if draw(st.booleans()):
        return b"{" + extra + b", " + base[1:]
    return base[:-1] + b", " + extra + b"}"


def _must_reject(raw: bytes, clock: float | None) -> tuple[bool, float | None]:
    """Whether the line cannot be used whatever the engine thinks, and the clock after it
    (the last readable `at` not earlier than the clock: RULES.md T-5)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return True, clock
    if type(obj) is not dict:
        return True, clock
    try:
        at = parse_time(obj.get("at"))
    except TimeFormatError:
        return True, clock
    if clock is not None and at < clock:
        return True, clock
    return isinstance(decode_input(obj), Rejected), at


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(st.lists(garbage_line(), min_size=1, max_size=25))
def test_issue_7_garbage_replay_files_end_with_every_line_used_or_rejected(lines):
    data = b"\n".join(lines) + b"\n"
    out = io.BytesIO()
    replay = Replay(Pipeline(INVENTORY, RULEBOOK), out)
    started = time.monotonic()
    status = replay.run(io.BytesIO(data), None)
    assert time.monotonic() - started < 20
    records = [orjson.loads(x) for x in out.getvalue().splitlines()]
    rejected: dict[int, str] = {}
    for r in records:
        if r["type"] == "input.rejected":
            assert r["line"] not in rejected, f"line {r['line']} rejected twice"
            assert isinstance(r["reason"], str) and r["reason"].strip()
            rejected[r["line"]] = r["reason"]
    clock = None
    for lineno, raw in enumerate(io.BytesIO(data), 1):
        if not raw.strip():
            assert lineno not in rejected
            continue
        must, clock = _must_reject(raw, clock)
        if must:
            assert lineno in rejected, (lineno, raw[:200])
    assert status == (EXIT_REJECTED if rejected else EXIT_OK)
    # every record is well-formed output: a type and a readable clock
    for r in records:
        assert type(r["type"]) is str
        if r["at"] is not None:
            assert math.isfinite(parse_time(r["at"]))
