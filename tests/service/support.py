"""Helpers of the live-service tests: a fake clock, the app over ASGI, alarm builders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.http_guard import HttpLimits
from services.live import Embedded
from shared.clock import parse_time
from shared.inventory import Inventory
from shared.rulebook import Rulebook

ROOT = Path(__file__).resolve().parents[2]
T0 = parse_time("2026-11-25T10:00:00+08:00")      # a Wednesday morning, office hours
MINUTE = 60.0


@dataclass(frozen=True)
class LiveSettings:
    """What a test's `faultline run` is given (the command reads it from services/settings.py)."""

    inventory: Inventory
    rulebook: Rulebook
    database_url: str
    http: HttpLimits = field(default_factory=HttpLimits)


class FakeClock:
    """A clock the test moves by hand; the engine never sleeps past a tick the test sends."""

    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def real_seconds(self, clock_seconds: float) -> float:
        return 3600.0            # wait for an input or an explicit tick

    def jump(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Service:
    """`faultline run`'s runtime (services/live.Embedded) and an HTTP client on its app."""

    runtime: Embedded
    client: httpx.AsyncClient

    @property
    def app(self) -> FastAPI:
        return self.runtime.app

    async def settle(self) -> None:
        await self.runtime.settle()

    async def tick(self) -> None:
        await self.runtime.tick()


@asynccontextmanager
async def live_service(settings: LiveSettings, clock: FakeClock) -> AsyncIterator[Service]:
    """Start every loop of `faultline run` on a fresh registry; drain and stop them on exit."""
    svc = Embedded(settings.inventory, settings.rulebook, settings.database_url, clock,
                   http=settings.http, registry=CollectorRegistry(), tick_every_s=3600.0)
    await svc.start()
    try:
        transport = httpx.ASGITransport(app=svc.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://faultline") as client:
            yield Service(svc, client)
    finally:
        await svc.stop()


def alarm(resource_id: str, alarm_id: str, *, state: str = "raised", cause: str = "LOS",
          event_time: str = "2026-11-25T10:00:00+08:00") -> dict:
    return {"source": "gd-otn-nms-1", "alarm_id": alarm_id, "resource_id": resource_id,
            "probable_cause": cause, "severity": "critical", "state": state,
            "event_time": event_time, "text": f"R_{cause}"}


# The Tianhe duct cut of the demo: both routes of China Southern's two internet lines.
FIBRE_CUT = [alarm("GZ-OTN-B:2-1-4", "884211"), alarm("GZ-OTN-B:2-1-5", "884212"),
             alarm("GZ-OTN-A:1-3-1", "884213")]


async def all_decisions(client: httpx.AsyncClient) -> list[dict]:
    out, after = [], 0
    while True:
        page = (await client.get("/decisions", params={"after_seq": after})).json()
        if not page["decisions"]:
            return out
        out.extend(page["decisions"])
        after = page["last_seq"]
