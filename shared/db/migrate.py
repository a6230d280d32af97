"""Schema migrations, run programmatically (`faultline db upgrade`).

    from shared.db.migrate import upgrade
    upgrade("postgresql+asyncpg://postgres@127.0.0.1:5432/faultline")

The Alembic scripts live inside the package (`shared/db/migrations`), so no alembic.ini
is needed. Migrations run through the async engine (asyncpg / aiosqlite): the upgrade opens
one `AsyncConnection`, and Alembic runs in `run_sync` on it (connection sharing). On
PostgreSQL a transaction-scoped advisory lock serializes concurrent upgrades (several
copies of a process starting at once), and the DDL is transactional: all or nothing.
Upgrading a database that is already at head does nothing.

A database that cannot be reached, or a URL that cannot be used, raises `DatabaseError`
whose message is one line naming the URL (password hidden) and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, exc, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from shared.db import DEFAULT_DATABASE_URL, DatabaseError, DatabaseURLError, database_url, redacted_url

__all__ = ["DatabaseError", "DatabaseURLError", "current_revision", "head", "upgrade", "upgrade_async"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# pg_advisory_xact_lock key: "faultline" folded into a bigint; any constant would do.
_LOCK_KEY = 0x6661756C746C696E

#: How long connecting may take before the database counts as unreachable (a host that
#: drops packets would otherwise hold `db upgrade` for the driver's own minute or more).
CONNECT_TIMEOUT_S = 15.0


def _reason(err: BaseException, url: str | None) -> str:
    """One line: the driver's own error when SQLAlchemy wraps one, without the password."""
    inner = err.orig if isinstance(err, exc.DBAPIError) and err.orig is not None else err
    if isinstance(inner, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT_S:g} s"
    text_ = str(inner).strip().splitlines()
    line = f"{type(inner).__name__}: {text_[0]}" if text_ else type(inner).__name__
    try:
        from sqlalchemy.engine import make_url

        password = make_url(url).password if url else None
    except Exception:  # the URL did not parse: nothing of it can be in the driver's message
        password = None
    if password:  # drivers do not echo passwords; should one, hide it (as a whole word only)
        line = re.sub(rf"(?<![A-Za-z0-9]){re.escape(str(password))}(?![A-Za-z0-9])", "***", line)
    return line


async def _connect(url: str | None) -> tuple[AsyncEngine, AsyncConnection]:
    """An open connection, or DatabaseError naming the (redacted) URL and the reason."""
    shown = redacted_url(_shown_url(url))
    try:
        engine = create_async_engine(database_url(url), poolclass=pool.NullPool)
    except (exc.ArgumentError, exc.NoSuchModuleError, exc.InvalidRequestError, ImportError,
            ValueError) as err:
        raise DatabaseURLError(f"database {shown}: unusable URL: {_reason(err, url)}") from None
    except OSError as err:  # the SQLite file's directory cannot be made
        raise DatabaseError(f"database {shown}: cannot create: {_reason(err, url)}") from None
    try:
        conn = await asyncio.wait_for(engine.connect().start(), CONNECT_TIMEOUT_S)
    except (exc.InvalidRequestError, ImportError) as err:  # e.g. a sync-only driver named
        with contextlib.suppress(Exception):
            await engine.dispose()
        raise DatabaseURLError(f"database {shown}: unusable URL: {_reason(err, url)}") from None
    except Exception as err:  # refused, unknown host, authentication, timeout: all "cannot connect"
        with contextlib.suppress(Exception):
            await engine.dispose()
        raise DatabaseError(f"database {shown}: cannot connect: {_reason(err, url)}") from None
    return engine, conn


def _shown_url(url: str | None) -> str:
    """The URL `database_url` would resolve, for display only (no directory is made)."""
    return url or os.environ.get("FAULTLINE_DATABASE_URL") or DEFAULT_DATABASE_URL


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
    """Bring the database at `url` up to `revision` (default: the latest).

    Raises DatabaseError (one line, password hidden) when the database cannot be reached
    or fails during the upgrade; the upgrade is one transaction, so nothing is half done.
    """
    engine, conn = await _connect(url)
    try:
        cfg = alembic_config(url)
        async with conn.begin():
            await conn.run_sync(_upgrade, cfg, revision)
    except (exc.SQLAlchemyError, OSError, TimeoutError) as err:  # lost connection, refused DDL
        raise DatabaseError(f"database {redacted_url(database_url(url))}: upgrade failed: "
                            f"{_reason(err, url)}") from None
    finally:
        await _close(engine, conn)


async def current_revision_async(url: str | None = None) -> str | None:
    """The revision the database at `url` is at (None: never migrated)."""
    engine, conn = await _connect(url)
    try:
        return await conn.run_sync(_current)
    finally:
        await _close(engine, conn)


async def _close(engine: AsyncEngine, conn: AsyncConnection) -> None:
    # a connection that broke mid-way may fail to close; that must not hide the first error
    with contextlib.suppress(Exception):
        await conn.close()
    with contextlib.suppress(Exception):
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


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL: readers never wait for the writer; FULL: a commit survives a power cut; a busy
    database (another connection writing) is waited for, not an error."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _adopt_unmigrated_refusals(sync: Connection) -> None:
    """A database of the embedded engine from before the migrations kept its refusals in a
    table named `rejected`, the name the production schema now takes: move them aside to
    `refused_inputs`, kept, so the migrations can run."""
    from sqlalchemy import inspect

    tables = set(inspect(sync).get_table_names())
    if "rejected" in tables and "alembic_version" not in tables and "refused_inputs" not in tables:
        if "arrival" in {c["name"] for c in inspect(sync).get_columns("rejected")}:
            sync.execute(text("ALTER TABLE rejected RENAME TO refused_inputs"))


async def open_database(url: str | None = None) -> AsyncEngine:
    """The database of a process, migrated to the latest schema (every table comes from the
    migrations, in both modes): the engine the logs, the outbox, the read model and the
    local transport use. Raises DatabaseError (one line) when it cannot be used."""
    resolved = database_url(url)
    if resolved.startswith("sqlite"):
        engine, conn = await _connect(url)
        try:
            async with conn.begin():
                await conn.run_sync(_adopt_unmigrated_refusals)
        finally:
            await _close(engine, conn)
    await upgrade_async(url)
    engine = create_async_engine(resolved, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine
