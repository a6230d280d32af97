"""/healthz, /readyz and /metrics: the routes every process serves (the API's, and the ops
port of correlate, dispatch and ingest)."""


from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.http import examples
from services.http.examples import answer
from services.http.face import Face, no_warnings
from services.http.models import (
    Status,
)

# ---------------------------------------------------------------------- operations

@dataclass(frozen=True, slots=True)
class Ops:
    """What /healthz, /readyz and /metrics of any process need (a `Face` has it too)."""

    registry: CollectorRegistry
    health: Callable[[], str | None]                    # None: alive; else why not
    ready: Callable[[], Awaitable[list[str]]]           # problems: 503 when any
    warnings: Callable[[], list[str]] = no_warnings


def ops_routes(face: Face | Ops) -> APIRouter:
    """/healthz (the mode's loops run), /readyz (and what they need answers; warnings such as the
    holiday calendar's end listed, never making it unready), /metrics."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", response_model=Status, responses={503: {"model": Status}})
    async def healthz() -> JSONResponse:
        problem = face.health()
        if problem is None:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "down", "detail": problem}, status_code=503)

    @router.get("/readyz", response_model=Status, responses={503: {"model": Status}})
    async def readyz() -> JSONResponse:
        problem = face.health()
        problems = ([f"down: {problem}"] if problem is not None else []) + list(await face.ready())
        status = "down" if problem is not None else "not ready" if problems else "ready"
        body = {"status": status, "detail": problem if problem is not None else "; ".join(problems) or None,
                "problems": problems, "warnings": face.warnings()}
        return JSONResponse(body, status_code=503 if problems else 200)

    @router.get("/metrics", response_class=Response,
                responses={200: answer(examples.METRICS, "text/plain; version=0.0.4")})
    async def metrics() -> Response:
        return Response(generate_latest(face.registry), media_type=CONTENT_TYPE_LATEST)

    return router
