"""Issue 7 §3, time is bounded: times outside 2000-01-01T00:00:00+08:00 … 2100-01-01 (end
excluded) are refused with a reason, a refused line never moves the clock, `--until` out of
the window is a usage error, and replay into a closed pipe stops quietly."""

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from scenario import RULEBOOK, alarm, complaint, dumps, one_circuit, run, t

from services.commands import replay as replay_mod
from services.drivers.envelope import decode_input
from services.drivers.pipeline import Pipeline
from shared.clock import TIME_MAX, TIME_MIN, TimeFormatError, fmt_time, parse_time

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- the window

@pytest.mark.parametrize(("text", "ok"), [
    ("2000-01-01T00:00:00+08:00", True),
    ("1999-12-31T16:00:00Z", True),                 # the same instant in UTC
    ("1999-12-31T23:59:59+08:00", False),
    ("2099-12-31T23:59:59.999999+08:00", True),
    ("2100-01-01T00:00:00+08:00", False),
    ("0001-01-01T00:00:00+08:00", False),
    ("9999-12-31T23:59:59+08:00", False),
    ("1970-01-01T00:00:00Z", False),
])
def test_T_window_parse_time_takes_2000_up_to_but_not_2100(text, ok):
    if ok:
        assert TIME_MIN <= parse_time(text) < TIME_MAX
    else:
        with pytest.raises(TimeFormatError, match="outside 2000-01-01T00:00:00\\+08:00"):
            parse_time(text)


@pytest.mark.parametrize("ts", [
    -62135596800.0 - 86400, -62135596800.0, 253402300800.0, 253402300800.0 + 366 * 86400,
    1e300, -1e300, float("nan"), float("inf"), float("-inf"),
])
def test_T_window_fmt_time_never_raises_for_any_float(ts):
    text = fmt_time(ts)
    assert isinstance(text, str) and text


def test_T_window_fmt_time_prints_years_0001_and_10000():
    assert fmt_time(parse_time_unchecked("0001-01-01T00:00:00+08:00")) == "0001-01-01T00:00:00+08:00"
    year_10000 = parse_time_unchecked("9999-12-31T00:00:00+08:00") + 86400
    assert fmt_time(year_10000) == "+10000-01-01T00:00:00+08:00"
    assert fmt_time(year_10000 - 86400) == "9999-12-31T00:00:00+08:00"


def parse_time_unchecked(text: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(text).timestamp()


# ---------------------------------------------------------------- refused lines

@pytest.mark.parametrize("year", ["0001", "1970", "2100", "9999"])
def test_T_window_a_line_dated_outside_the_window_is_rejected_and_the_clock_stays(year):
    late = alarm(6, "GZ-L-1-OTN")
    bad = {**complaint(5, "C1", cid="X"), "at": f"{year}-01-01T00:00:00+08:00"}
    res = run(one_circuit(), [complaint(0, "C1", cid="A"), bad, late], until=t(7))
    rej = res.one("input.rejected")
    assert (rej["line"], rej["at"]) == (2, t(0))
    assert rej["reason"].startswith("at: ") and "outside 2000-01-01T00:00:00+08:00" in rej["reason"]
    assert res.status == 3
    # the clock never went to that year, and the next line is used at its own time
    assert {r["at"] for r in res.records} <= {t(0), t(6), t(7)}
    assert res.of("work_order.created", at=t(6))


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+08:00", "10000-01-01T00:00:00+08:00",
                                  "9999-12-31T23:59:59-14:00", "1999-12-31T23:59:59+08:00"])
def test_T_window_an_event_time_outside_the_window_is_rejected_naming_it(text):
    line = alarm(1, "GZ-L-1-OTN")
    line["alarm"]["event_time"] = text
    res = run(one_circuit(), [alarm(0, "GZ-L-1-CPE"), line], until=t(2))
    rej = res.one("input.rejected")
    assert rej["line"] == 2 and rej["reason"].startswith("alarm.event_time: ")
    assert res.status == 3


def test_T_window_a_line_dated_9999_after_a_complaint_is_refused_and_replay_ends_at_once():
    """Issue 7: this used to send replay walking 2-hourly timers towards 9999 (memory growing
    ~100 MB/s)."""
    events = [complaint(0, "C1"), {**complaint(1, "C1"), "at": "9999-01-01T00:00:00+08:00"},
              dumps({"kind": "resolve", "at": "9999-01-01T00:00:00+08:00", "select": {"x": 1}})]
    started = time.monotonic()
    res = run(one_circuit(), events)
    assert time.monotonic() - started < 5
    assert [(r["line"], r["at"]) for r in res.of("input.rejected")] == [(2, t(0)), (3, t(0))]
    assert all("9999" in r["reason"] and "outside" in r["reason"] for r in res.of("input.rejected"))
    assert res.status == 3


def test_T_window_a_long_until_inside_the_window_streams_its_records():
    """A year of 2-hourly stage SMS after one serious fault: the records come out in
    order, each slot once (the advance runs in bounded chunks, same records)."""
    res = run(one_circuit(), [alarm(0, "GZ-L-1-OTN")], until=t(30 + 365 * 24 * 60))
    updates = res.of("sms", stage="update")
    assert len(updates) == 365 * 12
    assert updates[0]["at"] == t(150) and updates[-1]["at"] == t(30 + 365 * 24 * 60)
    assert [r["at"] for r in res.records] == sorted(r["at"] for r in res.records)


# ---------------------------------------------------------------- the command line

def cli() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "faultline"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "services.cli"]


def env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("FAULTLINE_")}


def files(tmp_path: Path, events: list) -> tuple[str, str]:
    inv = tmp_path / "inv.json"
    inv.write_text(json.dumps(one_circuit().doc(), ensure_ascii=False), encoding="utf-8")
    ev = tmp_path / "events.jsonl"
    ev.write_text("\n".join(e if isinstance(e, str) else dumps(e) for e in events) + "\n", encoding="utf-8")
    return str(inv), str(ev)


@pytest.mark.parametrize("until", ["9999-12-31T00:00:00+08:00", "1999-12-31T00:00:00+08:00"])
def test_T_window_cli_until_outside_the_window_exits_2_naming_until(tmp_path, until):
    inv, ev = files(tmp_path, [alarm(0, "GZ-L-1-OTN")])
    proc = subprocess.run(cli() + ["replay", "--inventory", inv, "--events", ev, "--until", until],
                          cwd=ROOT, capture_output=True, env=env(), timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert b"--until" in proc.stderr and b"Traceback" not in proc.stderr


def test_T_window_cli_years_0001_and_10000_are_rejected_lines_not_a_traceback(tmp_path):
    first = alarm(0, "GZ-L-1-CPE")
    year1 = {**complaint(1, "C1"), "at": "0001-01-01T00:00:00+08:00"}
    year10000 = alarm(2, "GZ-L-1-OTN")
    year10000["alarm"]["event_time"] = "10000-01-01T00:00:00+08:00"
    inv, ev = files(tmp_path, [first, year1, year10000])
    proc = subprocess.run(cli() + ["replay", "--inventory", inv, "--events", ev],
                          cwd=ROOT, capture_output=True, env=env(), timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert b"Traceback" not in proc.stderr
    rejected = [json.loads(x) for x in proc.stdout.splitlines() if b'"input.rejected"' in x]
    assert [(r["line"], r["reason"].split(":")[0]) for r in rejected] == [(2, "at"), (3, "alarm.event_time")]


def test_CONTRACT_3_cli_replay_into_a_closed_pipe_exits_quietly(tmp_path):
    """`faultline replay … | head -c 10`: the reader goes away; no traceback, status 141
    (128 + SIGPIPE, as the shell reports a writer killed by the signal)."""
    inv, ev = files(tmp_path, [alarm(0, "GZ-L-1-OTN")])
    until = t(30 + 2 * 365 * 24 * 60)                        # two years of stage SMS: megabytes
    proc = subprocess.Popen(cli() + ["replay", "--inventory", inv, "--events", ev, "--until", until],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    try:
        assert len(proc.stdout.read(10)) == 10
        proc.stdout.close()
        stderr = proc.stderr.read()
        status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert b"Traceback" not in stderr and b"BrokenPipe" not in stderr, stderr.decode()[-2000:]
    assert status == 141


def test_T_window_advance_chunks_gives_advance_records_in_bounded_pieces():
    def serious_pipeline() -> Pipeline:
        pipe = Pipeline(one_circuit().build(), RULEBOOK)
        pipe.submit(decode_input(alarm(0, "GZ-L-1-OTN")), parse_time(t(0)))
        return pipe

    to = parse_time(t(30 + 30 * 24 * 60))                    # thirty days of stage SMS
    whole = serious_pipeline().advance(to)
    chunked = list(serious_pipeline().advance_chunks(to, size=50))
    assert len(whole) > 300
    assert [r for chunk in chunked for r in chunk] == whole
    assert all(0 < len(chunk) <= 50 for chunk in chunked)


# ---------------------------------------------------------------- lines without bound

class Endless(io.RawIOBase):
    """`/dev/zero` as a stream: bytes without end and without a newline."""

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        buf[:] = b"x" * len(buf)
        return len(buf)


def test_CONTRACT_3_an_over_long_line_is_rejected_and_the_next_lines_are_used(monkeypatch):
    monkeypatch.setattr(replay_mod, "MAX_LINE_BYTES", 4096)
    lines = [dumps(alarm(0, "GZ-L-1-CPE")), "x" * 10_000, dumps(alarm(1, "GZ-L-1-OTN"))]
    res = run(one_circuit(), lines)
    assert [(r["line"], r["reason"]) for r in res.of("input.rejected")] == \
        [(2, "line longer than 4,096 bytes")]
    assert res.of("fault.opened")


def test_CONTRACT_3_an_endless_line_is_rejected_and_reading_ends(monkeypatch):
    """`--events - < /dev/zero`: bounded memory, and an end with a reason."""
    monkeypatch.setattr(replay_mod, "MAX_LINE_BYTES", 4096)
    monkeypatch.setattr(replay_mod, "MAX_SKIP_BYTES", 1 << 20)
    pipe = Pipeline(one_circuit().build(), RULEBOOK)
    out = io.BytesIO()
    status = replay_mod.Replay(pipe, out).run(io.BufferedReader(Endless()), None)
    records = [orjson.loads(x) for x in out.getvalue().splitlines()]
    assert status == 3
    assert [r["type"] for r in records] == ["input.rejected"]
    assert "the rest of the events was not read" in records[0]["reason"]
