"""Schema migrations, run programmatically (`faultline db upgrade`).

    from shared.db.migrate import upgrade
    upgrade("postgresql+asyncpg://postgres@127.0.0.1:5432/faultline")

The Alembic scripts live inside the package (`shared/db/migrations`), so no alembic.ini
is needed. Migrations run through the async engine (asyncpg / aiosqlite): the upgrade opens
one `AsyncConnection`, and Alembic runs in `run_sync` on it (connection sharing). On
PostgreSQL a transaction-scoped advisory lock serializes concurrent upgrades (several
copies of a process starting at once), and the DDL is transactional: all or nothing.
Upgrading a database that is already at head does nothing.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import database_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# pg_advisory_xact_lock key: "faultline" folded into a bigint; any constant would do.
_LOCK_KEY = 0x6661756C746C696E


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config for the packaged migrations and this database URL."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation: a literal '%' (URL-encoded passwords) must be doubled.
    cfg.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return cfg


def head() -> str:
    """The revision the packaged migrations lead to."""
    rev = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert rev is not None
    return rev


def _upgrade(connection: Connection, cfg: Config, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade_async(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (default: the latest)."""
    cfg = alembic_config(url)
    engine = create_async_engine(database_url(url), poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, cfg, revision)
    finally:
        await engine.dispose()


async def current_revision_async(url: str | None = None) -> str | None:
    """The revision the database at `url` is at (None: never migrated)."""
    engine = create_async_engine(database_url(url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    finally:
        await engine.dispose()


def _run(coro_factory):
    """Run a coroutine to completion from sync code, also when an event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(lambda: asyncio.run(coro_factory())).result()


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (sync; None means FAULTLINE_DATABASE_URL,
    else the local SQLite file). `postgresql://` is read as `postgresql+asyncpg://`."""
    _run(lambda: upgrade_async(url, revision))


def current_revision(url: str | None = None) -> str | None:
    """The revision the database at `url` is at (None: never migrated)."""
    return _run(lambda: current_revision_async(url))
