#!/usr/bin/env python3
"""What asking costs (issue 13): inputs asked of every shard before they go to one — every
complaint, and an action selecting by customer and service without a city — against inputs
routed at once, in `faultline run` end to end.

    .venv/bin/python bench/asks.py [--circuits 2000] [--singles 40] [--alarms 20000] [--rate 2] [--runs 3]

Builds the embedded runtime (services/commands/run.Embedded over the local transport and a
temporary SQLite file) on bench/engine.py's seeded inventory, and measures over ASGI:

1. one input at a time, POSTed with `wait_s` (answered once decided): the median latency of
   an alarm, of a complaint, and of a customer-select action (both asked), and their ratio;
2. a storm of alarms in lists of 500, four in flight, decided end to end: alone, and with
   complaints POSTed alongside at `--rate` a second (each an ask that holds the router for
   a round trip through the shards); the ratio of the decided rates.

Medians of `--runs` runs each (this machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT), str(ROOT / "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)


async def service(topo, tmp: str):
    import httpx
    from prometheus_client import CollectorRegistry

    from services.access import TokenStore
    from services.commands.run import Embedded
    from shared.inventory import parse_inventory
    from shared.liveclock import WallClock
    from shared.rulebook import load_rulebook

    svc = Embedded(parse_inventory(topo.doc), load_rulebook(), f"sqlite+aiosqlite:///{tmp}/b.sqlite3",
                   WallClock(), registry=CollectorRegistry())
    await svc.start()
    _id, token = await TokenStore(svc.db).create("admin", name="bench/asks.py")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=svc.app), base_url="http://bench", timeout=600,
                             headers={"Authorization": f"Bearer {token}"})
    return svc, http


def complaint_body(topo, rng: random.Random, n: int) -> dict:
    customer = rng.choice(topo.doc["customers"])
    city = customer.get("hq_city") or "GZ"
    return {"complaint_id": f"B-{n}-{rng.random():.9f}", "channel": "10086-8",
            "customer_id": customer["customer_id"], "city": city, "service_type": "internet",
            "scope": "partial", "text": "bench"}


async def singles(topo, alarms: list[dict], n: int, seed: int) -> dict[str, float]:
    """Median seconds from POST to decided, per kind of input, one at a time."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        svc, http = await service(topo, tmp)
        took: dict[str, list[float]] = {"alarm": [], "complaint": [], "customer select": []}
        try:
            for i in range(n):
                for kind in took:
                    if kind == "alarm":
                        path, body = "/alarms", alarms[i]
                    elif kind == "complaint":
                        path, body = "/complaints", complaint_body(topo, rng, i)
                    else:
                        customer = rng.choice(topo.doc["customers"])["customer_id"]
                        path, body = "/actions", {"kind": "escalate", "reason": "ES-6", "select": {
                            "customer_id": customer, "service_type": "internet"}}
                    started = time.perf_counter()
                    answer = await http.post(path, params={"wait_s": 10}, json=body)
                    took[kind].append(time.perf_counter() - started)
                    assert answer.status_code in (202, 200, 422), answer.text[:300]
        finally:
            await http.aclose()
            await svc.stop()
    return {kind: statistics.median(values) for kind, values in took.items()}


async def storm(topo, alarms: list[dict], rate: float, seed: int) -> float:
    """Alarms decided per second end to end, with complaints at `rate` a second (0: none)."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        svc, http = await service(topo, tmp)
        try:
            lists = [alarms[i:i + 500] for i in range(0, len(alarms), 500)]
            started = time.perf_counter()
            posting = True

            async def post_alarms() -> None:
                while lists:
                    answer = await http.post("/alarms", json=lists.pop(0))
                    assert answer.status_code == 202, answer.text[:300]

            async def post_complaints() -> None:
                n = 0
                while rate and posting:
                    answer = await http.post("/complaints", json=complaint_body(topo, rng, n))
                    assert answer.status_code == 202, answer.text[:300]
                    n += 1
                    await asyncio.sleep(1 / rate)

            complaints = asyncio.create_task(post_complaints())
            await asyncio.gather(*(post_alarms() for _ in range(4)))
            await svc.settle(3600)
            took = time.perf_counter() - started
            posting = False
            complaints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await complaints
            return len(alarms) / took
        finally:
            await http.aclose()
            await svc.stop()


async def run(args: argparse.Namespace) -> None:
    import engine as bench  # bench/engine.py

    rng = random.Random(args.seed)
    topo = bench.gen_inventory(args.circuits, rng)
    lines, _bad = bench.gen_storm(topo, args.alarms, rng, hours=1.0)
    alarms = bench.storm_alarms(lines)[:args.alarms]
    shards = len({c["a_city"] for c in topo.doc["circuits"]})
    print(f"inventory: {args.circuits} circuits, {shards} A-end cities; runs: {args.runs}")
    per_run = [await singles(topo, alarms, args.singles, args.seed + r) for r in range(args.runs)]
    median = {kind: statistics.median(r[kind] for r in per_run) for kind in per_run[0]}
    for kind, seconds in median.items():
        print(f"one {kind:<16} POST → decided: median {seconds * 1000:6.1f} ms "
              f"({seconds / median['alarm']:.2f}× an alarm)")
    alone = statistics.median([await storm(topo, alarms, 0, args.seed + r) for r in range(args.runs)])
    mixed = statistics.median([await storm(topo, alarms, args.rate, args.seed + r) for r in range(args.runs)])
    print(f"storm of {len(alarms)} alarms: alone {alone:,.0f}/s decided; with {args.rate:g} complaints/s "
          f"{mixed:,.0f}/s ({mixed / alone:.2f}×)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuits", type=int, default=2000)
    ap.add_argument("--singles", type=int, default=40)
    ap.add_argument("--alarms", type=int, default=20000)
    ap.add_argument("--rate", type=float, default=2.0, help="complaints a second during the storm")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
