"""`faultline import FILE`: an NMS alarm export (CSV or JSON) into a running faultline.

The rows go to the API's `POST /alarms/import` (an ingest-only token is enough), 500 at a
time, so the embedded `faultline run` and the production `faultline api` take them the same
way: each row is checked with the export mapping (alarm_ingest/mappings/*.yaml, `--mapping`),
kept unchanged on faultline.alarms.raw.export, and normalized by ingest like any feed. A row
refused is dead-lettered by the service and printed here with its line.

Files: CSV with a header row (UTF-8, with or without BOM, or GB18030 as Chinese NMSes write
it), a JSON array of row objects, `{"rows": [...]}`, or JSON lines. Exit status: 0 when every
row was taken, 3 when any was refused, 2 for unusable arguments or an unreadable file, 1 when
the service could not be reached or refused the token.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import httpx
import orjson

from services.config import UsageError
from shared.limits import FileTooLarge, read_bounded

BATCH = 500
MAX_FILE = 256 << 20


def read_rows(path: Path) -> list[tuple[str, object]]:
    """(where, row) of every row of the file (where: `line N` of a CSV or JSON-lines file, `row N`
    of an array); UsageError naming what is unreadable."""
    try:
        data = bytes(read_bounded(path, MAX_FILE))
    except FileTooLarge as err:
        raise UsageError(f"{path}: {err}") from None
    except OSError as err:
        raise UsageError(f"{path}: cannot read: {err.strerror or err}") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:                                             # gb18030 decodes any bytes; kept for clarity
        raise UsageError(f"{path}: neither UTF-8 nor GB18030 text")
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        return _json_rows(path, stripped)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise UsageError(f"{path}: no header row (a CSV export starts with its column names)")
    try:
        return [(f"line {reader.line_num}", dict(row)) for row in reader
                if any(v.strip() for v in row.values() if isinstance(v, str))]
    except csv.Error as err:
        raise UsageError(f"{path}:{reader.line_num}: not CSV: {err}") from None


def _json_rows(path: Path, text: str) -> list[tuple[str, object]]:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        rows = []                                     # JSON lines: one object per line
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((f"line {n}", orjson.loads(line)))
                except orjson.JSONDecodeError as err:
                    raise UsageError(f"{path}:{n}: not JSON: {err}") from None
        return rows
    if isinstance(doc, dict) and isinstance(doc.get("rows"), list):
        doc = doc["rows"]
    elif isinstance(doc, dict) and "rows" not in doc:
        return [("line 1", doc)]                      # JSON lines of one row
    if not isinstance(doc, list):
        raise UsageError(f"{path}: expected a JSON array of rows, {{\"rows\": [...]}} or JSON lines")
    return [(f"row {n}", row) for n, row in enumerate(doc, 1)]


def import_main(path: str, mapping: str, source: str | None, url: str, token: str | None) -> int:
    if not token:
        raise UsageError("--token (or FAULTLINE_TOKEN): an API token with the ingest-only role or above")
    rows = read_rows(Path(path))
    source = source or Path(path).stem
    taken = refused = 0
    try:
        with httpx.Client(base_url=url.rstrip("/"), timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            for start in range(0, len(rows), BATCH):
                chunk = rows[start:start + BATCH]
                resp = http.post("/alarms/import", json={"mapping": mapping, "source": source,
                                                         "rows": [r for _n, r in chunk]})
                if resp.status_code in (401, 403):
                    sys.stderr.write(f"faultline import: {resp.status_code}: {_detail(resp)}\n")
                    return 1
                if resp.status_code not in (202, 422):
                    sys.stderr.write(f"faultline import: the service answered {resp.status_code}: "
                                     f"{_detail(resp)}\n")
                    return 1
                body = resp.json()
                if resp.status_code == 422 and "reasons" not in body:
                    sys.stderr.write(f"faultline import: refused: {_detail(resp)}\n")
                    return 3
                for reason in body["reasons"]:
                    sys.stderr.write(f"{path}: {chunk[reason['index']][0]}: {reason['reason']}\n")
                taken += body["accepted"]
                refused += body["rejected"]
    except httpx.HTTPError as err:
        sys.stderr.write(f"faultline import: cannot reach {url}: {err}\n")
        return 1
    print(f"{path}: {len(rows)} rows, {taken} taken, {refused} refused (mapping {mapping}, source {source})")
    return 3 if refused else 0


def _detail(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail")
    except ValueError:
        detail = None
    return str(detail if detail is not None else resp.text[:200])
