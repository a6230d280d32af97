#!/usr/bin/env python3
"""End-to-end throughput of the split production pipeline (Kafka + PostgreSQL), one machine.

    .venv/bin/python bench/pipeline.py [--circuits 300] [--alarms 60000] [--seed 11] [--runs 3]

bench/engine.py measures the engine alone, in one process. This measures what production
does with the same storm generator: the §3 alarm lines go to a real Kafka-protocol broker
(Tansu, in memory), `faultline correlate` (router with its arrival-order hold, correlator
shards) and `faultline dispatch` run as OS processes, and every input is committed to
PostgreSQL (input log, outbox, read model) before anything goes on. The figure is wall time
from the first line fed (the stages up and in their consumer groups) until every decision
`faultline replay` makes on the same lines (input.rejected aside) is stored in the outbox;
also the time to the first stored decision, the latency of each decision (see `latencies`)
and the CPU time per alarm of each process.
Each run gets a fresh broker and a fresh database. Everything (broker, stages, PostgreSQL,
this feeder) shares the machine's cores, so the rate is the whole system's, not one stage's.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from bisect import bisect_left
from pathlib import Path

import asyncpg
import orjson

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT), str(ROOT / "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)

from integration import pg_fixtures as pg  # noqa: E402
from integration.kafka_fixtures import Tansu  # noqa: E402
from integration.pipeline_support import (  # noqa: E402
    Proc,
    kill_leftovers,
    late_warnings,
    stage_env,
    storm,
    wait_http,
)

from shared.clock import parse_time  # noqa: E402
from shared.inventory import load_inventory  # noqa: E402
from shared.rulebook import load_rulebook  # noqa: E402
from shared.topics import DECISIONS  # noqa: E402
from shared.transport.kafka import KafkaConfig, Producer  # noqa: E402
from tools.kafka_events import BATCH, messages, published, replay_records  # noqa: E402

POLL_S = 0.1        # how often the outbox is polled: each decision is seen up to this late
QUIET_S = 20.0      # a run short of replay's count ends when no decision came for this long

# Log lines saying a stage's consumer groups have their partitions (/healthz answers before).
JOINED = {"correlate": ("Successfully synced group faultline-router", "correlate: assigned partitions"),
          "dispatch": ("dispatch: assigned partitions",)}


class DecisionCounter:
    """Decisions stored in the outbox so far. A row holds one input's decisions (a JSON array);
    only rows not seen before are read, as rows of several shards commit out of id order.
    `seen` keeps, per decision, its `at` (ms) and the wall time (time.time()) just before the
    poll that first saw its row: the row was committed before then."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn, self.rows, self.seen = conn, set(), []

    @property
    def total(self) -> int:
        return len(self.seen)

    async def count(self) -> int:
        polled = time.time()
        ids = await self.conn.fetch("SELECT id FROM outbox WHERE topic = $1", DECISIONS)
        if new := [r["id"] for r in ids if r["id"] not in self.rows]:
            for row in await self.conn.fetch("SELECT value FROM outbox WHERE id = ANY($1)", new):
                for rec in orjson.loads(row["value"]):
                    self.seen.append((round(parse_time(orjson.loads(rec)["at"]) * 1000), polled))
            self.rows.update(new)
        return self.total


async def send_timed(bootstrap: str, lines: list[bytes], until: str | None,
                     rate: float | None = None) -> list[tuple[int, float]]:
    """tools/kafka_events.send (the same messages, the same acknowledged batches of 500), and
    for each message its timestamp (ms, the line's `at`) and the wall time its batch was
    acknowledged by the broker. With `rate` (messages/s) the feed is paced instead: batches
    of rate/20 (20 sends a second), each sent when its first message is due on the schedule."""
    producer = Producer(KafkaConfig(bootstrap))
    await producer.start()
    sent: list[tuple[int, float]] = []
    size = BATCH if rate is None else max(1, int(rate / 20))
    try:
        batch = messages(lines, until)
        start = time.perf_counter()
        for i in range(0, len(batch), size):
            part = batch[i:i + size]
            if rate is not None:
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            await producer.send_many(part)
            acked = time.time()
            sent.extend((m[4], acked) for m in part)
        return sent
    finally:
        await producer.stop()


def latencies(sent: list[tuple[int, float]], seen: list[tuple[int, float]], *,
              last: bool = True) -> list[float]:
    """Seconds from input to stored decision, one per decision. The clock is the inputs' time
    (FAULTLINE_CLOCK=stream): a decision stamped `at` was made by the input of that time, or,
    for a timer, by the first input at or after its due time; so its input is taken to be the
    first message sent with a timestamp >= `at` (the earliest such, so never too late), and
    its send time the acknowledgement of that message's batch. The decision's time is the
    poll that first saw its outbox row (up to POLL_S late). Both err towards a longer latency.
    `last=False` leaves out the decisions of the last message (the closing tick, whose jump
    of hours fires every timer still pending at once)."""
    order = sorted(sent)
    stamps = [ts for ts, _acked in order]
    first = [0.0] * len(order)                     # earliest acknowledgement at or after each stamp
    low = float("inf")
    for i in range(len(order) - 1, -1, -1):
        low = first[i] = min(low, order[i][1])
    out = []
    end = len(order) if last else len(order) - 1
    for at, polled in seen:
        i = bisect_left(stamps, at)
        if i < end:
            out.append(polled - first[i])
    return out


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cpu_snapshot(conn: asyncpg.Connection, pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds of the stages, the broker, the PostgreSQL backends serving them, and the
    whole machine's busy and total ticks (all cores; idle and iowait are not busy)."""
    backends = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                                " AND pid <> pg_backend_pid()")
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return ({k: cpu_s(pid) for k, pid in pids.items()} | {f"pg{r['pid']}": cpu_s(r["pid"]) for r in backends}
            | {"busy": sum(ticks) - ticks[3] - ticks[4], "ticks": sum(ticks)})


def late_messages(proc: Proc) -> int:
    """Messages the router saw reach the broker more than the arrival hold after later ones
    (it logs each such batch): handled in arrival order, so replay may rightly differ."""
    return sum(int(line.split(" WARNING ", 1)[1].split()[0]) for line in late_warnings([proc.log_path]))


async def wait_joined(procs: list[Proc], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(all(line in p.tail(200) for line in JOINED[p.stage]) for p in procs):
        if time.monotonic() > deadline:
            raise TimeoutError("\n\n".join(f"{p.stage}:\n{p.tail()}" for p in procs))
        await asyncio.sleep(0.1)


async def one_run(n: int, server: str, storm_: tuple, expected: int, tmp: Path, timeout: float,
                  env_extra: dict[str, str] | None = None, verbose: bool = True,
                  quiet_s: float = QUIET_S, rate: float | None = None) -> dict:
    """One run on a fresh broker and database. Returns the figures (seconds, CPU seconds per
    process, decision latencies) and `ok`: replay's count stored, clean exits, nothing late.
    The run ends when replay's count is stored, or `quiet_s` after the feed is done and no new
    decision came (then the time is the last decision's and `ok` is false), or at `timeout`.
    `rate`: pace the feed at that many messages a second (send_timed)."""
    inventory, lines, until = storm_
    broker, procs, name, conn = Tansu(), [], f"faultline_bench_{uuid.uuid4().hex[:10]}", None
    try:
        broker.start()
        db = await pg.create_database(server, name)
        started = time.perf_counter()
        env = stage_env(broker.bootstrap, pg.to_sqlalchemy(db), inventory) | (env_extra or {})
        procs = [Proc(stage, env, tmp).start() for stage in ("correlate", "dispatch")]
        await asyncio.gather(*(wait_http(p.port) for p in procs))
        await wait_joined(procs)        # Tansu's first group join takes ~5 s: start-up, not timed
        startup = time.perf_counter() - started
        conn = await asyncpg.connect(db)
        counter = DecisionCounter(conn)
        pids = {p.stage: p.proc.pid for p in procs} | {"tansu": broker.proc.pid}
        cpu0 = await cpu_snapshot(conn, pids)
        t0 = time.perf_counter()
        feeding = asyncio.create_task(send_timed(broker.bootstrap, lines, until, rate))
        first = fed = None
        last, changed = 0, 0.0
        while True:
            stored = await counter.count()
            now = time.perf_counter() - t0
            first = now if first is None and stored else first
            if stored != last:
                last, changed = stored, now
            if fed is None and feeding.done():
                feeding.result()                            # a failed feed ends the run here
                fed = now
            if stored >= expected or now > timeout:
                break
            if fed is not None and now - max(fed, changed) > quiet_s:
                now = changed                               # stuck short of replay's count
                break
            await asyncio.sleep(POLL_S)                     # so each time is up to POLL_S late
        wall, fed, first = now, fed or now, first or now
        cpu1 = await cpu_snapshot(conn, pids)
        cpu = {k: cpu1[k] - cpu0[k] for k in pids}
        cpu["postgres"] = sum(v - cpu0.get(k, 0.0) for k, v in cpu1.items() if k.startswith("pg"))
        machine = (cpu1["busy"] - cpu0["busy"]) / (cpu1["ticks"] - cpu0["ticks"])
        sent = await feeding
        lat = latencies(sent, counter.seen)
        lat_feed = latencies(sent, counter.seen, last=until is None)
        await asyncio.sleep(2)                              # anything stored twice shows up now
        stored = await counter.count()
        codes = [p.terminate() for p in procs]
        late = late_messages(procs[0])
        ok = stored == expected and codes == [0, 0] and not late
        if verbose:
            print(f"run {n}: {len(lines):,} alarms, {stored:,} decisions, {wall:.1f} s, "
                  f"{len(lines) / wall:,.0f} alarms/s end to end; first decision {first:.2f} s, "
                  f"feed done {fed:.1f} s (start-up {startup:.1f} s, not timed)")
            print(f"       latency input → stored decision: p50 {pct(lat, 0.5):.2f} s, "
                  f"p99 {pct(lat, 0.99):.2f} s, max {max(lat, default=float('nan')):.2f} s")
            print("       CPU s in the run: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
                  + f"; machine busy {machine:.0%} of {os.cpu_count()} cores", flush=True)
        if not ok:
            print(f"WARNING run {n}: {stored:,} decisions stored, replay expects {expected:,}; "
                  f"exit codes after SIGTERM {codes}; {late} message(s) later than the arrival hold")
            for p in procs:
                print(f"--- {p.stage} log tail:\n{p.tail(15)}")
        return {"wall": wall, "first": first, "fed": fed, "ok": ok, "cpu": cpu, "machine": machine,
                "latencies": lat, "latencies_feed": lat_feed,
                "stored": stored, "startup": startup, "alarms": len(lines)}
    finally:
        for p in procs:
            try:
                p.terminate()
            except subprocess.TimeoutExpired:
                p.kill()
        kill_leftovers()
        if conn is not None:
            await conn.close()
        await pg.drop_database(server, name)
        broker.close()
        broker.log_path.unlink(missing_ok=True)


async def bench(args: argparse.Namespace, tmp: Path) -> int:
    inventory, lines, until = the_storm = storm(args.circuits, args.alarms, args.seed, tmp)
    records = replay_records(load_inventory(inventory), load_rulebook(), lines, until)
    expected = published(records)                      # refusals are dead-lettered, not stored
    print(f"storm: {len(lines):,} alarm lines on {args.circuits:,} circuits (seed {args.seed}), "
          f"tick to {until}; replay: {expected:,} decisions to store")
    results = []
    with pg.postgres_server() as server:          # found as the integration tests find it
        print(f"PostgreSQL: {server.rpartition('@')[2]}; {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.2f} before the runs", flush=True)
        for n in range(1, args.runs + 1):
            results.append(await one_run(n, server, the_storm, expected, tmp, args.timeout))
    walls = [r["wall"] for r in results]
    wall = statistics.median(walls)
    print(f"median of {len(results)}: {wall:.1f} s, {len(lines) / wall:,.0f} alarms/s end to end "
          f"({expected / wall:,.0f} decisions/s; min {min(walls):.1f} s, max {max(walls):.1f} s); "
          f"first decision {statistics.median(r['first'] for r in results):.2f} s; "
          f"feed done {statistics.median(r['fed'] for r in results):.1f} s; latency p50 "
          f"{statistics.median(pct(r['latencies'], 0.5) for r in results):.2f} s, p99 "
          f"{statistics.median(pct(r['latencies'], 0.99) for r in results):.2f} s")
    return 0 if all(r["ok"] for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuits", type=int, default=300)
    ap.add_argument("--alarms", type=int, default=60_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600, help="seconds a run may take before it gives up")
    return run_bench(bench, ap.parse_args(argv), "faultline-bench-", kill_leftovers)


def run_bench(bench_, args: argparse.Namespace, prefix: str, cleanup) -> int:
    """asyncio.run(bench_(args, tmp)) in a temporary directory; Ctrl-C and SIGTERM end it with
    `cleanup()` (the processes it started) and the directory removed, like a normal end."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    signal.signal(signal.SIGTERM, signal.default_int_handler)   # SIGTERM cleans up like Ctrl-C
    try:
        return asyncio.run(bench_(args, tmp))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
