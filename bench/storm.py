#!/usr/bin/env python3
"""The live service under one seeded alarm storm: `faultline run` over HTTP against Alertmanager,
the production pipeline, memory, and the restart after N logged inputs (issue 9).

    .venv/bin/python bench/storm.py [--circuits 20000] [--alarms 60000] [--seed 7] [--runs 3]
                                    [--batch 500] [--in-flight 4] [--restart-inputs 100000]
                                    [--timeout 900] [--arrival-hold-ms 1000] [--quick]

One inventory and one storm from bench/engine.py's seeded generator (gen_inventory, gen_storm,
storm_alarms) are used throughout; generating them, writing files and `faultline replay`'s
count are not timed. Each of `--runs` runs measures, in this order:

1. `faultline run` (a real OS process: `python -m services.cli run`, a fresh temporary SQLite
   file, the inventory file, FAULTLINE_CLOCK unset = wall, its default log level) on a free
   port. *ready (empty db)*: from Popen until GET /readyz answers 200. Then the storm's
   alarms are posted to POST /alarms over real HTTP (httpx, keep-alive) in lists of `--batch`,
   `--in-flight` requests at once, the bodies encoded beforehand. *accepted/s*: alarms over
   the time until the last 202 (a 202 means every alarm of the list is durable in the
   service's transport; the ones intake refuses are counted in, and printed). *decided/s*:
   alarms over the time until the service has handled everything: every consumer group of
   its loops (router, correlate, dispatch, dead letters) has committed the end of every
   topic it reads, i.e. what Embedded.settle() waits for, read every 0.05 s from its SQLite
   file (WAL: a reader never blocks the service), plus the router's commit on
   faultline.alarms at or past the last posted offset; afterwards (not timed) GET
   /inputs/{id} of the last alarm of every list must answer accepted or refused, not
   pending. *CPU µs/alarm*: the process's user+system CPU during the storm over the alarms.
2. Memory of that process, from /proc/PID/status. *peak RSS*: VmHWM at the end.
   *bytes/active alarm*: VmRSS after the storm is decided minus VmRSS half a second after
   ready (before the first post), divided by the alarms active at the end: per (source,
   alarm_id) of the alarms the service accepts, the last state in posting order is `raised`.
3. Prometheus Alertmanager (the Debian package, 0.25; installed with apt-get if missing and
   possible, else skipped with a line saying so) on a free port, its own temporary storage,
   no cluster, one route grouping by `circuit` to a receiver that sends nothing. The same
   alarms become alerts (labels alertname = probable_cause, resource, circuit = the first
   circuit in the inventory whose paths hold the resource, severity; annotation summary =
   the alarm's text; startsAt = event_time, and for a clear endsAt = its event_time and
   startsAt the raise's) posted to POST /api/v2/alerts in the same lists, `--in-flight` at
   once. *alerts/s*: alerts over the time until the last 200. Alertmanager answers once the
   alerts are in its memory: nothing durable, no correlation; so both ratios are printed,
   faultline accepted/s (durable) and decided/s (correlated, dispatched, stored) over
   Alertmanager's alerts/s.
4. The production pipeline, bench/pipeline.py's `one_run` on the same storm: a fresh Tansu
   broker and PostgreSQL database, `faultline correlate` and `faultline dispatch` processes
   with the integration tests' stage_env (FAULTLINE_CLOCK=stream, 4 partitions, arrival hold
   `--arrival-hold-ms`), the §3 alarm lines with their `at` as the message time, in
   acknowledged batches of 500, then a tick 9 h past the last. *alarms/s*: lines over the
   time from the first send until the outbox holds every decision `faultline replay` makes
   on the same lines (polled every 0.1 s). *latency p50/p99*: per stored decision, from the
   broker's acknowledgement of the batch holding its input to the first outbox poll that sees
   its row. On stream time a decision stamped `at` comes from the input of that time, or (a
   timer) from the first input at or after its due time: the input is taken to be the first
   message sent with a timestamp >= `at`, the earliest candidate. Both ends err towards a
   longer latency (by up to one batch and one 0.1 s poll), and every decision waits at least
   the arrival hold. *CPU µs/alarm*: CPU seconds of each process in the run (PostgreSQL: the
   backends serving the stages) over the lines. A replay count not met, a non-zero exit or a
   message later than the hold prints a WARNING.
   Then the same again on a fresh broker and database, fed at a steady `--steady-fraction`
   (default 0.5) of the rate just measured: batches of rate/20 messages, each sent when its
   first message is due on the schedule, with the production default arrival hold
   (`--steady-arrival-hold-ms`, 300): *steady p50/p99*, latency measured as above, of the
   decisions the alarms made (the closing tick's, every timer still pending fired at once by
   a jump of 9 h, are counted apart).
5. Restart after N logged inputs. Once, before the runs: `faultline run` on its own SQLite
   file is fed `--restart-inputs` alarms (storms of at most 200,000 from the same generator
   on the same inventory, alarm ids made unique per storm, encoded to a file beforehand) over
   HTTP as above, until decided, then stopped with SIGTERM; the input log entries this made
   are counted and printed with the feed's rates (set-up, not among the figures). Each run then
   starts `faultline run` on that file again: *ready*: from Popen until /readyz answers 200
   (polled every 20 ms); *new alarm decided*: from Popen until a new alarm (LINK_DOWN on a
   CPE, posted at once when ready with wait_s, then GET /inputs/{id}?wait_s while pending)
   is answered accepted — the service polls outcomes every 20 ms growing to 200 ms, so up to
   0.2 s late; *stop*: SIGTERM until exit. Each run's probe alarm adds to the log.

Then every figure's median, min and max over the runs. `--quick`: a small smoke run (300
circuits, 3,000 alarms, 3,000 restart inputs, one run unless --runs is given). Every process
started here is stopped by its pid on the way out, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
for _p in (str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import engine  # noqa: E402  (bench/engine.py)
import pipeline  # noqa: E402  (bench/pipeline.py)
from integration import pg_fixtures as pg  # noqa: E402
from integration.kafka_fixtures import free_port  # noqa: E402
from integration.pipeline_support import kill_leftovers  # noqa: E402
from tokens import bearer_at  # noqa: E402

from alarm_ingest.normalized import alarm_from_dict  # noqa: E402
from services.drivers.city_router import ROUTED_TOPICS  # noqa: E402
from services.drivers.stage_logic import CorrelateLogic, DispatchLogic  # noqa: E402
from services.runtime.ingest_loop import RAW_TOPICS  # noqa: E402
from shared.clock import fmt_time, parse_time  # noqa: E402
from shared.inventory import load_inventory  # noqa: E402
from shared.model import Rejected  # noqa: E402
from shared.rulebook import load_rulebook  # noqa: E402
from shared.topics import ALARMS, DEADLETTER  # noqa: E402
from tools.kafka_events import published, replay_records  # noqa: E402

JSON = {"content-type": "application/json"}
SETTLE_POLL_S = 0.05         # how often the embedded service's SQLite file is read for "decided"
READY_POLL_S = 0.02          # how often /readyz is asked while a process starts
RESTART_CHUNK = 200_000      # alarms per generated storm of the restart feed
# The topics the loops of `faultline run` read: router, correlate, dispatch, dead-letter keeper, ingest.
CONSUMED = {*ROUTED_TOPICS, CorrelateLogic.input_topic, DispatchLogic.input_topic, DEADLETTER, *RAW_TOPICS}
AM_CONFIG = """route:
  receiver: "null"
  group_by: [circuit]
receivers:
  - name: "null"
"""

STARTED: list[subprocess.Popen] = []      # stopped by pid on the way out


# ---------------------------------------------------------------------------------- the storm

@dataclass
class Storm:
    topo: engine.Topology
    inventory_path: Path
    alarms: list[dict]                 # the normalized alarms a producer posts
    bodies: list[bytes]                # ... as the POST /alarms lists, encoded
    am_bodies: list[bytes]             # ... as POST /api/v2/alerts lists, encoded
    active: int                        # alarms raised and not cleared at the end
    refused: int                       # alarms the service's decoder refuses
    pipe_lines: list[bytes]            # §3 lines for the pipeline
    until: str
    expected: int                      # decisions replay makes on pipe_lines (refusals aside)
    probe_resource: str


def first_circuits(doc: dict) -> dict[str, str]:
    """resource_id → the first circuit (inventory order) one of whose paths holds it."""
    out: dict[str, str] = {}
    for c in doc["circuits"]:
        for path in c["paths"]:
            for rid in path:
                out.setdefault(rid, c["circuit_id"])
    return out


def _rfc3339(value: object) -> str | None:
    """The time as Alertmanager takes it (RFC 3339 with its offset), or None if it has none."""
    try:
        parse_time(value)
        return value if isinstance(value, str) else None
    except ValueError:
        return None


def to_alerts(alarms: list[dict], circuit_of: dict[str, str]) -> list[dict]:
    """The alarms as Alertmanager alerts, in order (a clear resolves its raise's alert)."""
    raised_at: dict[tuple, str] = {}
    out = []
    for a in alarms:
        labels = {"alertname": str(a.get("probable_cause") or "unknown")}
        rid = a.get("resource_id")
        if isinstance(rid, str) and rid:
            labels["resource"] = rid
            if rid in circuit_of:
                labels["circuit"] = circuit_of[rid]
        if isinstance(a.get("severity"), str):
            labels["severity"] = a["severity"]
        alert: dict = {"labels": labels}
        if isinstance(a.get("text"), str):
            alert["annotations"] = {"summary": a["text"]}
        when = _rfc3339(a.get("event_time"))
        key = (a.get("source"), a.get("alarm_id"))
        if when is not None and a.get("state") == "cleared":
            start = raised_at.get(key, when)
            alert["startsAt"] = start if parse_time(start) <= parse_time(when) else when
            alert["endsAt"] = when
        elif when is not None:
            raised_at.setdefault(key, when)
            alert["startsAt"] = when
        out.append(alert)
    return out


def active_at_end(alarms: list[dict]) -> tuple[int, int]:
    """(alarms active at the end, alarms refused by the decoder): per (source, alarm_id) of
    the accepted alarms, the last state in posting order."""
    last: dict[tuple[str, str], str] = {}
    refused = 0
    for a in alarms:
        if isinstance(alarm_from_dict(a), Rejected):
            refused += 1
            continue
        last[(a["source"], a["alarm_id"])] = a["state"]
    return sum(1 for s in last.values() if s == "raised"), refused


def lists(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def build_storm(args: argparse.Namespace, tmp: Path) -> Storm:
    rng = random.Random(args.seed)
    topo = engine.gen_inventory(args.circuits, rng)
    lines, _bad = engine.gen_storm(topo, args.alarms, rng)
    inventory_path = tmp / "inventory.json"
    inventory_path.write_bytes(orjson.dumps(topo.doc))
    alarms = engine.storm_alarms(lines)
    active, refused = active_at_end(alarms)
    alerts = to_alerts(alarms, first_circuits(topo.doc))
    # The pipeline's feeder keys each alarm by its resource (tools/kafka_events.messages): a
    # line without one cannot be sent, so it is left out there.
    pipe_lines = []
    for raw in lines:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if (isinstance(obj, dict) and obj.get("kind") == "alarm" and isinstance(obj.get("alarm"), dict)
                and isinstance(obj["alarm"].get("resource_id"), str)):
            pipe_lines.append(raw)
    until = fmt_time(parse_time(orjson.loads(pipe_lines[-1])["at"]) + 9 * 3600)
    records = replay_records(load_inventory(str(inventory_path)), load_rulebook(), pipe_lines, until)
    return Storm(topo, inventory_path, alarms, [orjson.dumps(x) for x in lists(alarms, args.batch)],
                 [orjson.dumps(x) for x in lists(alerts, args.batch)], active, refused, pipe_lines, until,
                 published(records), topo.by_kind["cpe"][0])


# ---------------------------------------------------------------------------------- processes

def proc_kb(pid: int, name: str) -> int:
    """A field of /proc/PID/status in kB (VmRSS, VmHWM); 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def start(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    STARTED.append(proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 60) -> tuple[int | None, float]:
    """SIGTERM; (exit code, seconds until it exited); SIGKILL after `timeout` (code None)."""
    t0 = time.perf_counter()
    code = proc.poll()
    if code is None:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            code = None
    if proc in STARTED:
        STARTED.remove(proc)
    return code, time.perf_counter() - t0


def stop_all() -> None:
    for proc in list(STARTED):
        try:
            stop(proc, 30)
        except OSError:
            pass
    kill_leftovers()


def tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


@dataclass
class Service:
    """One `faultline run` process."""

    proc: subprocess.Popen
    port: int
    db_path: Path
    log_path: Path
    started: float                       # perf_counter just before Popen
    http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=600)

    @classmethod
    def launch(cls, inventory: Path, db_path: Path, tmp: Path, label: str) -> Service:
        port = free_port()
        log_path = tmp / f"run-{label}-{port}.log"
        command = [sys.executable, "-m", "services.cli", "run", "--inventory", str(inventory),
                   "--database-url", f"sqlite+aiosqlite:///{db_path}", "--http-port", str(port)]
        started = time.perf_counter()
        return cls(start(command, log_path), port, db_path, log_path, started)

    async def authorize(self) -> None:
        """An admin token of its own in the service's database, for every request after (the
        API needs one; not timed where it is called before the timed part)."""
        self.http.headers.update(await bearer_at(f"sqlite+aiosqlite:///{self.db_path}"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait_ready(self, timeout: float) -> tuple[float, float]:
        """(seconds from Popen to the first HTTP answer, to /readyz 200)."""
        first = None
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"faultline run exited with {self.proc.returncode}:\n"
                                   f"{tail(self.log_path)}")
            try:
                answer = await self.http.get("/readyz", timeout=5)
                now = time.perf_counter() - self.started
                first = now if first is None else first
                if answer.status_code == 200:
                    return first, now
            except httpx.TransportError:
                pass
            await asyncio.sleep(READY_POLL_S)
        raise TimeoutError(f"faultline run not ready after {timeout:g} s:\n{tail(self.log_path)}")

    async def close(self) -> tuple[int | None, float]:
        await self.http.aclose()
        return await asyncio.to_thread(stop, self.proc)


async def post_lists(http: httpx.AsyncClient, path: str, bodies: Iterable[bytes], in_flight: int, ok: int,
                     keep: Callable[[bytes], object] = bytes) -> list:
    """Post each encoded body, `in_flight` at once; `keep` of each answer's body, in order. Any
    status but `ok` stops everything."""
    answers: list[tuple[int, object]] = []
    todo = iter(enumerate(bodies))

    async def worker() -> None:
        for i, body in todo:
            answer = await http.post(path, content=body, headers=JSON)
            if answer.status_code != ok:
                raise RuntimeError(f"POST {path} list {i}: {answer.status_code} {answer.text[:300]}")
            answers.append((i, keep(answer.content)))

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return [kept for _i, kept in sorted(answers, key=lambda x: x[0])]


# ---------------------------------------------------------------------------------- the embedded service

def transport_lag(db_path: Path, alarms_end: int) -> list[str]:
    """What the service's loops have not handled yet, read from its SQLite file: for each topic
    a loop reads (CONSUMED) that holds messages, the partitions where a group's committed
    offset (or, none committed yet, 0) is behind the end; and faultline.alarms committed
    short of `alarms_end`. Empty: settled (what Embedded.settle() waits for)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        ends = conn.execute('SELECT topic, partition, max("offset") + 1 FROM transport_messages '
                            "GROUP BY topic, partition").fetchall()
        done: dict[tuple[str, int], list[int]] = {}
        for topic, partition, offset in conn.execute("SELECT topic, partition, next_offset "
                                                     "FROM transport_offsets"):
            done.setdefault((topic, partition), []).append(offset)
    finally:
        conn.close()
    behind = [f"{t}:{p} at {min(done.get((t, p), [0]))} of {end}" for t, p, end in ends
              if t in CONSUMED and min(done.get((t, p), [0])) < end]
    alarms_done = [min(v) for (t, _p), v in done.items() if t == ALARMS]
    if not alarms_done or min(alarms_done) < alarms_end:
        behind.append(f"{ALARMS}: committed {min(alarms_done, default=0)} of {alarms_end}")
    return behind


def log_counts(db_path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        counts = dict(conn.execute("SELECT stage, count(*) FROM input_log GROUP BY stage").fetchall())
        counts["records"] = conn.execute("SELECT count(*) FROM audit").fetchone()[0]
        counts["refusals"] = conn.execute("SELECT count(*) FROM rejected").fetchone()[0]
        return counts
    finally:
        conn.close()


async def wait_settled(db_path: Path, alarms_end: int, deadline: float) -> None:
    while True:
        behind = await asyncio.to_thread(transport_lag, db_path, alarms_end)
        if not behind:
            return
        if time.perf_counter() > deadline:
            raise TimeoutError("the service did not decide everything in time: " + "; ".join(behind[:5]))
        await asyncio.sleep(SETTLE_POLL_S)


def input_ids(answers: list[bytes]) -> list[list[str | None]]:
    return [orjson.loads(a)["input_ids"] for a in answers]


def alarms_end(ids: list[list[str | None]]) -> int:
    """The next offset of faultline.alarms after the posted alarms (from their input ids)."""
    return 1 + max((int(i.split("@")[0].rsplit(":", 1)[1]) for lst in ids for i in lst
                    if i is not None and i.startswith(ALARMS + ":")), default=-1)


async def embedded(storm: Storm, args: argparse.Namespace, tmp: Path, n: int) -> dict:
    svc = Service.launch(storm.inventory_path, tmp / f"run{n}.sqlite3", tmp, f"storm{n}")
    try:
        _http, ready = await svc.wait_ready(args.timeout)
        await svc.authorize()
        await asyncio.sleep(0.5)                          # the loops' first passes done
        rss0 = proc_kb(svc.pid, "VmRSS")
        cpu0 = pipeline.cpu_s(svc.pid)
        t0 = time.perf_counter()
        answers = await post_lists(svc.http, "/alarms", storm.bodies, args.in_flight, 202)
        accepted = time.perf_counter() - t0
        ids = input_ids(answers)
        await wait_settled(svc.db_path, alarms_end(ids), t0 + args.timeout)
        decided = time.perf_counter() - t0
        cpu = pipeline.cpu_s(svc.pid) - cpu0
        rss1, hwm = proc_kb(svc.pid, "VmRSS"), proc_kb(svc.pid, "VmHWM")
        refused = sum(orjson.loads(a)["rejected"] for a in answers)
        statuses: dict[str, int] = {}
        for lst in ids:                                   # the service's own word, not timed
            last = next((i for i in reversed(lst) if i is not None), None)
            if last is not None:
                status = (await svc.http.get(f"/inputs/{last}")).json()["status"]
                statuses[status] = statuses.get(status, 0) + 1
        counts = await asyncio.to_thread(log_counts, svc.db_path)
    finally:
        code, _s = await svc.close()
    n_alarms = len(storm.alarms)
    out = {"ready_empty": ready, "accepted": n_alarms / accepted, "decided": n_alarms / decided,
           "cpu_us": cpu / n_alarms * 1e6, "hwm_mb": hwm / 1024, "rss0_mb": rss0 / 1024,
           "rss1_mb": rss1 / 1024,
           "bytes_active": (rss1 - rss0) * 1024 / storm.active if storm.active else float("nan"),
           "accepted_s": accepted, "decided_s": decided}
    print(f"  faultline run over HTTP: {n_alarms:,} alarms in lists of {args.batch}, {args.in_flight} in "
          f"flight ({refused} refused at intake): accepted {out['accepted']:,.0f}/s ({accepted:.2f} s), "
          f"decided {out['decided']:,.0f}/s ({decided:.1f} s); CPU {out['cpu_us']:,.0f} µs/alarm; "
          f"ready {ready:.2f} s from process start (empty database)")
    print(f"      stored: {counts.get('correlate', 0):,} correlate + {counts.get('dispatch', 0):,} dispatch "
          f"input-log rows kept, {counts['records']:,} decision records, {counts['refusals']:,} refusals; "
          f"last alarm of each list: {statuses}; exit code after SIGTERM {code}")
    print(f"  memory: peak RSS {out['hwm_mb']:,.0f} MB; RSS {out['rss0_mb']:,.0f} MB when ready → "
          f"{out['rss1_mb']:,.0f} MB after the storm; {storm.active:,} alarms active at the end → "
          f"{out['bytes_active']:,.0f} bytes/active alarm")
    out["ok"] = code == 0 and not statuses.get("pending") and refused == storm.refused
    if not out["ok"]:
        print(f"WARNING: exit code {code}; {refused} refused at intake (the decoder refuses "
              f"{storm.refused}); GET /inputs answers pending for the last alarm of "
              f"{statuses.get('pending', 0)} list(s) though every loop has committed past it\n"
              f"{tail(svc.log_path, 5)}")
    return out


# ---------------------------------------------------------------------------------- Alertmanager

def alertmanager_binary() -> str | None:
    """The Alertmanager binary; apt-get installs it once if it is missing and that is possible."""
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found or not shutil.which("apt-get") or os.geteuid() != 0:
        return found
    print("installing prometheus-alertmanager with apt-get (not timed)…", flush=True)
    done = subprocess.run(["apt-get", "install", "-y", "prometheus-alertmanager"], capture_output=True,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if done.returncode != 0:
        print(done.stderr.decode(errors="replace")[-500:])
    return shutil.which("prometheus-alertmanager")


def am_metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and line[len(name)] in " {")


async def alertmanager(binary: str, storm: Storm, args: argparse.Namespace, tmp: Path, n: int) -> dict:
    work = tmp / f"am{n}"
    work.mkdir()
    (work / "alertmanager.yml").write_text(AM_CONFIG)
    port = free_port()
    proc = start([binary, f"--config.file={work / 'alertmanager.yml'}", f"--storage.path={work / 'data'}",
                  f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
                 work / "alertmanager.log")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
        try:
            deadline = time.perf_counter() + 60
            while True:
                try:
                    if (await http.get("/-/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.perf_counter() > deadline:
                    raise RuntimeError(f"Alertmanager did not start:\n{tail(work / 'alertmanager.log')}")
                await asyncio.sleep(0.05)
            cpu0 = pipeline.cpu_s(proc.pid)
            t0 = time.perf_counter()
            await post_lists(http, "/api/v2/alerts", storm.am_bodies, args.in_flight, 200)
            took = time.perf_counter() - t0
            cpu = pipeline.cpu_s(proc.pid) - cpu0
            await asyncio.sleep(1)                       # its dispatcher groups what it took
            metrics = (await http.get("/metrics")).text
        finally:
            code, _s = stop(proc)
    n_alerts = len(storm.alarms)
    received = am_metric(metrics, "alertmanager_alerts_received_total")
    invalid = am_metric(metrics, "alertmanager_alerts_invalid_total")
    groups = am_metric(metrics, "alertmanager_dispatcher_aggregation_groups")
    out = {"am_rate": n_alerts / took, "am_cpu_us": cpu / n_alerts * 1e6}
    print(f"  Alertmanager: {n_alerts:,} alerts in lists of {args.batch}, {args.in_flight} in flight: "
          f"{out['am_rate']:,.0f} alerts/s ({took:.2f} s); CPU {out['am_cpu_us']:,.0f} µs/alert; "
          f"{received:,.0f} received, {invalid:,.0f} invalid, {groups:,.0f} aggregation groups a second "
          f"later; exit code after SIGTERM {code}")
    return out


# ---------------------------------------------------------------------------------- the pipeline

async def production(server: str, storm: Storm, args: argparse.Namespace, tmp: Path, n: int) -> dict:
    r = await pipeline.one_run(n, server, (storm.inventory_path, storm.pipe_lines, storm.until),
                               storm.expected, tmp, args.timeout,
                               {"FAULTLINE_ARRIVAL_HOLD_MS": str(args.arrival_hold_ms)}, verbose=False)
    lines = len(storm.pipe_lines)
    lat = r["latencies"]
    out = {"pipe_rate": lines / r["wall"], "p50": pipeline.pct(lat, 0.5), "p99": pipeline.pct(lat, 0.99),
           "ok": r["ok"]}
    out |= {f"cpu_{k}": v / lines * 1e6 for k, v in r["cpu"].items()}
    print(f"  pipeline: {lines:,} alarms, {r['stored']:,} decisions (replay: {storm.expected:,}), "
          f"{out['pipe_rate']:,.0f} alarms/s end to end ({r['wall']:.1f} s; first decision "
          f"{r['first']:.2f} s, feed done {r['fed']:.1f} s, start-up {r['startup']:.1f} s not timed)")
    print(f"      latency input → stored decision (hold {args.arrival_hold_ms} ms): p50 {out['p50']:.2f} s, "
          f"p99 {out['p99']:.2f} s, max {max(lat, default=float('nan')):.2f} s; CPU µs/alarm: "
          + ", ".join(f"{k} {v / lines * 1e6:,.0f}" for k, v in r["cpu"].items())
          + f"; machine busy {r['machine']:.0%} of {os.cpu_count()} cores")
    return out


async def steady(server: str, storm: Storm, args: argparse.Namespace, tmp: Path, n: int, full: float) -> dict:
    """The same storm fed at a steady `--steady-fraction` of the full-speed rate `full`."""
    rate = full * args.steady_fraction
    r = await pipeline.one_run(n, server, (storm.inventory_path, storm.pipe_lines, storm.until),
                               storm.expected, tmp, args.timeout,
                               {"FAULTLINE_ARRIVAL_HOLD_MS": str(args.steady_arrival_hold_ms)},
                               verbose=False, rate=rate)
    lat, tick = r["latencies_feed"], len(r["latencies"]) - len(r["latencies_feed"])
    out = {"steady_rate": rate, "steady_p50": pipeline.pct(lat, 0.5), "steady_p99": pipeline.pct(lat, 0.99),
           "ok": r["ok"]}
    print(f"  pipeline at a steady {rate:,.0f} alarms/s ({args.steady_fraction:.0%} of the above; batches of "
          f"{max(1, int(rate / 20))}; hold {args.steady_arrival_hold_ms} ms): latency input → stored "
          f"decision p50 {out['steady_p50']:.2f} s, "
          f"p99 {out['steady_p99']:.2f} s, max {max(lat, default=float('nan')):.2f} s; "
          f"{r['stored']:,} decisions ({tick:,} of them made by the closing tick, 9 h on, not counted: "
          f"p99 {pipeline.pct(r['latencies'], 0.99):.2f} s with them); machine busy {r['machine']:.0%}")
    return out


# ---------------------------------------------------------------------------------- restart

def write_restart_feed(storm: Storm, total: int, seed: int, batch: int, path: Path) -> int:
    """`total` alarms from storms of at most RESTART_CHUNK on the storm's inventory (alarm ids
    made unique per storm), written to `path` as POST /alarms bodies, one a line; how many."""
    written, c = 0, 0
    with open(path, "wb") as out:
        while written < total:
            size = min(total - written, RESTART_CHUNK)
            lines, _bad = engine.gen_storm(storm.topo, size + 1, random.Random(seed * 1000 + c))
            alarms = engine.storm_alarms(lines)[:size]
            for a in alarms:
                if isinstance(a.get("alarm_id"), str):
                    a["alarm_id"] = f"r{c}-{a['alarm_id']}"
            for part in lists(alarms, batch):
                out.write(orjson.dumps(part) + b"\n")
            written += len(alarms)
            c += 1
    return written


async def restart_feed(storm: Storm, args: argparse.Namespace, tmp: Path) -> Path:
    db_path, feed = tmp / "restart.sqlite3", tmp / "restart-feed.jsonl"
    posted = await asyncio.to_thread(write_restart_feed, storm, args.restart_inputs, args.seed, args.batch,
                                     feed)
    svc = Service.launch(storm.inventory_path, db_path, tmp, "feed")
    try:
        await svc.wait_ready(args.timeout)
        await svc.authorize()
        with open(feed, "rb") as bodies:
            t0 = time.perf_counter()
            ends = await post_lists(svc.http, "/alarms", (line.rstrip(b"\n") for line in bodies),
                                    args.in_flight, 202, keep=lambda a: alarms_end(input_ids([a])))
        accepted = time.perf_counter() - t0
        await wait_settled(db_path, max(ends), t0 + max(args.timeout, posted / 100))
        decided = time.perf_counter() - t0
        counts = await asyncio.to_thread(log_counts, db_path)
    finally:
        code, stopped = await svc.close()
    print(f"restart set-up: {posted:,} alarms posted to faultline run (accepted {posted / accepted:,.0f}/s, "
          f"decided {posted / decided:,.0f}/s, {decided:.0f} s) → {counts.get('correlate', 0):,} correlate + "
          f"{counts.get('dispatch', 0):,} dispatch input-log rows kept, {counts['records']:,} decision "
          f"records; stopped in {stopped:.2f} s (exit code {code}); database "
          f"{db_path.stat().st_size / 2**20:,.0f} MB", flush=True)
    return db_path


async def restart(storm: Storm, db_path: Path, args: argparse.Namespace, tmp: Path, n: int) -> dict:
    headers = await bearer_at(f"sqlite+aiosqlite:///{db_path}")       # before the timed start
    svc = Service.launch(storm.inventory_path, db_path, tmp, f"restart{n}")
    svc.http.headers.update(headers)
    try:
        http_up, ready = await svc.wait_ready(max(args.timeout, args.restart_inputs / 1000))
        rss = proc_kb(svc.pid, "VmRSS")
        probe = {"source": "bench-probe", "alarm_id": f"probe-{n}-{time.time_ns()}",
                 "resource_id": storm.probe_resource, "probable_cause": "LINK_DOWN", "severity": "critical",
                 "state": "raised", "event_time": fmt_time(time.time()), "text": "restart probe"}
        posted = time.perf_counter() - svc.started
        answer = await svc.http.post("/alarms", params={"wait_s": 30}, content=orjson.dumps(probe),
                                     headers=JSON)
        body = answer.json()
        input_id = body["input_ids"][0]
        while body.get("pending", 0) or body.get("status") == "pending":
            body = (await svc.http.get(f"/inputs/{input_id}", params={"wait_s": 30})).json()
        decided = time.perf_counter() - svc.started
        status = body.get("status", "refused" if body.get("rejected") else "accepted")
    finally:
        code, stopped = await svc.close()
    print(f"  restart after {args.restart_inputs:,} alarms: ready {ready:.2f} s from process start "
          f"(HTTP up {http_up:.2f} s, RSS {rss / 1024:,.0f} MB); a new alarm decided {decided:.2f} s from "
          f"process start ({decided - posted:.2f} s after posting, {status}); stop (SIGTERM → exit) "
          f"{stopped:.2f} s, exit code {code}")
    return {"restart_ready": ready, "restart_decided": decided, "restart_stop": stopped,
            "ok": code == 0 and status == "accepted"}


# ---------------------------------------------------------------------------------- report

FIGURES = [  # key, label, format
    ("accepted", "faultline run: accepted alarms/s (HTTP)", "{:,.0f}"),
    ("decided", "faultline run: decided alarms/s (HTTP)", "{:,.0f}"),
    ("cpu_us", "faultline run: CPU µs/alarm", "{:,.0f}"),
    ("ready_empty", "faultline run: ready s (empty database)", "{:.2f}"),
    ("am_rate", "Alertmanager: alerts/s", "{:,.0f}"),
    ("am_cpu_us", "Alertmanager: CPU µs/alert", "{:,.0f}"),
    ("ratio_accepted", "ratio accepted/s faultline / Alertmanager", "{:.3f}"),
    ("ratio_decided", "ratio decided/s faultline / Alertmanager", "{:.3f}"),
    ("pipe_rate", "pipeline: alarms/s end to end", "{:,.0f}"),
    ("p50", "pipeline: latency p50 s", "{:.2f}"),
    ("p99", "pipeline: latency p99 s", "{:.2f}"),
    ("steady_rate", "pipeline: steady rate alarms/s", "{:,.0f}"),
    ("steady_p50", "pipeline: latency p50 s at the steady rate", "{:.2f}"),
    ("steady_p99", "pipeline: latency p99 s at the steady rate", "{:.2f}"),
    ("cpu_correlate", "pipeline: correlate CPU µs/alarm", "{:,.0f}"),
    ("cpu_dispatch", "pipeline: dispatch CPU µs/alarm", "{:,.0f}"),
    ("cpu_tansu", "pipeline: tansu CPU µs/alarm", "{:,.0f}"),
    ("cpu_postgres", "pipeline: postgres CPU µs/alarm", "{:,.0f}"),
    ("hwm_mb", "memory: peak RSS MB (faultline run)", "{:,.0f}"),
    ("bytes_active", "memory: bytes/active alarm", "{:,.0f}"),
    ("restart_ready", "restart: ready s", "{:.2f}"),
    ("restart_decided", "restart: new alarm decided s", "{:.2f}"),
    ("restart_stop", "restart: stop s (SIGTERM → exit)", "{:.2f}"),
]


def summary(runs: list[dict]) -> None:
    print(f"\nmedian of {len(runs)} run(s), min, max:")
    width = max(len(label) for _k, label, _f in FIGURES)
    print(f"  {'':{width}}  {'median':>10}  {'min':>10}  {'max':>10}")
    for key, label, fmt in FIGURES:
        values = [r[key] for r in runs if key in r]
        if values:
            cells = [fmt.format(v) for v in (statistics.median(values), min(values), max(values))]
            print(f"  {label:{width}}  {cells[0]:>10}  {cells[1]:>10}  {cells[2]:>10}")


async def bench(args: argparse.Namespace, tmp: Path) -> int:
    t0 = time.perf_counter()
    storm = build_storm(args, tmp)
    doc = storm.topo.doc
    print(f"storm: {len(storm.alarms):,} alarms (seed {args.seed}; {storm.refused} refused by the decoder; "
          f"{storm.active:,} active at the end) on {len(doc['circuits']):,} circuits, "
          f"{len(doc['resources']):,} resources; pipeline: {len(storm.pipe_lines):,} lines, replay makes "
          f"{storm.expected:,} decisions "
          f"(generated in {time.perf_counter() - t0:.1f} s, not timed)")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; Python "
          f"{sys.version.split()[0]}", flush=True)
    binary = alertmanager_binary()
    if binary is None:
        print("Alertmanager: prometheus-alertmanager is not installed and could not be: that part is skipped")
    else:
        version = subprocess.run([binary, "--version"], capture_output=True, text=True)
        print(f"Alertmanager: {binary}, {(version.stdout or version.stderr).splitlines()[0]}")
    db_path = await restart_feed(storm, args, tmp)
    runs, ok = [], True
    with pg.postgres_server() as server:
        print(f"PostgreSQL: {server.rpartition('@')[2]}", flush=True)
        for n in range(1, args.runs + 1):
            print(f"\nrun {n} (load average {os.getloadavg()[0]:.2f})", flush=True)
            r = await embedded(storm, args, tmp, n)
            ok &= r.pop("ok")
            if binary is not None:
                r |= await alertmanager(binary, storm, args, tmp, n)
                r["ratio_accepted"] = r["accepted"] / r["am_rate"]
                r["ratio_decided"] = r["decided"] / r["am_rate"]
                print(f"  faultline / Alertmanager: accepted {r['ratio_accepted']:.3f}, "
                      f"decided {r['ratio_decided']:.3f}")
            r |= await production(server, storm, args, tmp, n)
            ok &= r.pop("ok")
            r |= await steady(server, storm, args, tmp, n, r["pipe_rate"])
            ok &= r.pop("ok")
            r |= await restart(storm, db_path, args, tmp, n)
            ok &= r.pop("ok")
            runs.append(r)
            sys.stdout.flush()
    summary(runs)
    if not ok:
        print("exit status 1: see the WARNING line(s) above")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--circuits", type=int, default=20_000)
    ap.add_argument("--alarms", type=int, default=60_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=None, help="runs (default 3; 1 with --quick)")
    ap.add_argument("--batch", type=int, default=500, help="alarms per POST")
    ap.add_argument("--in-flight", type=int, default=4, help="requests at once")
    ap.add_argument("--restart-inputs", type=int, default=100_000,
                    help="alarms logged before the restart (the issue: 1,000,000; the full run 10,000,000)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds a phase may take before it gives up")
    ap.add_argument("--arrival-hold-ms", type=int, default=1000,
                    help="pipeline: FAULTLINE_ARRIVAL_HOLD_MS (the tests' 1000; production default 300)")
    ap.add_argument("--steady-fraction", type=float, default=0.5,
                    help="pipeline: the steady feed's rate as a fraction of the full-speed rate measured")
    ap.add_argument("--steady-arrival-hold-ms", type=int, default=300,
                    help="pipeline at the steady rate: FAULTLINE_ARRIVAL_HOLD_MS (production's default 300)")
    ap.add_argument("--quick", action="store_true", help="a small smoke run")
    args = ap.parse_args(argv)
    if args.quick:
        args.circuits, args.alarms, args.restart_inputs = 300, 3_000, 3_000
    args.runs = args.runs or (1 if args.quick else 3)
    return pipeline.run_bench(bench, args, "faultline-storm-", stop_all)


if __name__ == "__main__":
    sys.exit(main())
