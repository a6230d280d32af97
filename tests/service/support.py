"""Helpers of the live-service tests: a fake clock, the app over ASGI, alarm builders, and what
the tests read of the runtime (its topics, its database), a loop that dies, a crash (a child
process killed), a database that fails (its write lock held)."""

from __future__ import annotations

import asyncio
import itertools
import os
import selectors
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from tokens import bearer

from services.commands.run import Embedded
from services.http.guard import HttpLimits
from shared.clock import parse_time
from shared.inventory import Inventory
from shared.rulebook import Rulebook
from shared.transport.port import Msg

ROOT = Path(__file__).resolve().parents[2]
T0 = parse_time("2026-11-25T10:00:00+08:00")      # a Wednesday morning, office hours
MINUTE = 60.0


@dataclass(frozen=True)
class LiveSettings:
    """What a test's `faultline run` is given (the command reads it from services/settings.py)."""

    inventory: Inventory
    rulebook: Rulebook
    database_url: str
    http: HttpLimits = field(default_factory=HttpLimits)


class FakeClock:
    """A clock the test moves by hand; the engine never sleeps past a tick the test sends."""

    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def real_seconds(self, clock_seconds: float) -> float:
        return 3600.0            # wait for an input or an explicit tick

    def jump(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Service:
    """`faultline run`'s runtime (services/commands/run.Embedded) and an HTTP client on its app."""

    runtime: Embedded
    client: httpx.AsyncClient

    @property
    def app(self) -> FastAPI:
        return self.runtime.app

    async def settle(self) -> None:
        await self.runtime.settle()

    async def tick(self) -> None:
        await self.runtime.tick()


@asynccontextmanager
async def live_service(settings: LiveSettings, clock: FakeClock) -> AsyncIterator[Service]:
    """Start every loop of `faultline run` on a fresh registry; drain and stop them on exit."""
    svc = Embedded(settings.inventory, settings.rulebook, settings.database_url, clock,
                   http=settings.http, registry=CollectorRegistry(), tick_every_s=3600.0)
    await svc.start()
    try:
        transport = httpx.ASGITransport(app=svc.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://faultline",
                                     headers=await bearer(svc.db)) as client:
            yield Service(svc, client)
    finally:
        await svc.stop()


def alarm(resource_id: str, alarm_id: str, *, state: str = "raised", cause: str = "LOS",
          event_time: str = "2026-11-25T10:00:00+08:00") -> dict:
    return {"source": "gd-otn-nms-1", "alarm_id": alarm_id, "resource_id": resource_id,
            "probable_cause": cause, "severity": "critical", "state": state,
            "event_time": event_time, "text": f"R_{cause}"}


# The Tianhe duct cut of the demo: both routes of China Southern's two internet lines.
FIBRE_CUT = [alarm("GZ-OTN-B:2-1-4", "884211"), alarm("GZ-OTN-B:2-1-5", "884212"),
             alarm("GZ-OTN-A:1-3-1", "884213")]


async def all_decisions(client: httpx.AsyncClient) -> list[dict]:
    out, after = [], 0
    while True:
        page = (await client.get("/decisions", params={"after_seq": after})).json()
        if not page["decisions"]:
            return out
        out.extend(page["decisions"])
        after = page["last_seq"]


# ---------------------------------------------------------------------- helpers of the live tests

WAIT = {"wait_s": 10}          # intake and GET /inputs wait up to 10 s for an input's outcome
_readers = itertools.count(1)


async def published(runtime: Embedded, *topics: str) -> list[Msg]:
    """Every message kept on these topics of the runtime's transport, in the order they were
    appended, read by a consumer group of its own that commits nothing (so a later call, or a
    restart, reads them all again)."""
    consumer = runtime.transport.consumer(list(topics), f"test-reader-{next(_readers)}")
    await consumer.start()
    out: list[Msg] = []
    try:
        while msgs := await consumer.fetch(timeout_ms=0, max_records=10_000):
            out.extend(msgs)
    finally:
        await consumer.stop()
    return out


async def published_values(runtime: Embedded, *topics: str) -> list[dict]:
    return [orjson.loads(m.value) for m in await published(runtime, *topics)]


async def db_rows(runtime: Embedded, query) -> list:
    """Rows of a query on the runtime's own database (the read model, the logs, the outbox)."""
    async with runtime.db.connect() as conn:
        return list(await conn.execute(query))


async def refusals(runtime: Embedded) -> list:
    """The `rejected` table: every refused input kept, oldest first."""
    from shared.db.models import rejected

    return await db_rows(runtime, select(rejected).order_by(rejected.c.id))


async def log_entries(runtime: Embedded, stage: str, shard: str | None = None) -> list:
    """The input log of a stage (every shard, or one), in (shard, seq) order."""
    from shared.db.models import input_log

    query = select(input_log).where(input_log.c.stage == stage).order_by(input_log.c.shard, input_log.c.seq)
    if shard is not None:
        query = query.where(input_log.c.shard == shard)
    return await db_rows(runtime, query)


async def until(probe: Callable[[], Awaitable[bool]], timeout_s: float = 15.0,
                what: str = "condition") -> None:
    """Poll `probe` (every 20 ms) until it is true: for a state that no settle() can wait for,
    such as a loop's session failing or coming back after its backoff."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await probe():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{what}: not reached in {timeout_s:g}s")
        await asyncio.sleep(0.02)


async def until_healthy(http: httpx.AsyncClient, timeout_s: float = 60.0) -> None:
    """Wait until a server starting in another process answers /healthz 200."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError("no /healthz 200 in time")


async def status_is(client: httpx.AsyncClient, path: str, code: int) -> bool:
    return (await client.get(path)).status_code == code


async def end_loop(runtime: Embedded, name: str) -> None:
    """End one loop of the runtime as a loop that died would end (its task cancelled; again
    and again, as asyncio.wait_for on Python 3.11 swallows a cancellation that comes as the
    future it waits for completes, and LocalConsumer.fetch waits with it). Call it while the
    loop is idle: a loop cancelled inside a transaction keeps SQLite's write lock in this
    process (see run_and_kill)."""
    task = next(t for t in runtime._tasks if t.get_name() == name)
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.05)


# A crash: `faultline run`'s runtime in a child process, killed (SIGKILL) while its loops work.
# (Cancelling the loops in this process is no crash: SQLite keeps the write lock of a
# connection cancelled inside a transaction for as long as this process holds a statement of
# it — see sqlite3_close_v2's "zombie" — so the next runtime on the file would wait for it;
# a killed process's locks go with it.)

_CHILD = "from service.support import _child_main; _child_main()"


def run_and_kill(database_url: str, t: float, inputs: list[tuple], *, cut_after_s: float,
                 step_s: float = 1.0, start: float | None = None) -> tuple[list[str | None], float]:
    """Start the runtime in a child process on `database_url` with a FakeClock at `start`
    (default `t`), tick once (the loops' first tick), set the clock to `t`, and send
    `inputs` — ("/alarms" | "/complaints" | "/actions", body) over HTTP, or ("bus", topic,
    raw bytes as text) as any producer would — one every `step_s` clock seconds without
    waiting for their outcome; `cut_after_s` real seconds after the last one, SIGKILL it.
    Returns the input ids intake answered (None for a bus message or a refused body) and
    the clock after the last input."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    job = {"database_url": database_url, "t": t, "inputs": inputs, "step_s": step_s,
           "start": t if start is None else start}
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=errors)
        line = b""
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(orjson.dumps(job))
            proc.stdin.close()
            with selectors.DefaultSelector() as ready:
                ready.register(proc.stdout, selectors.EVENT_READ)
                if ready.select(timeout=60):
                    line = proc.stdout.readline()
            if line:
                time.sleep(cut_after_s)
        finally:
            proc.kill()
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()
        if not line:
            errors.seek(0)
            raise RuntimeError(f"the child runtime sent nothing: {errors.read().decode()[-2000:]}")
    sent = orjson.loads(line)
    return sent["ids"], sent["t"]


def _child_main() -> None:
    asyncio.run(_child(orjson.loads(sys.stdin.buffer.read())))


async def _child(job: dict) -> None:
    from shared.inventory import load_inventory
    from shared.rulebook import load_rulebook

    settings = LiveSettings(load_inventory(ROOT / "samples" / "inventory.json"), load_rulebook(),
                            job["database_url"])
    clock = FakeClock(job["start"])
    async with live_service(settings, clock) as svc:
        await svc.tick()                     # the loops' first tick done, before the clock moves
        clock.t = job["t"]
        ids: list[str | None] = []
        for item in job["inputs"]:
            clock.jump(job["step_s"])
            if item[0] == "bus":
                await svc.runtime.producer.send(item[1], item[2].encode())
                ids.append(None)
                continue
            resp = await svc.client.post(item[0], json=item[1])
            ids.extend(resp.json()["input_ids"])
        sys.stdout.buffer.write(orjson.dumps({"ids": ids, "t": clock.t}) + b"\n")
        sys.stdout.flush()
        await asyncio.Event().wait()                 # working until killed


def sqlite_path(database_url: str) -> str:
    return database_url.split(":///", 1)[1]


@contextmanager
def write_locked(database_url: str) -> Iterator[sqlite3.Connection]:
    """A connection of its own holding the SQLite file's write lock, as another process would
    (BEGIN EXCLUSIVE; readers go on in WAL mode): every write of the runtime waits its busy
    timeout, then fails as a database that is unavailable. Released on exit. Taken at once,
    blocking this loop: call it while the runtime's loops are idle (after settle()), or it
    would wait for a transaction that cannot finish until the loop runs again."""
    conn = sqlite3.connect(sqlite_path(database_url), timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield conn
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def short_busy_timeout(monkeypatch, ms: int = 200) -> None:
    """Make the runtime's SQLite connections give up on a locked database after `ms` (30 s
    in production), so a test of a failing database does not wait half a minute per write.
    Call before the runtime starts (shared.db.migrate.open_database installs the pragmas)."""
    from shared.db import migrate

    original = migrate._sqlite_pragmas

    def pragmas(dbapi_connection, record) -> None:
        original(dbapi_connection, record)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(ms)}")
        cursor.close()
    monkeypatch.setattr(migrate, "_sqlite_pragmas", pragmas)
