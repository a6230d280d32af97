"""A city shard's snapshot (services/drivers/snapshots.py) is its state: a stream of inputs run
through the correlate and dispatch shards, snapshotted and loaded at step k, continues exactly
as the unbroken run — the same records, notices and dead letters, the same pending timers,
the same next ids — wherever k falls: mid-storm, or where timers are due and not yet fired.

The shards are driven as services/runtime/shard_runner.py drives them (the router's messages,
CorrelateLogic.step, its notices through JSON to DispatchLogic.step), without any I/O."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import random
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenario import RULEBOOK, action, alarm, complaint, t

from correlator.faults import CircuitState, ResourceState
from services.drivers import snapshots
from services.drivers.city_router import Asking, route
from services.drivers.city_shards import CorrelatorShard, DispatcherShard
from services.drivers.stage_logic import CorrelateLogic, DispatchLogic
from shared.inventory import load_inventory, parse_inventory
from shared.topics import ANSWERS, CORRELATOR_INPUTS, FAULTS
from shared.transport.port import Msg
from tools.kafka_events import messages

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
INVENTORY = load_inventory(SAMPLES / "inventory.json")
SAMPLE = (SAMPLES / "replay_events.jsonl").read_bytes().splitlines()
SAMPLE_UNTIL = "2026-11-25T19:00:00+08:00"

_spec = importlib.util.spec_from_file_location("faultline_bench_engine_snap", ROOT / "bench" / "engine.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench
_spec.loader.exec_module(bench)


# ---------------------------------------------------------------------- the harness

class Stage:
    """One stage's shards, stepped as ShardRunner steps them (seq, source keys), no I/O."""

    def __init__(self, logic) -> None:
        self.logic = logic
        self.cores: dict = {}
        self.seqs: dict[str, int] = {}
        self.seen: set[tuple[str, str]] = set()

    def step(self, shard: str, body: dict):
        core = self.cores.get(shard)
        if core is None:
            core = self.cores[shard] = self.logic.new_shard(shard)
            self.seqs[shard] = 0
        key = self.logic.source_key(body)
        if key is not None and (shard, key) in self.seen:
            return None                                     # a redelivery: skipped
        step, _clock = self.logic.step(core, body, self.seqs[shard] + 1)
        self.seqs[shard] += bool(step.log) + (step.refused is not None)
        if key is not None and (step.log or step.refused is not None):
            self.seen.add((shard, key))
        return step

    def reload(self) -> int:
        """Every shard replaced by load(dump(shard)); the bytes it took."""
        size = 0
        for shard, core in list(self.cores.items()):
            blob = snapshots.dump(core)
            size += len(blob)
            self.cores[shard] = snapshots.load(blob, self.logic)
        return size


def summary(stage: Stage) -> dict:
    """What must survive a snapshot besides the outputs: pending timers, clocks, next ids."""
    out = {}
    for shard, core in sorted(stage.cores.items()):
        engine = core.correlator if isinstance(core, CorrelatorShard) else core.dispatcher
        heap = [(due, fs, rank, seq, kind) for due, fs, rank, seq, kind, _p in sorted(engine.timers.heap)]
        counters = ((engine.fault_count, engine.incident_count) if isinstance(core, CorrelatorShard)
                    else (engine.order_count,))
        out[shard] = (core.clock, core.pending_timers(), heap, engine.timers._seq, counters,
                      sorted(engine.faults))
    return out


class Run:
    """The router's messages for `msgs` through both stages; `reload_at`: the steps before
    which every shard is snapshotted and loaded again."""

    def __init__(self, inventory, msgs: list[tuple], reload_at: set[int] = frozenset(), *,
                 before_reload=None) -> None:
        self.corr = Stage(CorrelateLogic(inventory, RULEBOOK))
        self.disp = Stage(DispatchLogic(inventory, RULEBOOK, None))
        self.out: list = []
        self.sizes: list[int] = []
        for i, (topic, value, key, _p, ts) in enumerate(msgs):
            if i in reload_at:
                if before_reload is not None:
                    before_reload(self, i)
                self.sizes.append(self.corr.reload() + self.disp.reload())
            routed = route(inventory, Msg(topic, 0, i, key, value, ts))
            if isinstance(routed, Asking):           # as the router does: ask, then settle
                for _t, v, city in routed.asks():
                    step = self._correlate(city, orjson.loads(v))
                    for topic, said in (step.at_once if step is not None else []):
                        assert topic == ANSWERS
                        said = orjson.loads(said)
                        routed.take(said["shard"], said["answer"])
                routed = routed.settled(inventory)
            for out_topic, v, city in routed:
                if out_topic != CORRELATOR_INPUTS:
                    self.out.append(("dead", v))
                    continue
                self._correlate(city, orjson.loads(v))
        self.end = (summary(self.corr), summary(self.disp))

    def _correlate(self, city: str, body: dict):
        step = self.corr.step(city, body)
        if step is None:
            return None
        self.out.append(("correlate", city, step.outgoing, step.records, step.refused, step.state))
        for notice in step.outgoing.get(FAULTS, []):
            dstep = self.disp.step(city, orjson.loads(notice))
            if dstep is not None:
                self.out.append(("dispatch", city, dstep.outgoing, dstep.records, dstep.refused,
                                 dstep.state))
        return step


def assert_continues(inventory, msgs: list[tuple], ks: set[int], reference: Run | None = None) -> Run:
    whole = reference or Run(inventory, msgs)
    broken = Run(inventory, msgs, ks)
    assert broken.out == whole.out
    assert broken.end == whole.end
    return whole


# ---------------------------------------------------------------------- the sample day

def test_the_sample_day_continues_the_same_from_a_snapshot_at_every_step():
    msgs = messages(SAMPLE, SAMPLE_UNTIL)
    whole = Run(INVENTORY, msgs)
    records = [r for item in whole.out if item[0] != "dead" for r in item[3]]
    assert {"fault.opened", "fault.serious", "work_order.created", "sms"} <= {r["type"] for r in records}
    for k in range(len(msgs) + 1):
        assert_continues(INVENTORY, msgs, {k}, whole)
    assert_continues(INVENTORY, msgs, set(range(len(msgs))), whole)     # and at every step at once


def test_a_snapshot_taken_while_timers_are_due_but_not_fired_fires_them_as_the_unbroken_run():
    """China Southern's line down at 10:00 (SF-3: TM-1 at 10:30); nothing comes until 10:45, so
    at the snapshot TM-1 is due by the next input's clock and has not fired: the loaded shard
    fires it first (T-3), as the unbroken one does."""
    lines = [orjson.dumps(e) for e in (
        alarm(0, "GZ-OTN-B:2-1-4", alarm_id="b4"), alarm(0, "GZ-OTN-B:2-1-5", alarm_id="b5"),
        alarm(0.1, "GZ-OTN-A:1-3-1", alarm_id="a1"),
        alarm(45, "GZ-PE-01:GE0/0/1", "TEMPERATURE", alarm_id="noise"),
        alarm(50, "GZ-OTN-A:1-3-1", state="cleared", alarm_id="a1"))]
    msgs = messages(lines, t(300))
    k = 3
    next_at = msgs[k][4] / 1000

    def due_not_fired(run: Run, i: int) -> None:
        gz = run.corr.cores["GZ"]
        assert gz.correlator.timers.next_due() < next_at, "TM-1 should be due before the next input"
        assert gz.clock < gz.correlator.timers.next_due()

    whole = Run(INVENTORY, msgs)
    Run(INVENTORY, msgs, {k}, before_reload=due_not_fired)
    assert_continues(INVENTORY, msgs, {k}, whole)
    serious = [r for item in whole.out if item[0] == "correlate" for r in item[3]
               if r["type"] == "fault.serious"]
    assert serious and serious[0]["at"] == "2026-11-25T10:30:06+08:00"     # 30 min after the cut


# ---------------------------------------------------------------------- random days

RESOURCES = sorted(INVENTORY.resources) + ["GZ-PE-99:GE9/9/9"]
CIRCUITS = sorted(INVENTORY.circuits)
CUSTOMERS = sorted(INVENTORY.customers)


@st.composite
def days(draw):
    """Alarms, complaints and operator actions on the sample inventory, in arrival order
    (as tests/properties/test_split_equivalence.py draws them)."""
    events = []
    minute = 0.0
    active: list[tuple[str, str, str]] = []
    for n in range(draw(st.integers(min_value=1, max_value=40))):
        minute += draw(st.sampled_from([0, 0.5, 1, 5, 14, 31]))
        what = draw(st.sampled_from(["raise", "raise", "clear", "complaint", "action"]))
        if what == "raise":
            rid = draw(st.sampled_from(RESOURCES))
            cause = draw(st.sampled_from(["LOS", "LINK_DOWN", "PACKET_LOSS", "GATEWAY_CONN_LOST", "FAN"]))
            events.append(alarm(minute, rid, cause, event_min=minute - draw(st.sampled_from([0, 1, 45])),
                                alarm_id=f"E{n}"))
            active.append((rid, cause, f"E{n}"))
        elif what == "clear" and active:
            rid, cause, aid = active.pop(draw(st.integers(min_value=0, max_value=len(active) - 1)))
            events.append(alarm(minute, rid, cause, "cleared", alarm_id=aid))
        elif what == "complaint":
            events.append(complaint(minute, draw(st.sampled_from(CUSTOMERS)),
                                    draw(st.sampled_from(["GZ", "FS", "SZ"])),
                                    draw(st.sampled_from(["internet", "voice", "sms"])),
                                    channel=draw(st.sampled_from(["10086-8", "400", "direct"])),
                                    scope=draw(st.sampled_from(["all_users", "partial"])), cid=f"C{n}"))
        else:
            kind = draw(st.sampled_from(["confirm", "resolve", "escalate", "ack"]))
            extra = {"confirm": {"impact": "full_block"}, "resolve": {}, "escalate": {"reason": "ES-6"},
                     "ack": {"queue": "prov.monitoring"}}[kind]
            events.append(action(minute, kind, {"circuit_id": draw(st.sampled_from(CIRCUITS))}, **extra))
    msgs = messages([orjson.dumps(e) for e in events], t(minute + 600))
    ks = draw(st.sets(st.integers(min_value=0, max_value=len(msgs)), min_size=1, max_size=3))
    return msgs, ks


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days())
def test_random_days_continue_the_same_from_snapshots_at_any_steps(day):
    msgs, ks = day
    assert_continues(INVENTORY, msgs, ks)


# ---------------------------------------------------------------------- a storm

@pytest.fixture(scope="module")
def storm():
    rng = random.Random(11)
    topo = bench.gen_inventory(600, rng)
    lines, _bad = bench.gen_storm(topo, 6000, rng, hours=2.0)
    inventory = parse_inventory(topo.doc)
    msgs = messages(lines, (bench.BASE.replace(hour=13)).isoformat())
    return inventory, msgs, Run(inventory, msgs)


def test_a_storm_continues_the_same_from_snapshots_taken_mid_storm(storm):
    inventory, msgs, whole = storm
    opened = sum(1 for item in whole.out if item[0] == "correlate" for r in item[3]
                 if r["type"] == "fault.opened")
    assert opened > 20
    n = len(msgs)
    broken = assert_continues(inventory, msgs, {n // 3, n // 2, n - 1}, whole)
    assert broken is whole


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                               HealthCheck.function_scoped_fixture])
@given(k=st.integers(min_value=0, max_value=6001))
def test_a_storm_continues_the_same_from_a_snapshot_at_any_step(storm, k):
    inventory, msgs, whole = storm
    assert_continues(inventory, msgs, {min(k, len(msgs))}, whole)


def test_a_snapshot_holds_the_shard_state_not_the_inventory(storm):
    """The circuit and resource states the inventory determines are rebuilt from it: a fresh
    shard's snapshot is a few hundred bytes whatever the inventory's size."""
    inventory, _msgs, _whole = storm
    small = load_inventory(SAMPLES / "inventory.json")
    for inv in (small, inventory):
        for logic in (CorrelateLogic(inv, RULEBOOK), DispatchLogic(inv, RULEBOOK, None)):
            assert len(snapshots.dump(logic.new_shard("GZ"))) < 1000


# ---------------------------------------------------------------------- the format

def test_every_slot_of_the_circuit_and_resource_state_is_classified():
    """A slot added to the engine's per-circuit or per-resource state is either rebuilt from
    the inventory (STATIC) or carried by the snapshot (DYNAMIC): decide which here."""
    assert set(CircuitState.__slots__) == snapshots.CS_STATIC | set(snapshots.CS_DYNAMIC)
    assert set(ResourceState.__slots__) == snapshots.RS_STATIC | set(snapshots.RS_DYNAMIC)


def _served_gz(inventory=INVENTORY) -> tuple[CorrelatorShard, DispatcherShard]:
    run = Run(inventory, messages(SAMPLE[:8], None))
    return run.corr.cores["GZ"], run.disp.cores["GZ"]


def test_callables_are_bound_again_to_the_live_ones():
    corr, disp = _served_gz()
    def warn(message: str) -> None:
        pass

    logic = DispatchLogic(INVENTORY, RULEBOOK, warn, catch_up_s=60.0)
    loaded = snapshots.load(snapshots.dump(disp), logic)
    assert loaded.dispatcher.warn is warn
    assert loaded.catch_up_s == 60.0 and loaded.dispatcher.rulebook is RULEBOOK
    clogic = CorrelateLogic(INVENTORY, RULEBOOK)
    c2 = snapshots.load(snapshots.dump(corr), clogic)
    assert c2.correlator.inventory is INVENTORY and c2.correlator.rulebook is RULEBOOK
    assert c2.correlator.owns(INVENTORY.circuits["GZ-INT-0001"]) is True
    f = next(iter(c2.correlator.faults.values()))
    assert f.circuit is INVENTORY.circuits[f.circuit.circuit_id]
    assert f.circuit_state is c2.correlator.circuits[f.circuit.circuit_id]
    assert all(cs in c2.correlator.circuits.values() for rs in c2.correlator.resources.values()
               for cs, _p in rs.memberships)


def test_a_callable_that_is_not_the_shards_own_is_refused_at_dump():
    corr, _disp = _served_gz()
    next(iter(corr.correlator.faults.values())).complaints.append(lambda: None)
    with pytest.raises(snapshots.SnapshotError, match="cannot be kept in a snapshot"):
        snapshots.dump(corr)


def test_a_blob_of_another_format_or_stage_or_garbage_is_refused():
    corr, _disp = _served_gz()
    blob = snapshots.dump(corr)
    logic = CorrelateLogic(INVENTORY, RULEBOOK)
    other = blob.replace(b'"format":%d' % snapshots.FORMAT, b'"format":99', 1)
    with pytest.raises(snapshots.SnapshotError, match="format 99"):
        snapshots.load(other, logic)
    with pytest.raises(snapshots.SnapshotError, match="not of a dispatch shard"):
        snapshots.load(blob, DispatchLogic(INVENTORY, RULEBOOK, None))
    with pytest.raises(snapshots.SnapshotError, match="not a shard snapshot"):
        snapshots.load(b"junk", logic)
    head, _, body = blob.partition(b"\n")
    with pytest.raises(snapshots.SnapshotError, match="does not load"):
        snapshots.load(head + b"\n" + body[:len(body) // 2], logic)


def test_a_blob_naming_a_class_outside_the_shard_state_is_refused():
    import pickle
    import zlib

    corr, _disp = _served_gz()
    head = snapshots.dump(corr).partition(b"\n")[0]
    evil = head + b"\n" + zlib.compress(pickle.dumps(({"clock": os.system}, (), [], (), [])))
    with pytest.raises(snapshots.SnapshotError, match="may not name"):
        snapshots.load(evil, CorrelateLogic(INVENTORY, RULEBOOK))


def _without(doc: dict, circuit_id: str) -> dict:
    return {**doc, "circuits": [c for c in doc["circuits"] if c["circuit_id"] != circuit_id]}


def test_loading_under_an_inventory_without_an_id_it_names_says_what_is_missing():
    doc = orjson.loads((SAMPLES / "inventory.json").read_bytes())
    corr, disp = _served_gz()
    fault = next(f for f in corr.correlator.faults.values() if f.circuit is not None)
    cid = fault.circuit.circuit_id
    smaller = parse_inventory(_without(doc, cid))
    with pytest.raises(snapshots.SnapshotMismatch) as caught:
        snapshots.load(snapshots.dump(corr), CorrelateLogic(smaller, RULEBOOK))
    assert f"circuit {cid}" in caught.value.missing
    assert "correlate GZ" in str(caught.value)
    with pytest.raises(snapshots.SnapshotMismatch, match=f"circuit {cid}"):
        snapshots.load(snapshots.dump(disp), DispatchLogic(smaller, RULEBOOK, None))
    # An inventory that only gained a circuit takes the snapshot, bound to its own objects.
    bigger_doc = {**doc, "circuits": doc["circuits"] + [{**doc["circuits"][0], "circuit_id": "GZ-NEW-1"}]}
    bigger = parse_inventory(bigger_doc)
    loaded = snapshots.load(snapshots.dump(corr), CorrelateLogic(bigger, RULEBOOK))
    assert loaded.correlator.faults[fault.fault_id].circuit is bigger.circuits[cid]
    assert "GZ-NEW-1" in loaded.correlator.circuits


def test_the_fingerprint_is_stable_across_processes_and_follows_the_data():
    fp = snapshots.fingerprint(INVENTORY, RULEBOOK)
    code = ("from pathlib import Path; from shared.inventory import load_inventory; "
            "from shared.rulebook import load_rulebook; from services.drivers.snapshots import fingerprint; "
            f"print(fingerprint(load_inventory(Path({str(SAMPLES / 'inventory.json')!r})), load_rulebook()))")
    for seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONHASHSEED": seed}, timeout=60)
        assert done.stdout.strip() == fp, done.stderr
    doc = orjson.loads((SAMPLES / "inventory.json").read_bytes())
    first = doc["customers"][0]
    doc["customers"][0] = {**first, "grade": "diamond" if first["grade"] != "diamond" else "gold"}
    assert snapshots.fingerprint(parse_inventory(doc), RULEBOOK) != fp
    other_rules = dataclasses.replace(RULEBOOK, tm6_s=RULEBOOK.tm6_s + 60)
    assert snapshots.fingerprint(INVENTORY, other_rules) != fp
    assert snapshots.fingerprint(INVENTORY, dataclasses.replace(RULEBOOK, origin="elsewhere.yaml")) == fp
