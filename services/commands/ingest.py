"""`faultline ingest`: raw feeds → normalized alarms on faultline.alarms (CONTRACT §4).

The composition root: the database and broker (services/commands/process.prepare), the
ingest loop (services/runtime/ingest_loop.py), the raw listeners (shared/listeners.py) when
their ports are set, and the ops port.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from services.commands.production import prepare
from services.config import load_mappings_dir
from services.http.app import build_ops_app
from services.http.guard import serve_until_stopped
from services.http.ops import Ops
from services.runtime.ingest_loop import RAW_TOPICS, IngestRunner, raw_publisher
from services.runtime.metrics import ListenerCollector
from services.runtime.shell import loops_health, readiness
from services.settings import Settings
from shared.listeners import now_ms, start_listeners
from shared.topics import ALARMS, DEADLETTER


async def ingest(settings: Settings, stop: asyncio.Event) -> None:
    # refused before anything starts
    mappings = load_mappings_dir(settings.mappings_dir, settings.snmp_v3_users)
    db, transport = await prepare(settings, [*RAW_TOPICS, ALARMS, DEADLETTER])
    producer = transport.producer()
    await producer.start(deadline_s=None)
    registry = CollectorRegistry()
    runner = IngestRunner(transport, producer, registry, mappings)
    ops = Ops(registry, loops_health({"ingest": runner}), lambda: readiness(db, transport))
    app = build_ops_app(ops, settings.http)

    raw = settings.raw_listeners
    listeners = await start_listeners(raw_publisher(producer, now_ms), syslog_udp=raw.syslog_udp,
                                      syslog_tcp=raw.syslog_tcp, snmp_udp=raw.snmp_udp, host=raw.host)
    registry.register(ListenerCollector(lambda: listeners.counts))
    try:
        await asyncio.gather(runner.run(stop),
                             serve_until_stopped(app, settings.http_port, stop, settings.http,
                                                 host=settings.http_host))
    finally:
        await listeners.close()
        await producer.stop()
        await db.dispose()
