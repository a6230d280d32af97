"""Drive the production pipeline in tests: feed §3 lines to Kafka, read the decisions back,
and compare them with `faultline replay` on the same lines (ids aside)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from shared.clock import parse_time
from shared.topics import DECISIONS

from .kafka_fixtures import free_port

ROOT = Path(__file__).resolve().parents[2]


LIVE_PROCS: list[Proc] = []


def kill_leftovers() -> None:
    """SIGKILL every stage process a test left running (a failed or interrupted test)."""
    for proc in LIVE_PROCS:
        proc.kill()
    LIVE_PROCS.clear()


class Proc:
    """One `faultline <stage>` process (a real OS process, so it can be SIGKILLed)."""

    def __init__(self, stage: str, env: dict[str, str], log_dir: Path) -> None:
        self.stage = stage
        self.env = env
        self.port = free_port()
        self.log_path = log_dir / f"{stage}-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Proc:
        env = {**os.environ, **self.env, "FAULTLINE_HTTP_PORT": str(self.port)}
        with open(self.log_path, "ab") as log:
            command = [str(Path(sys.executable).with_name("faultline")), self.stage]
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        LIVE_PROCS.append(self)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout)
        return self.proc.returncode if self.proc else None

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def assert_fed_in_time(log_dir: Path) -> None:
    """No router (of any correlate process in `log_dir`) saw a message reach the broker later
    than the arrival hold after a later-stamped one (services/runtime/router_loop.py warns). Such a
    message is handled when it comes, so replay's decisions would rightly differ: a failure
    here means the machine stalled the feeder, not that the pipeline decided wrongly."""
    late = late_warnings(sorted(log_dir.glob("correlate-*.log")))
    assert not late, late[:3]


def late_warnings(logs: list[Path]) -> list[str]:
    """The router's warnings in these process logs about messages later than the hold."""
    return [line for path in logs
            for line in path.read_text(errors="replace").splitlines() if "more than the hold" in line]


def stage_env(bootstrap: str, db_url: str, inventory: Path) -> dict[str, str]:
    return {"FAULTLINE_KAFKA_BOOTSTRAP": bootstrap, "FAULTLINE_DATABASE_URL": db_url,
            "FAULTLINE_INVENTORY": str(inventory), "FAULTLINE_CLOCK": "stream",
            "FAULTLINE_TOPIC_PARTITIONS": "4", "FAULTLINE_LOG_LEVEL": "INFO",
            "FAULTLINE_KAFKA_METADATA_MAX_AGE_MS": "2000",
            # Tansu holds a fetch until its wait runs out, data or not (KafkaConfig)
            "FAULTLINE_KAFKA_FETCH_MAX_WAIT_MS": "50",
            # A loaded 2-core machine can stall the feeder between partitions for longer than
            # the default 300 ms; the tests compare with replay, so they allow a whole second.
            "FAULTLINE_ARRIVAL_HOLD_MS": "1000"}


async def wait_http(port: int, path: str = "/healthz", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            await w.drain()
            head = await r.read(64)
            w.close()
            if b" 200 " in head:
                return
        except OSError:
            pass
        await asyncio.sleep(0.3)
    raise TimeoutError(f"no 200 from :{port}{path}")


async def http_get(port: int, path: str) -> str:
    """The body of GET http://127.0.0.1:port/path (HTTP/1.0: the server closes when done)."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    await w.drain()
    raw = await r.read()
    w.close()
    return raw.split(b"\r\n\r\n", 1)[1].decode()


def storm(n_circuits: int, n_alarms: int, seed: int, tmp: Path) -> tuple[Path, list[bytes], str]:
    """A seeded alarm storm (bench/engine.py's generator) and its inventory file. Lines that
    are not JSON alarm objects are left out (their refusal is tested elsewhere; with the
    callers' sizes there are none, and the generator's bad-severity alarm stays: the router
    dead-letters it). Returns (inventory path, lines, until)."""
    import random

    sys.path.insert(0, str(ROOT / "bench"))
    import engine as bench  # bench/engine.py

    rng = random.Random(seed)
    topo = bench.gen_inventory(n_circuits, rng)
    lines, _bad = bench.gen_storm(topo, n_alarms, rng, hours=4.0)
    good = []
    for raw in lines:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict) and obj.get("kind") == "alarm" and isinstance(obj.get("alarm"), dict):
            good.append(raw)
    path = tmp / "inventory.json"
    path.write_bytes(orjson.dumps(topo.doc))
    last = orjson.loads(good[-1])["at"]
    until = (parse_time(last) + 9 * 3600)
    from shared.clock import fmt_time
    return path, good, fmt_time(until)


async def outbox_decisions(db_url: str) -> list[dict]:
    """Every decision the stages stored for publishing (the durable truth), in store order."""
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.db.models import outbox

    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(outbox.c.value).where(outbox.c.topic == DECISIONS)
                                      .order_by(outbox.c.id))
            return [orjson.loads(v) for row in rows for v in orjson.loads(row.value)]
    finally:
        await engine.dispose()


def alarm_rows(lines: list[bytes]) -> dict[tuple[str, str], tuple[str, str, int]]:
    """What the alarms table must hold after these §3 alarm lines: per (source, alarm_id), the
    last state and event time and how many distinct events (a repeat is not one). An alarm
    the router refuses (dead-lettered) is not kept."""
    from alarm_ingest.normalized import alarm_from_dict
    from shared.model import Rejected

    rows: dict[tuple[str, str], tuple[str, str, int]] = {}
    for raw in lines:
        a = orjson.loads(raw)["alarm"]
        if isinstance(alarm_from_dict(a), Rejected):
            continue
        key = (a["source"], a["alarm_id"])
        old = rows.get(key)
        if old is None:
            rows[key] = (a["state"], a["event_time"], 1)
        elif (old[0], old[1]) != (a["state"], a["event_time"]):
            rows[key] = (a["state"], a["event_time"], old[2] + 1)
    return rows


async def stored_alarm_rows(db_url: str) -> dict[tuple[str, str], tuple[str, str, int]]:
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.db.models import alarms

    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(alarms.c.source, alarms.c.alarm_id, alarms.c.state,
                                             alarms.c.event_time, alarms.c.count))
            return {(r.source, r.alarm_id): (r.state, r.event_time, r.count) for r in rows}
    finally:
        await engine.dispose()
