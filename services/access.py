"""Who may do what through the API (issue 10, security): roles, and the bearer tokens that
carry them.

A token is `fl_` and 43 URL-safe characters (32 random bytes). Only its SHA-256 is stored
(`api_tokens`, migration 0007); the token itself is shown once, when it is made, and never
logged. 256 random bits need no slow hash: nobody guesses them, and a stolen table holds no
token. A revoked token keeps its row, with the time it was revoked.

Roles (CONTRACT §4: "a city's token sees and changes only that city's queues"):

| role | may |
|---|---|
| `admin` | everything, tokens and inventory included |
| `province-operator` | read everything; operator actions and work-order changes anywhere; complaints |
| `city-operator` | read and change only its city's queues and faults; complaints of its city |
| `read-only` | read everything, change nothing |
| `ingest-only` | post alarms and complaints, nothing else |

`Principal.may(permission, city)` is the one check the HTTP app makes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db.models import api_audit, api_tokens

ROLES = ("admin", "province-operator", "city-operator", "read-only", "ingest-only")

READ, INGEST, ACT, ADMIN = "read", "ingest", "act", "admin"
PERMISSIONS = (READ, INGEST, ACT, ADMIN)
_GRANTS: dict[str, frozenset[str]] = {
    "admin": frozenset(PERMISSIONS),
    "province-operator": frozenset({READ, INGEST, ACT}),
    "city-operator": frozenset({READ, INGEST, ACT}),      # scoped to its city
    "read-only": frozenset({READ}),
    "ingest-only": frozenset({INGEST}),
}

PREFIX = "fl_"
_TOKEN = re.compile(r"fl_[A-Za-z0-9_-]{43}")
_CITY = re.compile(r"[A-Z][A-Z0-9-]{0,31}")
MAX_NAME = 255


def _plain(row) -> dict:
    """A result row as a dict of plain str keys (sqlalchemy gives quoted_name, which orjson
    does not take for a str)."""
    return {str(k): v for k, v in row.items()}


class AccessError(ValueError):
    """A token request that cannot be made: the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The holder of a valid token."""

    token_id: int
    role: str
    city: str | None
    name: str

    def may(self, permission: str, city: str | None = None) -> bool:
        """May this holder do `permission` on something of `city`? None: not tied to one city
        (a list, which the app filters for a city operator); a city operator may change only
        what is of its own city."""
        if permission not in _GRANTS.get(self.role, ()):
            return False
        if self.role != "city-operator":
            return True
        if permission == READ and city is None:
            return True             # a list: the app shows only the city's part of it
        return city == self.city


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_request(role: str, city: str | None, name: str) -> None:
    """Refuse a token request that makes no sense, naming what is wrong."""
    if role not in ROLES:
        raise AccessError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    if role == "city-operator" and not city:
        raise AccessError("role city-operator: --city is required (the city whose queues it may touch)")
    if role != "city-operator" and city:
        raise AccessError(f"role {role}: takes no --city (only city-operator is scoped to a city)")
    if city and not _CITY.fullmatch(city):
        raise AccessError(f"city {city!r}: expected a city code such as GZ (capitals, digits, '-')")
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise AccessError(f"name: expected 1 to {MAX_NAME} printable characters")


class TokenStore:
    """The `api_tokens` table."""

    def __init__(self, engine: AsyncEngine, clock=time.time) -> None:
        self.engine = engine
        self.clock = clock

    async def create(self, role: str, city: str | None = None, name: str = "") -> tuple[int, str]:
        """A new token: (its id, the token). The token is not kept: show it once."""
        name = name or (f"{role} {city}" if city else role)
        check_request(role, city, name)
        token = new_token()
        async with self.engine.begin() as conn:
            result = await conn.execute(insert(api_tokens).values(
                token_hash=token_hash(token), role=role, city=city, name=name, created_at=self.clock()))
            token_id = result.inserted_primary_key[0]
        return int(token_id), token

    async def list(self) -> list[dict]:
        """Every token made, revoked ones included (never a hash)."""
        cols = [api_tokens.c.id, api_tokens.c.role, api_tokens.c.city, api_tokens.c.name,
                api_tokens.c.created_at, api_tokens.c.revoked_at]
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(*cols).order_by(api_tokens.c.id))).mappings().all()
        return [_plain(r) for r in rows]

    async def revoke(self, token_id: int) -> bool:
        """Revoke a token; False when there is no such token or it was revoked already."""
        async with self.engine.begin() as conn:
            result = await conn.execute(update(api_tokens)
                                        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                                        .values(revoked_at=self.clock()))
        return result.rowcount == 1

    async def any_active(self) -> bool:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(api_tokens.c.id).where(api_tokens.c.revoked_at.is_(None))
                                      .limit(1))).first()
        return row is not None

    async def principal(self, token: object) -> Principal | None:
        """The holder of `token` if it is a valid, unrevoked token; None otherwise (whatever
        `token` is: a hostile header never raises)."""
        if type(token) is not str or not _TOKEN.fullmatch(token):
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(
                select(api_tokens.c.id, api_tokens.c.role, api_tokens.c.city, api_tokens.c.name)
                .where(api_tokens.c.token_hash == token_hash(token), api_tokens.c.revoked_at.is_(None))
            )).first()
        if row is None or row.role not in ROLES:
            return None
        return Principal(int(row.id), row.role, row.city, row.name)


CLI = Principal(0, "admin", None, "faultline token")     # the token command: whoever runs it


class AuditTrail:
    """`api_audit`: one row per accepted change (留痕), never updated; the admin reads it."""

    def __init__(self, engine: AsyncEngine, clock=time.time) -> None:
        self.engine = engine
        self.clock = clock

    async def record(self, who: Principal, action: str, inputs: int = 0, detail: object = None) -> None:
        async with self.engine.begin() as conn:
            await self.record_in(conn, who, action, inputs, detail)

    async def record_in(self, conn, who: Principal, action: str, inputs: int = 0,
                        detail: object = None) -> None:
        """The row, in the caller's transaction: kept if and only if the change is."""
        await conn.execute(insert(api_audit).values(
            at=self.clock(), token_id=who.token_id or None, actor=who.name, role=who.role,
            city=who.city, action=action, inputs=inputs,
            detail=None if detail is None else orjson.dumps(detail).decode()))

    async def after(self, after_id: int, limit: int) -> list[dict]:
        """The rows after `after_id`, oldest first."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(api_audit).where(api_audit.c.id > after_id)
                                       .order_by(api_audit.c.id).limit(limit))).mappings().all()
        return [{**_plain(r), "detail": None if r["detail"] is None else orjson.loads(r["detail"])}
                for r in rows]
