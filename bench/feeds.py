#!/usr/bin/env python3
"""`faultline run` fed by syslog: lines over TCP and UDP to decided, beside POST /alarms.

    .venv/bin/python bench/feeds.py [--alarms 20000] [--circuits 2000] [--repeat 3] [--seed 7]

Builds the embedded runtime (services/commands/run.Embedded, every loop of the production
processes over the local transport and a temporary SQLite file) with its syslog listeners
open, on the inventory and storm of bench/engine.py's seeded generator. Each storm alarm on
a `device:port` resource becomes the Huawei VRP line a router prints for it (LINK_STATE DOWN,
or UP for a clear), and the lines are sent:
- over one TCP connection, newline-framed, as a syslog relay does;
- over UDP, paced in bursts of 500 so the kernel's socket buffer does not overflow;
- as the same alarms in normalized JSON to POST /alarms in lists of 500, over ASGI:
  the reference path of bench/run_intake.py.
For each it prints the rate to "decided": every loop, ingest included, has handled and
committed everything. Medians of `--repeat` runs, and each feed's ratio to the reference.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT), str(ROOT / "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)


def _line(alarm: dict) -> bytes:
    host, _, port = alarm["resource_id"].partition(":")
    state = "DOWN" if alarm["state"] == "raised" else "UP"
    when = datetime.fromisoformat(alarm["event_time"]).strftime("%b %d %Y %H:%M:%S%z")
    return (f"<187>{when[:-2]}:{when[-2:]} {host} %%01IFNET/4/LINK_STATE(l)[1]:The line protocol IP on "
            f"the interface {port} has entered the {state} state.").encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def one(feed: str, topo, alarms: list[dict]) -> float:
    import httpx
    from prometheus_client import CollectorRegistry

    from services.access import TokenStore
    from services.commands.run import Embedded
    from services.settings import RawListeners
    from shared.inventory import parse_inventory
    from shared.liveclock import WallClock
    from shared.rulebook import load_rulebook

    tcp_port, udp_port = _free_port(), _free_port()
    lines = [_line(a) for a in alarms]
    with tempfile.TemporaryDirectory() as tmp:
        svc = Embedded(parse_inventory(topo.doc), load_rulebook(), f"sqlite+aiosqlite:///{tmp}/b.sqlite3",
                       WallClock(), registry=CollectorRegistry(),
                       raw=RawListeners(syslog_udp=udp_port, syslog_tcp=tcp_port))
        await svc.start()
        try:
            started = time.perf_counter()
            if feed == "syslog/tcp":
                _reader, writer = await asyncio.open_connection("127.0.0.1", tcp_port)
                for i in range(0, len(lines), 1000):
                    writer.write(b"\n".join(lines[i:i + 1000]) + b"\n")
                    await writer.drain()
                writer.close()
            elif feed == "syslog/udp":
                loop = asyncio.get_running_loop()
                transport, _p = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                                    remote_addr=("127.0.0.1", udp_port))
                for i in range(0, len(lines), 500):
                    for line in lines[i:i + 500]:
                        transport.sendto(line)
                    await asyncio.sleep(0.02)
                transport.close()
            else:
                _id, token = await TokenStore(svc.db).create("admin", name="bench/feeds.py")
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=svc.app),
                                             base_url="http://b", timeout=600,
                                             headers={"Authorization": f"Bearer {token}"}) as http:
                    for i in range(0, len(alarms), 500):
                        answer = await http.post("/alarms", json=alarms[i:i + 500])
                        assert answer.status_code == 202, answer.text[:300]
            await _until_ingested(svc, len(alarms), feed)
            await svc.settle(3600)
            return len(alarms) / (time.perf_counter() - started)
        finally:
            await svc.stop()


async def _until_ingested(svc, n: int, feed: str) -> None:
    """The listeners publish asynchronously: wait until ingest has handled every line (or until
    no more come for 10 s, saying how many were lost and where)."""
    if not feed.startswith("syslog"):
        return
    counter = svc.ingest.normalized                 # the runner's own counter, not a registry scrape
    last, still = -1.0, time.monotonic()
    while True:
        seen = sum(counter.labels("syslog", o)._value.get() for o in ("alarm", "refused"))
        if seen >= n:
            return
        if seen != last:
            last, still = seen, time.monotonic()
        elif time.monotonic() - still > 10:
            c = svc.listeners.counts
            print(f"  ({feed}: {n - seen:.0f} of {n} lines never reached ingest; the listener received "
                  f"{c.received}, dropped {c.lost})")
            return
        await asyncio.sleep(0.02)


async def run(args: argparse.Namespace) -> None:
    import engine as bench  # bench/engine.py

    rng = random.Random(args.seed)
    topo = bench.gen_inventory(args.circuits, rng)
    lines, _bad = bench.gen_storm(topo, args.alarms * 3, rng, hours=1.0)
    alarms = [a for a in bench.storm_alarms(lines) if ":" in a["resource_id"]][:args.alarms]
    for a in alarms:              # what a VRP line can say: the device's port went down or up
        a.update(source="syslog", probable_cause="LINK_DOWN", alarm_id=f"{a['resource_id']}:LINK_DOWN")
    rates: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for feed in ("POST /alarms", "syslog/tcp", "syslog/udp"):
            rates.setdefault(feed, []).append(await one(feed, topo, alarms))
    ref = statistics.median(rates["POST /alarms"])
    print(f"{len(alarms)} alarms on {args.circuits} circuits, median of {args.repeat}, decided end to end:")
    for feed, got in rates.items():
        med = statistics.median(got)
        print(f"  {feed:13s} {med:8,.0f}/s  ({med / ref:.2f}× POST /alarms)  runs: "
              + ", ".join(f"{r:,.0f}" for r in got))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alarms", type=int, default=20000)
    ap.add_argument("--circuits", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
