"""The loops of the runtime, assembled once for every process that runs them.

`faultline correlate`, `faultline dispatch` and `faultline ingest` each run some of these
loops over Kafka and PostgreSQL; `faultline run` runs all of them in one process over the
local transport and SQLite. Both get them from here, so a loop is built one way whatever
runs it: the router and the correlate shards, the dispatch shards, the raw-feed ingest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from alarm_ingest.mapping import Mappings
from services.drivers.stage_logic import CorrelateLogic, DispatchLogic
from services.runtime.dead_letter_keeper import DeadLetterKeeper
from services.runtime.ingest_loop import RAW_TOPICS, IngestRunner
from services.runtime.metrics import (
    EngineMetrics,
    OpenFaultsCollector,
    WorkOrdersCollector,
    watch_snapshots,
)
from services.runtime.router_loop import RouterRunner
from services.runtime.shard_log import ShardLog
from services.runtime.shard_runner import ShardRunner
from services.settings import Recovery
from shared.inventory import Inventory
from shared.rulebook import Rulebook
from shared.timers import LIVE_CATCH_UP_S
from shared.topics import ACTIONS, ALARMS, ANSWERS, CORRELATOR_INPUTS, DEADLETTER, DECISIONS, FAULTS
from shared.transport.port import Producer, Transport

log = logging.getLogger("faultline")

CORRELATE_TOPICS = (ALARMS, ACTIONS, CORRELATOR_INPUTS, ANSWERS, FAULTS, DECISIONS, DEADLETTER)
DISPATCH_TOPICS = (FAULTS, DECISIONS, DEADLETTER)
INGEST_TOPICS = (*RAW_TOPICS, ALARMS, DEADLETTER)


@dataclass(frozen=True, slots=True)
class Wiring:
    """What every loop of a process shares: the rules' data, the database, the broker."""

    inventory: Inventory
    rulebook: Rulebook
    db: AsyncEngine
    transport: Transport
    producer: Producer
    registry: CollectorRegistry
    metrics: EngineMetrics
    inventory_version: int | None = None     # loaded through the API (None: the file's)
    message_clock: Callable[[], float] = time.time   # what stamps messages (run: the service clock)


def wiring(inventory: Inventory, rulebook: Rulebook, db: AsyncEngine, transport: Transport,
           producer: Producer, registry: CollectorRegistry, inventory_version: int | None = None,
           message_clock: Callable[[], float] = time.time) -> Wiring:
    return Wiring(inventory, rulebook, db, transport, producer, registry, EngineMetrics(registry),
                  inventory_version, message_clock)


def _recovery(recovery: Recovery | None) -> dict:
    """ShardRunner's snapshot and retention parameters (Settings.recovery; None: the defaults)."""
    r = recovery or Recovery()
    return {"snapshot_every": r.snapshot_every, "snapshot_bytes_per_entry": r.snapshot_bytes_per_entry,
            "retention": r.retention,
            "retention_entries": r.retention_entries}


def correlate_loops(w: Wiring, *, clock: Callable[[], float] | None, hold_s: float,
                    tick_every_s: float = 1.0,
                    recovery: Recovery | None = None) -> tuple[RouterRunner, ShardRunner]:
    """The router (alarms and actions → city shards) and the correlate shards. `clock`: the
    wall (or demo) clock whose ticks fire timers; None: stream time only. `recovery`: the
    shards' snapshots and log retention (Settings.recovery)."""
    router = RouterRunner(w.inventory, w.transport, w.producer, hold_s=hold_s)
    shards = ShardRunner(CorrelateLogic(w.inventory, w.rulebook), ShardLog(w.db, "correlate"), w.transport,
                         w.producer, group_id="faultline-correlate", wall_clock=clock,
                         tick_every_s=tick_every_s, metrics=w.metrics, ready_to_tick=lambda: router.idle,
                         message_clock=w.message_clock,
                         **_recovery(recovery))
    watch_snapshots(w.registry, shards)
    w.registry.register(OpenFaultsCollector(
        lambda: [f for st in list(shards.shards.values()) for f in st.core.correlator.open_faults.values()]))
    return router, shards


def dispatch_loop(w: Wiring, *, real_seconds: Callable[[float], float] | None,
                  recovery: Recovery | None = None) -> ShardRunner:
    """The dispatch shards. `real_seconds` (clock seconds → real seconds) of the clock timers
    run on; None on stream time, where TM-6 walks every missed slot as replay does.
    `recovery`: the shards' snapshots and log retention (Settings.recovery)."""
    seen: set[str] = set()

    def warn(message: str) -> None:           # a rulebook gap is said once, not per fault
        if message not in seen and len(seen) < 1000:
            seen.add(message)
            log.warning("%s", message)

    # A real minute the service could not run (down, or the wall clock jumped), in clock seconds.
    catch_up_s = None if real_seconds is None else LIVE_CATCH_UP_S / real_seconds(1.0)
    runner = ShardRunner(DispatchLogic(w.inventory, w.rulebook, warn, catch_up_s=catch_up_s),
                         ShardLog(w.db, "dispatch"), w.transport, w.producer, group_id="faultline-dispatch",
                         wall_clock=None, metrics=w.metrics, message_clock=w.message_clock,
                         **_recovery(recovery))
    watch_snapshots(w.registry, runner)
    w.registry.register(WorkOrdersCollector(
        lambda: [wo for st in list(runner.shards.values()) for wo in st.core.dispatcher.orders.values()],
        w.message_clock))
    return runner


def deadletter_keeper(w: Wiring) -> DeadLetterKeeper:
    """faultline.deadletter → `rejected` for the stages without a database (api, router, ingest)."""
    return DeadLetterKeeper(w.transport, w.db)


def ingest_loop(w: Wiring, mappings: Mappings | None = None) -> IngestRunner:
    """Raw feeds (faultline.alarms.raw.*) → normalized alarms on faultline.alarms, by the vendor
    mappings (None: the built-in ones)."""
    return IngestRunner(w.transport, w.producer, w.registry, mappings)


async def router_metrics(router: RouterRunner, registry: CollectorRegistry, stop: asyncio.Event) -> None:
    """The router's consumer lag and late messages, read every 5 s while it runs."""
    lag = Gauge("faultline_consumer_lag", "Messages not yet consumed, by topic", ["topic"], registry=registry)
    late = Counter("faultline_router_late_messages", "Messages that reached the broker more than "
                   "FAULTLINE_ARRIVAL_HOLD_MS after later ones (handled in arrival order)", registry=registry)
    counted = 0
    while not stop.is_set():
        for topic in (ALARMS, ACTIONS):
            lag.labels(topic).set(sum(v for (t, _p), v in router.lag.items() if t == topic))
        late.inc(router.late - counted)
        counted = router.late
        try:
            await asyncio.wait_for(stop.wait(), 5)
        except TimeoutError:
            pass
