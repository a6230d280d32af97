"""The rulebook: every threshold, list and table of RULES.md, loaded from YAML.

`load_rulebook()` reads the built-in Guangdong V2.2 rulebook (or an operator's file),
validates it completely with a pydantic schema, and returns a `Rulebook`: a plain
frozen dataclass with times in seconds, used in the hot path. A bad rulebook raises
`RulebookError` listing every problem, each named by its path in the document.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from shared.limits import MAX_DEPTH, FileTooLarge, read_bounded, too_deep
from shared.problems import format_pydantic_errors

__all__ = [
    "BUILTIN_NAME",
    "LAYERS",
    "MAX_RULEBOOK_BYTES",
    "TARGETS",
    "RouteRow",
    "Rulebook",
    "RulebookError",
    "SeriousRow",
    "builtin_path",
    "calendar_notice",
    "load_rulebook",
    "parse_rulebook",
]

BUILTIN_NAME = "guangdong-v2.2.yaml"
#: A rulebook file larger than this is refused (the built-in one is about 30 KiB).
MAX_RULEBOOK_BYTES = 4 << 20

# ---------------------------------------------------------------------------------------
# vocabulary

ServiceType = Literal["internet", "data", "voice", "gprs_apn", "sms", "circuit_lease"]
Layer = Literal["core", "data", "vas", "transmission", "access", "cpe"]
LayerWord = Literal["core", "data", "vas", "transmission", "access", "cpe", "core_network", "customer_side"]
Level = Literal["provincial", "city"]
Grade = Literal["diamond", "gold", "silver", "bronze", "standard"]
Span = Literal["local", "cross_city", "cross_province"]
CauseSide = Literal["core", "customer", "unknown"]
Channel = Literal["10086-8", "400", "direct", "account_manager"]
Target = Literal[
    "prov.team", "city.team", "prov.monitoring", "city.monitoring", "prov.netservice",
    "city.netservice", "prov.specialist.transmission", "city.specialist.transmission",
]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

SERVICE_TYPES: tuple[str, ...] = get_args(ServiceType)
LAYERS: tuple[str, ...] = get_args(Layer)
TARGETS: tuple[str, ...] = get_args(Target)
WEEKDAYS: tuple[str, ...] = get_args(Weekday)
LAYER_WORDS: dict[str, frozenset[str]] = {
    "core_network": frozenset({"core", "data", "vas", "transmission"}),
    "customer_side": frozenset({"access", "cpe"}),
}

# ---------------------------------------------------------------------------------------
# the document schema (pydantic, start-up only)

Minutes = Annotated[StrictInt, Field(gt=0)]
Count = Annotated[StrictInt, Field(gt=0)]
Name = Annotated[StrictStr, Field(min_length=1)]
Cause = Annotated[StrictStr, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
RowId = Annotated[StrictStr, Field(pattern=r"^[A-Z]+-[0-9A-Za-z]+$")]
HHMM = Annotated[StrictStr, Field(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CauseClassesDoc(_Model):
    outage: list[Cause]
    degradation: list[Cause]


class LongWhenDoc(_Model):
    level: Level | None = None
    not_grade: Grade | None = None
    span: Span | None = None


class SeriousRowDoc(_Model):
    id: RowId
    service_type: ServiceType | None = None
    root_layers: list[LayerWord] | None = None
    causes: list[Cause] | None = None
    exclude_causes: list[Cause] = []
    threshold_min: Minutes
    long_threshold_min: Minutes | None = None
    long_when: LongWhenDoc | None = None


class ComplaintsDoc(_Model):
    sf6a_threshold_min: Minutes
    sf6b_customers: Count
    sf6b_window_min: Minutes
    sf6b_threshold_min: Minutes
    green_channels: list[Channel]
    green_direct_grades: list[Grade]


class FlappingDoc(_Model):
    max_duration_min: Minutes
    count: Count
    window_min: Minutes
    quiet_min: Minutes


class TimersDoc(_Model):
    tm2_min: Minutes
    tm3_deadline_min: Minutes
    tm4_office_min: Minutes
    tm4_outside_min: Minutes
    tm5_min: Minutes
    tm6_min: Minutes
    tm7_min: Minutes
    tm8_min: Minutes
    tm9_min: Minutes


class RouteRowDoc(_Model):
    id: RowId
    grade: Grade | None = None
    level: Level | None = None
    cause_side: CauseSide | None = None
    to: Annotated[list[Target], Field(min_length=1)]


class SmsDoc(_Model):
    province: list[Name]
    city: list[Name]


class WindowDoc(_Model):
    start: HHMM
    end: HHMM


class OfficeHoursDoc(_Model):
    mon: WindowDoc | None = None
    tue: WindowDoc | None = None
    wed: WindowDoc | None = None
    thu: WindowDoc | None = None
    fri: WindowDoc | None = None
    sat: WindowDoc | None = None
    sun: WindowDoc | None = None


class CoversDoc(_Model):
    first: dt.date
    last: dt.date


class RulebookDoc(_Model):
    extends: Literal["builtin"] | None = None
    format: Literal[1]
    name: Name
    timezone: Name
    cause_classes: CauseClassesDoc
    serious_rows: list[SeriousRowDoc]
    complaints: ComplaintsDoc
    flapping: FlappingDoc
    incident_window_min: Minutes
    timers: TimersDoc
    city_sources: dict[Name, Name] = {}
    level_rows: list[RouteRowDoc]
    sms: SmsDoc
    cities: dict[Name, Name]
    services: dict[ServiceType, Name]
    office_hours: OfficeHoursDoc
    adjusted_workday_hours: WindowDoc
    calendar_covers: CoversDoc
    # how long before calendar_covers.last calendar_notice() starts warning (TM-4)
    calendar_warn_days: Annotated[StrictInt, Field(ge=0, le=3660)] = 60
    holidays: list[dt.date]
    workdays: list[dt.date]
    holidays_add: list[dt.date] = []
    workdays_add: list[dt.date] = []
    # days off fixed by law in years past calendar_covers whose notice is not out yet (TM-4)
    statutory_days: list[dt.date] = []


# ---------------------------------------------------------------------------------------
# the hot-path objects


class RulebookError(Exception):
    """The rulebook is refused; `problems` lists every reason, each naming its path."""

    def __init__(self, origin: str, problems: list[str]):
        self.origin = origin
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"rulebook {origin} refused ({len(self.problems)} problem(s)):\n{lines}")


@dataclass(frozen=True, slots=True)
class SeriousRow:
    """One row of the serious-fault table (SF-1a … SF-5) for circuit faults."""

    id: str
    service_type: str | None
    root_layers: frozenset[str] | None
    causes: frozenset[str] | None
    exclude_causes: frozenset[str]
    threshold_s: int
    long_threshold_s: int | None = None
    long_when_level: str | None = None
    long_when_not_grade: str | None = None
    long_when_span: str | None = None

    def applies(self, service_type: str, root_layer: str | None, cause: str | None) -> bool:
        """Whether the row applies to a circuit fault (root_layer/cause None: no root). A
        fault whose root layer is not known matches only a row that names no root layers."""
        if self.service_type is not None and service_type != self.service_type:
            return False
        if self.root_layers is not None and root_layer not in self.root_layers:
            return False
        if self.causes is not None and cause not in self.causes:
            return False
        return cause not in self.exclude_causes

    def long_applies(self, level: str, grade: str, span: str) -> bool:
        """Whether the row's long threshold holds for this customer and circuit (SF-5)."""
        return (self.long_threshold_s is not None
                and (self.long_when_level is None or level == self.long_when_level)
                and (self.long_when_not_grade is None or grade != self.long_when_not_grade)
                and (self.long_when_span is None or span == self.long_when_span))

    def threshold_for(self, level: str, grade: str, span: str) -> int:
        """The threshold in seconds for a customer/circuit (SF-5's 8-hour case)."""
        if self.long_applies(level, grade, span):
            return self.long_threshold_s
        return self.threshold_s


@dataclass(frozen=True, slots=True)
class RouteRow:
    """One level row of RULES.md §4 step 3; None matches anything."""

    id: str
    grade: str | None
    level: str | None
    cause_side: str | None
    to: tuple[str, ...]

    def matches(self, grade: str | None, level: str | None, cause_side: str) -> bool:
        return ((self.grade is None or grade == self.grade)
                and (self.level is None or level == self.level)
                and (self.cause_side is None or cause_side == self.cause_side))


@dataclass(frozen=True, slots=True)
class Rulebook:
    name: str
    timezone: str
    origin: str
    outage_causes: frozenset[str]
    degradation_causes: frozenset[str]
    serious_rows: tuple[SeriousRow, ...]
    complaint_threshold_s: int
    sf6b_customers: int
    sf6b_window_s: int
    sf6b_threshold_s: int
    flap_max_s: int
    flap_count: int
    flap_window_s: int
    flap_quiet_s: int
    incident_window_s: int
    tm2_s: int
    tm3_deadline_s: int
    tm4_office_s: int
    tm4_outside_s: int
    tm5_s: int
    tm6_s: int
    tm7_s: int
    tm8_s: int
    tm9_s: int
    green_channels: frozenset[str]
    green_direct_grades: frozenset[str]
    city_sources: dict[str, str]
    level_rows: tuple[RouteRow, ...]
    sms_province: tuple[str, ...]
    sms_city: tuple[str, ...]
    city_names: dict[str, str]
    service_names: dict[str, str]
    office_hours: dict[int, tuple[int, int]]
    adjusted_workday_hours: tuple[int, int]
    holidays: frozenset[dt.date]
    workdays: frozenset[dt.date]
    calendar_first: dt.date
    calendar_last: dt.date
    calendar_warn_days: int = 60
    statutory_days: frozenset[dt.date] = frozenset()
    tz: dt.tzinfo = field(default=dt.timezone(dt.timedelta(hours=8)), repr=False, compare=False)
    _warned: set[dt.date] = field(default_factory=set, repr=False, compare=False)

    # -- classification -------------------------------------------------------------

    def cause_class(self, cause: str | None) -> str:
        """AL-2: "outage", "degradation" or "other"."""
        if cause in self.outage_causes:
            return "outage"
        if cause in self.degradation_causes:
            return "degradation"
        return "other"

    def serious_row(self, service_type: str, root_layer: str | None, cause: str | None) -> SeriousRow | None:
        """The first SF row that applies to a circuit fault, or None."""
        for row in self.serious_rows:
            if row.applies(service_type, root_layer, cause):
                return row
        return None

    def level_row(self, grade: str | None, level: str | None, cause_side: str) -> RouteRow | None:
        """The first level row (§4 step 3) that matches, or None."""
        for row in self.level_rows:
            if row.matches(grade, level, cause_side):
                return row
        return None

    def is_green(self, channel: str, grade: str | None) -> bool:
        """CP-2: a green-channel complaint."""
        return channel in self.green_channels or (channel == "direct" and grade in self.green_direct_grades)

    def sms_recipients(self, cities: Iterable[str]) -> tuple[str, ...]:
        """NT-1's list: the provincial recipients, then each city's, cities in the given order."""
        out = list(self.sms_province)
        for city in dict.fromkeys(cities):
            out.extend(t.format(city=city) for t in self.sms_city)
        return tuple(out)

    # -- time -----------------------------------------------------------------------

    @property
    def calendar_ends(self) -> dt.date:
        """The last day the holiday calendar covers (`calendar_covers.last`)."""
        return self.calendar_last

    def local_datetime(self, ts: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(ts, self.tz)

    def is_office_hours(self, ts: float, warn: Callable[[str], None] | None = None) -> bool:
        """TM-4's judge: whether the epoch time `ts` lies in office hours. Never raises.

        A statutory holiday is outside office hours; an adjusted working day (调休) on a
        weekend keeps `adjusted_workday_hours`; any other day follows its weekday. A date
        the calendar does not cover follows its weekday, and `warn` is called once per date;
        only a day the law itself fixes (`statutory_days`) is a holiday there too, since
        the in-lieu days of that year come with the State Council's notice alone.
        """
        try:
            local = dt.datetime.fromtimestamp(ts, self.tz)
        except (OverflowError, OSError, ValueError, TypeError):
            _safe_warn(warn, f"office hours: cannot judge time {ts!r}; treated as outside office hours")
            return False
        day = local.date()
        weekday = day.weekday()
        window = self.office_hours.get(weekday)
        if day < self.calendar_first or day > self.calendar_last:
            if day not in self._warned:
                if len(self._warned) > 4096:
                    self._warned.clear()
                self._warned.add(day)
                covers = f"{self.calendar_first.isoformat()}..{self.calendar_last.isoformat()}"
                _safe_warn(warn, f"office hours: {day.isoformat()} is outside the holiday calendar of "
                                 f"rulebook {self.name} ({covers}); using the weekday rule and the "
                                 "statutory days fixed by law")
            if day in self.statutory_days:
                return False
        elif day in self.holidays:
            return False
        elif day in self.workdays and weekday >= 5:
            window = self.adjusted_workday_hours
        if window is None:
            return False
        second = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        return window[0] * 60 <= second < window[1] * 60


def calendar_notice(rulebook: Rulebook, now: float) -> str | None:
    """TM-4: a warning when the holiday calendar ends within `calendar_warn_days` of `now`.

    `now` is Unix seconds, judged as a date in the rulebook's time zone. Returns None
    while the calendar has more than `calendar_warn_days` days left, and for a `now`
    that is not a usable time (the caller's clock, not the calendar, is wrong then).
    Pure: no logging, no clock reading.
    """
    try:
        today = dt.datetime.fromtimestamp(now, rulebook.tz).date()
    except (OverflowError, OSError, ValueError, TypeError):
        return None
    ends = rulebook.calendar_ends
    left = (ends - today).days
    if left > rulebook.calendar_warn_days:
        return None
    if left > 0:
        when = f"ends {ends.isoformat()} (in {left} day{'s' if left != 1 else ''})"
    elif left == 0:
        when = f"ends {ends.isoformat()} (today)"
    else:
        when = f"ended {ends.isoformat()} ({-left} day{'s' if left != -1 else ''} ago)"
    return (f"holiday calendar of rulebook {rulebook.name} {when}: add the next year's "
            "holidays_add / workdays_add (and calendar_covers.last) to the rulebook "
            "(TM-4 office hours fall back to the weekday rule after it)")


def _safe_warn(warn: Callable[[str], None] | None, message: str) -> None:
    if warn is None:
        return
    try:
        warn(message)
    except Exception:  # a broken logger must not break the judge
        pass


# ---------------------------------------------------------------------------------------
# loading


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
        return Path(__file__).resolve().parent / "rulebooks" / BUILTIN_NAME


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


# -- checks the schema cannot express; they read the raw document defensively, so they
# -- run (and report) even when other parts of it are malformed.

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
