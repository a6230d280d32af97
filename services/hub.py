"""The TMF event hub (TMF.md C9, C10, T5): listeners register a callback and a query
(`POST /hub`, services/http/hub_routes.py), and every change to a work order becomes a TMF621
event POSTed to each listener whose query matches it — at least once, in event order per
listener, through restarts and across api replicas.

Where events come from. `pump_decisions` reads the decision records kept in `audit` (the
read model's log, shared/db/projection.py) after its cursor (`hub_cursor` 'decisions') and
turns the `work_order.*` ones into TMF621 events, whose `event.troubleTicket` is the ticket as
the read model has it when the pump reads it:

| record | events |
|---|---|
| work_order.created | TroubleTicketCreateEvent |
| work_order.upgraded, work_order.updated | TroubleTicketAttributeValueChangeEvent |
| work_order.resolved | TroubleTicketStatusChangeEvent, TroubleTicketResolvedEvent |

The events and the cursor's move are one transaction: a record becomes events once. `emit`
is the same for a change made elsewhere (a PATCH through TMF621): called inside the
transaction that makes the change, so an event exists iff the change committed.

`audit.id` comes from a sequence: on PostgreSQL a transaction may commit a lower id after a
higher one is visible, and ids are skipped (an `ON CONFLICT DO NOTHING` that found the record
consumes one). The pump never passes a missing id while a transaction that was running when
it first saw it may still commit it (the transactions in progress then, from
`pg_current_snapshot()`, have all ended), or for at most `gap_wait_s` (a WARNING names the
ids then). SQLite has one writer at a time: ids commit in order, a missing one never comes.

Delivery. Each event has one `hub_deliveries` row per listener it matched. `deliver_once`
claims the listeners whose oldest undelivered event is due (on PostgreSQL with `FOR UPDATE
SKIP LOCKED`; a compare-and-set on `next_at` everywhere), leases a page of their deliveries
(next_at = the end of the lease, so another replica leaves them alone, and takes them back
should this one die), and POSTs them in event order, each with the envelope's JSON: 2xx is
delivered; anything else — another status, no answer within `timeout_s`, a connection
refused — is retried after 1 s · 2^n (jitter: × 0.5..1, at most 5 min) with `last_error` the
status or the exception's class (never a body), and the listener's later events wait behind
it. A listener failing for `max_failing_s` (24 h), or whose delivery failed `max_attempts`
(20) times, is disabled: its pending deliveries are dropped, `GET /hub/{id}` shows when and
why, a WARNING names it (id and callback host, never the URL: it may carry a secret), and
the gauges `faultline_hub_listeners_failing` / `faultline_hub_listeners_disabled` count it.
A listener registered by a token that has since been revoked gets nothing more, and is
disabled by the loop's upkeep.

`run(stop)` is the loop: pump, deliver, and every minute the upkeep (delivered rows and
events older than `keep_s` removed, gauges refreshed). One bad listener or event never ends
it; a failing step is logged (at most every 30 s) and tried again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlsplit

import httpx
import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import and_, delete, exists, func, insert, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.http.face import TMF621
from services.http.models import WorkOrderOut, trouble_ticket
from shared.clock import fmt_time
from shared.db.models import (
    api_tokens,
    audit,
    hub_cursor,
    hub_deliveries,
    hub_events,
    hub_listeners,
    work_orders,
)

log = logging.getLogger("faultline.hub")

Post = Callable[[str, bytes], Awaitable[int]]       # (callback, JSON body) → HTTP status

TROUBLE_TICKET_EVENTS = (
    "TroubleTicketCreateEvent", "TroubleTicketAttributeValueChangeEvent", "TroubleTicketStatusChangeEvent",
    "TroubleTicketDeleteEvent", "TroubleTicketResolvedEvent", "TroubleTicketInformationRequiredEvent",
)
ALARM_EVENTS = ("AlarmCreateEvent", "AlarmAttributeValueChangeEvent", "AlarmStateChangeEvent",
                "AlarmDeleteEvent")
EVENT_TYPES = frozenset(TROUBLE_TICKET_EVENTS + ALARM_EVENTS)
RESOURCES = ("troubleTicket", "alarm")

#: The events a decision record becomes (CONTRACT §3 work_order.* → TMF621).
RECORD_EVENTS: dict[str, tuple[str, ...]] = {
    "work_order.created": ("TroubleTicketCreateEvent",),
    "work_order.upgraded": ("TroubleTicketAttributeValueChangeEvent",),
    "work_order.updated": ("TroubleTicketAttributeValueChangeEvent",),
    "work_order.resolved": ("TroubleTicketStatusChangeEvent", "TroubleTicketResolvedEvent"),
}
CURSOR = "decisions"
MAX_CALLBACK = 2048
MAX_QUERY = 4096
MAX_VALUES = 100
MAX_ERROR = 200
LEASE_MARGIN_S = 30.0
UPKEEP_EVERY_S = 60.0
GAUGES_EVERY_S = 10.0
LOG_EVERY_S = 30.0
REVOKED_REASON = "the token that registered it was revoked"


class HubError(ValueError):
    """A listener that cannot be registered: `field` (callback, query) and what is wrong."""

    def __init__(self, field_: str, problem: str) -> None:
        super().__init__(f"{field_}: {problem}")
        self.field = field_
        self.problem = problem


class HubFull(HubError):
    """As many live listeners as the hub takes are registered already."""


# ---------------------------------------------------------------------- callbacks and queries

def callback_problem(url: object) -> str | None:
    """Why `url` cannot be a callback (None: it can). The message never repeats the URL."""
    if not isinstance(url, str) or not url:
        return "expected an http or https URL"
    if len(url) > MAX_CALLBACK:
        return f"longer than {MAX_CALLBACK} characters"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "contains a space or a control character"
    try:
        parts = urlsplit(url)
        parts.port                                          # noqa: B018 — raises on a bad port
    except ValueError:
        return "not a URL"
    if parts.scheme.lower() not in ("http", "https"):
        return f"scheme {parts.scheme or '(none)'!r}: only http and https callbacks are taken"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (user:password@host): put a secret in the path if needed"
    if not parts.hostname:
        return "has no host"
    return None


def callback_host(url: str) -> str:
    """The host of a callback, for log lines (the rest of the URL may carry a secret)."""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def queue_city(queue: object) -> str | None:
    """The city of a city queue (`city.GZ.monitoring` → GZ); None for a provincial one."""
    if type(queue) is str and queue.startswith("city."):
        return queue.split(".")[1] or None
    return None


@dataclass(frozen=True)
class Filter:
    """A listener's query: each condition a set of values (any one matches, OR), all
    conditions together (AND). None: no condition on it. No condition at all: every event."""

    event_types: frozenset[str] | None = None
    queues: frozenset[str] | None = None
    cities: frozenset[str] | None = None
    # (resource, attribute path, values): event.<resource>.<a>.<b>=v1,v2
    attributes: tuple[tuple[str, tuple[str, ...], frozenset[str]], ...] = ()

    def matches(self, envelope: Mapping[str, Any], queue: str | None = None, city: str | None = None) -> bool:
        """Whether the event (its envelope, and the queue and city it is of) passes."""
        if self.event_types is not None and envelope.get("eventType") not in self.event_types:
            return False
        if self.queues is not None and queue not in self.queues:
            return False
        if self.cities is not None and city not in self.cities:
            return False
        event = envelope.get("event")
        for resource, path, values in self.attributes:
            found = event.get(resource) if isinstance(event, Mapping) else None
            if not any(_text(v) in values for v in _walk(found, path)):
                return False
        return True


def _walk(value: Any, path: Sequence[str]) -> Iterable[Any]:
    """The values at `path` under `value`; a list on the way: each of its elements."""
    if isinstance(value, list):
        for item in value:
            yield from _walk(item, path)
    elif not path:
        yield value
    elif isinstance(value, Mapping):
        yield from _walk(value.get(path[0]), path[1:])


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def parse_query(query: str | None) -> Filter | str:
    """A TMF hub query (`eventType=A,B&event.troubleTicket.status=resolved&queue=…&city=GZ`) as a
    Filter, or what is wrong with it (naming the key). Values are OR'ed by `,` or `;` or by
    repeating the key; keys are AND'ed. Keys: eventType, queue, city, event.<resource>.<attr>
    (a dotted path; resources: troubleTicket, alarm). '' or None: every event."""
    query = (query or "").strip().removeprefix("?")
    if len(query) > MAX_QUERY:
        return f"longer than {MAX_QUERY} characters"
    wanted: dict[str, set[str]] = {}
    for part in query.split("&"):
        if not part.strip():
            continue
        key, eq, raw = part.partition("=")
        key = unquote_plus(key).strip()
        if not eq:
            return f"{key!r}: expected key=value"
        values = {unquote_plus(v).strip() for v in raw.replace(";", ",").split(",")}   # %2C: a comma
        if not key or "" in values:
            return f"{key!r}: an empty key or value"
        problem = _key_problem(key, values)
        if problem:
            return problem
        wanted.setdefault(key, set()).update(values)
        if len(wanted[key]) > MAX_VALUES:
            return f"{key}: more than {MAX_VALUES} values"
    attributes = tuple((k.split(".")[1], tuple(k.split(".")[2:]), frozenset(v))
                       for k, v in sorted(wanted.items()) if k.startswith("event."))

    def one(name: str) -> frozenset[str] | None:
        return frozenset(wanted[name]) if name in wanted else None

    return Filter(one("eventType"), one("queue"), one("city"), attributes)


def _key_problem(key: str, values: set[str]) -> str | None:
    if key == "eventType":
        unknown = sorted(values - EVENT_TYPES)
        if unknown:
            return (f"eventType: unknown event type(s) {', '.join(unknown)} (known: "
                    f"{', '.join(TROUBLE_TICKET_EVENTS + ALARM_EVENTS)})")
        return None
    if key in ("queue", "city"):
        return None
    parts = key.split(".")
    if parts[0] == "event" and len(parts) >= 3 and all(p.isidentifier() or p.startswith("@") for p in parts):
        if parts[1] not in RESOURCES:
            return f"{key}: unknown resource {parts[1]!r} (known: {', '.join(RESOURCES)})"
        return None
    return (f"unknown query key {key!r} (known: eventType, queue, city, "
            f"event.<resource>.<attribute>)")


def backoff_s(attempts: int, base_s: float, cap_s: float, jitter: float) -> float:
    """The wait before the next try after `attempts` failed ones: base·2^(n-1), at most cap,
    times 0.5..1 (`jitter` in [0, 1))."""
    delay = min(cap_s, base_s * 2.0 ** min(max(attempts - 1, 0), 60))
    return delay * (0.5 + 0.5 * jitter)


# ---------------------------------------------------------------------- the hub

@dataclass
class _Gap:
    """Ids of `audit` up to `upto` found missing at `seen_at`, when `snapshot` was current."""

    upto: int
    snapshot: str | None
    seen_at: float
    resolved: bool = False


@dataclass
class _Claim:
    listener_id: int
    callback: str
    items: list[tuple[int, int, str]] = field(default_factory=list)     # (event_seq, attempts, body)


class _CursorMoved(Exception):
    """Another pump moved the cursor first: this one's events are rolled back."""


class HubMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter("faultline_hub_deliveries", "Event deliveries to hub listeners, by "
                                  "outcome (delivered, failed: tried again later, dropped: its listener "
                                  "was disabled)", ["outcome"], registry=registry)
        self.failing = Gauge("faultline_hub_listeners_failing", "Hub listeners whose deliveries are "
                             "failing (retried with backoff)", registry=registry)
        self.disabled = Gauge("faultline_hub_listeners_disabled", "Hub listeners disabled: failing too "
                              "long, or their token revoked (GET /hub/{id})", registry=registry)
        self.pending = Gauge("faultline_hub_deliveries_pending", "Event deliveries not made yet",
                             registry=registry)
        for outcome in ("delivered", "failed", "dropped"):
            self.deliveries.labels(outcome)


class Hub:
    """The listeners, the events and their delivery; see the module text."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], float] = time.time, *,
                 registry: CollectorRegistry | None = None, post: Post | None = None,
                 timeout_s: float = 10.0, max_attempts: int = 20, max_failing_s: float = 86400.0,
                 backoff_base_s: float = 1.0, backoff_cap_s: float = 300.0, page: int = 100,
                 concurrency: int = 8, max_listeners: int = 1000, keep_s: float = 7 * 86400.0,
                 gap_wait_s: float = 60.0, jitter: Callable[[], float] = random.random) -> None:
        self.engine = engine
        self.clock = clock
        self.metrics = HubMetrics(registry if registry is not None else CollectorRegistry())
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.max_failing_s = max_failing_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.page = max(1, page)
        self.concurrency = max(1, concurrency)
        self.max_listeners = max_listeners
        self.keep_s = keep_s
        self.gap_wait_s = gap_wait_s
        self.jitter = jitter
        self._post = post
        self._client: httpx.AsyncClient | None = None
        self._filters: dict[str, Filter] = {}
        self._gap: _Gap | None = None
        self._logged: dict[str, float] = {}

    # ------------------------------------------------------------------ listeners

    async def register(self, callback: str, query: str | None, who_token_id: int | None = None) -> dict:
        """A new listener: {id, callback, query}. HubError naming the field when refused."""
        problem = callback_problem(callback)
        if problem:
            raise HubError("callback", problem)
        query = query or ""
        parsed = parse_query(query)
        if isinstance(parsed, str):
            raise HubError("query", parsed)
        async with self.engine.begin() as conn:
            live = (await conn.execute(select(func.count()).select_from(hub_listeners)
                                       .where(hub_listeners.c.disabled_at.is_(None)))).scalar_one()
            if live >= self.max_listeners:
                raise HubFull("callback", f"the hub takes at most {self.max_listeners} live listeners")
            result = await conn.execute(insert(hub_listeners).values(
                callback=callback, query=query, created_at=self.clock(), created_by=who_token_id))
            listener_id = int(result.inserted_primary_key[0])
        log.info("hub listener %d registered (callback host %s)", listener_id, callback_host(callback))
        return {"id": str(listener_id), "callback": callback, "query": query}

    async def listener(self, listener_id: int | str) -> dict | None:
        """The listener's row (every column), or None."""
        key = _id(listener_id)
        if key is None:
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(hub_listeners).where(hub_listeners.c.id == key))
                   ).mappings().first()
        return None if row is None else {str(k): v for k, v in row.items()}

    async def get(self, listener_id: int | str) -> dict | None:
        """{id, callback, query, failing_since, disabled_at, disabled_reason, pending, last_error}
        (times ISO-8601 +08:00), or None when there is no such listener."""
        key = _id(listener_id)
        if key is None:
            return None
        d = hub_deliveries
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(hub_listeners).where(hub_listeners.c.id == key))
                   ).mappings().first()
            if row is None:
                return None
            pending = (await conn.execute(select(func.count()).select_from(d).where(
                d.c.listener_id == key, d.c.delivered_at.is_(None)))).scalar_one()
            last_error = (await conn.execute(select(d.c.last_error).where(
                d.c.listener_id == key, d.c.delivered_at.is_(None))
                .order_by(d.c.event_seq).limit(1))).scalar()
        return {"id": str(row["id"]), "callback": row["callback"], "query": row["query"],
                "failing_since": _iso(row["failing_since"]), "disabled_at": _iso(row["disabled_at"]),
                "disabled_reason": row["disabled_reason"], "pending": int(pending), "last_error": last_error}

    async def delete(self, listener_id: int | str) -> bool:
        """Remove a listener and what it had still to receive; False when there was none."""
        key = _id(listener_id)
        if key is None:
            return False
        async with self.engine.begin() as conn:
            gone = await conn.execute(delete(hub_listeners).where(hub_listeners.c.id == key))
            await conn.execute(delete(hub_deliveries).where(hub_deliveries.c.listener_id == key))
        return gone.rowcount == 1

    def _live_listeners(self, conn: Connection) -> list[tuple[int, Filter]]:
        revoked = select(api_tokens.c.id).where(api_tokens.c.revoked_at.is_not(None))
        rows = conn.execute(select(hub_listeners.c.id, hub_listeners.c.query).where(
            hub_listeners.c.disabled_at.is_(None),
            or_(hub_listeners.c.created_by.is_(None), hub_listeners.c.created_by.not_in(revoked)),
        ).order_by(hub_listeners.c.id)).all()
        out = []
        for listener_id, query in rows:
            flt = self._filters.get(query)
            if flt is None:
                parsed = parse_query(query)
                flt = parsed if isinstance(parsed, Filter) else Filter(event_types=frozenset())
                if len(self._filters) >= 4096:
                    self._filters.clear()
                self._filters[query] = flt
            out.append((int(listener_id), flt))
        return out

    # ------------------------------------------------------------------ events

    async def emit(self, conn: AsyncConnection, event_type: str, resource_name: str, resource: Mapping,
                   queue: str | None = None, city: str | None = None, *,
                   event_time: str | None = None) -> str:
        """Make an event inside the caller's transaction (`conn`): its row and a delivery for
        each live listener whose query matches it. Its eventId."""
        return await conn.run_sync(self.emit_sync, event_type, resource_name, resource, queue, city,
                                   event_time=event_time)

    def emit_sync(self, conn: Connection, event_type: str, resource_name: str, resource: Mapping,
                  queue: str | None = None, city: str | None = None, *, event_time: str | None = None) -> str:
        """`emit` on a synchronous connection (inside `AsyncConnection.run_sync`)."""
        return self._emit(conn, self._live_listeners(conn), event_type, resource_name, resource, queue,
                          city, event_time)

    def _emit(self, conn: Connection, listeners: Sequence[tuple[int, Filter]], event_type: str,
              resource_name: str, resource: Mapping, queue: str | None, city: str | None,
              event_time: str | None) -> str:
        now = self.clock()
        city = city if city is not None else queue_city(queue)
        envelope = {"eventId": uuid.uuid4().hex, "eventTime": event_time or fmt_time(now),
                    "eventType": event_type, "event": {resource_name: dict(resource)}}
        result = conn.execute(insert(hub_events).values(
            event_id=envelope["eventId"], event_type=event_type, event_time=envelope["eventTime"],
            queue=queue, city=city, body=orjson.dumps(envelope).decode(), created_at=now))
        seq = int(result.inserted_primary_key[0])
        matched = [lid for lid, flt in listeners if flt.matches(envelope, queue, city)]
        if matched:
            conn.execute(insert(hub_deliveries), [
                {"listener_id": lid, "event_seq": seq, "attempts": 0, "next_at": now, "last_error": None,
                 "delivered_at": None} for lid in matched])
        return envelope["eventId"]

    async def pump_decisions(self, limit: int = 500) -> int:
        """Turn the work_order.* records of `audit` after the cursor (at most `limit` rows read)
        into events, and move the cursor, in one transaction. How many events were made."""
        try:
            async with self.engine.begin() as conn:
                return await conn.run_sync(self._pump, max(1, limit))
        except _CursorMoved:
            return 0

    def _pump(self, conn: Connection, limit: int) -> int:
        cursor = conn.execute(select(hub_cursor.c.last_id).where(hub_cursor.c.name == CURSOR)
                              .with_for_update()).scalar()
        if cursor is None:              # no cursor (a database before 0010's seed): start at the end
            start = conn.execute(select(func.coalesce(func.max(audit.c.id), 0))).scalar_one()
            conn.execute(insert(hub_cursor).values(name=CURSOR, last_id=start))
            return 0
        rows = conn.execute(select(audit.c.id, audit.c.type, audit.c.work_order_id, audit.c.body)
                            .where(audit.c.id > cursor).order_by(audit.c.id).limit(limit)).all()
        taken = self._passable(conn, cursor, rows)
        if not taken:
            return 0
        made = self._events_of(conn, taken)
        moved = conn.execute(update(hub_cursor).where(hub_cursor.c.name == CURSOR,
                                                      hub_cursor.c.last_id == cursor)
                             .values(last_id=taken[-1].id))
        if moved.rowcount != 1:
            raise _CursorMoved
        return made

    def _passable(self, conn: Connection, cursor: int, rows: Sequence[Any]) -> list[Any]:
        """The rows the cursor may pass now: up to the first missing id that may still come."""
        out: list[Any] = []
        expected = cursor + 1
        for row in rows:
            if row.id != expected and not self._gap_passable(conn, expected, rows[-1].id):
                break
            out.append(row)
            expected = row.id + 1
        return out

    def _gap_passable(self, conn: Connection, first_missing: int, high: int) -> bool:
        if conn.dialect.name != "postgresql":
            return True                 # one writer at a time: ids commit in order
        now = self.clock()
        gap = self._gap
        if gap is None or first_missing > gap.upto:
            snapshot = conn.execute(text("SELECT pg_current_snapshot()::text")).scalar()
            self._gap = _Gap(upto=high, snapshot=snapshot, seen_at=now)
            return False
        if not gap.resolved:
            ended = conn.execute(text(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_snapshot_xip(CAST(CAST(:s AS text) AS pg_snapshot)) "
                "AS x WHERE pg_xact_status(x) = 'in progress')"), {"s": gap.snapshot}).scalar()
            if ended:
                gap.resolved = True
            elif now - gap.seen_at >= self.gap_wait_s:
                log.warning("event hub: audit ids from %d (up to %d) still missing after %.0f s, skipped: "
                            "a transaction holding one has not ended", first_missing, gap.upto,
                            self.gap_wait_s)
                gap.resolved = True
        return gap.resolved

    def _events_of(self, conn: Connection, rows: Sequence[Any]) -> int:
        listeners = self._live_listeners(conn)
        if not listeners:
            return 0            # nobody listens: no event is kept (a listener hears what follows it)
        records = []
        for row in rows:
            if row.type not in RECORD_EVENTS:
                continue
            try:
                record = orjson.loads(row.body)
            except orjson.JSONDecodeError:
                record = None
            order_id = row.work_order_id or (record.get("work_order_id")
                                             if isinstance(record, dict) else None)
            if not isinstance(record, dict) or not isinstance(order_id, str):
                log.warning("event hub: audit row %d (%s) is not a record naming a work order; no event "
                            "made of it", row.id, row.type)
                continue
            records.append((row.type, order_id, record))
        if not records:
            return 0
        ids = sorted({order_id for _, order_id, _ in records})
        orders = {r["work_order_id"]: WorkOrderOut.from_row(r) for r in conn.execute(
            select(work_orders).where(work_orders.c.work_order_id.in_(ids))).mappings()}
        made = 0
        for kind, order_id, record in records:
            order = orders.get(order_id) or _order_of_record(kind, order_id, record)
            ticket = ticket_of(order)
            for event_type in RECORD_EVENTS[kind]:
                self._emit(conn, listeners, event_type, "troubleTicket", ticket, order.get("queue"), None,
                           record.get("at") if isinstance(record.get("at"), str) else None)
                made += 1
        return made

    # ------------------------------------------------------------------ delivery

    async def deliver_once(self, post: Post | None = None) -> int:
        """Claim the due deliveries (a page) and make them; how many were tried."""
        claims = await self._claim(self.clock())
        if not claims:
            return 0
        post = post or self._post or self._http_post
        slots = asyncio.Semaphore(self.concurrency)

        async def one(claim: _Claim) -> int:
            async with slots:
                return await self._deliver_listener(post, claim)

        tried = 0
        for claim, result in zip(claims, await asyncio.gather(*(one(c) for c in claims),
                                                              return_exceptions=True), strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                self._log_every("listener", "event hub: delivering to listener %d (%s) failed: %r",
                                claim.listener_id, callback_host(claim.callback), result)
            else:
                tried += result
        return tried

    async def _claim(self, now: float) -> list[_Claim]:
        d, listeners = hub_deliveries, hub_listeners
        heads = (select(d.c.listener_id, func.min(d.c.event_seq).label("head"))
                 .where(d.c.delivered_at.is_(None)).group_by(d.c.listener_id).subquery())
        due = (select(d.c.listener_id, d.c.event_seq, d.c.next_at, listeners.c.callback)
               .select_from(d.join(heads, and_(d.c.listener_id == heads.c.listener_id,
                                               d.c.event_seq == heads.c.head))
                             .join(listeners, listeners.c.id == d.c.listener_id))
               .where(d.c.next_at <= now, listeners.c.disabled_at.is_(None))
               .order_by(d.c.event_seq).limit(self.page))
        claims: list[_Claim] = []
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                due = due.with_for_update(of=d, skip_locked=True)
            found = (await conn.execute(due)).all()
            share = max(1, self.page // max(1, len(found)))
            for listener_id, head, next_at, callback in found:
                items = (await conn.execute(
                    select(d.c.event_seq, d.c.attempts, hub_events.c.body)
                    .select_from(d.join(hub_events, hub_events.c.id == d.c.event_seq))
                    .where(d.c.listener_id == listener_id, d.c.delivered_at.is_(None), d.c.event_seq >= head)
                    .order_by(d.c.event_seq).limit(share))).all()
                if not items or items[0][0] != head:     # its event is gone: nothing to send
                    await conn.execute(delete(d).where(d.c.listener_id == listener_id, d.c.event_seq == head))
                    continue
                lease = now + self.timeout_s * len(items) + LEASE_MARGIN_S
                taken = await conn.execute(update(d).where(
                    d.c.listener_id == listener_id, d.c.event_seq == head, d.c.next_at == next_at,
                    d.c.delivered_at.is_(None)).values(next_at=lease))
                if taken.rowcount != 1:
                    continue                # another replica took it first
                rest = [seq for seq, _, _ in items[1:]]
                if rest:
                    await conn.execute(update(d).where(d.c.listener_id == listener_id,
                                                       d.c.event_seq.in_(rest)).values(next_at=lease))
                claims.append(_Claim(int(listener_id), callback,
                                     [(int(s), int(a), b) for s, a, b in items]))
        return claims

    async def _deliver_listener(self, post: Post, claim: _Claim) -> int:
        """Post the claimed events in order; stop at the first failure (later ones wait)."""
        tried = 0
        for i, (seq, attempts, body) in enumerate(claim.items):
            tried += 1
            try:
                status = await asyncio.wait_for(post(claim.callback, body.encode()), self.timeout_s)
                error = None if 200 <= status < 300 else f"HTTP {status}"
            except asyncio.CancelledError:
                raise
            except Exception as exc:    # the listener's failure, whatever it is: retried later
                error = type(exc).__name__[:MAX_ERROR]
            if error is None:
                self.metrics.deliveries.labels("delivered").inc()
                if not await self._delivered(claim.listener_id, seq, attempts + 1):
                    return tried        # deleted meanwhile
                continue
            self.metrics.deliveries.labels("failed").inc()
            await self._failed(claim, seq, attempts + 1, error, [s for s, _, _ in claim.items[i + 1:]])
            return tried
        return tried

    async def _delivered(self, listener_id: int, seq: int, attempts: int) -> bool:
        d = hub_deliveries
        async with self.engine.begin() as conn:
            done = await conn.execute(update(d).where(
                d.c.listener_id == listener_id, d.c.event_seq == seq, d.c.delivered_at.is_(None))
                .values(delivered_at=self.clock(), attempts=attempts, last_error=None))
            await conn.execute(update(hub_listeners).where(hub_listeners.c.id == listener_id,
                                                           hub_listeners.c.failing_since.is_not(None))
                               .values(failing_since=None))
        return done.rowcount == 1

    async def _failed(self, claim: _Claim, seq: int, attempts: int, error: str, rest: list[int]) -> None:
        d, listener_id = hub_deliveries, claim.listener_id
        now = self.clock()
        retry_at = now + backoff_s(attempts, self.backoff_base_s, self.backoff_cap_s, self.jitter())
        async with self.engine.begin() as conn:
            await conn.execute(update(d).where(d.c.listener_id == listener_id, d.c.event_seq == seq,
                                               d.c.delivered_at.is_(None))
                               .values(attempts=attempts, last_error=error, next_at=retry_at))
            if rest:                    # their lease let go; they wait behind `seq` anyway
                await conn.execute(update(d).where(d.c.listener_id == listener_id, d.c.event_seq.in_(rest),
                                                   d.c.delivered_at.is_(None)).values(next_at=now))
            since = (await conn.execute(select(hub_listeners.c.failing_since)
                                        .where(hub_listeners.c.id == listener_id))).scalar()
            if since is None:
                since = now
                await conn.execute(update(hub_listeners).where(hub_listeners.c.id == listener_id)
                                   .values(failing_since=now))
            reason, dropped = None, 0
            if attempts >= self.max_attempts:
                reason = f"a delivery failed {attempts} times (last: {error})"
            elif now - since >= self.max_failing_s:
                reason = f"deliveries failing since {fmt_time(int(since))} (last: {error})"
            if reason:
                dropped = await self._disable(conn, listener_id, reason, now)
        log.info("event hub: listener %d (%s): delivery failed (%s), attempt %d", listener_id,
                 callback_host(claim.callback), error, attempts)
        if reason:
            self.metrics.deliveries.labels("dropped").inc(dropped)
            log.warning("event hub: listener %d (callback host %s) disabled: %s; %d pending deliveries "
                        "dropped", listener_id, callback_host(claim.callback), reason, dropped)
            await self.refresh_gauges()

    async def _disable(self, conn: AsyncConnection, listener_id: int, reason: str, now: float) -> int:
        await conn.execute(update(hub_listeners).where(hub_listeners.c.id == listener_id,
                                                       hub_listeners.c.disabled_at.is_(None))
                           .values(disabled_at=now, disabled_reason=reason))
        gone = await conn.execute(delete(hub_deliveries).where(hub_deliveries.c.listener_id == listener_id,
                                                               hub_deliveries.c.delivered_at.is_(None)))
        return max(0, gone.rowcount or 0)

    async def _http_post(self, url: str, body: bytes) -> int:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s), follow_redirects=False,
                                             headers={"User-Agent": "faultline-hub"})
        # Streamed: the answer's status is all that is read, whatever size its body.
        async with self._client.stream("POST", url, content=body,
                                       headers={"Content-Type": "application/json"}) as answer:
            return answer.status_code

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ------------------------------------------------------------------ upkeep and the loop

    async def upkeep(self) -> None:
        """Disable the listeners of revoked tokens; remove delivered rows and events older
        than `keep_s`, and deliveries whose listener is gone or disabled."""
        now = self.clock()
        d, e, listeners = hub_deliveries, hub_events, hub_listeners
        revoked = select(api_tokens.c.id).where(api_tokens.c.revoked_at.is_not(None))
        async with self.engine.begin() as conn:
            retired = (await conn.execute(select(listeners.c.id, listeners.c.callback).where(
                listeners.c.disabled_at.is_(None), listeners.c.created_by.in_(revoked)))).all()
            for listener_id, callback in retired:
                dropped = await self._disable(conn, int(listener_id), REVOKED_REASON, now)
                self.metrics.deliveries.labels("dropped").inc(dropped)
                log.warning("event hub: listener %d (callback host %s) disabled: %s", listener_id,
                            callback_host(callback), REVOKED_REASON)
            live = select(listeners.c.id).where(listeners.c.disabled_at.is_(None))
            await conn.execute(delete(d).where(d.c.delivered_at.is_(None), d.c.listener_id.not_in(live)))
            await conn.execute(delete(d).where(d.c.delivered_at < now - self.keep_s))
            await conn.execute(delete(e).where(e.c.created_at < now - self.keep_s, ~exists().where(
                d.c.event_seq == e.c.id, d.c.delivered_at.is_(None))))

    async def refresh_gauges(self) -> None:
        listeners, d = hub_listeners, hub_deliveries
        async with self.engine.connect() as conn:
            failing = (await conn.execute(select(func.count()).select_from(listeners).where(
                listeners.c.failing_since.is_not(None), listeners.c.disabled_at.is_(None)))).scalar_one()
            disabled = (await conn.execute(select(func.count()).select_from(listeners).where(
                listeners.c.disabled_at.is_not(None)))).scalar_one()
            pending = (await conn.execute(select(func.count()).select_from(d).where(
                d.c.delivered_at.is_(None)))).scalar_one()
        self.metrics.failing.set(failing)
        self.metrics.disabled.set(disabled)
        self.metrics.pending.set(pending)

    async def run(self, stop: asyncio.Event, every_s: float = 0.5) -> None:
        """Pump and deliver until `stop` is set (then the HTTP client is closed). A step that
        fails is logged and tried again on the next round; nothing ends the loop but `stop`."""
        next_upkeep = next_gauges = 0.0
        try:
            while not stop.is_set():
                busy = await self._step("pump", self.pump_decisions)
                busy = await self._step("deliver", self.deliver_once) or busy
                now = time.monotonic()
                if now >= next_upkeep:
                    next_upkeep = now + UPKEEP_EVERY_S
                    await self._step("upkeep", self.upkeep)
                if now >= next_gauges:
                    next_gauges = now + GAUGES_EVERY_S
                    await self._step("gauges", self.refresh_gauges)
                if busy:
                    await asyncio.sleep(0)
                    continue
                try:
                    await asyncio.wait_for(stop.wait(), every_s)
                except TimeoutError:
                    pass
        finally:
            await self.aclose()

    async def _step(self, name: str, step: Callable[[], Awaitable[int | None]]) -> bool:
        try:
            return bool(await step())
        except asyncio.CancelledError:
            raise
        except Exception as exc:        # the database away, a bug on one row: log, go on
            self._log_every(name, "event hub: %s failed, tried again: %r", name, exc, exc_info=True)
            return False

    def _log_every(self, key: str, message: str, *args: Any, exc_info: bool = False) -> None:
        now = time.monotonic()
        if now - self._logged.get(key, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged[key] = now
            log.warning(message, *args, exc_info=exc_info)


def ticket_of(order: Mapping[str, Any]) -> dict:
    """A work order (WorkOrderOut.from_row's body) as the TMF621 ticket an event carries."""
    ticket = trouble_ticket(order)
    ticket.setdefault("href", f"{TMF621}/{order['work_order_id']}")
    ticket.setdefault("@type", "TroubleTicket")
    return ticket


def _order_of_record(kind: str, order_id: str, record: Mapping[str, Any]) -> dict:
    """The order as far as the record tells, when the read model has no row of it."""
    at = record.get("at")
    return WorkOrderOut.from_row({
        "work_order_id": order_id, "queue": record.get("queue"), "fault_ids": record.get("fault_ids") or [],
        "cc": record.get("cc") or [], "priority": record.get("priority"), "title": record.get("title"),
        "rule": record.get("rule"), "status": "resolved" if kind == "work_order.resolved" else "acknowledged",
        "contact_by": record.get("contact_by"), "arrive_by": record.get("arrive_by"),
        "created_at": at if kind == "work_order.created" else None, "updated_at": at,
        "resolved_at": at if kind == "work_order.resolved" else None})


def _id(value: int | str) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value < 2 ** 63 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value) or None
    return None


def _iso(ts: float | None) -> str | None:
    return None if ts is None else fmt_time(int(ts))
