"""The shell every process shares (CONTRACT §4): what its /healthz and /readyz say (the ops
app itself is built by services/http/app.py, the one module that builds apps, and served by
the HTTP guard's `serve_until_stopped`); the stop on SIGTERM, with a watchdog for a drain
that cannot finish. Settings are
services/settings.py, read once when a command starts.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.transport.port import Transport

log = logging.getLogger("faultline")

# Collect the youngest generation every 50,000 allocations (Python's default: 700).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Once a process has started: what start-up made (the inventory, the rulebook, every
    shard's state so far, the modules) is long-lived, so it is frozen out of the cyclic
    collector, which then runs far less often. Under a storm a batch message decodes into
    ~100,000 objects, and with Python's defaults the collector rescans the whole heap over and
    over: measured, ~25% less CPU per alarm for `faultline run` on the storm of bench/storm.py.
    Garbage without cycles is freed at once as always; cycles wait a little longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def loops_health(loops: Mapping[str, Any]) -> Callable[[], str | None]:
    """/healthz of a process: None while every loop (anything with `healthy`) runs, else which
    do not (a session that failed and is starting again is not healthy until a pass works)."""
    def health() -> str | None:
        down = [name for name, loop in loops.items() if not loop.healthy]
        return f"loop(s) not running: {', '.join(down)}" if down else None
    return health


async def reachable(db: AsyncEngine, transport: Transport) -> list[str]:
    """/readyz problems: the database and the broker, each within 3 s, with the reason."""
    problems = []
    try:
        async with db.connect() as conn:
            await asyncio.wait_for(conn.execute(text("select 1")), 3)
    except Exception as err:                       # any failure means "not ready", with its reason
        problems.append(f"database: {type(err).__name__}")
    trouble = await transport.problem()
    return problems + ([trouble] if trouble else [])


async def readiness(db: AsyncEngine, transport: Transport, sharded: Iterable[Any] = ()) -> list[str]:
    """/readyz problems of a process: its shards whose timers fail (degraded), then what it
    cannot reach."""
    return [d for runner in sharded for d in runner.degraded] + await reachable(db, transport)


def install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def watchdog(stop: asyncio.Event, drain_s: float) -> None:
    """After SIGTERM, a drain that cannot finish (a broker gone for good) must not hold the
    process: everything handled is already durable, so exiting loses nothing."""
    await stop.wait()
    await asyncio.sleep(drain_s)
    log.error("drain did not finish in %.0fs; exiting", drain_s)
    logging.shutdown()
    os._exit(3)

