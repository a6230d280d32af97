"""CONTRACT §3 replay: input lines, rejected lines and their `at`, exit statuses, --until,
determinism, and the `faultline replay` command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scenario import action, alarm, complaint, dumps, one_circuit, run, t

ROOT = Path(__file__).resolve().parents[2]


def rejected(res) -> list[tuple[int, str]]:
    return [(r["line"], r["at"]) for r in res.of("input.rejected")]


GOOD = alarm(0, "GZ-L-1-OTN")


# ---------------------------------------------------------------- unusable lines

BAD_LINES = {
    "bad-json": '{"kind": "alarm", "at": ',
    "not-an-object": "[1, 2, 3]",
    "unknown-kind": dumps({"kind": "bogus", "at": t(2)}),
    "missing-kind": dumps({"at": t(2), "select": {"fault_id": "F-000001"}}),
    "alarm-missing-alarm": dumps({"kind": "alarm", "at": t(2)}),
    "alarm-missing-resource": dumps({"kind": "alarm", "at": t(2), "alarm": {
        k: v for k, v in GOOD["alarm"].items() if k != "resource_id"}}),
    "complaint-missing-customer": dumps({"kind": "complaint", "at": t(2), "complaint": {
        "complaint_id": "X", "channel": "400", "city": "GZ", "service_type": "internet",
        "scope": "all_users", "text": "x"}}),
    "confirm-missing-impact": dumps(action(2, "confirm", {"fault_id": "F-000001"})),
    "ack-missing-queue": dumps(action(2, "ack", {"fault_id": "F-000001"})),
    "escalate-missing-select": dumps({"kind": "escalate", "at": t(2), "reason": "ES-6"}),
    "missing-at": dumps({"kind": "resolve", "select": {"fault_id": "F-000001"}}),
    "at-wrong-type": dumps({"kind": "resolve", "at": 1764036000, "select": {"fault_id": "F-000001"}}),
    "at-without-offset": dumps({"kind": "resolve", "at": "2026-11-25T10:02:00",
                                "select": {"fault_id": "F-000001"}}),
    "at-not-a-time": dumps({"kind": "resolve", "at": "yesterday", "select": {"fault_id": "F-000001"}}),
    "scope-wrong-type": dumps({"kind": "complaint", "at": t(2), "complaint": {
        "complaint_id": "X", "channel": "400", "customer_id": "C1", "city": "GZ",
        "service_type": "internet", "scope": 5, "text": "x"}}),
    "channel-bad-value": dumps({"kind": "complaint", "at": t(2), "complaint": {
        "complaint_id": "X", "channel": "fax", "customer_id": "C1", "city": "GZ",
        "service_type": "internet", "scope": "all_users", "text": "x"}}),
    "select-wrong-type": dumps({"kind": "resolve", "at": t(2), "select": "F-000001"}),
    "impact-bad-value": dumps(action(2, "confirm", {"fault_id": "F-000001"}, impact="maybe")),
    "reason-wrong-type": dumps(action(2, "escalate", {"fault_id": "F-000001"}, reason=6)),
}
# lines whose `at` is unreadable take the clock's at (the GOOD line's, t(0)); the others their own
OWN_AT = {"unknown-kind", "missing-kind", "alarm-missing-alarm", "alarm-missing-resource",
          "complaint-missing-customer",
          "confirm-missing-impact", "ack-missing-queue", "escalate-missing-select", "scope-wrong-type",
          "channel-bad-value", "select-wrong-type", "impact-bad-value", "reason-wrong-type"}


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_CONTRACT_3_unusable_line_is_rejected_with_its_line_number_and_exit_3(name):
    later = action(3, "confirm", {"circuit_id": "GZ-L-1"}, impact="full_block")
    res = run(one_circuit(), [GOOD, BAD_LINES[name], later], until=t(4))
    assert rejected(res) == [(2, t(2) if name in OWN_AT else t(0))]
    assert res.one("input.rejected")["reason"].strip() != ""
    assert res.status == 3
    # the rest of the input is still processed
    assert res.one("fault.serious")["at"] == t(3)


def test_CONTRACT_3_input_times_in_another_offset_are_output_in_shanghai_time():
    utc = {**GOOD, "at": "2026-11-25T02:00:00Z",
           "alarm": {**GOOD["alarm"], "event_time": "2026-11-25T02:00:00+00:00"}}
    res = run(one_circuit(), [utc], until=t(1))
    opened = res.one("fault.opened")
    assert (opened["at"], opened["opened_at"]) == (t(0), t(0))
    assert res.status == 0


def test_CONTRACT_3_blank_lines_are_counted_but_skipped():
    res = run(one_circuit(), ["", GOOD, "   ", "", dumps({"kind": "bogus", "at": t(1)}), "",
                              dumps({"kind": "bogus", "at": t(2)})], until=t(3))
    assert rejected(res) == [(5, t(1)), (7, t(2))]
    assert res.status == 3


def test_CONTRACT_3_all_lines_used_exits_0():
    res = run(one_circuit(), ["", GOOD, "", action(5, "ack", {"fault_id": "F-000001"},
                                                 queue="prov.specialist.transmission")], until=t(6))
    assert res.status == 0
    res.none("input.rejected")


def test_CONTRACT_3_empty_input_prints_nothing_and_exits_0():
    res = run(one_circuit(), ["", "  "], until=t(10))
    assert (res.stdout, res.status) == (b"", 0)


def test_CONTRACT_3_line_earlier_than_the_clock_is_rejected_at_the_clock():
    res = run(one_circuit(), [GOOD, alarm(10, "GZ-L-1-CPE"), alarm(5, "GZ-L-1-PE")], until=t(11))
    assert rejected(res) == [(3, t(10))]
    assert "earlier" in res.one("input.rejected")["reason"]
    assert res.status == 3


def test_CONTRACT_3_refused_action_is_rejected_at_its_own_at():
    res = run(one_circuit(), [GOOD, action(7, "ack", {"fault_id": "F-000001"}, queue="city.SZ.monitoring")],
              until=t(8))
    assert rejected(res) == [(2, t(7))]
    assert res.status == 3


def test_CONTRACT_3_unreadable_first_line_takes_the_first_readable_at():
    res = run(one_circuit(), ["{oops", "", alarm(5, "GZ-L-1-OTN")], until=t(6))
    assert rejected(res) == [(1, t(5))]
    assert res.types()[:2] == ["input.rejected", "fault.opened"]


def test_CONTRACT_3_timers_due_before_a_rejected_line_fire_first():
    res = run(one_circuit(), [GOOD, dumps({"kind": "bogus", "at": t(40)})], until=t(40))
    assert res.types().index("fault.serious") < res.types().index("input.rejected")
    assert res.one("fault.serious")["at"] == t(30)
    assert rejected(res) == [(2, t(40))]


# ---------------------------------------------------------------- --until

def test_CONTRACT_3_until_fires_the_timers_due_by_then():
    events = [GOOD]
    before = run(one_circuit(), events, until=t(29))
    at = run(one_circuit(), events, until=t(30))
    assert [r["type"] for r in before.records] == ["fault.opened", "work_order.created"]
    assert at.one("fault.serious")["at"] == t(30)
    assert at.one("phone.notify")["at"] == t(30)
    later = run(one_circuit(), events, until=t(150))
    assert [r["at"] for r in later.of("sms")] == [t(30), t(150)]


def test_CONTRACT_3_default_until_is_the_last_lines_at():
    events = [GOOD, action(45, "ack", {"fault_id": "F-000001"}, queue="prov.specialist.transmission")]
    res = run(one_circuit(), events)
    assert res.one("fault.serious")["at"] == t(30)
    assert res.one("onsite.required")["deadline"] == t(45)
    res.none("sms", stage="update")


@pytest.mark.parametrize("until", [t(-60), t(0), t(44)])
def test_CONTRACT_3_an_earlier_until_changes_nothing(until):
    events = [GOOD, action(45, "ack", {"fault_id": "F-000001"}, queue="prov.specialist.transmission")]
    assert run(one_circuit(), events, until=until).stdout == run(one_circuit(), events).stdout


# ---------------------------------------------------------------- determinism

def scenario_events() -> list:
    line = alarm(0, "GZ-L-1-OTN")
    return [line, complaint(3, "C1", channel="400"), "",
            action(10, "confirm", {"circuit_id": "GZ-L-1"}, impact="full_block"),
            dumps({"kind": "bogus", "at": t(11)}),
            {**line, "at": t(200), "alarm": {**line["alarm"], "state": "cleared", "event_time": t(190)}}]


def test_CONTRACT_3_two_runs_are_byte_for_byte_identical():
    events = scenario_events()
    first = run(one_circuit(), events, until=t(300))
    second = run(one_circuit(), events, until=t(300))
    assert first.stdout == second.stdout
    assert len(first.records) == 19
    assert first.stdout.endswith(b"\n")
    assert all(json.loads(x)["at"].endswith("+08:00") for x in first.stdout.splitlines())


# ---------------------------------------------------------------- the command line

def cli() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "faultline"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "services.cli"]


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def call(args: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAULTLINE_")}
    return subprocess.run(cli() + args, cwd=ROOT, capture_output=True, env=env, timeout=60)


def events_file(tmp_path: Path, events: list) -> str:
    lines = [e if isinstance(e, str) else dumps(e) for e in events]
    return write(tmp_path, "events.jsonl", "\n".join(lines) + "\n")


def test_CONTRACT_3_cli_replay_matches_the_harness_and_exits_0(tmp_path):
    events = [GOOD, action(45, "ack", {"fault_id": "F-000001"}, queue="prov.specialist.transmission")]
    inv = write(tmp_path, "inv.json", json.dumps(one_circuit().doc(), ensure_ascii=False))
    proc = call(["replay", "--inventory", inv, "--events", events_file(tmp_path, events), "--until", t(60)])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == run(one_circuit(), events, until=t(60)).stdout


def test_CONTRACT_3_cli_replay_with_a_rejected_line_exits_3(tmp_path):
    inv = write(tmp_path, "inv.json", json.dumps(one_circuit().doc(), ensure_ascii=False))
    proc = call(["replay", "--inventory", inv, "--events", events_file(tmp_path, [GOOD, "{bad"])])
    assert proc.returncode == 3
    last = json.loads(proc.stdout.splitlines()[-1])
    assert (last["type"], last["line"], last["at"]) == ("input.rejected", 2, t(0))


def test_CONTRACT_3_cli_is_deterministic_byte_for_byte(tmp_path):
    inv = write(tmp_path, "inv.json", json.dumps(one_circuit().doc(), ensure_ascii=False))
    ev = events_file(tmp_path, scenario_events())
    a = call(["replay", "--inventory", inv, "--events", ev, "--until", t(300)])
    b = call(["replay", "--inventory", inv, "--events", ev, "--until", t(300)])
    assert a.returncode == b.returncode == 3
    assert a.stdout == b.stdout and len(a.stdout) > 0


def test_CONTRACT_3_cli_refused_inventory_exits_2_with_problems_on_stderr(tmp_path):
    doc = one_circuit().doc()
    doc["circuits"].append(dict(doc["circuits"][0]))                                   # duplicate id
    doc["circuits"].append({**doc["circuits"][0], "circuit_id": "GZ-L-2", "customer_id": "NOBODY"})
    doc["resources"].append({"resource_id": "X", "layer": "quantum", "city": "GZ", "maintainer": "city"})
    inv = write(tmp_path, "inv.json", json.dumps(doc, ensure_ascii=False))
    proc = call(["replay", "--inventory", inv, "--events", events_file(tmp_path, [GOOD])])
    assert proc.returncode == 2
    assert proc.stdout == b""
    problems = proc.stderr.decode().strip().splitlines()
    assert len(problems) >= 3
    text = proc.stderr.decode()
    assert "NOBODY" in text and "duplicate" in text and "quantum" in text


@pytest.mark.parametrize("content", [
    pytest.param("{not json", id="not-json"),
    pytest.param(None, id="missing-file"),
])
def test_CONTRACT_3_cli_unreadable_inventory_exits_2(tmp_path, content):
    inv = write(tmp_path, "inv.json", content) if content is not None else str(tmp_path / "absent.json")
    proc = call(["replay", "--inventory", inv, "--events", events_file(tmp_path, [GOOD])])
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert proc.stderr.strip() != b""


def test_CONTRACT_3_cli_bad_until_exits_2(tmp_path):
    inv = write(tmp_path, "inv.json", json.dumps(one_circuit().doc(), ensure_ascii=False))
    proc = call(["replay", "--inventory", inv, "--events", events_file(tmp_path, [GOOD]), "--until", "soon"])
    assert proc.returncode == 2
    assert proc.stdout == b""


