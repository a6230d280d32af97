"""A small builder for rule scenarios: an inventory, timed inputs, and the records they yield.

Tests drive the same Pipeline and Replay as `faultline replay`, on a simulated clock, so a
scenario of hours runs in microseconds.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import orjson

from services.commands.replay import Replay
from services.drivers.pipeline import Pipeline
from shared.clock import SHANGHAI, parse_time
from shared.inventory import parse_inventory
from shared.rulebook import load_rulebook

BASE = datetime(2026, 11, 25, 10, 0, 0, tzinfo=SHANGHAI)   # a Wednesday, in office hours
RULEBOOK = load_rulebook()


def t(minutes: float = 0, *, base: datetime = BASE) -> str:
    """An ISO time `minutes` after the scenario's base (10:00 on 2026-11-25, +08:00)."""
    return (base + timedelta(minutes=minutes)).isoformat()


class Inv:
    """Inventory builder. Circuits default to one path of [CPE, transmission, PE] resources."""

    def __init__(self) -> None:
        self.customers: list[dict] = []
        self.resources: dict[str, dict] = {}
        self.circuits: list[dict] = []

    def customer(self, cid: str, level: str = "city", grade: str = "standard", name: str | None = None,
                 hq_city: str | None = None) -> Inv:
        c = {"customer_id": cid, "name": name or f"客户{cid}", "level": level, "grade": grade}
        if hq_city:
            c["hq_city"] = hq_city
        self.customers.append(c)
        return self

    def resource(self, rid: str, layer: str, city: str = "GZ", maintainer: str = "city") -> Inv:
        self.resources[rid] = {"resource_id": rid, "layer": layer, "city": city, "maintainer": maintainer}
        return self

    def circuit(self, circuit_id: str, customer_id: str, service_type: str = "internet", *,
                a_city: str = "GZ", z_city: str | None = None, span: str = "local",
                paths: list[list[str]] | None = None, transferred: bool = True) -> Inv:
        if paths is None:
            paths = [[f"{circuit_id}-CPE", f"{circuit_id}-OTN", f"{circuit_id}-PE"]]
        for path in paths:
            for rid in path:
                if rid not in self.resources:
                    layer = ("cpe" if "CPE" in rid else "transmission" if "OTN" in rid
                             else "access" if "OLT" in rid else "core" if "CORE" in rid else "data")
                    self.resource(rid, layer, a_city, "province" if "POTN" in rid else "city")
        self.circuits.append({"circuit_id": circuit_id, "customer_id": customer_id,
                              "service_type": service_type, "a_city": a_city, "z_city": z_city,
                              "span": span, "maintenance_transferred": transferred, "paths": paths})
        return self

    def doc(self) -> dict:
        return {"customers": self.customers, "resources": list(self.resources.values()),
                "circuits": self.circuits}

    def build(self):
        return parse_inventory(self.doc())


_alarm_ids = iter(range(1, 10**9))


def alarm(at_min: float, resource: str, cause: str = "LOS", state: str = "raised", *,
          event_min: float | None = None, alarm_id: str | None = None, source: str = "nms-1") -> dict:
    """An `alarm` input line; event time defaults to the arrival time."""
    return {"kind": "alarm", "at": t(at_min), "alarm": {
        "source": source, "alarm_id": alarm_id or f"A{next(_alarm_ids)}", "resource_id": resource,
        "probable_cause": cause, "severity": "critical", "state": state,
        "event_time": t(at_min if event_min is None else event_min), "text": cause}}


def raise_clear(resource: str, start: float, end: float, cause: str = "LOS", **kw) -> list[dict]:
    aid = f"A{next(_alarm_ids)}"
    return [alarm(start, resource, cause, alarm_id=aid, **kw),
            alarm(end, resource, cause, "cleared", alarm_id=aid, **kw)]


def complaint(at_min: float, customer: str, city: str = "GZ", service_type: str = "internet", *,
              channel: str = "10086-8", scope: str = "all_users", cid: str | None = None) -> dict:
    return {"kind": "complaint", "at": t(at_min), "complaint": {
        "complaint_id": cid or f"CSP-{next(_alarm_ids)}", "channel": channel, "customer_id": customer,
        "city": city, "service_type": service_type, "scope": scope, "text": "全部无法上网"}}


def action(at_min: float, kind: str, select: dict, **fields) -> dict:
    return {"kind": kind, "at": t(at_min), "select": select, **fields}


class Result:
    """The records of a run, with small queries for assertions."""

    def __init__(self, records: list[dict], status: int, stdout: bytes) -> None:
        self.records = records
        self.status = status
        self.stdout = stdout

    def of(self, type_: str, **match) -> list[dict]:
        return [r for r in self.records if r["type"] == type_
                and all(r.get(k) == v for k, v in match.items())]

    def one(self, type_: str, **match) -> dict:
        found = self.of(type_, **match)
        assert len(found) == 1, f"expected one {type_} {match}, got {len(found)}: {found}"
        return found[0]

    def none(self, type_: str, **match) -> None:
        found = self.of(type_, **match)
        assert not found, f"expected no {type_} {match}, got {found}"

    def orders(self, fault_id: str | None = None) -> dict[str, dict]:
        """work_order.created records by queue (for one fault when given)."""
        return {r["queue"]: r for r in self.of("work_order.created")
                if fault_id is None or fault_id in r["fault_ids"]}

    def types(self) -> list[str]:
        return [r["type"] for r in self.records]


def run(inv: Inv | dict, events: list[dict | str], until: str | None = None, rulebook=None,
        warn=None) -> Result:
    """Replay `events` (dicts or raw lines) against the inventory; returns every record."""
    inventory = parse_inventory(inv.doc() if isinstance(inv, Inv) else inv)
    pipeline = Pipeline(inventory, rulebook or RULEBOOK, warn)
    out = io.BytesIO()
    replay = Replay(pipeline, out)
    lines = [e if isinstance(e, str) else orjson.dumps(e).decode() for e in events]
    stream = io.BytesIO(("\n".join(lines) + "\n").encode())
    status = replay.run(stream, parse_time(until) if until else None)
    data = out.getvalue()
    return Result([orjson.loads(x) for x in data.splitlines()], status, data)


def one_circuit() -> Inv:
    """A provincial gold customer's one internet line in GZ: CPE, OTN port, PE."""
    inv = Inv().customer("C1", "provincial", "gold", name="测试客户", hq_city="GZ")
    inv.circuit("GZ-L-1", "C1", paths=[["GZ-L-1-CPE", "GZ-L-1-OTN", "GZ-L-1-PE"]])
    return inv


def dumps(obj) -> str:
    """A replay line as text."""
    return orjson.dumps(obj).decode()


CROSS_CITY_ROOT = "GD-POTN-GZ-SZ:1-1-1"   # a provincial trunk section under circuits of GZ and of SZ


def cross_city_trunk() -> Inv:
    """Two provincial customers, one internet circuit each, A-ends in GZ and in SZ, both over
    CROSS_CITY_ROOT: a root under circuits of two A-end cities (AL-6, RT-13)."""
    root = CROSS_CITY_ROOT
    return (Inv()
            .customer("P-GZ", "provincial", hq_city="GZ").customer("P-SZ", "provincial", hq_city="SZ")
            .resource(root, "transmission", "GZ", "province")
            .circuit("GZ-INT-1", "P-GZ", a_city="GZ", paths=[["GZ-INT-1-CPE", root, "GZ-INT-1-PE"]])
            .circuit("SZ-INT-1", "P-SZ", a_city="SZ", paths=[["SZ-INT-1-CPE", root, "SZ-INT-1-PE"]]))
