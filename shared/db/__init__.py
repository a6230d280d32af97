"""The SQL store of the production path (CONTRACT §4).

- `shared.db.models`: the tables (input log, outbox, shard ownership, read model).
- `shared.db.projection`: output records applied to the read model.
- `shared.db.migrate`: the Alembic migrations (`faultline db upgrade`).

This module only names the database: it imports neither SQLAlchemy engines nor Alembic.
"""

from __future__ import annotations

import os

#: The database used when no URL is given (FAULTLINE_DATABASE_URL unset).
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///.faultline/faultline.sqlite3"

_ASYNC_DRIVERS = (
    ("postgresql://", "postgresql+asyncpg://"),
    ("postgres://", "postgresql+asyncpg://"),
    ("sqlite://", "sqlite+aiosqlite://"),
)


def database_url(url: str | None = None) -> str:
    """The async SQLAlchemy URL to use.

    None or empty: FAULTLINE_DATABASE_URL, else the local SQLite file. Plain
    `postgresql://` (and `postgres://`) URLs are read as `postgresql+asyncpg://`, plain
    `sqlite://` as `sqlite+aiosqlite://`; other URLs are returned unchanged. For an SQLite
    file the directory that holds it is created.
    """
    if not url:
        url = os.environ.get("FAULTLINE_DATABASE_URL") or DEFAULT_DATABASE_URL
    for plain, driver in _ASYNC_DRIVERS:
        if url.startswith(plain):
            url = driver + url[len(plain):]
            break
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix):
        path = url[len(prefix):].split("?", 1)[0]
        if path and path != ":memory:":
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)
    return url
