"""Inventories loaded through the API (issue 10, deliverable 5): validate everything, then
swap atomically; the old inventory stays on any error, with every problem named.

A load is checked whole by the same parser every process uses at start (shared.inventory.
parse_inventory: every problem of every entry, not the first). Only a document that passes
becomes a version: one INSERT into `inventories` (migration 0011), so the swap is atomic —
the current inventory is the highest id, and a failed load leaves it as it was. A document
equal to the current one (same canonical digest) makes no new version.

Where a version takes effect. The processes hold the inventory in memory (the router's city
groups, the shards' circuits); they take the current version when they (re)start, before the
file of FAULTLINE_INVENTORY, which then only seeds a database that has none. A running
process watches the current version (`watch`, every few seconds) and, when it changes,
drains its loops exactly as on SIGTERM — each batch finished, stored and committed — and
starts them again on the new version (services/commands/process.py, services/commands/
run.py): its shards reopen from their snapshots re-bound to the new inventory, as at any
restart (services/drivers/snapshots.py says what a changed inventory means for open faults).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.models import inventories
from shared.inventory import Inventory, parse_inventory

log = logging.getLogger("faultline.inventory")

WATCH_EVERY_S = 5.0
KEEP_VERSIONS = 20
_META = (inventories.c.id, inventories.c.digest, inventories.c.customers, inventories.c.resources,
         inventories.c.circuits, inventories.c.loaded_at, inventories.c.loaded_by)


def canonical(doc: Any) -> bytes:
    """The document as stored: JSON with object keys sorted (lists keep their order: decisions
    depend on the file order of circuits and paths)."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def _meta(row: Any) -> dict:
    return {"version": int(row.id), "digest": row.digest, "customers": row.customers,
            "resources": row.resources, "circuits": row.circuits, "loaded_at": row.loaded_at,
            "loaded_by": row.loaded_by}


class InventoryStore:
    """The `inventories` table."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    async def load(self, doc: Any, by: str) -> tuple[dict, Inventory, bool]:
        """Check `doc` whole and make it the current version: (its meta, the Inventory, whether
        it is new). InventoryError (every problem) when it does not pass: nothing changes."""
        inventory = await asyncio.to_thread(parse_inventory, doc, "inventory")
        body = canonical(doc)
        digest = hashlib.sha256(body).hexdigest()
        async with self.engine.begin() as conn:
            current = (await conn.execute(select(*_META).order_by(inventories.c.id.desc()).limit(1))).first()
            if current is not None and current.digest == digest:
                return _meta(current), inventory, False
            result = await conn.execute(insert(inventories).values(
                digest=digest, body=zlib.compress(body, 6), customers=len(inventory.customers),
                resources=len(inventory.resources), circuits=len(inventory.circuits),
                loaded_at=self.clock(), loaded_by=by))
            version = int(result.inserted_primary_key[0])
            # The newest KEEP_VERSIONS stay (each up to the body limit): a history, not an archive.
            await conn.execute(delete(inventories).where(inventories.c.id <= version - KEEP_VERSIONS))
        return {"version": version, "digest": digest, "customers": len(inventory.customers),
                "resources": len(inventory.resources), "circuits": len(inventory.circuits),
                "loaded_at": self.clock(), "loaded_by": by}, inventory, True

    async def current_version(self) -> int | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(func.max(inventories.c.id)))).scalar()

    async def versions(self, limit: int = 100) -> list[dict]:
        """The versions, newest first (no documents)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(*_META).order_by(inventories.c.id.desc()).limit(limit))
            return [_meta(r) for r in rows]

    async def current(self) -> tuple[dict, Inventory] | None:
        """The current version and its Inventory; None when none was loaded through the API."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(*_META, inventories.c.body)
                                      .order_by(inventories.c.id.desc()).limit(1))).first()
        if row is None:
            return None
        doc = orjson.loads(zlib.decompress(row.body))
        return _meta(row), await asyncio.to_thread(parse_inventory, doc, f"inventory version {row.id}")


async def startup_inventory(engine: AsyncEngine, seed: Inventory | None,
                            process: str) -> tuple[Inventory | None, int | None]:
    """What a process runs on: the current version loaded through the API, else `seed` (the
    FAULTLINE_INVENTORY file). (inventory, version; None for the file)."""
    found = await InventoryStore(engine).current()
    if found is None:
        return seed, None
    meta, inventory = found
    log.info("%s: inventory version %d from the database (loaded %s by %s; %d circuits), not the file",
             process, meta["version"], time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(meta["loaded_at"])),
             meta["loaded_by"], meta["circuits"])
    return inventory, meta["version"]


async def watch(engine: AsyncEngine, running: int | None, on_change: Callable[[int], Awaitable[None] | None],
                stop: asyncio.Event, every_s: float = WATCH_EVERY_S) -> None:
    """Call `on_change(version)` once the current version differs from `running`; until `stop`.
    A database that does not answer is tried again at the next round."""
    store = InventoryStore(engine)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every_s)
            return
        except TimeoutError:
            pass
        try:
            version = await store.current_version()
        except Exception as exc:        # the database away: the process goes on, on what it has
            log.warning("inventory watch: current version unknown (%s); tried again", type(exc).__name__)
            continue
        if version is not None and version != running:
            log.warning("inventory version %d loaded (running %s): draining to apply it", version,
                        running if running is not None else "the file's")
            done = on_change(version)
            if done is not None:
                await done
            return
