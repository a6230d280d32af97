"""Reading a rulebook: bounded, safe YAML, `extends: builtin`, validation, building.

`load_rulebook()` reads the built-in Guangdong V2.2 rulebook (or an operator's file) at
most `MAX_RULEBOOK_BYTES` long with `_Loader`, a SafeLoader that keeps dates as strings
and refuses nesting past `MAX_DEPTH`; `parse_rulebook()` merges it over the built-in one
when it says `extends: builtin`, validates it with the pydantic schema
(`shared.rulebook.document`) and the semantic checks (`shared.rulebook.checks`), and
builds the runtime `Rulebook` (`shared.rulebook.model`). A bad rulebook raises
`RulebookError` listing every problem at once.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import ValidationError

from shared.limits import MAX_DEPTH, FileTooLarge, read_bounded, too_deep
from shared.problems import format_pydantic_errors
from shared.rulebook.checks import _minute_of, _semantic_problems
from shared.rulebook.document import LAYER_WORDS, WEEKDAYS, RulebookDoc, RulebookError, WindowDoc
from shared.rulebook.model import RouteRow, Rulebook, SeriousRow

BUILTIN_NAME = "guangdong-v2.2.yaml"
#: A rulebook file larger than this is refused (the built-in one is about 30 KiB).
MAX_RULEBOOK_BYTES = 4 << 20

# ---------------------------------------------------------------------------------------
# reading the YAML


class _TooDeep(yaml.composer.ComposerError):
    """A collection opened deeper than MAX_DEPTH (raised while composing, so with its line)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as strings, so a bad date is a named problem, and
    refuses nesting deeper than MAX_DEPTH: PyYAML composes nodes recursively, so a
    document nested a thousand deep would otherwise end in RecursionError."""

    _depth = 0

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _TooDeep(None, None, f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)

    def compose_sequence_node(self, anchor):  # type: ignore[no-untyped-def]
        try:
            self._enter()
            return super().compose_sequence_node(anchor)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor):  # type: ignore[no-untyped-def]
        try:
            self._enter()
            return super().compose_mapping_node(anchor)
        finally:
            self._depth -= 1


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def builtin_path() -> Path:
    try:
        return Path(str(resources.files("shared").joinpath("rulebooks", BUILTIN_NAME)))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - odd installs
        return Path(__file__).resolve().parent.parent / "rulebooks" / BUILTIN_NAME


def _read_yaml(path: Path, origin: str) -> dict[str, Any]:
    try:
        text = read_bounded(path, MAX_RULEBOOK_BYTES).decode("utf-8")
    except FileTooLarge as e:
        raise RulebookError(origin, [f"{origin}: refused: {e}"]) from None
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise RulebookError(origin, [f"{origin}: cannot read: {reason}"]) from None
    try:
        doc = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: safe
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark is not None else origin
        problem = getattr(e, "problem", None) or str(e)
        verdict = "refused" if isinstance(e, _TooDeep) else "invalid YAML"
        raise RulebookError(origin, [f"{where}: {verdict}: {problem}"]) from None
    except RecursionError:  # belt and braces: _Loader bounds the depth before this can happen
        raise RulebookError(origin, [f"{origin}: refused: nested deeper than {MAX_DEPTH} levels"]) from None
    if not isinstance(doc, dict):
        raise RulebookError(origin, ["(document): must be a mapping of sections"])
    _refuse_deep(doc, origin)
    return doc


def _refuse_deep(doc: Any, origin: str) -> None:
    # aliases can nest a document deeper than its text, even into a cycle (`&a [*a]`)
    if too_deep(doc, MAX_DEPTH):
        raise RulebookError(origin, [f"{origin}: refused: nested deeper than {MAX_DEPTH} levels "
                                     "(or refers to itself)"])


def load_rulebook(path: str | Path | None = None) -> Rulebook:
    """Load and validate a rulebook file; None loads the built-in Guangdong V2.2."""
    if path is None:
        p = builtin_path()
        return parse_rulebook(_read_yaml(p, f"builtin:{BUILTIN_NAME}"), f"builtin:{BUILTIN_NAME}")
    p = Path(path)
    return parse_rulebook(_read_yaml(p, str(p)), str(p))


def parse_rulebook(doc: dict[str, Any], origin: str = "<rulebook>") -> Rulebook:
    """Validate a rulebook document (as loaded from YAML) and build the Rulebook."""
    if not isinstance(doc, dict):
        raise RulebookError(origin, ["(document): must be a mapping of sections"])
    _refuse_deep(doc, origin)  # _merge, pydantic and the checks below recurse
    if doc.get("extends") == "builtin":
        base = _read_yaml(builtin_path(), f"builtin:{BUILTIN_NAME}")
        doc = _merge(base, doc)
    problems: list[str] = []
    model: RulebookDoc | None = None
    try:
        model = RulebookDoc.model_validate(doc)
    except ValidationError as e:
        problems.extend(format_pydantic_errors(e.errors()))
    problems.extend(_semantic_problems(doc))
    tz = None
    if model is not None:
        tz = _timezone(model.timezone)
        if tz is None:
            problems.append(f"timezone: unknown time zone {model.timezone!r}")
    if problems or model is None or tz is None:
        raise RulebookError(origin, list(dict.fromkeys(problems)))
    return _build(model, origin, tz)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """extends: builtin — mappings merge key by key; lists and plain values replace."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _timezone(name: str) -> dt.tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    if name in ("Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "PRC"):  # no tz database here
        return dt.timezone(dt.timedelta(hours=8), name)  # China has had no DST since 1991
    return None


# -- building the hot-path object --------------------------------------------------------

def _minutes(window: WindowDoc) -> tuple[int, int]:
    start, end = _minute_of(window.start), _minute_of(window.end)
    assert start is not None and end is not None
    return start, end


def _layers(words: list[str] | None) -> frozenset[str] | None:
    if words is None:
        return None
    out: set[str] = set()
    for word in words:
        out |= LAYER_WORDS.get(word, frozenset({word}))
    return frozenset(out)


def _build(m: RulebookDoc, origin: str, tz: dt.tzinfo) -> Rulebook:
    rows = tuple(
        SeriousRow(
            id=r.id,
            service_type=r.service_type,
            root_layers=_layers(r.root_layers),
            causes=frozenset(r.causes) if r.causes is not None else None,
            exclude_causes=frozenset(r.exclude_causes),
            threshold_s=r.threshold_min * 60,
            long_threshold_s=r.long_threshold_min * 60 if r.long_threshold_min is not None else None,
            long_when_level=r.long_when.level if r.long_when else None,
            long_when_not_grade=r.long_when.not_grade if r.long_when else None,
            long_when_span=r.long_when.span if r.long_when else None,
        )
        for r in m.serious_rows
    )
    routes = tuple(RouteRow(id=r.id, grade=r.grade, level=r.level, cause_side=r.cause_side, to=tuple(r.to))
                   for r in m.level_rows)
    hours = {WEEKDAYS.index(day): _minutes(w) for day in WEEKDAYS
             if (w := getattr(m.office_hours, day)) is not None}
    c, f, t = m.complaints, m.flapping, m.timers
    return Rulebook(
        name=m.name,
        timezone=m.timezone,
        origin=origin,
        outage_causes=frozenset(m.cause_classes.outage),
        degradation_causes=frozenset(m.cause_classes.degradation),
        serious_rows=rows,
        complaint_threshold_s=c.sf6a_threshold_min * 60,
        sf6b_customers=c.sf6b_customers,
        sf6b_window_s=c.sf6b_window_min * 60,
        sf6b_threshold_s=c.sf6b_threshold_min * 60,
        flap_max_s=f.max_duration_min * 60,
        flap_count=f.count,
        flap_window_s=f.window_min * 60,
        flap_quiet_s=f.quiet_min * 60,
        incident_window_s=m.incident_window_min * 60,
        tm2_s=t.tm2_min * 60,
        tm3_deadline_s=t.tm3_deadline_min * 60,
        tm4_office_s=t.tm4_office_min * 60,
        tm4_outside_s=t.tm4_outside_min * 60,
        tm5_s=t.tm5_min * 60,
        tm6_s=t.tm6_min * 60,
        tm7_s=t.tm7_min * 60,
        tm8_s=t.tm8_min * 60,
        tm9_s=t.tm9_min * 60,
        green_channels=frozenset(c.green_channels),
        green_direct_grades=frozenset(c.green_direct_grades),
        city_sources=dict(m.city_sources),
        level_rows=routes,
        sms_province=tuple(m.sms.province),
        sms_city=tuple(m.sms.city),
        city_names=dict(m.cities),
        service_names=dict(m.services),
        office_hours=hours,
        adjusted_workday_hours=_minutes(m.adjusted_workday_hours),
        holidays=frozenset(m.holidays) | frozenset(m.holidays_add),
        workdays=frozenset(m.workdays) | frozenset(m.workdays_add),
        calendar_first=m.calendar_covers.first,
        calendar_last=m.calendar_covers.last,
        calendar_warn_days=m.calendar_warn_days,
        statutory_days=frozenset(m.statutory_days),
        tz=tz,
    )
