"""Settings of the live service and the resources one running instance holds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from services.engine import Engine
from services.http_guard import HttpLimits, IntakeSlots
from services.metrics import Warnings
from shared.bus import Bus
from shared.inventory import Inventory
from shared.liveclock import Clock
from shared.rulebook import Rulebook
from shared.store import Store


@dataclass(frozen=True, slots=True)
class LiveSettings:
    """What `faultline run` was told (flags or FAULTLINE_* variables), already loaded."""

    inventory: Inventory
    rulebook: Rulebook
    database_url: str | None = None      # unset: the local SQLite file
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    recent_hours: float = 24.0           # GET /faults also lists faults ended this recently
    http: HttpLimits = HttpLimits()      # body size, body timeout, CORS, connections (FAULTLINE_HTTP_*)


class IntakeFirst:
    """Reads give way to intake on the engine's event loop; intake holds few decoded bodies.

    Intake handlers hold `intake()`; a read first waits, up to `max_wait_s`, until no intake
    request is in flight. Every read is bounded (a page), but four clients polling in a loop
    would otherwise run a page build before each of an intake request's many awaits; with
    this gate an alarm waits for at most the reads already running (bench/http_reads.py).
    `intake()` also takes one of `slots` (services/http_guard.IntakeSlots) for the request's
    whole handling, so at most that many bodies are decoded and held at once."""

    def __init__(self, max_wait_s: float = 1.0, slots: IntakeSlots | None = None) -> None:
        self.max_wait_s = max_wait_s
        self.slots = slots or IntakeSlots(HttpLimits().max_decoded_bodies)
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def intake(self) -> AsyncIterator[None]:
        self._busy += 1
        self._idle.clear()
        try:
            async with self.slots.slot():
                yield
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def read(self) -> None:
        if self._busy:
            with contextlib.suppress(TimeoutError):       # a storm of intake must not starve reads for ever
                async with asyncio.timeout(self.max_wait_s):
                    await self._idle.wait()


@dataclass(slots=True)
class Runtime:
    """Built in the app's lifespan, closed at its end; handlers reach it via app.state."""

    settings: LiveSettings
    store: Store
    bus: Bus
    clock: Clock
    registry: CollectorRegistry
    engine: Engine
    warnings: Warnings                   # what /readyz lists (the holiday calendar's end)
    gate: IntakeFirst = field(default_factory=IntakeFirst)
