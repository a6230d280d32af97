"""The API's bearer tokens and roles (issue 10, security; services/access.py): the store on
SQLite and PostgreSQL, the role × permission × city matrix, hostile tokens, and
`faultline token create | list | revoke` as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from services.access import ACT, ADMIN, INGEST, READ, ROLES, AccessError, Principal, TokenStore, token_hash
from shared.db.models import api_tokens

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(any_db):
    return TokenStore(any_db, clock=lambda: 1_764_900_000.0)


async def test_a_token_is_shown_once_stored_as_a_hash_and_names_its_holder(store):
    token_id, token = await store.create("city-operator", "GZ", "GZ 监控室 EOMS")
    assert token.startswith("fl_") and len(token) == 46
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(api_tokens))).mappings().one()
    assert row["token_hash"] == token_hash(token) and token not in str(dict(row))
    assert await store.principal(token) == Principal(token_id, "city-operator", "GZ", "GZ 监控室 EOMS")
    listed = await store.list()
    assert listed == [{"id": token_id, "role": "city-operator", "city": "GZ", "name": "GZ 监控室 EOMS",
                       "created_at": 1_764_900_000.0, "revoked_at": None}]
    assert await store.any_active()


async def test_a_revoked_token_opens_nothing_and_keeps_its_row(store):
    token_id, token = await store.create("admin")
    other_id, other = await store.create("read-only")
    assert await store.revoke(token_id) is True
    assert await store.revoke(token_id) is False            # once
    assert await store.revoke(999_999) is False
    assert await store.principal(token) is None
    assert (await store.principal(other)).role == "read-only"
    assert [r["revoked_at"] is not None for r in await store.list()] == [True, False]


@pytest.mark.parametrize("role, city, why", [
    ("root", None, "expected one of admin, province-operator"),
    ("city-operator", None, "--city is required"),
    ("admin", "GZ", "takes no --city"),
    ("city-operator", "gz'; drop", "expected a city code"),
])
async def test_a_token_request_that_makes_no_sense_is_refused_by_name(store, role, city, why):
    with pytest.raises(AccessError, match=why):
        await store.create(role, city)
    assert await store.list() == []


@pytest.mark.parametrize("token", [None, 17, ["fl_x"], "", "Bearer", "fl_" + "a" * 42, "fl_" + "a" * 44,
                                   "fl_" + "é" * 43, "\x00" * 46, "fl_" + "a" * 43])
async def test_any_token_that_is_not_a_live_one_is_no_one(store, token):
    await store.create("admin")
    assert await store.principal(token) is None


MATRIX = {   # role → (read, ingest, act, admin) on something of GZ / of FS / not tied to a city
    "admin": {"GZ": "RIAD", "FS": "RIAD", None: "RIAD"},
    "province-operator": {"GZ": "RIA", "FS": "RIA", None: "RIA"},
    "city-operator": {"GZ": "RIA", "FS": "", None: "R"},
    "read-only": {"GZ": "R", "FS": "R", None: "R"},
    "ingest-only": {"GZ": "I", "FS": "I", None: "I"},
}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_exactly_what_its_row_says_and_a_city_operator_only_in_its_city(role):
    who = Principal(1, role, "GZ" if role == "city-operator" else None, role)
    for city, allowed in MATRIX[role].items():
        got = "".join(letter for letter, perm in zip("RIAD", (READ, INGEST, ACT, ADMIN), strict=True)
                      if who.may(perm, city))
        assert got == allowed, (role, city)
    assert not who.may("delete-everything")


def faultline_audit(db: Path) -> list[tuple]:
    """(action, role, actor, detail) of the audit trail in an SQLite file, oldest first."""
    import sqlite3

    import orjson
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT action, role, actor, detail FROM api_audit ORDER BY id").fetchall()
    return [(a, r, who, orjson.loads(d)) for a, r, who, d in rows]


def test_faultline_token_create_list_revoke_as_a_user_runs_them(tmp_path: Path):
    env = {**os.environ, "FAULTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}

    def faultline(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "services.cli", "token", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    made = faultline("create", "--role", "city-operator", "--city", "GZ", "--name", "EOMS GZ")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert made.stdout == token + "\n" and token.startswith("fl_")      # alone on its line
    assert "shown once" in made.stderr and token not in made.stderr
    listed = faultline("list")
    assert listed.returncode == 0 and "city-operator" in listed.stdout and "EOMS GZ" in listed.stdout
    assert token not in listed.stdout and token_hash(token) not in listed.stdout
    bad = faultline("create", "--role", "read-only", "--city", "GZ")
    assert bad.returncode == 2 and "takes no --city" in bad.stderr and bad.stdout == ""
    assert faultline("revoke", "1").returncode == 0
    again = faultline("revoke", "1")
    assert again.returncode == 1 and "no active token 1" in again.stderr
    trail = faultline_audit(tmp_path / "cli.sqlite3")
    assert [(a, r, who, d["token_id"]) for a, r, who, d in trail] == [
        ("token create", "admin", "faultline token", 1), ("token revoke", "admin", "faultline token", 1)]
    row = faultline("list").stdout.splitlines()[1].split()   # id role city created revoked name…
    assert row[:3] == ["1", "city-operator", "GZ"] and row[4].startswith("20")   # revoked, when
