#!/usr/bin/env python3
"""The router's ceiling: what one active router member can route per second, CPU only.

    .venv/bin/python bench/router.py [--circuits 20000] [--alarms 200000] [--seed 7] [--repeat 5]
                                     [--batch 2000]

The router (services/runtime/router_loop.py) is the one single-member component on the
path of every alarm in production: the correlate processes share the city shards, but
one router merges faultline.alarms and faultline.actions into arrival order. This times
its per-message work — arrival order (ArrivalOrder.add/release), routing each message
to its cities (validation, shard lookup, encoding: city_router.route_or_dead) and packing
each city's inputs into batch messages (batches.pack_records) — over the seeded storm of
bench/engine.py, in batches of `--batch` as the loop fetches them. The broker's fetch and
acknowledgement are not in it (they overlap with other processes' work); so this is the
ceiling of the router's own CPU on one core, and the rate above which more correlate
processes stop helping. Prints the median of `--repeat` passes with min and max.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT), str(ROOT / "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)

import engine as gen  # noqa: E402  (bench/engine.py's seeded generator)
import orjson  # noqa: E402

from services.drivers.batches import pack_records  # noqa: E402
from services.drivers.city_router import ArrivalOrder, route_or_dead  # noqa: E402
from shared.inventory import parse_inventory  # noqa: E402
from shared.topics import ALARMS  # noqa: E402
from shared.transport.port import Msg  # noqa: E402


def one_pass(inventory, msgs: list[Msg], batch: int) -> tuple[float, int]:
    """Seconds to route every message; the number of messages sent on."""
    order = ArrivalOrder(hold_s=0.0)
    owned = {(ALARMS, 0)}
    sent = 0
    started = time.perf_counter()
    for i in range(0, len(msgs), batch):
        order.add(msgs[i:i + batch])
        ready = order.release(owned)
        outs = [o for m in ready for o in route_or_dead(inventory, m)]
        sent += len(pack_records(outs))
    return time.perf_counter() - started, sent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuits", type=int, default=20000)
    ap.add_argument("--alarms", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=2000)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    topo = gen.gen_inventory(args.circuits, rng)
    lines, _bad = gen.gen_storm(topo, args.alarms, rng, hours=1.0)
    alarms = gen.storm_alarms(lines)[:args.alarms]
    inventory = parse_inventory(topo.doc)
    t0 = 1_764_032_400_000
    msgs = [Msg(ALARMS, 0, i, a.get("resource_id"), orjson.dumps(a), t0 + i) for i, a in enumerate(alarms)]
    times = []
    for _ in range(args.repeat):
        seconds, sent = one_pass(inventory, msgs, args.batch)
        times.append(seconds)
    rates = sorted(len(msgs) / s for s in times)
    print(f"router ceiling: {len(msgs):,} storm alarms on {args.circuits:,} circuits, fetched "
          f"{args.batch} at a time, one core: median {statistics.median(rates):,.0f} alarms/s "
          f"(min {rates[0]:,.0f}, max {rates[-1]:,.0f}; {1e6 / statistics.median(rates):.1f} µs/alarm), "
          f"{sent:,} batch messages sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
