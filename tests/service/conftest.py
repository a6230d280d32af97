"""Fixtures of the live-service tests: real SQLite files in tmp_path, the sample inventory."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.support import ROOT, LiveSettings
from shared.inventory import load_inventory
from shared.rulebook import load_rulebook


@pytest.fixture(scope="session")
def settings_base() -> tuple:
    return load_inventory(ROOT / "samples" / "inventory.json"), load_rulebook()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'faultline.sqlite3'}"


@pytest.fixture
def settings(settings_base, db_url) -> LiveSettings:
    inventory, rulebook = settings_base
    return LiveSettings(inventory, rulebook, db_url)
