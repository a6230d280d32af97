#!/usr/bin/env python3
"""Throughput benchmark of the faultline engine on a Guangdong-scale alarm storm.

    .venv/bin/python bench/engine.py [--circuits 20000] [--alarms 300000] [--seed 7]
                                     [--repeat 5] [--small 2000] [--profile]

A seeded generator builds an inventory (customers, resources, circuits over the 21
cities, transmission sections shared by hundreds of circuits) and a storm of CONTRACT §3
`alarm` lines: fibre cuts with their sympathetic alarms, repeats, clears, flapping ports,
degradations, non-service-affecting noise, unmapped resources, background outages and a
few deliberately bad lines. Generation is not measured. Each pass builds a fresh Pipeline
(start-up, timed apart) and feeds every line through `Replay.feed_line` into a BytesIO:
decode + validate + correlate + dispatch + record encoding, on one core. The engine-only
rate feeds pre-decoded Alarm objects straight into `Pipeline.submit`.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import statistics
import sys
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alarm_ingest.normalized import alarm_from_dict  # noqa: E402
from services.commands.replay import Replay  # noqa: E402
from services.drivers.pipeline import Pipeline  # noqa: E402
from shared.clock import SHANGHAI, parse_time  # noqa: E402
from shared.inventory import parse_inventory  # noqa: E402
from shared.model import Rejected  # noqa: E402
from shared.rulebook import load_rulebook  # noqa: E402

TARGET_RATE = 150_000  # alarms/s, full path (decode + engine + records), one core

# City code → relative share of the province's enterprise private lines.
CITIES = {
    "GZ": 18, "SZ": 18, "DG": 9, "FS": 9, "HZ": 5, "ZH": 4, "ZS": 4, "JM": 4, "ST": 4, "ZJ": 3,
    "MM": 3, "ZQ": 3, "QY": 2, "SG": 2, "JY": 2, "MZ": 2, "HY": 2, "YJ": 2, "CZ": 2, "SW": 1, "YF": 1,
}
SERVICE_TYPES = {"internet": 45, "data": 25, "circuit_lease": 12, "voice": 8, "gprs_apn": 6, "sms": 4}
CITY_GRADES = {"standard": 70, "bronze": 12, "silver": 9, "gold": 6, "diamond": 3}
PROV_GRADES = {"diamond": 20, "gold": 35, "silver": 25, "bronze": 10, "standard": 10}
NOISE_CAUSES = ("TEMPERATURE", "FAN", "POWER_REDUNDANCY_LOST", "BATTERY_LOW", "DOOR_OPEN",
                "LICENSE_EXPIRING", "CPU_HIGH", "MEMORY_HIGH")
BASE = datetime(2026, 11, 25, 9, 0, 0, tzinfo=SHANGHAI)   # a Wednesday morning
BAD_LINES = (
    b'{"kind":"alarm","at":"%s","alarm":{"source":"gd-otn-nms-1","alarm_id":"bad"',
    b'{"kind":"alarm","at":"%s","alarm":{"source":"gd-otn-nms-1","alarm_id":"bad-sev",'
    b'"resource_id":"GZ-OTN-A01:1-1-1","probable_cause":"LOS","severity":"fatal","state":"raised",'
    b'"event_time":"2026-11-25T09:00:00+08:00"}}',
    b'{"kind":"alarm","at":"%s","alarm":{"source":"gd-otn-nms-1","alarm_id":"bad-miss",'
    b'"probable_cause":"LOS","severity":"critical","state":"raised",'
    b'"event_time":"2026-11-25T09:00:00+08:00"}}',
    b'{"kind":"alarm","at":"%s","alarm":{"source":"gd-otn-nms-1","alarm_id":"bad-time",'
    b'"resource_id":"GZ-OTN-A01:1-1-1","probable_cause":"LOS","severity":"critical",'
    b'"state":"raised","event_time":"2026-11-25 09:00:00"}}',
)


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


# ---------------------------------------------------------------------------------- inventory

@dataclass
class Topology:
    """What the storm generator needs to know about the inventory it hits."""

    doc: dict
    agg_pairs: list[tuple[str, str]] = field(default_factory=list)      # (A side, B side)
    downstream: dict[str, list[str]] = field(default_factory=dict)      # agg → its ring sections
    cpes_on: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # agg → (CPE, npaths)
    by_kind: dict[str, list[str]] = field(default_factory=dict)          # cpe, olt, ring, agg, pe…
    city_of: dict[str, str] = field(default_factory=dict)


class _InvBuilder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.customers: list[dict] = []
        self.resources: dict[str, dict] = {}
        self.circuits: list[dict] = []
        self.topo = Topology(doc={})

    def res(self, rid: str, layer: str, city: str, maintainer: str, kind: str) -> str:
        if rid not in self.resources:
            self.resources[rid] = {"resource_id": rid, "layer": layer, "city": city, "maintainer": maintainer}
            self.topo.by_kind.setdefault(kind, []).append(rid)
            self.topo.city_of[rid] = city
        return rid

    def customer(self, cid: str, level: str, grade: str, city: str) -> str:
        c = {"customer_id": cid, "name": f"客户{cid}", "level": level, "grade": grade}
        if level == "provincial":
            c["hq_city"] = city
        self.customers.append(c)
        return cid


def _city_plant(b: _InvBuilder, city: str, n: int) -> dict[str, list]:
    """Shared plant of one city: PE ports, aggregation OTN pairs, access rings, OLT ports."""
    rng = b.rng
    n_pe = max(2, n // 400)
    pe = [b.res(f"{city}-PE-{i % n_pe + 1:02d}:GE0/{i // 48}/{i % 48}", "data", city, "city", "pe")
          for i in range(max(4, n // 40))]
    n_agg = max(1, n // 300)
    aggs = []
    for i in range(n_agg):
        a = b.res(f"{city}-OTN-A{i + 1:02d}:1-{i % 16 + 1}-1", "transmission", city, "province", "agg")
        z = b.res(f"{city}-OTN-B{i + 1:02d}:2-{i % 16 + 1}-1", "transmission", city, "province", "agg")
        aggs.append((a, z))
        b.topo.agg_pairs.append((a, z))
    rings: dict[str, list[str]] = {"A": [], "B": []}
    ring_agg: dict[str, str] = {}
    for side, col in (("A", 0), ("B", 1)):
        for i in range(max(2, n // 60)):
            r = b.res(f"{city}-OTN-R{side}{i + 1:03d}:3-{i % 8 + 1}-{i // 8 + 1}", "transmission", city,
                      "city", "ring")
            agg = aggs[i % n_agg][col]
            rings[side].append(r)
            ring_agg[r] = agg
            b.topo.downstream.setdefault(agg, []).append(r)
    olts = {side: [b.res(f"{city}-OLT-{side}{i + 1:03d}:PON0/{i % 16}", "access", city, "city", "olt")
                   for i in range(max(2, n // 50))] for side in "AB"}
    olt_ring = {o: rng.choice(rings[s]) for s in "AB" for o in olts[s]}
    return {"pe": pe, "olts": olts, "olt_ring": olt_ring, "ring_agg": ring_agg}


def _far_end(b: _InvBuilder, city: str, span: str, z: str | None, k: int) -> list[str]:
    if span == "cross_city":
        return [b.res(f"GD-POTN-{city}-{z}:{k}-1-1", "transmission", city, "province", "trunk")]
    if span == "cross_province":
        return [b.res(f"GD-ITMS-{city}:IB-{k}", "transmission", city, "province", "trunk")]
    return []


def _service_end(b: _InvBuilder, stype: str, k: int) -> list[str]:
    if stype == "gprs_apn":
        return [b.res(f"GD-GGSN-{k:02d}", "core", "GZ", "province", "core")]
    if stype == "sms":
        return [b.res(f"GD-SMSGW-{k:02d}", "vas", "GZ", "province", "core")]
    if stype == "voice":
        return [b.res(f"GD-IMS-SBC-{k:02d}", "core", "GZ", "province", "core")]
    return []


def _circuit(b: _InvBuilder, city: str, seq: int, plant: dict, customer: dict, plants: dict) -> None:
    rng = b.rng
    stype = _pick(rng, SERVICE_TYPES)
    span = rng.choices(("local", "cross_city", "cross_province"), (85, 12, 3))[0]
    z = None
    if span == "cross_city":
        z = rng.choice([c for c in CITIES if c != city])
    elif span == "cross_province":
        z = rng.choice(("BJ", "SH", "HK", "FJ", "GX", "HN"))
    important = customer["level"] == "provincial" or customer["grade"] == "diamond"
    dual = rng.random() < (0.7 if important else 0.2)
    cpe = b.res(f"{city}-CPE-{seq:05d}", "cpe", city, "city", "cpe")
    paths = []
    for pidx, side in enumerate("AB" if dual else "A"):
        olt = rng.choice(plant["olts"][side])
        ring = plant["olt_ring"][olt]
        agg = plant["ring_agg"][ring]
        pe_plant = plants[z] if span == "cross_city" else plant
        pe = rng.choice(pe_plant["pe"])
        path = [cpe, olt, ring, agg, *_far_end(b, city, span, z, pidx + 1), pe,
                *_service_end(b, stype, pidx + 1)]
        paths.append(path)
        b.topo.cpes_on.setdefault(agg, []).append((cpe, len("AB" if dual else "A")))
    code = {"internet": "INT", "data": "DAT", "circuit_lease": "LSE", "voice": "VOC", "gprs_apn": "APN",
            "sms": "SMS"}[stype]
    b.circuits.append({"circuit_id": f"{city}-{code}-{seq:05d}", "customer_id": customer["customer_id"],
                       "service_type": stype, "a_city": city, "z_city": z, "span": span,
                       "maintenance_transferred": rng.random() < 0.9, "paths": paths})


def gen_inventory(n_circuits: int, rng: random.Random) -> Topology:
    b = _InvBuilder(rng)
    total = sum(CITIES.values())
    counts = {c: max(20, n_circuits * w // total) for c, w in CITIES.items()}
    counts["GZ"] += max(0, n_circuits - sum(counts.values()))
    plants = {city: _city_plant(b, city, n) for city, n in counts.items()}
    prov = []
    for i in range(max(10, n_circuits // 300)):
        grade = _pick(rng, PROV_GRADES)
        hq = rng.choices(("GZ", "SZ", "FS", "DG"), (6, 2, 1, 1))[0]
        b.customer(f"C-GD-{i + 1:04d}", "provincial", grade, hq)
        prov.append(b.customers[-1])
    for city, n in counts.items():
        local = []
        for i in range(max(5, n // 4)):
            b.customer(f"C-{city}-{i + 1:05d}", "city", _pick(rng, CITY_GRADES), city)
            local.append(b.customers[-1])
        for seq in range(1, n + 1):
            cust = rng.choice(prov) if rng.random() < 0.08 else rng.choice(local)
            _circuit(b, city, seq, plants[city], cust, plants)
    b.topo.doc = {"customers": b.customers, "resources": list(b.resources.values()), "circuits": b.circuits}
    return b.topo


# ---------------------------------------------------------------------------------- storm

SOURCES = {"cpe": "gd-cpe-mon-1", "olt": "gd-olt-ems-1", "ring": "gd-otn-nms-1", "agg": "gd-otn-nms-1",
           "trunk": "gd-otn-nms-2", "pe": "gd-ipran-nms-1", "core": "gd-core-oss-1", "bogus": "gd-otn-nms-1"}


@dataclass
class Episode:
    source: str
    alarm_id: str
    resource: str
    cause: str
    severity: str
    raised: int              # event time, seconds from BASE
    cleared: int | None      # event time of the clear, None = still active at the end


class _Storm:
    def __init__(self, topo: Topology, rng: random.Random, span_s: int) -> None:
        self.topo = topo
        self.rng = rng
        self.span = span_s
        self.lines: list[tuple[int, int, dict | bytes]] = []   # (at, seq, alarm dict | raw line)
        self.episodes: list[Episode] = []
        self.ids = 0
        self.seq = 0

    def _at(self, et: int) -> int:
        r = self.rng.random()
        return et + (self.rng.randint(30, 120) if r < 0.03 else self.rng.randint(0, 4))

    def emit(self, ep: Episode, state: str, et: int) -> None:
        self.seq += 1
        self.lines.append((self._at(et), self.seq, {
            "source": ep.source, "alarm_id": ep.alarm_id, "resource_id": ep.resource,
            "probable_cause": ep.cause, "severity": ep.severity, "state": state,
            "event_time": et, "text": f"{ep.cause} on {ep.resource}"}))

    def episode(self, kind: str, rid: str, cause: str, severity: str, start: int, dur: int | None) -> None:
        self.ids += 1
        end = None if dur is None or start + dur >= self.span else start + max(1, dur)
        ep = Episode(SOURCES[kind], f"{self.ids:08d}", rid, cause, severity, start, end)
        self.episodes.append(ep)
        self.emit(ep, "raised", start)
        if end is not None:
            self.emit(ep, "cleared", end)

    def pick(self, kind: str) -> str:
        return self.rng.choice(self.topo.by_kind[kind])

    def fibre_cut(self, start: int) -> None:
        """An aggregation section cut (sometimes the shared duct of both routes) and its echoes."""
        rng = self.rng
        pairs = self.topo.agg_pairs
        a, z = rng.choices(pairs, [len(self.topo.cpes_on.get(p[0], ())) for p in pairs])[0]
        both = rng.random() < 0.5
        repair = rng.randint(50 * 60, 150 * 60)
        cut = [a, z] if both else [a]
        for agg in cut:
            for cause in ("LOS", "FIBER_CUT", "LOS"):          # both ends + the OTDR's verdict
                self.episode("agg", agg, cause, "critical", start + rng.randint(0, 3), repair)
            for ring in self.topo.downstream.get(agg, ()):
                self.episode("ring", ring, "LOF", "major", start + rng.randint(1, 20),
                             repair + rng.randint(0, 30))
        for agg in cut:
            for cpe, npaths in self.topo.cpes_on.get(agg, ()):
                if npaths == 1 or both:
                    self.episode("cpe", cpe, "NE_UNREACHABLE", "major", start + rng.randint(10, 120),
                                 repair + rng.randint(30, 300))

    def flapping(self, kind: str, start: int) -> None:
        rng = self.rng
        rid = self.pick(kind)
        t = start
        for _ in range(rng.randint(6, 20)):
            down = rng.randint(5, 90)
            self.episode(kind, rid, "LINK_DOWN", "major", t, down)
            t += down + rng.randint(30, 400)
            if t >= self.span:
                break

    def background(self, start: int) -> None:
        rng = self.rng
        kind = rng.choices(("cpe", "olt", "ring", "pe", "trunk"), (960, 20, 3, 10, 7))[0]
        cause = {"cpe": ("POWER_FAILURE", "NE_UNREACHABLE", "LINK_DOWN"), "olt": ("PORT_DOWN", "LOS"),
                 "ring": ("LOS", "LOF"), "pe": ("LINK_DOWN", "BGP_DOWN"), "trunk": ("LOS",)}[kind]
        dur = None if rng.random() < 0.05 else int(rng.lognormvariate(7.3, 1.0))   # median ~25 min
        self.episode(kind, self.pick(kind), rng.choice(cause), "critical", start, dur)

    def degradation(self, start: int) -> None:
        rng = self.rng
        kind = rng.choices(("ring", "pe", "olt", "agg", "cpe"), (50, 50, 100, 5, 795))[0]
        cause = rng.choice(("HIGH_BER", "PACKET_LOSS", "HIGH_LATENCY", "BANDWIDTH_LOW"))
        self.episode(kind, self.pick(kind), cause, "minor", start, rng.randint(120, 90 * 60))

    def noise(self, start: int) -> None:
        rng = self.rng
        kind = rng.choices(("cpe", "olt", "ring", "agg", "pe", "core"), (30, 20, 15, 10, 15, 10))[0]
        dur = rng.randint(60, 3 * 3600) if rng.random() < 0.8 else None
        self.episode(kind, self.pick(kind), rng.choice(NOISE_CAUSES), rng.choice(("minor", "warning")),
                     start, dur)

    def unmapped(self, start: int) -> None:
        rng = self.rng
        city = rng.choice(list(CITIES))
        rid = rng.choice((f"{city}-OTN-X{rng.randint(1, 40):02d}:9-{rng.randint(1, 8)}-1",
                          f"{city}-SW-{rng.randint(1, 300):03d}:GE0/0/{rng.randint(0, 47)}"))
        self.episode("bogus", rid, rng.choice(("LOS", "LINK_DOWN", "TEMPERATURE")), "major", start,
                     rng.randint(60, 3600))

    def repeats(self, n: int) -> None:
        """NMS re-sends of active alarms (same source + alarm_id), weighted by how long each is up."""
        rng = self.rng
        eps = self.episodes
        cum, total = [], 0
        for ep in eps:
            total += (ep.cleared if ep.cleared is not None else self.span) - ep.raised
            cum.append(total)
        for _ in range(n):
            ep = eps[bisect_right(cum, rng.random() * total)]
            end = ep.cleared if ep.cleared is not None else self.span
            et = rng.randint(ep.raised, max(ep.raised, end - 1))
            self.emit(ep, "raised", et)


def gen_storm(topo: Topology, n_alarms: int, rng: random.Random,
              hours: float = 4.0, faults: bool = True) -> tuple[list[bytes], int]:
    """The storm as §3 input lines (bytes, in non-decreasing `at`) and how many are deliberately bad.

    With faults=False only noise, unmapped alarms and their repeats: no alarm opens a fault, so
    the per-alarm cost is the look-up path alone (the scale check compares it across sizes)."""
    span = int(hours * 3600)
    s = _Storm(topo, rng, span)
    scale = n_alarms / 300_000
    for _ in range(max(2, round(6 * scale)) if faults else 0):
        s.fibre_cut(rng.randint(0, span * 3 // 4))
    for _ in range(max(3, round(40 * scale)) if faults else 0):
        s.flapping("olt" if rng.random() < 0.1 else "cpe", rng.randint(0, span - 1800))
    kinds = ((s.background, 3000), (s.degradation, 500)) if faults else ()
    for fn, count in kinds + ((s.noise, 45000), (s.unmapped, 4000)):
        for _ in range(max(5, round(count * scale))):
            fn(rng.randint(0, span - 1))
    n_bad = max(1, n_alarms // 50_000)
    s.repeats(max(0, n_alarms - n_bad - len(s.lines)))
    s.lines.sort(key=lambda x: (x[0], x[1]))
    stamps: dict[int, bytes] = {}

    def stamp(sec: int) -> bytes:
        text = stamps.get(sec)
        if text is None:
            text = stamps[sec] = (BASE + timedelta(seconds=sec)).isoformat().encode()
        return text

    dumps = orjson.dumps
    out = []
    for at, _seq, alarm in s.lines:
        alarm["event_time"] = stamp(alarm["event_time"]).decode()
        out.append(b'{"kind":"alarm","at":"' + stamp(at) + b'","alarm":' + dumps(alarm) + b"}")
    step = len(out) // (n_bad + 1)
    for i in range(n_bad, 0, -1):               # bad lines at the `at` of their neighbour
        pos = i * step
        at = orjson.loads(out[pos - 1])["at"].encode()
        out.insert(pos, BAD_LINES[i % len(BAD_LINES)].replace(b"%s", at))
    return out, n_bad


# ---------------------------------------------------------------------------------- measuring

@dataclass
class Pass:
    seconds: float
    startup: float
    records: int
    faults: int
    rejected: int
    alarms: int


def run_full(inv, rulebook, lines: list[bytes], prof: cProfile.Profile | None = None) -> Pass:
    t0 = time.perf_counter()
    pipe = Pipeline(inv, rulebook, lambda _m: None)
    pipe.settle()                      # as `faultline replay` does after start-up
    t1 = time.perf_counter()
    out = io.BytesIO()
    replay = Replay(pipe, out)
    feed = replay.feed_line
    if prof is not None:
        prof.enable()
    for lineno, raw in enumerate(lines, 1):
        feed(lineno, raw)
    if prof is not None:
        prof.disable()
    t2 = time.perf_counter()
    c = replay.counts
    return Pass(t2 - t1, t1 - t0, sum(c.values()), c["fault.opened"], replay.rejected, pipe.alarms_in)


def storm_alarms(lines: list[bytes]) -> list[dict]:
    """The normalized alarm objects of a storm's lines, as a producer would post them (the
    lines that are not JSON alarm objects left out)."""
    out = []
    for raw in lines:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict) and obj.get("kind") == "alarm" and isinstance(obj.get("alarm"), dict):
            out.append(obj["alarm"])
    return out


def decode_all(lines: list[bytes]) -> list[tuple[float, object]]:
    events = []
    for raw in lines:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        alarm = alarm_from_dict(obj.get("alarm"))
        if not isinstance(alarm, Rejected):
            events.append((parse_time(obj["at"]), alarm))
    return events


def run_engine(inv, rulebook, events: list[tuple[float, object]]) -> Pass:
    t0 = time.perf_counter()
    pipe = Pipeline(inv, rulebook, lambda _m: None)
    pipe.settle()
    t1 = time.perf_counter()
    submit = pipe.submit
    records = 0
    for at, alarm in events:
        recs, _refused = submit(alarm, at)
        records += len(recs)
    t2 = time.perf_counter()
    return Pass(t2 - t1, t1 - t0, records, pipe.correlator.fault_count, 0, pipe.alarms_in)


@dataclass
class Scenario:
    circuits: int
    lines: list[bytes]
    n_bad: int
    inv: object
    parse_s: float
    gen_s: float
    topo: Topology


def build(n_circuits: int, n_alarms: int, seed: int, faults: bool = True) -> Scenario:
    t0 = time.perf_counter()
    rng = random.Random(seed)
    topo = gen_inventory(n_circuits, rng)
    lines, n_bad = gen_storm(topo, n_alarms, rng, faults=faults)
    t1 = time.perf_counter()
    inv = parse_inventory(topo.doc)
    t2 = time.perf_counter()
    return Scenario(len(topo.doc["circuits"]), lines, n_bad, inv, t2 - t1, t1 - t0, topo)


def _median_min(passes: list[Pass], n: int) -> tuple[float, float, float]:
    rates = [n / p.seconds for p in passes]
    return statistics.median(rates), min(rates), max(rates)


def measure(sc: Scenario, rulebook, repeat: int, engine_too: bool = True) -> dict:
    full = [run_full(sc.inv, rulebook, sc.lines) for _ in range(repeat)]
    res = {"full": full, "n": len(sc.lines)}
    if engine_too:
        events = decode_all(sc.lines)
        res["events"] = len(events)
        res["engine"] = [run_engine(sc.inv, rulebook, events) for _ in range(repeat)]
    return res


def _describe(sc: Scenario) -> str:
    doc = sc.topo.doc
    loads = sorted((len(v) for v in sc.topo.cpes_on.values()), reverse=True)
    return (f"inventory: {len(doc['customers']):,} customers, {len(doc['resources']):,} resources, "
            f"{sc.circuits:,} circuits; busiest transmission sections carry {loads[0]}, {loads[1]}, "
            f"{loads[2]} paths (median {statistics.median(loads):.0f})\n"
            f"storm: {len(sc.lines):,} alarm lines over 4 h ({sc.n_bad} deliberately bad); "
            f"generated in {sc.gen_s:.1f} s (not measured)")


def report_quiet(quiet: list[tuple[Scenario, dict]]) -> None:
    """The look-up path alone (no alarm opens a fault) at each inventory size."""
    costs = [(sc.circuits, 1e6 / _median_min(r["full"], r["n"])[0]) for sc, r in quiet]
    parts = "; ".join(f"{c:,} circuits → {us:.2f} µs/alarm" for c, us in costs)
    print(f"scale, no fault work (noise, unmapped, repeats): {parts}; cost ratio "
          f"{costs[-1][1] / costs[0][1]:.2f}")


def report(big: Scenario, rb_s: float, res: dict, small: Scenario | None, small_res: dict | None) -> None:
    n = res["n"]
    full, eng = res["full"], res["engine"]
    fmed, fmin, fmax = _median_min(full, n)
    emed, emin, emax = _median_min(eng, res["events"])
    p = full[0]
    rows = [
        ("full path (feed_line → BytesIO)", fmed, fmin, fmax, 1e6 / fmed),
        ("engine only (Alarm → submit)", emed, emin, emax, 1e6 / emed),
    ]
    print(f"\n{'':34}{'median/s':>12}{'min/s':>12}{'max/s':>12}{'µs/alarm':>10}")
    for name, med, lo, hi, us in rows:
        print(f"{name:34}{med:>12,.0f}{lo:>12,.0f}{hi:>12,.0f}{us:>10.2f}")
    share = 1 - (1e6 / emed) / (1e6 / fmed)
    print(f"decode + validate + encode share of the full path: {share:.0%}")
    print(f"per pass: {p.alarms:,} alarms in, {p.records:,} records emitted, {p.faults:,} faults opened, "
          f"{p.rejected} lines rejected (expected {big.n_bad})")
    startup = statistics.median(x.startup for x in full)
    print(f"start-up (not in the rate): rulebook load {rb_s * 1e3:.0f} ms, parse_inventory "
          f"{big.parse_s * 1e3:.0f} ms, Pipeline() {startup * 1e3:.0f} ms (median)")
    if small is not None and small_res is not None:
        smed, _smin, _smax = _median_min(small_res["full"], small_res["n"])
        sp = small_res["full"][0]
        ratio = (1e6 / fmed) / (1e6 / smed)
        print(f"scale: {small.circuits:,} circuits → {smed:,.0f}/s ({1e6 / smed:.2f} µs/alarm, "
              f"{sp.faults:,} faults); {big.circuits:,} circuits → {fmed:,.0f}/s ({1e6 / fmed:.2f} µs/alarm, "
              f"{p.faults:,} faults); cost ratio {big.circuits // 1000}k/{small.circuits // 1000}k = "
              f"{ratio:.2f}")
    verdict = "MET" if fmed >= TARGET_RATE else "NOT MET"
    print(f"target: ≥ {TARGET_RATE:,} alarms/s full path, one core — {verdict} (median {fmed:,.0f}/s)")


def profile(sc: Scenario, rulebook, top: int = 25) -> None:
    prof = cProfile.Profile()
    run_full(sc.inv, rulebook, sc.lines, prof)      # start-up (Pipeline()) is not profiled
    print(f"\ncProfile of one full pass ({len(sc.lines):,} lines, start-up excluded), top {top} by tottime:")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuits", type=int, default=20_000)
    ap.add_argument("--alarms", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--small", type=int, default=2_000, help="circuits of the scale comparison (0: skip)")
    ap.add_argument("--profile", action="store_true", help="also run one pass under cProfile")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    rulebook = load_rulebook()
    rb_s = time.perf_counter() - t0
    big = build(args.circuits, args.alarms, args.seed)
    print(_describe(big))
    print(f"measuring {args.repeat} passes each (fresh Pipeline per pass, one core)…", flush=True)
    res = measure(big, rulebook, args.repeat)
    small = small_res = None
    if args.small:
        small = build(args.small, args.alarms, args.seed)
        small_res = measure(small, rulebook, args.repeat, engine_too=False)
    report(big, rb_s, res, small, small_res)
    if args.small:
        quiet = []
        for n in (args.small, args.circuits):
            sc = build(n, args.alarms, args.seed, faults=False)
            quiet.append((sc, measure(sc, rulebook, args.repeat, engine_too=False)))
        report_quiet(quiet)
    if args.profile:
        profile(big, rulebook)
    return 0


if __name__ == "__main__":
    sys.exit(main())
