"""`faultline api`: the HTTP face of the production pipeline (CONTRACT §4).

The app is services/http/app.py's, the same as `faultline run` serves; this is its
composition root for the Kafka processes: the schema migrated and the intake topics made
(`prepare`), a Kafka producer, the PostgreSQL (or SQLite) database the stages write,
readiness = the database and the broker answer. The api has no loop of its own, so it is
alive while it serves. The inventory, when configured (FAULTLINE_INVENTORY, as for every
process), gives faults their customer's name and lets intake refuse at once an action the
router could not route, and wait for every city shard an alarm goes to.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from alarm_ingest.mapping import Mappings
from services.commands.production import prepare
from services.config import load_inventory_file, load_mappings_dir
from services.http.app import build_app
from services.http.face import Face
from services.http.guard import serve_until_stopped
from services.inventory_store import startup_inventory, watch
from services.runtime.shell import reachable
from services.settings import Settings
from shared.inventory import Inventory
from shared.topics import ACTIONS, ALARMS, DEADLETTER, raw_alarms_topic
from shared.transport.kafka import KafkaTransport
from shared.transport.port import Producer as ProducerPort
from shared.transport.port import Transport


def alive() -> str | None:
    return None


def face(settings: Settings, engine: AsyncEngine, producer: ProducerPort, registry: CollectorRegistry,
         inventory: Inventory | None = None, broker: Transport | None = None,
         inventory_version: int | None = None, mappings: Mappings | None = None) -> Face:
    broker = broker or KafkaTransport(settings.kafka)       # readiness dials it
    return Face(producer=producer, db=engine, registry=registry, health=alive,
                ready=lambda: reachable(engine, broker), limits=settings.http, inventory=inventory,
                inventory_version=inventory_version, mappings=mappings)


def create_api(settings: Settings, engine: AsyncEngine, producer: ProducerPort,
               registry: CollectorRegistry, inventory: Inventory | None = None,
               broker: Transport | None = None, inventory_version: int | None = None,
               mappings: Mappings | None = None) -> FastAPI:
    """The api's app on these adapters (tests/service/http_support.py builds it with a
    recording producer and a SQLite read model)."""
    return build_app(face(settings, engine, producer, registry, inventory, broker, inventory_version,
                          mappings))


async def api(settings: Settings, stop: asyncio.Event) -> None:
    seed = load_inventory_file(settings.inventory_path) if settings.inventory_path else None
    # refused before anything starts
    mappings = load_mappings_dir(settings.mappings_dir, settings.snmp_v3_users)
    engine, transport = await prepare(settings, (ALARMS, ACTIONS, DEADLETTER, raw_alarms_topic("tmf642"),
                                                 raw_alarms_topic("export")))
    inventory, version = await startup_inventory(engine, seed, "api")
    producer = transport.producer()
    await producer.start(deadline_s=None)
    try:
        app = create_api(settings, engine, producer, CollectorRegistry(), inventory, transport, version,
                         mappings)
        hub = asyncio.create_task(app.state.hub.run(stop), name="hub")    # TMF event delivery
        watching = asyncio.create_task(watch(engine, version, lambda _version: stop.set(), stop))
        try:
            await serve_until_stopped(app, settings.http_port, stop, settings.http, host=settings.http_host)
        finally:
            stop.set()
            await asyncio.gather(hub, watching)
    finally:
        await producer.stop()
        await engine.dispose()
