"""Settings of the live service and the resources one running instance holds."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from services.engine import Engine
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


@dataclass(slots=True)
class Runtime:
    """Built in the app's lifespan, closed at its end; handlers reach it via app.state."""

    settings: LiveSettings
    store: Store
    bus: Bus
    clock: Clock
    registry: CollectorRegistry
    engine: Engine
