"""The wall screen without Grafana (issue 12): `/wall`, a plain page a monitoring room opens in
any browser, and `/wall/summary`, the one read it refreshes from.

The page is static (Chinese labels, a little JavaScript, nothing loaded from outside: rooms
sit on isolated networks). It reads a bearer token from the URL's fragment (`/wall#token=…`:
a fragment never reaches the server, so no access log holds it), keeps it in the browser's
localStorage, and every 10 s asks `/wall/summary` (read permission; a city operator's token
sees its city) for: open and serious faults by city, deadlines at risk (work orders whose
contact or arrival deadline falls within 30 minutes on the service's clock, or has passed),
the latest serious faults and the latest work orders.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import case, func, or_, select

from services.access import READ, Principal
from services.http.auth import AUTH_ANSWERS, Auth
from services.http.face import Face
from shared.clock import TimeFormatError, fmt_time, parse_time
from shared.db.models import faults, work_orders

AT_RISK_S = 30 * 60
LATEST = 10
DONE = ("resolved", "closed", "cancelled")


def _time(text: object) -> float | None:
    try:
        return parse_time(text)
    except TimeFormatError:
        return None


async def summary(face: Face, who: Principal) -> dict[str, Any]:
    now = face.now_ms() / 1000
    mine_f = [faults.c.city == who.city] if who.city else []
    mine_w = [work_orders.c.queue.startswith(f"city.{who.city}.", autoescape=True)] if who.city else []
    async with face.db.connect() as conn:
        by_city = (await conn.execute(
            select(faults.c.city, func.count(),
                   func.sum(case((faults.c.severity == "serious", 1), else_=0)))
            .where(faults.c.ended_at.is_(None), *mine_f).group_by(faults.c.city)
            .order_by(faults.c.city))).all()
        serious = (await conn.execute(
            select(faults.c.fault_id, faults.c.city, faults.c.circuit_id, faults.c.customer_id,
                   faults.c.rule, faults.c.serious_at, faults.c.opened_at, faults.c.ended_at)
            .where(faults.c.severity == "serious", *mine_f)
            .order_by(faults.c.serious_at.desc()).limit(LATEST))).mappings().all()
        pending = (await conn.execute(
            select(work_orders.c.work_order_id, work_orders.c.queue, work_orders.c.status,
                   work_orders.c.contact_by, work_orders.c.arrive_by, work_orders.c.title)
            .where(work_orders.c.status.not_in(DONE), *mine_w,
                   or_(work_orders.c.contact_by.is_not(None), work_orders.c.arrive_by.is_not(None)))
            .order_by(work_orders.c.created_at.desc()).limit(2000))).mappings().all()
        latest = (await conn.execute(
            select(work_orders.c.work_order_id, work_orders.c.queue, work_orders.c.status,
                   work_orders.c.priority, work_orders.c.title, work_orders.c.created_at)
            .where(*mine_w)
            .order_by(work_orders.c.created_at.desc()).limit(LATEST))).mappings().all()
    at_risk = []
    for w in pending:
        for kind, label in (("contact_by", "联系时限"), ("arrive_by", "到场时限")):
            due = _time(w[kind])
            if due is not None and due - now <= AT_RISK_S:
                at_risk.append({"work_order_id": w["work_order_id"], "queue": w["queue"], "deadline": kind,
                                "label": label, "due": w[kind], "minutes_left": round((due - now) / 60),
                                "title": w["title"]})
    at_risk.sort(key=lambda r: r["minutes_left"])
    cities = [{"city": c or "-", "open": n, "serious": int(s or 0)} for c, n, s in by_city]
    return {"now": fmt_time(now), "cities": cities,
            "open": sum(c["open"] for c in cities), "serious_open": sum(c["serious"] for c in cities),
            "at_risk": at_risk[:50], "serious": [{str(k): v for k, v in r.items()} for r in serious],
            "work_orders": [{str(k): v for k, v in r.items()} for r in latest]}


def wall_routes(face: Face, auth: Auth) -> APIRouter:
    router = APIRouter(tags=["wall"])
    read = Depends(auth.needs(READ))

    @router.get("/wall", response_class=HTMLResponse, include_in_schema=True,
                responses={200: {"description": "the wall-screen page (HTML); open it as "
                                                "/wall#token=<a read token>",
                                 "content": {"text/html": {"example": "<!doctype html><html lang=\"zh-CN\">"
                                                                      "<head><title>集团客户专线监控大厅</title>…"}}}})
    async def wall_page() -> HTMLResponse:
        """The monitoring room's wall screen (监控大厅): a self-contained page that refreshes
        itself from /wall/summary every 10 s. Needs no login page: the token comes in the URL
        fragment, which browsers never send."""
        return HTMLResponse(PAGE, headers={"Cache-Control": "no-store",
                                           "Content-Security-Policy": "default-src 'self'; "
                                           "script-src 'unsafe-inline'; style-src 'unsafe-inline'"})

    @router.get("/wall/summary", responses={**AUTH_ANSWERS, 200: {"description": "what the wall shows",
                                                                    "content": {"application/json": {
                                                                        "example": SUMMARY_EXAMPLE}}}})
    async def wall_summary(who: Principal = read) -> Response:
        """What the wall screen shows: open and serious faults by city, deadlines at risk (within
        30 minutes, or passed), the latest serious faults and work orders. A city operator's
        token: its city only."""
        return Response(orjson.dumps(await summary(face, who)), media_type="application/json")

    return router


SUMMARY_EXAMPLE = {
    "now": "2026-11-25T10:40:00+08:00", "open": 3, "serious_open": 1,
    "cities": [{"city": "GZ", "open": 3, "serious": 1}],
    "at_risk": [{"work_order_id": "W-GZ-000001", "queue": "province.noc", "deadline": "contact_by",
                 "label": "联系时限", "due": "2026-11-25T10:50:00+08:00", "minutes_left": 10,
                 "title": "南方航空集团公司 internet 中断"}],
    "serious": [{"fault_id": "F-GZ-000001", "city": "GZ", "circuit_id": "GZ-INT-0001", "customer_id": "C-NH",
                 "rule": "SF-3", "serious_at": "2026-11-25T10:30:00+08:00",
                 "opened_at": "2026-11-25T10:00:00+08:00", "ended_at": None}],
    "work_orders": [{"work_order_id": "W-GZ-000001", "queue": "province.noc", "status": "acknowledged",
                     "priority": "urgent", "title": "南方航空集团公司 internet 中断",
                     "created_at": "2026-11-25T10:30:00+08:00"}]}


# The page itself: services/http/wall.html (package data), read once.
PAGE = (resources.files("services.http") / "wall.html").read_text(encoding="utf-8")
