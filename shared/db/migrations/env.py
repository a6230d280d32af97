"""Alembic environment: the tables of `shared.db.models`, run through the async engine.

Two ways in (Alembic cookbook, "Using Asyncio with Alembic"):
- `shared.db.migrate` opens an `AsyncConnection` itself and hands its sync face in
  `config.attributes["connection"]` (connection sharing, run inside `run_sync`);
- otherwise (the `alembic` command line) an async engine is built from `sqlalchemy.url`
  (or FAULTLINE_DATABASE_URL) and the migrations run in `connection.run_sync`.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import database_url
from shared.db.models import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    return database_url(config.get_main_option("sqlalchemy.url"))


def run_migrations_offline() -> None:
    """Emit the SQL on stdout (`alembic upgrade head --sql`)."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
