"""`faultline dispatch`: the dispatch city shards, over Kafka and PostgreSQL (CONTRACT §4).
Built when it runs; drains on SIGTERM, and
restarts its loops on an inventory loaded through the API (services/commands/process.py)."""

from __future__ import annotations

import asyncio

from services.commands.production import kafka_wiring, ops_app
from services.config import load_config
from services.http.guard import serve_until_stopped
from services.inventory_store import watch
from services.runtime.assembly import DISPATCH_TOPICS, dispatch_loop
from services.settings import Settings


async def dispatch(settings: Settings, stop: asyncio.Event) -> None:
    inventory, rulebook = load_config(settings.inventory_path, settings.rulebook_path)
    w = await kafka_wiring(settings, inventory, rulebook, DISPATCH_TOPICS, "dispatch")
    shards = dispatch_loop(w, real_seconds=(lambda s: s) if settings.clock == "wall" else None,
                           recovery=settings.recovery)
    app = ops_app(settings, w, {"dispatch": shards}, [shards])
    try:
        await asyncio.gather(watch(w.db, w.inventory_version, lambda _version: stop.set(), stop),
                             shards.run(stop),
                             serve_until_stopped(app, settings.http_port, stop, settings.http,
                                                 host=settings.http_host))
    finally:
        await w.producer.stop()
        await w.db.dispose()
