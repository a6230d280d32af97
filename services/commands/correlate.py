"""`faultline correlate`: the router and the correlate city shards, over Kafka and
PostgreSQL (CONTRACT §4). Built when it runs; drains on SIGTERM, and
restarts its loops on an inventory loaded through the API (services/commands/process.py)."""

from __future__ import annotations

import asyncio
import time

from services.commands.production import kafka_wiring, ops_app
from services.config import load_config
from services.http.guard import serve_until_stopped
from services.inventory_store import watch
from services.runtime.assembly import CORRELATE_TOPICS, correlate_loops, deadletter_keeper, router_metrics
from services.settings import Settings


async def correlate(settings: Settings, stop: asyncio.Event) -> None:
    inventory, rulebook = load_config(settings.inventory_path, settings.rulebook_path)
    w = await kafka_wiring(settings, inventory, rulebook, CORRELATE_TOPICS, "correlate")
    router, shards = correlate_loops(w, clock=time.time if settings.clock == "wall" else None,
                                     hold_s=settings.arrival_hold_s, recovery=settings.recovery)
    keeper = deadletter_keeper(w)
    app = ops_app(settings, w, {"router": router, "correlate": shards, "deadletter": keeper}, [shards])
    try:
        await asyncio.gather(watch(w.db, w.inventory_version, lambda _version: stop.set(), stop),
                             router.run(stop), shards.run(stop), keeper.run(stop),
                             router_metrics(router, w.registry, stop),
                             serve_until_stopped(app, settings.http_port, stop, settings.http,
                                                 host=settings.http_host))
    finally:
        await w.producer.stop()
        await w.db.dispose()
