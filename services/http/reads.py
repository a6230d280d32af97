"""The SQL behind the HTTP reads of services/http/app.py: the read model a page at a time,
the stored decisions, and the outcome of an input (CL-4).

Every list is one `SELECT … ORDER BY <stable key> OFFSET … LIMIT limit+1` (the extra row
says whether another page follows); what a page's rows need from other tables (a fault's
work orders and complaints) is one more query per page, keyed by the page's ids. Nothing
walks a table in Python. Works on SQLite and PostgreSQL (the two schemas of
shared/db/migrations).

`input_outcomes`: see services/http/app.py for what an input's outcome means; here is how it
is read from the stages' own bookkeeping (shared/db/models.py):

1. `rejected` rows whose source_key is the input's id (the correlate stage refused it, or
   the router, should it keep its refusals there) or the id of one of its notices (the
   dispatch stage refused that notice): refused, with the first such row's reason;
2. `input_log` rows of stage "correlate", kind "input", source_key = the input's id: the
   city shards that handled it, each at a (shard, seq);
3. the `outbox` rows of those (shard, seq): topic faultline.faults holds the notices sent to
   dispatch (JSON list of messages; each notice has an "id", a tick has none), topic
   faultline.decisions the records (JSON list, one per record);
4. `input_log` rows of stage "dispatch", kind "input", source_key = a notice id (the dispatch
   shard is the correlate shard: notices are keyed by city), and their decisions in `outbox`.

Retention (services/runtime/shard_log.py, FAULTLINE_LOG_RETENTION) lets go of the entries,
and their outbox rows, behind a shard's snapshot, but not of what tells they were handled:

5. an input missing from a shard's log whose offset and time are within that shard's
   `input_log_horizon` for its topic partition (the offsets and times the shard's retention
   removed, each from lowest to highest) was handled there. Its entry may be in
   `input_log_archive` (archive mode), with the records it made and its notices' ids
   (`input_log_archive_sent`); else those are gone, except its notices dispatch had not
   handled, or had refused, when the entry was deleted (`pruned_notices`);
6. likewise a notice missing from dispatch's log within dispatch's horizon for its city
   (its records from the archive, if there).

Accepted: not refused, handled by correlate (by every shard in `expect` when given; when not
given, by any one shard: a shard whose log holds it, else a shard whose horizon spans
it) and every notice it sent handled by dispatch. Pending otherwise. `records`: the
decision records counted in 3, 4 and the archive (null while pending). When retention let
go of an entry that made some of them, `records` is null and `pruned` true: the input was
handled, how many records it made is no longer kept. Without `expect` a horizon answers for
an input of another shard's too: a city more than the retention window behind another on
the same partition could have an input answered accepted before it handles it. `refused`
holds after pruning: refusals are kept, and so are the notices behind refusals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from sqlalchemy import JSON, Select, cast, func, or_, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from services.http.models import FaultOut, WorkOrderOut
from services.runtime.shard_log import NOTICE, SOURCE, Span, covers, key_position
from shared.db.models import (
    audit,
    faults,
    input_log,
    input_log_archive,
    input_log_archive_sent,
    input_log_horizon,
    outbox,
    pruned_notices,
    rejected,
    work_order_changes,
    work_order_notes,
    work_orders,
)
from shared.topics import DECISIONS, FAULTS

CHUNK = 500                 # ids per IN list: far below SQLite's and asyncpg's parameter limits
CORRELATE, DISPATCH = "correlate", "dispatch"
INPUT_ID = re.compile(r"(?s)(?P<topic>.+):(?P<partition>[0-9]+):(?P<offset>[0-9]+)@(?P<ts>-?[0-9]+)")


def _chunks(items: Sequence, n: int = CHUNK) -> Iterator[Sequence]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _mapping(row) -> dict:
    return {str(k): v for k, v in row._mapping.items()}     # plain str keys: orjson refuses subclasses


async def _page(conn: AsyncConnection, query: Select, offset: int, limit: int) -> tuple[list[dict], bool]:
    rows = [_mapping(r) for r in await conn.execute(query.offset(offset).limit(limit + 1))]
    return rows[:limit], len(rows) > limit


# ---------------------------------------------------------------------- faults

def faults_query(city: str | None, severity: str | None, open_: bool | None) -> Select:
    """Faults by opening time, then id (stable pages; a fault without opened_at comes last)."""
    query = select(faults).order_by(faults.c.opened_at.nulls_last(), faults.c.fault_id)
    if city:
        query = query.where(faults.c.city == city)
    if severity:
        query = query.where(faults.c.severity == severity)
    if open_ is not None:
        query = query.where(faults.c.ended_at.is_(None) if open_ else faults.c.ended_at.is_not(None))
    return query


async def fault_page(conn: AsyncConnection, city: str | None, severity: str | None, open_: bool | None,
                     offset: int, limit: int,
                     names: Mapping[str, str] | None = None) -> tuple[list[dict], bool]:
    rows, more = await _page(conn, faults_query(city, severity, open_), offset, limit)
    return await _fault_bodies(conn, rows, names), more


async def fault_one(conn: AsyncConnection, fault_id: str,
                    names: Mapping[str, str] | None = None) -> dict | None:
    row = (await conn.execute(select(faults).where(faults.c.fault_id == fault_id))).first()
    if row is None:
        return None
    return (await _fault_bodies(conn, [_mapping(row)], names))[0]


async def _fault_bodies(conn: AsyncConnection, rows: list[dict],
                        names: Mapping[str, str] | None) -> list[dict]:
    ids = [r["fault_id"] for r in rows]
    orders = await orders_of_faults(conn, ids)
    names = names or {}
    return [FaultOut.from_row(r, orders.get(r["fault_id"], []),
                              names.get(r["customer_id"]) if r["customer_id"] else None) for r in rows]


def _fault_id_elements(dialect: str):
    """The elements of work_orders.fault_ids (a JSON list kept as text) as a table `value`."""
    if dialect == "postgresql":
        return (func.json_array_elements_text(cast(work_orders.c.fault_ids, JSON))
                .table_valued("value").render_derived())
    return func.json_each(work_orders.c.fault_ids).table_valued("value")


async def orders_of_faults(conn: AsyncConnection, fault_ids: Sequence[str]) -> dict[str, list[str]]:
    """fault id → the ids of the work orders whose fault_ids name it, sorted. No index links
    them (fault_ids is a JSON list): each chunk of ids is one pass over work_orders."""
    found: dict[str, list[str]] = {}
    elements = _fault_id_elements(conn.dialect.name)
    for ids in _chunks(list(dict.fromkeys(fault_ids))):
        query = (select(elements.c.value, work_orders.c.work_order_id)
                 .select_from(work_orders.join(elements, true()))
                 .where(elements.c.value.in_(ids))
                 .order_by(work_orders.c.work_order_id))
        for fault_id, order_id in await conn.execute(query):
            found.setdefault(fault_id, []).append(order_id)
    return found


# ---------------------------------------------------------------------- work orders

def _orders_where(query: Select, queue: str | None, status: str | None, city: str | None) -> Select:
    if queue:
        query = query.where(work_orders.c.queue == queue)
    if status:
        query = query.where(work_orders.c.status == status)
    if city:                                   # a city's queues: city.<C>.…
        query = query.where(work_orders.c.queue.startswith(f"city.{city}.", autoescape=True))
    return query


def orders_query(queue: str | None, status: str | None, city: str | None = None) -> Select:
    query = select(work_orders).order_by(work_orders.c.created_at.nulls_last(), work_orders.c.work_order_id)
    return _orders_where(query, queue, status, city)


async def order_page(conn: AsyncConnection, queue: str | None, status: str | None, offset: int,
                     limit: int, city: str | None = None) -> tuple[list[dict], bool]:
    rows, more = await _page(conn, orders_query(queue, status, city), offset, limit)
    return [WorkOrderOut.from_row(r) for r in rows], more


async def order_count(conn: AsyncConnection, queue: str | None, status: str | None,
                      city: str | None = None) -> int:
    query = _orders_where(select(func.count()).select_from(work_orders), queue, status, city)
    return (await conn.execute(query)).scalar_one()


async def fault_city(conn: AsyncConnection, fault_id: str) -> str | None:
    """The city of a fault in the read model (None: no such fault)."""
    return (await conn.execute(select(faults.c.city).where(faults.c.fault_id == fault_id))).scalar()


async def order_one(conn: AsyncConnection, work_order_id: str) -> dict | None:
    query = select(work_orders).where(work_orders.c.work_order_id == work_order_id)
    row = (await conn.execute(query)).first()
    return None if row is None else WorkOrderOut.from_row(_mapping(row))


# ---------------------------------------------------------------------- TMF621 trouble tickets

@dataclass(slots=True)
class TicketFilters:
    """The filters of a ticket list (services/http/tickets.py), each a list of values (OR)."""

    queues: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    priorities: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    cities: list[str] = field(default_factory=list)     # the orders of city.<C>.… queues
    faults: list[str] = field(default_factory=list)     # orders whose fault_ids name one
    created: list[tuple[str, str]] = field(default_factory=list)   # (eq|gt|gte|lt|lte, +08:00 text)
    updated: list[tuple[str, str]] = field(default_factory=list)


_COMPARE = {"eq": "__eq__", "gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}


def _tickets_where(query: Select, f: TicketFilters) -> Select:
    c = work_orders.c
    if f.queues:
        query = query.where(c.queue.in_(f.queues))
    if f.statuses:
        query = query.where(c.status.in_(f.statuses))
    if f.priorities:
        query = query.where(c.priority.in_(f.priorities))
    if f.rules:
        query = query.where(c.rule.in_(f.rules))
    if f.cities:
        query = query.where(or_(*(c.queue.startswith(f"city.{city}.", autoescape=True) for city in f.cities)))
    if f.faults:
        # fault_ids is a JSON list kept as text: an element is its JSON string, quotes included.
        query = query.where(or_(*(c.fault_ids.contains(orjson.dumps(fid).decode(), autoescape=True)
                                  for fid in f.faults)))
    for column, bounds in ((c.created_at, f.created), (c.updated_at, f.updated)):
        for op, text in bounds:
            query = query.where(getattr(column, _COMPARE[op])(text))
    return query


async def ticket_page(conn: AsyncConnection, f: TicketFilters, offset: int,
                      limit: int) -> tuple[list[dict], int]:
    """(a page of work-order bodies, how many match in all), in creation order."""
    query = _tickets_where(select(work_orders), f).order_by(work_orders.c.created_at.nulls_last(),
                                                           work_orders.c.work_order_id)
    rows = [WorkOrderOut.from_row(_mapping(r)) for r in await conn.execute(query.offset(offset).limit(limit))]
    counted = _tickets_where(select(func.count()).select_from(work_orders), f)
    total = (await conn.execute(counted)).scalar_one()
    return rows, total


async def ticket_extras(conn: AsyncConnection, orders: Sequence[Mapping]) -> dict[str, dict]:
    """work order id → {notes, changes, faults}: what a TroubleTicket shows beside the order —
    its notes and operators' status changes (oldest first) and a summary of each of its
    faults (severity, circuit, customer, city). A few queries per page."""
    ids = [o["work_order_id"] for o in orders]
    out: dict[str, dict] = {i: {"notes": [], "changes": [], "faults": {}} for i in ids}
    n, ch = work_order_notes.c, work_order_changes.c
    for chunk in _chunks(ids):
        for r in await conn.execute(select(n.id, n.work_order_id, n.author, n.date, n.text)
                                    .where(n.work_order_id.in_(chunk)).order_by(n.id)):
            out[r.work_order_id]["notes"].append({"id": str(r.id), "author": r.author, "date": r.date,
                                                  "text": r.text})
        for r in await conn.execute(select(ch.work_order_id, ch.status, ch.reason, ch.at, ch.by)
                                    .where(ch.work_order_id.in_(chunk)).order_by(ch.id)):
            out[r.work_order_id]["changes"].append({"changeDate": r.at, "status": r.status,
                                                    "changeReason": r.reason, "by": r.by})
    fault_ids = list(dict.fromkeys(fid for o in orders for fid in o["fault_ids"]))
    found: dict[str, dict] = {}
    fc = faults.c
    for chunk in _chunks(fault_ids):
        for r in await conn.execute(select(fc.fault_id, fc.severity, fc.circuit_id, fc.customer_id, fc.city,
                                           fc.kind, fc.ended_at).where(fc.fault_id.in_(chunk))):
            found[r.fault_id] = _mapping(r)
    for o in orders:
        out[o["work_order_id"]]["faults"] = {fid: found[fid] for fid in o["fault_ids"] if fid in found}
    return out


async def open_faults_of(conn: AsyncConnection, fault_ids: Sequence[str]) -> list[str]:
    """Those of these faults that are open in the read model, in the given order."""
    open_ = set()
    for chunk in _chunks(list(fault_ids)):
        open_.update(fid for (fid,) in await conn.execute(
            select(faults.c.fault_id).where(faults.c.fault_id.in_(chunk), faults.c.ended_at.is_(None))))
    return [f for f in fault_ids if f in open_]


# ---------------------------------------------------------------------- decisions

async def decisions_after(conn: AsyncConnection, after_seq: int, limit: int,
                          types: Sequence[str] | None) -> list[dict]:
    """The records kept in `audit` after `after_seq` (seq = audit.id), in that order."""
    query = select(audit.c.id, audit.c.body).where(audit.c.id > after_seq)
    if types:
        query = query.where(audit.c.type.in_(list(types)))
    rows = await conn.execute(query.order_by(audit.c.id).limit(limit))
    return [{"seq": seq, "record": orjson.loads(body)} for seq, body in rows]


# ---------------------------------------------------------------------- the outcome of an input

def parse_input_id(input_id: str) -> bool:
    """Whether `input_id` has the form of an input's id: `topic:partition:offset@timestamp_ms`."""
    return INPUT_ID.fullmatch(input_id) is not None


@dataclass(slots=True)
class _Seen:
    entries: set[tuple[str, int]] = field(default_factory=set)        # correlate (shard, seq) in the log
    archived: set[str] = field(default_factory=set)                    # shards whose archive holds it
    behind: set[str] = field(default_factory=set)                      # shards whose horizon spans it
    notices: dict[str, str] = field(default_factory=dict)              # notice id → its shard
    handled: dict[str, tuple[str, int]] = field(default_factory=dict)  # notice id → dispatch (shard, seq)
    settled: set[str] = field(default_factory=set)                     # notices dispatch handled, let go
    records: int = 0
    lost: bool = False                  # records some of its entries made are no longer known
    reason: str | None = None


async def input_outcome(conn: AsyncConnection, input_id: str, *, shards: Sequence[str] | None = None,
                        expect: Sequence[str] | None = None) -> dict:
    """{input_id, status: pending | accepted | refused, reason, records[, pruned]} (see the module)."""
    return (await input_outcomes(conn, {input_id: expect}, shards=shards))[input_id]


async def input_outcomes(conn: AsyncConnection, inputs: Mapping[str, Sequence[str] | None], *,
                         shards: Sequence[str] | None = None) -> dict[str, dict]:
    """The outcome of each input id, in a few queries for the lot. `inputs`: id → the shards
    that must each handle it before it counts as accepted (None: any one). `shards`: every
    shard there is, when known (the inventory's): lets the log's (stage, shard, source_key)
    index find the entries."""
    seen = {input_id: _Seen() for input_id in inputs}
    ids = list(seen)
    for key, shard, seq in await _logged(conn, CORRELATE, ids, shards):
        seen[key].entries.add((shard, seq))
    gone = {i: s for i, s in seen.items() if _unlogged(s, inputs[i])}
    if gone:
        await _let_go(conn, gone, shards)
    entry_of = {e: s for s in seen.values() for e in s.entries}
    for shard, seq, topic, value in await _outbox(conn, CORRELATE, list(entry_of)):
        _read_outbox(entry_of[(shard, seq)], shard, topic, value)
    notice_of = {n: s for s in seen.values() for n in s.notices}
    notice_shards = sorted({shard for s in seen.values() for shard in s.notices.values()})
    for key, shard, seq in await _logged(conn, DISPATCH, list(notice_of), notice_shards):
        notice_of[key].handled[key] = (shard, seq)
    await _notices_let_go(conn, {n: s for n, s in notice_of.items() if n not in s.handled})
    handled_by = {e: s for s in seen.values() for e in s.handled.values()}
    for shard, seq, _topic, value in await _outbox(conn, DISPATCH, list(handled_by), (DECISIONS,)):
        handled_by[(shard, seq)].records += len(orjson.loads(value))
    owner = {**{i: seen[i] for i in ids}, **notice_of}
    for key, reason in await _refusals(conn, list(owner)):
        if owner[key].reason is None:
            owner[key].reason = reason
    return {i: _verdict(i, seen[i], inputs[i]) for i in ids}


def _read_outbox(seen: _Seen, shard: str, topic: str, value: str) -> None:
    messages = orjson.loads(value)
    if topic == DECISIONS:
        seen.records += len(messages)
        return
    for message in messages:
        notice = orjson.loads(message)
        if isinstance(notice, dict) and isinstance(notice.get("id"), str):
            seen.notices[notice["id"]] = shard


def _unlogged(seen: _Seen, expect: Sequence[str] | None) -> bool:
    """Is the input missing from the correlate log (from a shard of `expect`, when given)?"""
    if expect is None:
        return not seen.entries
    return not set(expect) <= {shard for shard, _seq in seen.entries}


async def _let_go(conn: AsyncConnection, gone: Mapping[str, _Seen], shards: Sequence[str] | None) -> None:
    """Inputs missing from the correlate log: the shards whose horizon spans them (retention let
    go of their entries there), then what the archive, or the notices kept open, say of them."""
    at = {i: found for i in gone if (found := key_position(i)) is not None and found[0][0] == SOURCE}
    if not at:
        return
    h = input_log_horizon.c
    topics = sorted({mark[1] for mark, _position in at.values()})
    query = (select(h.shard, h.origin, h.partition, h.low, h.low_ts, h.high, h.high_ts)
             .where(h.stage == CORRELATE, h.kind == SOURCE, h.origin.in_(topics)))
    if shards is not None:
        query = query.where(h.shard.in_(list(shards)))
    horizons: dict[tuple[str, int], list[tuple[str, Span]]] = {}
    for r in await conn.execute(query):
        span = ((r.low, r.low_ts), (r.high, r.high_ts))
        horizons.setdefault((r.origin, r.partition), []).append((r.shard, span))
    for i, ((_kind, origin, partition), position) in at.items():
        logged = {shard for shard, _seq in gone[i].entries}
        gone[i].behind.update(shard for shard, horizon in horizons.get((origin, partition), ())
                              if shard not in logged and covers(SOURCE, horizon, position))
    behind = [i for i in at if gone[i].behind]
    for key, shard, records, notices in await _archived(conn, CORRELATE, behind):
        seen = gone[key]
        seen.archived.add(shard)
        seen.records += records or 0
        seen.lost |= records is None                 # archived before its records were kept
        for notice_id in orjson.loads(notices) if notices else ():
            seen.notices[notice_id] = shard
    p = pruned_notices.c
    for chunk in _chunks(behind):
        for key, notice_id, shard in await conn.execute(
                select(p.source_key, p.notice_id, p.shard).where(p.source_key.in_(chunk))):
            gone[key].notices[notice_id] = shard


async def _notices_let_go(conn: AsyncConnection, open_: Mapping[str, _Seen]) -> None:
    """Notices missing from dispatch's log: settled when its horizon spans them, with the
    records the archive kept of them (else no longer known)."""
    at = {n: found for n in open_ if (found := key_position(n)) is not None and found[0][0] == NOTICE}
    if not at:
        return
    h = input_log_horizon.c
    cities = sorted({mark[1] for mark, _position in at.values()})
    horizons: dict[str, list[Span]] = {}
    for r in await conn.execute(select(h.origin, h.low, h.low_ts, h.high, h.high_ts)
                                .where(h.stage == DISPATCH, h.kind == NOTICE, h.origin.in_(cities))):
        horizons.setdefault(r.origin, []).append(((r.low, r.low_ts), (r.high, r.high_ts)))
    behind = [n for n, ((_k, origin, _p), position) in at.items()
              if any(covers(NOTICE, horizon, position) for horizon in horizons.get(origin, ()))]
    kept: dict[str, int | None] = {}
    for key, _shard, records, _notices in await _archived(conn, DISPATCH, behind):
        kept[key] = records
    for notice_id in behind:
        seen = open_[notice_id]
        seen.settled.add(notice_id)
        records = kept.get(notice_id)
        seen.records += records or 0
        seen.lost |= records is None


def _correlated(seen: _Seen, expect: Sequence[str] | None) -> tuple[bool, bool]:
    """(has correlate handled it, at every shard of `expect` when given; are the records of a
    shard that did no longer known)."""
    kept = {shard for shard, _seq in seen.entries} | seen.archived
    if expect is None:
        return (True, False) if kept else (bool(seen.behind), bool(seen.behind))
    missing = set(expect) - kept
    return missing <= seen.behind, bool(missing & seen.behind)


def _verdict(input_id: str, seen: _Seen, expect: Sequence[str] | None) -> dict:
    correlated, lost = _correlated(seen, expect)
    lost = lost or seen.lost
    records = None if lost else seen.records
    if seen.reason is not None:
        status, reason = "refused", seen.reason
    elif correlated and seen.notices.keys() <= seen.handled.keys() | seen.settled:
        status, reason = "accepted", None
    else:
        return {"input_id": input_id, "status": "pending", "reason": None, "records": None}
    outcome = {"input_id": input_id, "status": status, "reason": reason, "records": records}
    if lost:
        outcome["pruned"] = True
    return outcome


async def _archived(conn: AsyncConnection, stage: str,
                    keys: Sequence[str]) -> list[tuple[str, str, int | None, str | None]]:
    """(source_key, shard, records, notices) of the inputs a stage logged under these keys whose
    entries retention archived (FAULTLINE_LOG_RETENTION=archive); records null when not kept
    (archived before migration 0006)."""
    a, s = input_log_archive.c, input_log_archive_sent.c
    sent = input_log_archive.outerjoin(input_log_archive_sent,
                                       (s.stage == a.stage) & (s.shard == a.shard) & (s.seq == a.seq))
    out: list[tuple[str, str, int | None, str | None]] = []
    for chunk in _chunks(keys):
        query = (select(a.source_key, a.shard, s.records, s.notices).select_from(sent)
                 .where(a.stage == stage, a.kind == "input", a.source_key.in_(chunk)))
        out.extend(tuple(r) for r in await conn.execute(query))
    return out


async def _logged(conn: AsyncConnection, stage: str, keys: Sequence[str],
                  shards: Sequence[str] | None) -> list[tuple[str, str, int]]:
    """(source_key, shard, seq) of the inputs a stage logged under these keys."""
    out: list[tuple[str, str, int]] = []
    for chunk in _chunks(keys):
        query = (select(input_log.c.source_key, input_log.c.shard, input_log.c.seq)
                 .where(input_log.c.stage == stage, input_log.c.kind == "input",
                        input_log.c.source_key.in_(chunk)))
        if shards is not None:
            query = query.where(input_log.c.shard.in_(list(shards)))
        out.extend(tuple(r) for r in await conn.execute(query))
    return out


async def _outbox(conn: AsyncConnection, stage: str, entries: Sequence[tuple[str, int]],
                  topics: Iterable[str] = (FAULTS, DECISIONS)) -> list[tuple[str, int, str, str]]:
    """(shard, seq, topic, value) of what these log entries of a stage sent on these topics."""
    out: list[tuple[str, int, str, str]] = []
    for chunk in _chunks(entries):
        query = (select(outbox.c.shard, outbox.c.seq, outbox.c.topic, outbox.c.value)
                 .where(outbox.c.stage == stage, outbox.c.topic.in_(list(topics)),
                        tuple_(outbox.c.shard, outbox.c.seq).in_(list(chunk))))
        out.extend(tuple(r) for r in await conn.execute(query))
    return out


async def _refusals(conn: AsyncConnection, keys: Sequence[str]) -> list[tuple[str, str]]:
    """(source_key, reason) of the refusals kept under these keys, oldest first."""
    out: list[tuple[str, str]] = []
    for chunk in _chunks(keys):
        query = (select(rejected.c.source_key, rejected.c.reason)
                 .where(rejected.c.source_key.in_(chunk)).order_by(rejected.c.id))
        out.extend(tuple(r) for r in await conn.execute(query))
    return out
