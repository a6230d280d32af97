"""The PostgreSQL fixtures: a fresh empty database per test, and killing its connections."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from .pg_fixtures import pg_terminate


async def test_pg_url_is_a_fresh_empty_database(pg_url: str) -> None:
    assert pg_url.startswith("postgresql+asyncpg://")
    engine = create_async_engine(pg_url)
    try:
        async with engine.begin() as conn:
            name = (await conn.execute(text("SELECT current_database()"))).scalar_one()
            tables = (await conn.execute(text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ))).scalar_one()
            await conn.execute(text("CREATE TABLE fault (id text PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO fault VALUES ('F-000001')"))
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id FROM fault"))).scalars().all()
    finally:
        await engine.dispose()
    assert name.startswith("faultline_") and f"/{name}" in pg_url
    assert tables == 0
    assert rows == ["F-000001"]


async def test_pg_terminate_kills_other_connections_and_a_new_one_works(pg_url: str) -> None:
    engine = create_async_engine(pg_url, pool_pre_ping=True)
    try:
        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))
            assert await pg_terminate(pg_url) >= 1
            with pytest.raises(DBAPIError):
                await held.execute(text("SELECT 1"))
        async with engine.connect() as fresh:
            assert (await fresh.execute(text("SELECT 2"))).scalar_one() == 2
    finally:
        await engine.dispose()
