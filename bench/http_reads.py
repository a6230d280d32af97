#!/usr/bin/env python3
"""Do reads starve intake? POST /alarms latency on the embedded app while clients poll GET /faults.

    .venv/bin/python bench/http_reads.py [--circuits 40000] [--pollers 4] [--seconds 20]
                                         [--path /faults] [--seed 7]

A server subprocess runs `faultline run`'s app (services.commands.run) on loopback with a temporary
SQLite file and an inventory from bench/engine.py's seeded generator. Before serving, its
state is primed through the transport (the loops handle and store them before the client
starts) with a LOS alarm on every resource, so most circuits have an open fault
(40,000 circuits: about the 27 MB GET /faults answer of issue 7). The client then, for
`--seconds` each, posts alarms one after another (a new TEMPERATURE alarm each time: stored,
no fault) with no poller, then with `--pollers` clients looping GET `--path`, and prints the
POST latency (median, p95, max) and what the pollers got. Bounded: each phase stops after
`--seconds` (plus at most one in-flight request, 120 s timeout).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (str(ROOT), str(ROOT / "tests")):          # tests/tokens.py: the client's token
    if _p not in sys.path:
        sys.path.insert(0, _p)


# ---------------------------------------------------------------------------------- server side

def serve(port: int, circuits: int, seed: int, db: str) -> int:
    import orjson

    from bench.engine import gen_inventory
    from services.commands import run as live
    from shared.clock import fmt_time
    from shared.inventory import parse_inventory
    from shared.liveclock import WallClock
    from shared.rulebook import load_rulebook
    from shared.topics import ALARMS

    topo = gen_inventory(circuits, random.Random(seed))
    inventory = parse_inventory(topo.doc)
    clock = WallClock()
    svc = live.Embedded(inventory, load_rulebook(), f"sqlite+aiosqlite:///{db}", clock)

    async def prime(svc, stop) -> None:
        now = clock.now()
        sends = [(ALARMS, orjson.dumps({"source": "bench", "alarm_id": f"p{i}", "resource_id": rid,
                                        "probable_cause": "LOS", "severity": "critical", "state": "raised",
                                        "event_time": fmt_time(now)}), rid, None, None)
                 for i, rid in enumerate(r["resource_id"] for r in topo.doc["resources"])]
        for i in range(0, len(sends), 2000):
            await svc.producer.send_many(sends[i:i + 2000])
        await svc.settle(3600)
        print(f"primed {len(sends)} alarms", flush=True)
        await asyncio.Event().wait()

    return asyncio.run(live._serve(svc, "127.0.0.1", port, (prime,)))


# ---------------------------------------------------------------------------------- client side

def _alarm(i: int, resource: str) -> dict:
    return {"source": "bench-client", "alarm_id": f"c{i}", "resource_id": resource,
            "probable_cause": "TEMPERATURE", "severity": "minor", "state": "raised",
            "event_time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}


async def phase(base: str, pollers: int, seconds: float, path: str, resource: str, start: int,
                headers: dict[str, str]) -> dict:
    import httpx

    stop = time.monotonic() + seconds
    polls: list[tuple[float, int]] = []

    async def poll() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120, headers=headers) as http:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = await http.get(path)
                polls.append((time.perf_counter() - t0, len(r.content)))

    async def post() -> list[float]:
        lat = []
        async with httpx.AsyncClient(base_url=base, timeout=120, headers=headers) as http:
            i = start
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = await http.post("/alarms", json=_alarm(i, resource))
                lat.append(time.perf_counter() - t0)
                assert r.status_code == 202, (r.status_code, r.text[:200])
                i += 1
                await asyncio.sleep(0.05)
        return lat

    tasks = [asyncio.create_task(poll()) for _ in range(pollers)]
    lat = await post()
    await asyncio.gather(*tasks)
    lat.sort()
    return {"posts": len(lat), "p50_ms": statistics.median(lat) * 1000,
            "p95_ms": lat[int(len(lat) * 0.95) - 1] * 1000 if len(lat) >= 20 else float("nan"),
            "max_ms": lat[-1] * 1000, "polls": len(polls),
            "poll_mb": statistics.median(b for _, b in polls) / 1e6 if polls else 0.0,
            "poll_s": statistics.median(s for s, _ in polls) if polls else 0.0}


async def client(args: argparse.Namespace, port: int, proc: subprocess.Popen, db: str) -> None:
    import httpx
    from tokens import bearer_at

    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            async with httpx.AsyncClient(base_url=base) as http:
                if (await http.get("/healthz")).status_code == 200:
                    break
        except httpx.TransportError:
            await asyncio.sleep(0.5)
    headers = await bearer_at(f"sqlite+aiosqlite:///{db}")        # the server's database
    async with httpx.AsyncClient(base_url=base, headers=headers) as http:
        resource = (await http.get("/faults", params={"limit": 1})).json()[0]["root_resource"]
    quiet = await phase(base, 0, args.seconds, args.path, resource, 0, headers)
    busy = await phase(base, args.pollers, args.seconds, args.path, resource, 1_000_000, headers)
    for name, r in (("no poller", quiet), (f"{args.pollers} pollers GET {args.path}", busy)):
        print(f"{name:>34}: POST /alarms p50 {r['p50_ms']:8.1f} ms  p95 {r['p95_ms']:8.1f} ms  "
              f"max {r['max_ms']:8.1f} ms  ({r['posts']} posts)  "
              f"polls {r['polls']}, {r['poll_mb']:.2f} MB, {r['poll_s']:.2f} s each (median)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuits", type=int, default=40000)
    ap.add_argument("--pollers", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--path", default="/faults")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--port", type=int, default=18931)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        return serve(args.port, args.circuits, args.seed, args.db)
    with tempfile.TemporaryDirectory(prefix="faultline-bench-") as tmp:
        db = os.path.join(tmp, "db.sqlite3")
        cmd = [sys.executable, __file__, "--serve", "--port", str(args.port), "--circuits",
               str(args.circuits), "--seed", str(args.seed), "--db", db]
        proc = subprocess.Popen(cmd, cwd=ROOT)
        try:
            asyncio.run(client(args, args.port, proc, db))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
