"""The feed settings at the command line: a bad vendor mapping stops `faultline run` and
`faultline ingest` before anything starts, naming the file and the entry (exit 2); `faultline
import` refuses unusable arguments and files the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli import main

ROOT = Path(__file__).resolve().parents[2]
BAD = """name: acme
vendor: ACME
format: syslog
source: syslog
claims: 'ACME-'
resource: "{host}"
rules:
  - id: ACME-DOWN
    match: 'down'
    cause: LINK_DOWN
    severity: huge
"""


@pytest.mark.parametrize("argv", [["run", "--inventory", str(ROOT / "samples" / "inventory.json")],
                                  ["ingest", "--kafka-bootstrap", "127.0.0.1:1"],
                                  ["api", "--kafka-bootstrap", "127.0.0.1:1"]])
def test_a_bad_vendor_mapping_stops_the_command_naming_the_entry(tmp_path, monkeypatch, capsys, argv):
    (tmp_path / "15-acme.yaml").write_text(BAD)
    monkeypatch.setenv("FAULTLINE_MAPPINGS", str(tmp_path))
    monkeypatch.setenv("FAULTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert main(argv) == 2
    err = capsys.readouterr().err
    where = tmp_path / "15-acme.yaml"
    assert f"mappings: {where}: rules[0] (ACME-DOWN).severity: 'huge' is not one of" in err


def test_import_needs_a_token_and_a_readable_file(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FAULTLINE_TOKEN", raising=False)
    assert main(["import", str(tmp_path / "none.csv")]) == 2
    assert "--token (or FAULTLINE_TOKEN)" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "none.csv"), "--token", "t"]) == 2
    assert f"{tmp_path / 'none.csv'}: cannot read" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["import", str(empty), "--token", "t"]) == 2
    assert "no header row" in capsys.readouterr().err
    broken = tmp_path / "rows.json"
    broken.write_text('{"rows": 3}')
    assert main(["import", str(broken), "--token", "t"]) == 2
    assert "expected a JSON array of rows" in capsys.readouterr().err


def test_import_says_when_the_service_cannot_be_reached(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"Name": "R_LOS"}\n')
    assert main(["import", str(rows), "--token", "t", "--url", "http://127.0.0.1:1"]) == 1
    assert "faultline import: cannot reach http://127.0.0.1:1" in capsys.readouterr().err
