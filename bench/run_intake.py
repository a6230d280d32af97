#!/usr/bin/env python3
"""`faultline run` under an alarm storm: POST /alarms in lists, decided end to end.

    .venv/bin/python bench/run_intake.py [--alarms 20000] [--circuits 2000] [--batch 500]
                                         [--in-flight 4] [--seed 7]

Builds the embedded runtime (services/commands/run.Embedded: every loop of the production
processes over the local transport and a temporary SQLite file) on an inventory and storm
from bench/engine.py's seeded generator, posts the storm's alarms to its HTTP app over ASGI
(no sockets: the service's own cost) in lists of `--batch`, `--in-flight` requests at once,
and prints two rates: accepted (each list answered 202 once durable on the transport) and
decided (until every loop has handled and committed everything).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT), str(ROOT / "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)


async def run(args: argparse.Namespace) -> None:
    import engine as bench  # bench/engine.py
    import httpx
    from prometheus_client import CollectorRegistry

    from services.access import TokenStore
    from services.commands.run import Embedded
    from shared.inventory import parse_inventory
    from shared.liveclock import WallClock
    from shared.rulebook import load_rulebook

    rng = random.Random(args.seed)
    topo = bench.gen_inventory(args.circuits, rng)
    lines, _bad = bench.gen_storm(topo, args.alarms, rng, hours=1.0)
    alarms = bench.storm_alarms(lines)[:args.alarms]
    with tempfile.TemporaryDirectory() as tmp:
        svc = Embedded(parse_inventory(topo.doc), load_rulebook(), f"sqlite+aiosqlite:///{tmp}/b.sqlite3",
                       WallClock(), registry=CollectorRegistry())
        await svc.start()
        try:
            transport = httpx.ASGITransport(app=svc.app)
            _id, token = await TokenStore(svc.db).create("admin", name="bench/run_intake.py")
            async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600,
                                         headers={"Authorization": f"Bearer {token}"}) as http:
                queue = [alarms[i:i + args.batch] for i in range(0, len(alarms), args.batch)]
                started = time.perf_counter()

                async def poster() -> None:
                    while queue:
                        answer = await http.post("/alarms", json=queue.pop(0))
                        assert answer.status_code == 202, answer.text[:300]
                await asyncio.gather(*(poster() for _ in range(args.in_flight)))
                accepted = time.perf_counter()
                await svc.settle(3600)
                decided = time.perf_counter()
        finally:
            await svc.stop()
    n = len(alarms)
    print(f"{n} alarms in lists of {args.batch}, {args.in_flight} in flight: "
          f"accepted {n / (accepted - started):,.0f}/s, decided end to end {n / (decided - started):,.0f}/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alarms", type=int, default=20000)
    ap.add_argument("--circuits", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
