"""Issue 7, part 5: bounded start-up files, no secrets on the console, one line for a dead database."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import shared.inventory
from services.cli import main
from shared.db import redacted_url
from shared.db.migrate import DatabaseError, DatabaseURLError, _reason, current_revision, head, upgrade
from shared.limits import FileTooLarge, read_bounded, too_deep

ROOT = Path(__file__).resolve().parents[2]
EVENTS = str(ROOT / "samples" / "replay_events.jsonl")
INVENTORY = str(ROOT / "samples" / "inventory.json")


# -- shared.limits -----------------------------------------------------------------------------


def test_read_bounded_reads_up_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 3000)
    assert bytes(read_bounded(path, 3000)) == b"x" * 3000
    with pytest.raises(FileTooLarge) as exc:
        read_bounded(path, 2999)
    assert str(exc.value) == "larger than the limit of 2999 bytes"


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_read_bounded_stops_on_an_endless_device() -> None:
    with pytest.raises(FileTooLarge):
        read_bounded("/dev/zero", 3 << 20)


def test_too_deep_counts_containers_on_the_longest_path() -> None:
    assert not too_deep(1, 1) and not too_deep("deep", 0)
    assert not too_deep({"a": [1, {"b": []}]}, 4)  # dict, list, dict, list
    assert too_deep({"a": [1, {"b": []}]}, 3)
    assert too_deep({"a": 1, "b": [[[[]]]]}, 4) and not too_deep({"a": 1, "b": [[[[]]]]}, 5)


def test_too_deep_walks_a_shared_structure_once() -> None:
    # a YAML "billion laughs" shape: 30 levels, each holding the level below ten times
    level: list = ["lol"]
    for _ in range(30):
        level = [level] * 10
    started = time.monotonic()
    assert not too_deep(level, 64)
    assert too_deep(level, 30)
    assert time.monotonic() - started < 1.0


def test_too_deep_refuses_a_structure_that_contains_itself() -> None:
    loop: list = []
    loop.append(loop)
    cyclic: dict = {"a": {"b": 1}}
    cyclic["a"]["c"] = cyclic
    assert too_deep(loop, 64) and too_deep(cyclic, 64)


# -- the command line: refused files are exit 2, one problem per line ----------------------------


def test_replay_with_an_endless_inventory_exits_2(monkeypatch, capsys) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    monkeypatch.setattr(shared.inventory, "MAX_INVENTORY_BYTES", 1 << 20)  # spare the shared machine
    assert main(["replay", "--inventory", "/dev/zero", "--events", EVENTS]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "inventory: /dev/zero: refused: larger than the limit of 1 MiB\n"


def test_replay_with_deep_files_exits_2_naming_each(tmp_path: Path, capsys) -> None:
    rulebook = tmp_path / "deep.yaml"
    rulebook.write_text("extends: builtin\nx: " + "[" * 1000 + "]" * 1000 + "\n", encoding="utf-8")
    inventory = tmp_path / "deep.json"
    doc = json.loads(Path(INVENTORY).read_text(encoding="utf-8"))
    doc["x"] = json.loads("[" * 800 + "]" * 800)
    inventory.write_text(json.dumps(doc), encoding="utf-8")
    code = main(["replay", "--inventory", str(inventory), "--events", EVENTS, "--rulebook", str(rulebook)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"rulebook: {rulebook}:2:67: refused: nested deeper than 64 levels",
        f"inventory: {inventory}: refused: nested deeper than 64 levels",
    ]
    assert "Traceback" not in err


# -- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://alice:s3cret@db.example:5432/fl", "postgresql://alice:***@db.example:5432/fl"),
    ("postgresql+asyncpg://alice:p%40ss@[::1]/fl", "postgresql+asyncpg://alice:***@[::1]/fl"),
    ("postgresql://alice:p@ss@host/fl", "postgresql://alice:***@host/fl"),       # an unquoted '@'
    ("postgresql://alice:pw@h/fl?password=s3cret&application_name=x",
     "postgresql://alice:***@h/fl?application_name=x&password=***"),
    ("postgresql://h/fl?sslpassword=s3cret", "postgresql://h/fl?sslpassword=***"),
    ("postgresql://alice:s3cret@h:notaport/fl", "postgresql://alice:***@h:notaport/fl"),  # unparseable
    ("sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),           # nothing to hide
    ("sqlite+aiosqlite:////tmp/x/demo.sqlite3", "sqlite+aiosqlite:////tmp/x/demo.sqlite3"),
    ("postgresql://alice@h/fl", "postgresql://alice@h/fl"),
    ("s3cret", "<not a database URL>"),                                         # maybe a pasted secret
    ("", "<not a database URL>"),
])
def test_redacted_url_hides_passwords(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


def test_redacted_url_is_total() -> None:
    for garbage in (None, 12, b"postgresql://a:b@h/x", object(), "://", "a://@", "x" * 10000, "\x00:@//"):
        assert isinstance(redacted_url(garbage), str)


def test_driver_message_never_shows_the_password() -> None:
    line = _reason(RuntimeError("login as alice with s3cret refused\nsecond line"), "postgresql://alice:s3cret@h/x")
    assert line == "RuntimeError: login as alice with *** refused"
    # a short password is hidden only as a whole word, so messages stay readable
    assert _reason(ModuleNotFoundError("No module named 'MySQLdb'"), "mysql://a:b@h/x") == \
        "ModuleNotFoundError: No module named 'MySQLdb'"


# -- a database that cannot be used: one line, no traceback -------------------------------------


def test_db_upgrade_against_an_unreachable_database_is_one_line(capsys) -> None:
    code = main(["db", "upgrade", "--database-url", "postgresql://alice:s3cret@127.0.0.1:1/fl"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err and "s3cret" not in err
    assert err.startswith("faultline db upgrade: database postgresql://alice:***@127.0.0.1:1/fl: "
                          "cannot connect: ")
    assert "refused" in err.lower()


@pytest.mark.parametrize("url", ["not a url", "mysql://alice:s3cret@h/x", "postgresql://alice:s3cret@h:port/x"])
def test_db_upgrade_with_an_unusable_url_exits_2(url: str, capsys) -> None:
    assert main(["db", "upgrade", "--database-url", url]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "unusable URL" in err
    assert "Traceback" not in err and "s3cret" not in err


def test_db_upgrade_where_the_sqlite_file_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DatabaseError) as exc:
        upgrade(f"sqlite:///{blocker}/sub/db.sqlite3")
    assert not isinstance(exc.value, DatabaseURLError) and exc.value.exit_status == 1
    assert str(exc.value).startswith(f"database sqlite:///{blocker}/sub/db.sqlite3: cannot create: ")


def test_db_upgrade_still_upgrades(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path}/fl.sqlite3"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert current_revision(url) == head()
    assert main(["db", "upgrade", "--database-url", url]) == 0  # at head: nothing to do
    assert capsys.readouterr().err == ""


def test_a_process_whose_database_is_unreachable_says_so_in_one_line() -> None:
    # a subprocess: run_process installs signal handlers and logging of its own
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "correlate", "--kafka-bootstrap", "127.0.0.1:1",
         "--database-url", "postgresql://alice:s3cret@127.0.0.1:1/fl", "--inventory", INVENTORY,
         "--http-port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("faultline correlate: database "
                                  "postgresql+asyncpg://alice:***@127.0.0.1:1/fl: cannot connect: ")
    assert proc.stderr.count("\n") == 1 and "s3cret" not in proc.stderr


@pytest.mark.parametrize("demo", [False, True])
def test_faultline_run_whose_database_is_unreachable_says_so_in_one_line(demo: bool) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "run", "--database-url",
         "postgresql://alice:s3cret@127.0.0.1:1/fl", "--inventory", INVENTORY, "--http-port", "0",
         *(["--demo"] if demo else [])],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("faultline run: database postgresql")
    assert "alice:***@127.0.0.1:1/fl: cannot connect: " in proc.stderr
    assert proc.stderr.count("\n") == 1 and "s3cret" not in proc.stderr + proc.stdout
