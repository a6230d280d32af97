"""Bearer tokens for the tests' HTTP clients (the API needs one: services/http/auth.py)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from services.access import TokenStore


async def bearer(engine: AsyncEngine, role: str = "admin", city: str | None = None) -> dict[str, str]:
    """The Authorization header of a new token of `role` (and `city`) in `engine`'s database."""
    _id, token = await TokenStore(engine).create(role, city, f"tests: {role}")
    return {"Authorization": f"Bearer {token}"}


async def bearer_at(url: str, role: str = "admin", city: str | None = None) -> dict[str, str]:
    """bearer() in the database at `url` (migrated first), for a process started on it."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.db.migrate import upgrade_async

    await upgrade_async(url)
    engine = create_async_engine(url)
    try:
        return await bearer(engine, role, city)
    finally:
        await engine.dispose()
