"""`faultline ingest`: raw feeds → normalized alarms on faultline.alarms (CONTRACT §4).

The composition root: the database and broker (services/commands/process.prepare), the
ingest loop (services/runtime/ingest_loop.py), the raw listeners (shared/listeners.py) when
their ports are set, and the ops port.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from services.commands.production import prepare
from services.http.app import build_ops_app
from services.http.guard import serve_until_stopped
from services.http.ops import Ops
from services.runtime.ingest_loop import RAW_TOPICS, IngestRunner
from services.runtime.shell import loops_health, readiness
from services.settings import Settings
from shared.listeners import now_ms, start_listeners
from shared.topics import ALARMS, DEADLETTER, raw_alarms_topic


async def ingest(settings: Settings, stop: asyncio.Event) -> None:
    db, transport = await prepare(settings, [*RAW_TOPICS, ALARMS, DEADLETTER])
    producer = transport.producer()
    await producer.start(deadline_s=None)
    registry = CollectorRegistry()
    runner = IngestRunner(transport, producer, registry)
    ops = Ops(registry, loops_health({"ingest": runner}), lambda: readiness(db, transport))
    app = build_ops_app(ops, settings.http)

    async def publish_raw(fmt: str, data: bytes) -> None:
        await producer.send(raw_alarms_topic(fmt), data, timestamp_ms=now_ms())

    handles = await start_listeners(publish_raw, syslog_udp=settings.syslog_udp_port,
                                    syslog_tcp=settings.syslog_tcp_port, snmp_udp=settings.snmp_trap_port)
    try:
        await asyncio.gather(runner.run(stop),
                             serve_until_stopped(app, settings.http_port, stop, settings.http,
                                                 host=settings.http_host))
    finally:
        for h in handles:
            h.close()
        await producer.stop()
        await db.dispose()
