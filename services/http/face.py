"""What the one HTTP app needs of the mode it runs in (`Face`), and its constants."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Query
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from alarm_ingest.mapping import Mappings
from services.settings import HttpLimits
from shared.inventory import Inventory
from shared.transport.port import Producer

TMF642 = "/tmf-api/alarmManagement/v4/alarm"
TMF621_BASE = "/tmf-api/troubleTicket/v4"
TMF621 = TMF621_BASE + "/troubleTicket"
MAX_WAIT_S = 30
FIRST_PAUSE_S, LONGEST_PAUSE_S = 0.02, 0.2        # a wait's polls: 20 ms, growing to 200 ms

Wait = Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="seconds to wait for the outcome while "
                                                               "it is pending (0: answer at once)")]


def wall_ms() -> int:
    return int(time.time() * 1000)


def no_warnings() -> list[str]:
    return []


@dataclass(frozen=True)
class Face:
    """What the HTTP API needs of the mode it runs in."""

    producer: Producer                                  # intake publishes with it (send_many)
    db: AsyncEngine                                     # the migrated schema: read model, logs, outbox
    registry: CollectorRegistry                         # /metrics
    health: Callable[[], str | None]                    # None: alive; else why not (/healthz 503)
    ready: Callable[[], Awaitable[list[str]]]           # problems: /readyz 503 when any
    warnings: Callable[[], list[str]] = no_warnings     # listed by /readyz, never making it unready
    limits: HttpLimits = field(default_factory=HttpLimits)
    now_ms: Callable[[], int] = wall_ms                 # the message time intake stamps
    inventory: Inventory | None = None                  # names, shards, the router's check
    inventory_version: int | None = None                # of `inventory` (None: the file's)
    mappings: Mappings | None = None                    # vendor mappings (None: the built-in ones)
