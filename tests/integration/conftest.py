"""Integration tests: a real Kafka-protocol broker (Tansu) and a real PostgreSQL."""

from __future__ import annotations

import pytest

from .kafka_fixtures import *  # noqa: F401,F403
from .kafka_fixtures import live_brokers
from .pg_fixtures import *  # noqa: F401,F403

HERE = __file__.rsplit("/", 1)[0]


@pytest.fixture(params=["sqlite", "postgres"])
async def any_db(request, tmp_path):
    """A migrated database engine, once on an SQLite file and once on PostgreSQL."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.db.migrate import upgrade_async

    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'any.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_url")
    await upgrade_async(url)
    engine = create_async_engine(url)
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
def _no_stage_process_outlives_its_test():
    yield
    from .pipeline_support import kill_leftovers
    kill_leftovers()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.path).startswith(HERE):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and str(item.path).startswith(HERE):
        for broker in live_brokers():
            report.sections.append((f"tansu {broker.bootstrap} log ({broker.log_path})", broker.log_tail()))
    return report
