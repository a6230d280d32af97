"""Work orders as TMF621 v4 Trouble Tickets (issue 10): list with filters, get one, and PATCH
along RULES.md CL-2, with notes; the base path /tmf-api/troubleTicket/v4/.

Who decides what (one runtime, replay the reference): the rules own a work order's making,
priority and resolution; an operator owns its handling. So a PATCH of `status`:

- `inProgress` (taken in hand) is the operator action `ack` (CONTRACT §3) for the order's
  queue and its first open fault, published like POST /actions and decided by the dispatch
  stage as replay decides it (TM-9 counts it); refused by the rules (CL-4) → 409 with the reason;
- `resolved` is the action `resolve` of each open fault of the order: the rules resolve the
  order when its faults end (CL-2; an outage whose circuit is still down is refused, 409);
- `held`, `pending`, `cancelled` and `closed` are the work-order system's own bookkeeping, no
  rule reads them: written at once, compare-and-set on the status the caller saw.

Transitions (CL-2's lifecycle acknowledged → inProgress → resolved → closed, with held,
pending and cancelled beside it): `ALLOWED`. Any other is 409 naming the allowed next states.
`note` items without an id are appended; items with an id (notes sent back as read) are
left as they are: notes are never rewritten or deleted. Every other attribute is the rules'
or the server's: 400 naming it.

An action that is still undecided after `wait_s` (default 10 s) is answered 202 with the
ticket as it stands and the action's input id (`X-Input-Ids`; GET /inputs/{id} follows it).

POST (create) and DELETE answer 405: work orders are made by the rulebook from alarms and
complaints (post those), and a work order is cancelled, never deleted (留痕).

Every accepted change goes to the audit trail with the status and notes before and after.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import func, insert, select, update

from services.access import ACT, READ, Principal
from services.http.auth import AUTH_ANSWERS, Auth, check
from services.http.examples import TICKET as TICKET_EXAMPLE
from services.http.face import MAX_WAIT_S, TMF621, Face
from services.http.guard import Limit, Offset, decode_json
from services.http.intake import Intake, _Batch
from services.http.models import TroubleTicket, request_schema, trouble_ticket
from services.http.reads import TicketFilters, open_faults_of, order_one, ticket_extras, ticket_page
from services.http.tmf import (
    LIST_HEADERS,
    Fields,
    bad,
    base_url,
    comparisons,
    list_answer,
    one,
    query_filters,
    select_fields,
    time_filters,
    tmf_answers,
)
from services.hub import Hub
from shared.clock import fmt_time
from shared.db.models import work_order_changes, work_order_notes, work_orders
from shared.topics import ACTIONS
from shared.wire import action_from_dict

STATUSES = ("acknowledged", "rejected", "pending", "held", "inProgress", "cancelled", "closed",
            "resolved")
ALLOWED: dict[str, tuple[str, ...]] = {
    "acknowledged": ("inProgress", "held", "pending", "cancelled"),
    "inProgress": ("resolved", "held", "pending", "cancelled"),
    "held": ("inProgress", "pending", "cancelled"),
    "pending": ("inProgress", "held", "cancelled"),
    "resolved": ("closed",),
    "closed": (),
    "cancelled": (),
    "rejected": (),
}
PATCHABLE = ("status", "statusChangeReason", "note")
READ_ONLY = ("id", "href", "@type", "@baseType", "@schemaLocation", "creationDate", "lastUpdate",
             "statusChangeDate", "statusChange", "statusChangeHistory", "resolutionDate")
MAX_NOTES, MAX_TEXT = 20, 4000
MAX_NOTES_PER_TICKET = 1000          # a ticket's body stays readable; a runaway client is told
DEFAULT_WAIT_S = 10.0
FILTERS = ("queue", "status", "priority", "ticketType", "city", "fault",
           *time_filters(("creationDate", "lastUpdate")))

_PATCH_BODY = request_schema({
    "type": "object", "additionalProperties": True,
    "description": "RFC 7386 merge patch (application/merge-patch+json; application/json the same): "
                   "status, statusChangeReason, note (items appended)",
    "properties": {"status": {"type": "string", "enum": list(STATUSES)},
                   "statusChangeReason": {"type": "string"},
                   "note": {"type": "array", "items": {"type": "object", "properties": {
                       "text": {"type": "string"}, "author": {"type": "string"}}}}},
    "examples": [{"status": "inProgress", "statusChangeReason": "taken by the GZ monitoring room"},
                 {"note": [{"text": "fibre cut found at km 12, splicing team on site"}]},
                 {"status": "closed", "statusChangeReason": "customer confirmed service restored"}]})
for _media in ("application/merge-patch+json",):
    _PATCH_BODY["requestBody"]["content"][_media] = _PATCH_BODY["requestBody"]["content"]["application/json"]

_TICKET_ANSWER = {"content": {"application/json": {"example": TICKET_EXAMPLE}}}
_NOT_OFFERED = {405: tmf_answers(405)[405]}


def _queue_city(queue: object) -> str | None:
    if type(queue) is str and queue.startswith("city."):
        return queue.split(".")[1] or None
    return None


class TicketDesk:
    """What the ticket routes do, over the mode's database and the intake's publisher."""

    def __init__(self, face: Face, io: Intake, hub: Hub | None = None) -> None:
        self.face, self.io, self.db, self.hub = face, io, face.db, hub
        inventory = face.inventory
        self.names = {c.customer_id: c.name for c in inventory.customers.values()} if inventory else None
        self.changing = asyncio.Lock()     # one PATCH at a time per process; the CAS guards across

    async def body_of(self, request: Request, order: dict) -> dict:
        async with self.db.connect() as conn:
            extras = await ticket_extras(conn, [order])
        return trouble_ticket(order, base=base_url(request), extras=extras[order["work_order_id"]],
                              names=self.names)

    async def found(self, ticket_id: str, who: Principal, permission: str) -> dict:
        async with self.db.connect() as conn:
            order = await order_one(conn, ticket_id)
        if order is None:
            raise HTTPException(404, f"no trouble ticket {ticket_id[:80]}")
        check(who, permission, _queue_city(order["queue"]) or "the province", f"trouble ticket {ticket_id}")
        return order

    async def page(self, request: Request, who: Principal, offset: int, limit: int,
                   fields: str | None) -> Response:
        got = query_filters(request, FILTERS)
        for value in got.get("status", ()):
            if value not in STATUSES:
                raise bad(f"filter status: {value[:40]!r} is not one of {', '.join(STATUSES)}")
        cities = got.get("city", [])
        if who.city is not None:
            for c in cities:
                check(who, READ, c, f"the trouble tickets of {c}")
            cities = [who.city]
        filters = TicketFilters(queues=got.get("queue", []), statuses=got.get("status", []),
                                priorities=got.get("priority", []), rules=got.get("ticketType", []),
                                cities=cities, faults=got.get("fault", []),
                                created=comparisons(got, "creationDate"),
                                updated=comparisons(got, "lastUpdate"))
        async with self.db.connect() as conn:
            orders, total = await ticket_page(conn, filters, offset, limit)
            extras = await ticket_extras(conn, orders)
        base = base_url(request)
        items = [select_fields(trouble_ticket(o, base=base, extras=extras[o["work_order_id"]],
                                              names=self.names), fields) for o in orders]
        return list_answer(items, total, offset)

    async def patch(self, request: Request, ticket_id: str, who: Principal, wait_s: float) -> Response:
        order = await self.found(ticket_id, who, ACT)
        patch, reason = decode_json(await request.body())
        if reason is not None:
            raise bad(reason)
        status, why, notes = _read_patch(patch)
        before = order["status"]
        changes = status is not None and status != before
        ids: list[str] = []
        if changes:
            allowed = ALLOWED.get(before, ())
            if status not in allowed:
                raise HTTPException(409, f"trouble ticket {ticket_id}: status {before} cannot become "
                                         f"{status}; allowed next: {', '.join(allowed) or 'none (final)'}")
            if status in ("inProgress", "resolved"):
                ids, pending = await self.through_rules(order, status, who, wait_s)
                if pending:
                    return one(await self.body_of(request, order), 202, {"X-Input-Ids": ",".join(ids)})
        async with self.changing, self.db.begin() as conn:
            now = fmt_time(self.face.now_ms() / 1000)
            current = await order_one(conn, ticket_id)
            assert current is not None
            if status == "resolved" and current["status"] != "resolved":
                # The rules took the resolve; the order resolves once every fault of it has ended.
                return one(await self.body_of(request, current), 202, {"X-Input-Ids": ",".join(ids)})
            if changes:
                if not (status == "resolved" or current["status"] == status      # done by the rules
                        or await _move(conn, ticket_id, before, status, now)):
                    raise HTTPException(409, f"trouble ticket {ticket_id}: its status changed meanwhile "
                                             f"to {current['status']}; read it again")
                await conn.execute(insert(work_order_changes).values(
                    work_order_id=ticket_id, status=status, reason=why, at=now, by=_by(who)))
            if notes:
                held = (await conn.execute(select(func.count()).select_from(work_order_notes).where(
                    work_order_notes.c.work_order_id == ticket_id))).scalar_one()
                if held + len(notes) > MAX_NOTES_PER_TICKET:
                    raise HTTPException(409, f"trouble ticket {ticket_id}: holds {held} notes; at most "
                                             f"{MAX_NOTES_PER_TICKET}")
            for text, author in notes:
                await conn.execute(insert(work_order_notes).values(
                    work_order_id=ticket_id, author=author or who.name, date=now, text=text))
            await self._events(conn, ticket_id, status if changes else None, why, bool(notes))
            await self.io.trail.record_in(conn, who, f"PATCH {TMF621}/{{id}}", len(ids), {
                "work_order_id": ticket_id, "before": {"status": before},
                "after": {"status": status or before}, "reason": why, "notes_added": len(notes),
                "input_ids": ids})
        async with self.db.connect() as conn:
            changed = await order_one(conn, ticket_id)
        assert changed is not None
        return one(await self.body_of(request, changed))

    async def _events(self, conn: Any, ticket_id: str, status: str | None, why: str | None,
                      noted: bool) -> None:
        """The hub's events of this change, in its transaction (made iff it commits). A
        resolution is the rules' (work_order.resolved): the hub makes its events from the record."""
        if self.hub is None or (status in (None, "resolved") and not noted):
            return
        order = await order_one(conn, ticket_id)
        assert order is not None
        extras = await ticket_extras(conn, [order])
        ticket = trouble_ticket(order, extras=extras[ticket_id], names=self.names)
        kinds = []
        if status not in (None, "resolved"):
            kinds.append("TroubleTicketStatusChangeEvent")
            if status == "pending" and why:
                kinds.append("TroubleTicketInformationRequiredEvent")
        if noted:
            kinds.append("TroubleTicketAttributeValueChangeEvent")
        for kind in kinds:
            await self.hub.emit(conn, kind, "troubleTicket", ticket, order["queue"])

    async def through_rules(self, order: dict, status: str, who: Principal,
                            wait_s: float) -> tuple[list[str], bool]:
        """Publish the action(s) the change means to the rules and wait for them: (their ids,
        whether any is still undecided); 409 with the rules' reason when refused."""
        io, wo = self.io, order["work_order_id"]
        async with self.db.connect() as conn:
            open_ = await open_faults_of(conn, order["fault_ids"])
        if not open_:
            raise HTTPException(409, f"trouble ticket {wo}: none of its faults is open "
                                     f"(status {order['status']}); the rules resolve it")
        if status == "inProgress":
            bodies = [{"kind": "ack", "select": {"fault_id": open_[0]}, "queue": order["queue"]}]
        else:
            bodies = [{"kind": "resolve", "select": {"fault_id": f}} for f in open_]
        kind = bodies[0]["kind"]
        batch = _Batch(kind)
        for body in bodies:
            shards, reason = io.check(action_from_dict(kind, body))
            if reason is not None:
                raise HTTPException(409, f"trouble ticket {wo}: {reason}")
            batch.take(io.message(kind, ACTIONS, body, None), shards)
        ids = [i for i in await io.publish(batch) if i is not None]
        await io.audit(who, f"PATCH {TMF621}/{{id}}: {kind}", ids)
        outcomes = await io.outcomes.wait({i: batch.expect.get(n) for n, i in enumerate(ids)}, wait_s)
        refused = [o["reason"] for o in outcomes.values() if o["status"] == "refused"]
        if refused:
            raise HTTPException(409, f"trouble ticket {wo}: the rules refused {kind}: {'; '.join(refused)}")
        return ids, any(o["status"] == "pending" for o in outcomes.values())


def ticket_routes(face: Face, io: Intake, auth: Auth, hub: Hub | None = None) -> APIRouter:
    desk = TicketDesk(face, io, hub)
    router = APIRouter(tags=["TMF621 trouble tickets"], responses=AUTH_ANSWERS)
    read, act = Depends(auth.needs(READ)), Depends(auth.needs(ACT))

    @router.get(TMF621, response_model=list[TroubleTicket], responses={**LIST_HEADERS, **tmf_answers(400)})
    async def list_trouble_tickets(
            request: Request, limit: Limit = 1000, offset: Offset = 0, fields: Fields = None,
            queue: Annotated[str | None, Query(description="the owner queue (OR: a,b)")] = None,
            status: Annotated[str | None, Query(description="CL-2 status (OR: a,b)")] = None,
            priority: Annotated[str | None, Query(description="normal | urgent")] = None,
            ticketType: Annotated[str | None, Query(description="the rule that made it, e.g. RT-2")] = None,
            city: Annotated[str | None, Query(description="orders of the city's queues (city.<C>.…)")] = None,
            fault: Annotated[str | None, Query(description="orders of this fault")] = None,
            creationDate_gte: Annotated[str | None, Query(alias="creationDate.gte")] = None,
            creationDate_lt: Annotated[str | None, Query(alias="creationDate.lt")] = None,
            lastUpdate_gte: Annotated[str | None, Query(alias="lastUpdate.gte")] = None,
            lastUpdate_lt: Annotated[str | None, Query(alias="lastUpdate.lt")] = None,
            who: Principal = read) -> Response:
        """Work orders as TroubleTickets in creation order. TMF630 filters on queue, status,
        priority, ticketType, city, fault (equality; OR by repetition, `,` or `;`), and on
        creationDate and lastUpdate (`.gt`, `.gte`, `.lt`, `.lte` and equality, ISO-8601 with
        an offset; the four documented here are examples of the eight); an unknown filter
        attribute is 400. `offset`/`limit`; X-Total-Count and X-Result-Count. A city
        operator's token sees its city's queues only."""
        return await desk.page(request, who, offset, limit, fields)

    @router.get(TMF621 + "/{ticket_id}", response_model=TroubleTicket,
                responses={200: _TICKET_ANSWER, **tmf_answers(404)})
    async def get_trouble_ticket(request: Request, ticket_id: str, fields: Fields = None,
                                 who: Principal = read) -> Response:
        """One work order as a TroubleTicket, with its notes, status changes, faults, circuits,
        queues and customers."""
        order = await desk.found(ticket_id, who, READ)
        return one(select_fields(await desk.body_of(request, order), fields))

    @router.patch(TMF621 + "/{ticket_id}", response_model=TroubleTicket, openapi_extra=_PATCH_BODY,
                  responses={200: _TICKET_ANSWER,
                             202: {"description": "an action the rules have not decided within wait_s: "
                                                  "the ticket as it stands; X-Input-Ids names the actions"},
                             **tmf_answers(400, 404, 409)})
    async def patch_trouble_ticket(
            request: Request, ticket_id: str,
            wait_s: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = DEFAULT_WAIT_S,
            who: Principal = act) -> Response:
        """Change a work order's status along CL-2 and add notes (inProgress and resolved go
        through the rules as `ack` and `resolve`; held, pending, cancelled and closed are the
        operator's). An illegal transition is 409 naming the allowed next states. A city
        operator's token changes its city's queues' orders only."""
        return await desk.patch(request, ticket_id, who, wait_s)

    @router.post(TMF621, status_code=405, responses=_NOT_OFFERED)
    async def create_trouble_ticket(who: Principal = read) -> Response:
        """Not offered: work orders are made by the rulebook (RT-, CP-, ES-, TM- rows) from
        alarms and complaints: POST those (/alarms, /complaints, TMF642 alarm)."""
        raise HTTPException(405, "trouble tickets are made by the rulebook from alarms and complaints: "
                                 "post a complaint (/complaints) or an alarm instead",
                            headers={"Allow": "GET"})

    @router.delete(TMF621 + "/{ticket_id}", status_code=405, responses=_NOT_OFFERED)
    async def delete_trouble_ticket(ticket_id: str, who: Principal = read) -> Response:
        """Not offered: a work order is kept (留痕); PATCH status `cancelled` instead."""
        raise HTTPException(405, "trouble tickets are kept: PATCH status cancelled instead",
                            headers={"Allow": "GET, PATCH"})

    return router


async def _move(conn: Any, ticket_id: str, before: str, after: str, now: str) -> bool:
    """Compare-and-set the status from `before` (what the caller saw); whether it moved."""
    result = await conn.execute(update(work_orders)
                                .where(work_orders.c.work_order_id == ticket_id,
                                       work_orders.c.status == before)
                                .values(status=after, updated_at=now))
    return result.rowcount == 1


def _by(who: Principal) -> str:
    return f"{who.name} ({who.role}{' ' + who.city if who.city else ''}, token {who.token_id})"


def _read_patch(patch: Any) -> tuple[str | None, str | None, list[tuple[str, str | None]]]:
    """(status, statusChangeReason, notes to append) of a merge patch; 400 naming what is wrong."""
    if type(patch) is not dict:
        raise bad("the body must be a JSON object (a merge patch of the TroubleTicket)")
    for key in patch:
        if key in READ_ONLY:
            raise bad(f"{key[:60]} is set by the server and cannot be patched")
        if key not in PATCHABLE:
            raise bad(f"{key[:60]!r} cannot be patched here (set by the rulebook, or unknown); "
                      f"patchable: {', '.join(PATCHABLE)}")
    status = patch.get("status")
    if "status" in patch and (type(status) is not str or status not in STATUSES):
        raise bad(f"status: expected one of {', '.join(STATUSES)}")
    why = patch.get("statusChangeReason")
    if why is not None and (type(why) is not str or len(why) > MAX_TEXT or "\x00" in why):
        raise bad(f"statusChangeReason: expected text of at most {MAX_TEXT} characters")
    notes: list[tuple[str, str | None]] = []
    if "note" in patch:
        items = patch["note"]
        if type(items) is not list:
            raise bad("note: expected a list of notes (notes are appended, never deleted)")
        if len(items) > MAX_NOTES:
            raise bad(f"note: at most {MAX_NOTES} notes at once")
        for i, item in enumerate(items):
            if type(item) is not dict:
                raise bad(f"note[{i}]: expected an object with text")
            if "id" in item:
                continue                      # an existing note, sent back as read: unchanged
            text, author = item.get("text"), item.get("author")
            if type(text) is not str or not text.strip() or len(text) > MAX_TEXT or "\x00" in text:
                raise bad(f"note[{i}].text: expected text of 1 to {MAX_TEXT} characters")
            if author is not None and (type(author) is not str or len(author) > 255 or "\x00" in author):
                raise bad(f"note[{i}].author: expected a name of at most 255 characters")
            notes.append((text, author))
    return status, why, notes
