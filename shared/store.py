"""The input log and what it produced, in one SQL database (SQLAlchemy 2 async).

Three tables:
- `inputs`: every input the engine handed to its pipeline, in order, with its arrival
  (the clock it was handled at), plus `advance` entries for timer ticks. Replaying this
  log through a fresh pipeline rebuilds the engine's state exactly (the rules are pure).
- `records`: the output records (CONTRACT §3) each entry produced, in emission order.
- `refused_inputs`: every refused input with its reason and body — kept, never dropped.

An entry, its records and its refusal are written in one transaction (`append`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import DataError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.db import database_url
from shared.db.migrate import upgrade_async
from shared.db.projection import project_batch

metadata = MetaData()

inputs = Table(
    "inputs", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("arrival", Float, nullable=False),
    Column("kind", String(32), nullable=False),       # a CONTRACT §3 kind, or "advance"
    Column("source", String(32), nullable=False),     # http | bus | demo | timer
    Column("body", Text, nullable=True),              # the §3 input object; null for advance
    Column("refused", Text, nullable=True),           # the pipeline's reason when it refused it
)

records = Table(
    "records", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("input_seq", Integer, nullable=False, index=True),
    Column("type", String(40), nullable=False, index=True),
    Column("at", String(40), nullable=False),
    Column("fault_id", String(40), nullable=True, index=True),
    Column("work_order_id", String(40), nullable=True, index=True),
    Column("queue", String(120), nullable=True),
    Column("body", Text, nullable=False),
)

rejected = Table(
    "refused_inputs", metadata,   # not `rejected`: the production schema has its own
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("arrival", Float, nullable=False),
    Column("source", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("body", Text, nullable=False),
)


def dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


class UnstorableInput(ValueError):
    """An input, or what it produced, cannot be written (e.g. JSON nested beyond what the
    encoder takes): a fault of that one input, not of the database."""


def data_fault(err: BaseException) -> bool:
    """Did the database refuse the data itself rather than fail? UnstorableInput, or SQLSTATE
    class 22 (a value too long for its column, a NUL in text, a number out of range): then
    the input that brought it is at fault. A unique key (class 23) is never one input's
    fault: in the production stages it fences a zombie writer off."""
    if isinstance(err, (UnstorableInput, DataError)):
        return True
    orig = getattr(err, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return isinstance(state, str) and state.startswith("22")


def kept_text(body: object, limit: int = 1 << 20) -> str:
    """A refused body as text that any database takes: JSON when it encodes, else its repr;
    NULs replaced (PostgreSQL text cannot hold them), cut at `limit` characters."""
    if isinstance(body, str):
        text = body
    else:
        try:
            text = dumps(body)
        except (TypeError, ValueError):            # orjson: nesting beyond its limit, a huge int
            try:
                text = repr(body)
            except (RecursionError, ValueError):     # nested 1,000 deep; an int of 5,000 digits
                text = f"<unrepresentable {type(body).__name__}>"
    return text[:limit].replace("\x00", "\ufffd")


def kept_value(body: object, limit: int = 1 << 20) -> object:
    """`body` itself when it encodes as JSON within `limit` bytes, else `kept_text(body)` cut
    until it encodes within `limit` (escapes can make text several times longer)."""
    try:
        if len(orjson.dumps(body)) <= limit:
            return body
    except (TypeError, ValueError):
        pass
    text = kept_text(body, limit)
    while len(orjson.dumps(text)) > limit:
        text = text[:len(text) // 4]
    return text


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of the input log: an input (body set) or a timer advance (body None)."""

    seq: int
    arrival: float
    kind: str
    source: str
    body: dict | None = None
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    seq: int
    type: str
    at: str
    fault_id: str | None
    work_order_id: str | None
    queue: str | None
    body: dict


@dataclass(frozen=True, slots=True)
class Refusal:
    arrival: float
    source: str
    reason: str
    body: object          # the input as received (a JSON value, or the raw text)


@dataclass(slots=True)
class Batch:
    """What one engine step wrote: at most one log entry, its records, at most one refusal."""

    entry: LogEntry | None = None
    records: list[StoredRecord] = field(default_factory=list)
    refusal: Refusal | None = None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _adopt_unmigrated_refusals(sync) -> None:
    """A database of the embedded engine from before the migrations kept its refusals in a
    table named `rejected`, the name the production schema now takes: move them aside to
    `refused_inputs`, kept, so the migrations can run."""
    tables = set(inspect(sync).get_table_names())
    if "rejected" in tables and "alembic_version" not in tables and "refused_inputs" not in tables:
        if "arrival" in {c["name"] for c in inspect(sync).get_columns("rejected")}:
            sync.execute(text("ALTER TABLE rejected RENAME TO refused_inputs"))


class Store:
    """The engine's durable side. Build with `await Store.open(url)`; close with `close()`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    async def open(cls, url: str | None) -> Store:
        resolved = database_url(url)
        engine = create_async_engine(resolved)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        # The read model (faults, work orders, notifications, escalations, audit…) is the
        # production schema, by its migrations; the embedded engine's own log tables beside it.
        async with engine.begin() as conn:
            await conn.run_sync(_adopt_unmigrated_refusals)
        await upgrade_async(resolved)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def append(self, batch: Batch) -> None:
        """Write one engine step atomically: the entry, its records, its refusal.

        Raises UnstorableInput, before touching the database, when the entry or its records
        do not encode; a refusal always can be kept (`kept_text`)."""
        e = batch.entry
        input_seq = e.seq if e is not None else 0
        try:
            entry_body = None if e is None or e.body is None else dumps(e.body)
            rows = [{"seq": r.seq, "input_seq": input_seq, "type": r.type, "at": r.at,
                     "fault_id": r.fault_id, "work_order_id": r.work_order_id, "queue": r.queue,
                     "body": dumps(r.body)} for r in batch.records]
        except (TypeError, ValueError) as err:     # orjson.JSONEncodeError is a TypeError
            raise UnstorableInput(f"cannot encode the input or its records: {err}") from err
        async with self.engine.begin() as conn:
            if e is not None:
                await conn.execute(insert(inputs).values(
                    seq=e.seq, arrival=e.arrival, kind=e.kind, source=e.source,
                    body=entry_body, refused=e.refused))
            if rows:
                await conn.execute(insert(records), rows)
            kept = ([(e.kind, e.body[e.kind], e.body["at"])]           # an alarm or complaint taken in
                    if e is not None and e.kind in ("alarm", "complaint") and e.refused is None else [])
            if batch.records or kept:
                await conn.run_sync(project_batch, kept, [("-", r.body) for r in batch.records], stage="run")
            if batch.refusal is not None:
                f = batch.refusal
                await conn.execute(insert(rejected).values(
                    arrival=f.arrival, source=f.source, reason=kept_text(f.reason), body=kept_text(f.body)))

    async def log(self) -> list[LogEntry]:
        """The whole input log in order (start-up replay)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(inputs).order_by(inputs.c.seq))
            return [LogEntry(r.seq, r.arrival, r.kind, r.source,
                             None if r.body is None else orjson.loads(r.body), r.refused)
                    for r in rows]

    async def counts(self) -> tuple[int, int, int]:
        """(last input seq, last record seq, number of records)."""
        async with self.engine.connect() as conn:
            last_in = (await conn.execute(select(func.max(inputs.c.seq)))).scalar() or 0
            row = (await conn.execute(select(func.max(records.c.seq), func.count()))).one()
            return last_in, row[0] or 0, row[1]

    async def records_after(self, after_seq: int, limit: int = 500,
                            types: Sequence[str] | None = None) -> list[StoredRecord]:
        q = select(records).where(records.c.seq > after_seq)
        if types:
            q = q.where(records.c.type.in_(list(types)))
        q = q.order_by(records.c.seq).limit(limit)
        async with self.engine.connect() as conn:
            return [StoredRecord(r.seq, r.type, r.at, r.fault_id, r.work_order_id, r.queue,
                                 orjson.loads(r.body)) for r in await conn.execute(q)]

    async def refusals(self, limit: int = 500) -> list[Refusal]:
        q = select(rejected).order_by(rejected.c.id).limit(limit)
        async with self.engine.connect() as conn:
            return [Refusal(r.arrival, r.source, r.reason, r.body) for r in await conn.execute(q)]
