"""Comparing decisions of two runs "ids aside" (issue 3): each id is replaced by what it names."""

from __future__ import annotations

from collections import Counter

import orjson


def canonical(records: list[dict]) -> Counter:
    """Decisions with ids replaced by what they name (see tests/properties/test_split_equivalence)."""
    faults, orders = {}, {}
    for r in records:
        if r["type"] == "fault.opened":
            faults[r["fault_id"]] = "|".join(str(r[k]) for k in ("kind", "circuit_id", "customer_id", "city",
                                                                 "service_type", "opened_at", "at"))
    for r in records:
        if r["type"] == "work_order.created":
            orders[r["work_order_id"]] = r["queue"] + "@" + faults[r["fault_ids"][0]]
    out: Counter = Counter()
    for r in records:
        if r["type"] == "input.rejected":
            continue
        c = dict(r)
        c.pop("incident_id", None)
        if "fault_id" in c:
            c["fault_id"] = faults.get(c["fault_id"], c["fault_id"])
        if "fault_ids" in c:
            c["fault_ids"] = sorted(faults[f] for f in c["fault_ids"])
        if "work_order_id" in c:
            c["work_order_id"] = orders[c["work_order_id"]]
        out[orjson.dumps(c, option=orjson.OPT_SORT_KEYS)] += 1
    return out
