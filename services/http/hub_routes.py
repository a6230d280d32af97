"""The TMF hub (TMF.md C9): `POST /hub`, `GET /hub/{id}`, `DELETE /hub/{id}` over
services/hub.py. Mounted by the app where it wants them (the TMF621 base path
`/tmf-api/troubleTicket/v4`, or the root); `Location` is the path the request came to plus
the new id, so it holds under any prefix.

Who may: any token with READ (a read-only monitoring tool may subscribe). A city operator's
listener is limited to its city: its query naming another city, or a queue of another city,
is refused 403; a query naming no city gets `city=<its city>` added (the stored, answered
query says so). A listener is seen and deleted by the token that registered it, or by an
admin token (403 otherwise). Registering and deleting are kept in the audit trail (留痕),
with the callback's host only: a callback URL may carry a secret.
"""

from __future__ import annotations

import logging
from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import InterfaceError, OperationalError

from services.access import ADMIN, READ, AuditTrail, Principal
from services.http.auth import AUTH_ANSWERS, Auth, check
from services.hub import (
    MAX_CALLBACK,
    MAX_QUERY,
    Filter,
    Hub,
    HubError,
    HubFull,
    callback_host,
    parse_query,
    queue_city,
)

log = logging.getLogger("faultline.http")

CALLBACK_EXAMPLE = "https://noc.example.com/tmf621/listener"
QUERY_EXAMPLE = "eventType=TroubleTicketCreateEvent,TroubleTicketResolvedEvent&city=GZ"
QUERY_TEXT = ("TMF filter: `eventType=A,B` (TMF621 event types), `queue=…`, `city=…`, "
              "`event.troubleTicket.<attribute>=…` (a dotted path, e.g. event.troubleTicket.status="
              "resolved); values OR'ed by `,` `;` or repetition, keys AND'ed; empty: every event")


class HubIn(BaseModel):
    """A listener to register (TMF EventSubscriptionInput)."""

    model_config = ConfigDict(extra="ignore")

    callback: str = Field(max_length=MAX_CALLBACK, description="http(s) URL the events are POSTed to "
                          "(no user:password@)", examples=[CALLBACK_EXAMPLE])
    query: str | None = Field(default=None, max_length=MAX_QUERY, description=QUERY_TEXT,
                              examples=[QUERY_EXAMPLE])


class HubOut(BaseModel):
    """A registered listener (TMF EventSubscription)."""

    id: str = Field(examples=["17"])
    callback: str = Field(examples=[CALLBACK_EXAMPLE])
    query: str = Field(examples=[QUERY_EXAMPLE])


class HubState(HubOut):
    """A listener and how its deliveries go."""

    failing_since: str | None = Field(description="first failed delivery since the last 2xx (ISO-8601)",
                                      examples=[None])
    disabled_at: str | None = Field(description="when the hub gave up on it: no more events",
                                    examples=[None])
    disabled_reason: str | None = Field(examples=[None])
    pending: int = Field(default=0, description="events not delivered yet", examples=[0])
    last_error: str | None = Field(default=None, description="of the oldest pending delivery: "
                                   "`HTTP <status>` or the error's class", examples=[None])


HUB_BODY_EXAMPLES = {
    "created and resolved tickets of GZ": {
        "summary": "the create and resolved events of Guangzhou's tickets",
        "value": {"callback": CALLBACK_EXAMPLE, "query": QUERY_EXAMPLE}},
    "one queue, status changes": {
        "summary": "status changes of one queue's tickets",
        "value": {"callback": CALLBACK_EXAMPLE,
                  "query": "eventType=TroubleTicketStatusChangeEvent&queue=city.GZ.monitoring"}},
    "every event": {"summary": "every event", "value": {"callback": CALLBACK_EXAMPLE}},
}
REFUSED = {"description": "the body cannot be used: the message names the field (callback, query)"}


def _json(body: dict, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _limit_to_city(who: Principal, query: str, flt: Filter) -> str:
    """The query a city operator's listener gets: its city only (403 for another's)."""
    if who.city is None:
        return query
    for city in sorted(flt.cities or ()):
        check(who, READ, city, f"the events of city {city}")
    for queue in sorted(flt.queues or ()):
        check(who, READ, queue_city(queue) or "the province", f"the events of queue {queue}")
    if flt.cities is None:
        query = f"{query}&city={who.city}" if query.strip() else f"city={who.city}"
    return query


def _may_touch(who: Principal, listener: dict) -> None:
    if who.may(ADMIN) or listener["created_by"] == who.token_id:
        return
    raise HTTPException(403, f"role {who.role} may not touch listener {listener['id']}: another token "
                             "registered it (only it, or an admin token, may)")


def hub_routes(hub: Hub, auth: Auth) -> APIRouter:
    router = APIRouter(tags=["events"], responses=AUTH_ANSWERS)
    trail = AuditTrail(hub.engine)
    read = Depends(auth.needs(READ))

    async def audit(who: Principal, action: str, detail: dict) -> None:
        try:
            await trail.record(who, action, 0, detail)
        except (OperationalError, InterfaceError) as err:  # the change is made: say so, do not 503
            log.error("audit trail: not kept (database: %s): %s by token %s (%s), %s", type(err).__name__,
                      action, who.token_id, who.name, detail)

    @router.post("/hub", status_code=201, response_model=HubOut,
                 responses={201: {"description": "registered; `Location` names it",
                                  "headers": {"Location": {"schema": {"type": "string"},
                                                           "description": "the listener's path"}}},
                            400: REFUSED, 409: {"description": "the hub takes no more listeners"}})
    async def register_listener(body: Annotated[HubIn, Body(openapi_examples=HUB_BODY_EXAMPLES)],
                                request: Request, who: Principal = read) -> Response:
        """Register a listener (TMF hub): each event whose query matches is POSTed to `callback`
        as {eventId, eventTime, eventType, event: {troubleTicket}}, at least once (the same
        eventId on every try), until it answers 2xx; retried with backoff, given up after a
        day of failures (GET /hub/{id} tells). A city operator's listener gets its city only."""
        query = body.query or ""
        flt = parse_query(query)
        if isinstance(flt, str):
            raise HTTPException(400, f"query: {flt}")
        query = _limit_to_city(who, query, flt)
        try:
            made = await hub.register(body.callback, query, who.token_id or None)
        except HubFull as err:
            raise HTTPException(409, str(err)) from None
        except HubError as err:
            raise HTTPException(400, str(err)) from None
        await audit(who, "POST /hub", {"listener": made["id"], "host": callback_host(body.callback)})
        location = f"{request.url.path.rstrip('/')}/{made['id']}"
        return _json(made, 201, {"Location": location})

    async def touchable(id: str, who: Principal) -> dict:
        """The listener, if there is one (404) and `who` may see and change it (403)."""
        listener = await hub.listener(id)
        if listener is None:
            raise HTTPException(404, f"no listener {id}")
        _may_touch(who, listener)
        return listener

    @router.get("/hub/{id}", response_model=HubState,
                responses={404: {"description": "no listener of that id"}})
    async def get_listener(id: Annotated[str, Path(examples=["17"])], who: Principal = read) -> Response:
        """A listener, and how its deliveries go (failing since, disabled, pending)."""
        await touchable(id, who)
        state = await hub.get(id)
        if state is None:
            raise HTTPException(404, f"no listener {id}")
        return _json(state)

    @router.delete("/hub/{id}", status_code=204, response_class=Response,
                   responses={404: {"description": "no listener of that id"}})
    async def delete_listener(id: Annotated[str, Path(examples=["17"])], who: Principal = read) -> Response:
        """Unregister a listener: it gets no more events (what it had still to get is dropped)."""
        listener = await touchable(id, who)
        if not await hub.delete(id):
            raise HTTPException(404, f"no listener {id}")
        await audit(who, "DELETE /hub", {"listener": str(listener["id"]),
                                         "host": callback_host(listener["callback"])})
        return Response(status_code=204)

    return router
