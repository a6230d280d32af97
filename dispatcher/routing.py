"""Who gets the work order (RULES.md §4): table lookups over the rulebook's rows.

A target is (queue, rule, cc). `opening_targets` is the routing order of §4 (steps 1–4);
`serious_targets` is RT-1/RT-12/TM-4 when a fault becomes serious.
"""

from __future__ import annotations

from shared.facts import FaultFacts
from shared.rulebook import Rulebook

Target = tuple[str, str, tuple[str, ...]]

PROV_MONITORING = "prov.monitoring"
PROV_NETSERVICE = "prov.netservice"


def rule_rank(rule: str) -> int:
    """RT-17: RT-1…RT-17, then CP-2, then ES-1…ES-7, then TM-4."""
    prefix, _, num = rule.partition("-")
    n = int(num) if num.isdigit() else 99
    return {"RT": 0, "CP": 100, "ES": 200, "TM": 300}.get(prefix, 400) + n


def netservice_queue(f: FaultFacts) -> str:
    """省级集团客户地市分支机构 → 市网服: the province serves a provincial customer's HQ city."""
    cust = f.customer
    if cust is not None and cust.level == "provincial" and cust.hq_city in (None, f.city):
        return PROV_NETSERVICE
    return f"city.{f.city}.netservice"


def responsible_team(f: FaultFacts, level: str) -> str:
    """The responsible team at `level` (`prov` or `city.C`), by the fault's cause side."""
    if f.cause_side == "customer":
        return netservice_queue(f)
    layer = f.layer if f.cause_side == "core" else "transmission"
    return f"{level}.specialist.{layer}"


def expand(symbol: str, f: FaultFacts) -> str:
    """A rulebook target symbol (prov.team, city.monitoring, …) to a queue name."""
    city = f"city.{f.city}"
    if symbol == "prov.team":
        return responsible_team(f, "prov")
    if symbol == "city.team":
        return responsible_team(f, city)
    if symbol.startswith("city."):
        return city + symbol[4:]
    return symbol


def opening_targets(f: FaultFacts, rb: Rulebook) -> list[Target]:
    """§4 steps 1–3 (the first that applies) and step 4 (always added)."""
    circuit, cust = f.circuit, f.customer
    city = f"city.{f.city}"
    targets: list[Target] = []
    provincial = cust is not None and cust.level == "provincial"
    if circuit is not None and not circuit.maintenance_transferred:
        targets.append((f"{city}.netservice", "RT-11", (PROV_NETSERVICE,) if provincial else ()))
    elif f.green:
        prov = provincial or (circuit is not None and circuit.span == "cross_province")
        targets.append((PROV_MONITORING if prov else f"{city}.monitoring", "CP-2", ()))
    elif cust is None:
        targets.append((f"{city}.monitoring", "RT-16", ()))
    else:
        row = rb.level_row(cust.grade, cust.level, f.cause_side)
        if row is not None:
            targets.extend((expand(sym, f), row.id, ()) for sym in row.to)
    if circuit is not None and circuit.span == "cross_province":
        targets.append((PROV_MONITORING, "RT-9", ()))
    if circuit is not None and circuit.span == "cross_city" and circuit.z_city:
        peer = circuit.z_city if circuit.z_city != f.city else circuit.a_city
        targets.append((f"city.{peer}.monitoring", "RT-10", (PROV_MONITORING,)))
    return merge(targets)


def serious_targets(f: FaultFacts) -> list[Target]:
    """RT-1 (provincial-level customers), RT-12's prov.monitoring, TM-4's prov.netservice."""
    targets: list[Target] = []
    if f.provincial:
        cc = (PROV_NETSERVICE,)
        targets.append((responsible_team(f, "prov"), "RT-1", cc))
        targets.append((f"city.{f.city}.monitoring", "RT-1", cc))
    targets.append((PROV_MONITORING, "RT-12", ()))
    if f.provincial:
        targets.append((PROV_NETSERVICE, "TM-4", ()))
    return merge(targets)


def merge(targets: list[Target]) -> list[Target]:
    """RT-15/RT-17: one target per queue; the highest-ranked rule names it; cc lists join."""
    by_queue: dict[str, Target] = {}
    for queue, rule, cc in targets:
        held = by_queue.get(queue)
        if held is None:
            by_queue[queue] = (queue, rule, cc)
            continue
        best = rule if rule_rank(rule) < rule_rank(held[1]) else held[1]
        by_queue[queue] = (queue, best, tuple(dict.fromkeys(held[2] + cc)))
    return list(by_queue.values())
