"""The rulebook checks the schema cannot express: `_semantic_problems(doc)`.

A cause in two classes, duplicate row ids, unknown causes in a serious row, an office
window that ends before it starts, calendar dates outside `calendar_covers` or both a
holiday and a working day, unknown cities, missing service names, bad SMS templates.
They read the raw document defensively, so they run (and report, each problem named by
its path) even when other parts of it are malformed; pydantic reports the rest.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from shared.rulebook.document import SERVICE_TYPES


def _semantic_problems(doc: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    _check_causes(doc, problems)
    for table in ("serious_rows", "level_rows"):
        _check_duplicate_ids(doc.get(table), table, problems)
    _check_serious_rows(doc, problems)
    _check_windows(doc, problems)
    _check_calendar(doc, problems)
    _check_names(doc, problems)
    return problems


def _str_items(value: Any) -> list[tuple[int, str]]:
    if not isinstance(value, list):
        return []
    return [(i, v) for i, v in enumerate(value) if isinstance(v, str)]


def _check_causes(doc: dict[str, Any], problems: list[str]) -> None:
    classes = doc.get("cause_classes")
    if not isinstance(classes, dict):
        return
    first_at: dict[str, tuple[str, str]] = {}  # cause -> (class, path)
    for cls in ("outage", "degradation"):
        for i, cause in _str_items(classes.get(cls)):
            path = f"cause_classes.{cls}[{i}]"
            prior = first_at.setdefault(cause, (cls, path))
            if prior[1] == path:
                continue
            if prior[0] != cls:
                problems.append(f"{path}: {cause} is in both the outage and the degradation class "
                                f"(see {prior[1]})")
            else:
                problems.append(f"{path}: {cause} is listed twice (first at {prior[1]})")


def _check_duplicate_ids(rows: Any, table: str, problems: list[str]) -> None:
    if not isinstance(rows, list):
        return
    first: dict[str, int] = {}
    for i, row in enumerate(rows):
        rid = row.get("id") if isinstance(row, dict) else None
        if not isinstance(rid, str):
            continue
        if rid in first:
            problems.append(f"{table}[{i}].id: duplicate row id {rid} (first at {table}[{first[rid]}])")
        else:
            first[rid] = i


def _check_serious_rows(doc: dict[str, Any], problems: list[str]) -> None:
    rows = doc.get("serious_rows")
    classes = doc.get("cause_classes")
    known: set[str] | None = None
    if isinstance(classes, dict):
        known = {c for k in ("outage", "degradation") for _, c in _str_items(classes.get(k))}
    if not isinstance(rows, list):
        return
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        has_long, has_when = row.get("long_threshold_min") is not None, row.get("long_when") is not None
        if has_long != has_when:
            problems.append(f"serious_rows[{i}]: long_threshold_min and long_when go together")
        if known is None:
            continue
        for key in ("causes", "exclude_causes"):
            for j, cause in _str_items(row.get(key)):
                if cause not in known:
                    problems.append(f"serious_rows[{i}].{key}[{j}]: unknown cause {cause} "
                                    "(not in cause_classes)")


def _minute_of(value: Any) -> int | None:
    if not isinstance(value, str) or not re.fullmatch(r"\d\d:\d\d", value):
        return None
    return int(value[:2]) * 60 + int(value[3:])


def _check_window(window: Any, path: str, problems: list[str]) -> None:
    if not isinstance(window, dict):
        return
    start, end = _minute_of(window.get("start")), _minute_of(window.get("end"))
    if start is not None and end is not None and start >= end:
        problems.append(f"{path}: start {window['start']} must be before end {window['end']}")


def _check_windows(doc: dict[str, Any], problems: list[str]) -> None:
    hours = doc.get("office_hours")
    if isinstance(hours, dict):
        for day, window in hours.items():
            _check_window(window, f"office_hours.{day}", problems)
    _check_window(doc.get("adjusted_workday_hours"), "adjusted_workday_hours", problems)


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _check_calendar(doc: dict[str, Any], problems: list[str]) -> None:
    covers = doc.get("calendar_covers")
    first = last = None
    if isinstance(covers, dict):
        first, last = _as_date(covers.get("first")), _as_date(covers.get("last"))
        if first is not None and last is not None and first > last:
            problems.append(f"calendar_covers: first {first} is after last {last}")
            first = last = None
    kinds: dict[dt.date, tuple[str, str]] = {}
    for key in ("holidays", "holidays_add", "workdays", "workdays_add"):
        items = doc.get(key)
        if not isinstance(items, list):
            continue
        kind = key.split("_")[0]
        for i, raw in enumerate(items):
            day = _as_date(raw)
            if day is None:
                continue
            path = f"{key}[{i}]"
            if first is not None and last is not None and not first <= day <= last:
                problems.append(f"{path}: {day} is outside calendar_covers ({first}..{last})")
            prior = kinds.get(day)
            if prior is not None and prior[0] != kind:
                problems.append(f"{path}: {day} is both a holiday and an adjusted working day "
                                f"(see {prior[1]})")
            kinds.setdefault(day, (kind, path))


def _check_names(doc: dict[str, Any], problems: list[str]) -> None:
    cities = doc.get("cities")
    sources = doc.get("city_sources")
    if isinstance(cities, dict) and isinstance(sources, dict):
        for source, city in sources.items():
            if isinstance(city, str) and city not in cities:
                problems.append(f"city_sources.{source}: unknown city {city} (not in cities)")
    services = doc.get("services")
    if isinstance(services, dict):
        missing = [s for s in SERVICE_TYPES if s not in services]
        if missing:
            problems.append(f"services: no name for {', '.join(missing)}")
    sms = doc.get("sms")
    if isinstance(sms, dict):
        for i, template in _str_items(sms.get("city")):
            try:
                template.format(city="GZ")
            except (KeyError, IndexError, ValueError):
                problems.append(f"sms.city[{i}]: only the placeholder {{city}} may be used")
                continue
            if "{city}" not in template:
                problems.append(f"sms.city[{i}]: must contain {{city}}")
