"""What the production processes share: their database (migrated) and broker (topics made)
before they start (`prepare`), the wiring of their loops (database, broker, producer,
metrics) and their ops port."""

from __future__ import annotations

import time
from collections.abc import Iterable

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.http.app import build_ops_app
from services.http.ops import Ops
from services.inventory_store import startup_inventory
from services.runtime.assembly import Wiring, wiring
from services.runtime.metrics import calendar_watch
from services.runtime.shell import loops_health, readiness, tune_gc
from services.settings import Settings
from shared.db.migrate import open_database
from shared.transport.kafka import KafkaTransport


async def prepare(settings: Settings, topics: Iterable[str]) -> tuple[AsyncEngine, KafkaTransport]:
    """A production process's database (migrated) and broker (its topics made, waiting for a
    broker that is still coming up)."""
    db = await open_database(settings.database_url)
    transport = KafkaTransport(settings.kafka)
    await transport.ensure_topics({t: settings.kafka.partitions for t in topics}, deadline_s=None)
    return db, transport


async def kafka_wiring(settings: Settings, inventory, rulebook, topics, process: str) -> Wiring:
    """The database (migrated) and the broker (topics created) of a production process, and the
    inventory it runs on: the current version loaded through the API, else the file's."""
    db, transport = await prepare(settings, topics)
    inventory, version = await startup_inventory(db, inventory, process)
    producer = transport.producer()
    await producer.start(deadline_s=None)
    w = wiring(inventory, rulebook, db, transport, producer, CollectorRegistry(), version)
    tune_gc()                                # the inventory and rulebook are loaded: long-lived
    return w


def ops_app(settings: Settings, w: Wiring, loops: dict, sharded: list) -> FastAPI:
    """/healthz: every loop runs; /readyz: no shard's timers failing, database and broker
    reachable; the holiday calendar's end as a warning."""
    ops = Ops(w.registry, loops_health(loops), lambda: readiness(w.db, w.transport, sharded),
              calendar_watch(w.rulebook, w.registry, time.time))
    return build_ops_app(ops, settings.http)
