"""The rulebook's runtime values: `Rulebook`, its `SeriousRow` and `RouteRow` tables.

These are what the hot path reads: frozen dataclasses with times in seconds, and the
lookups over them (`cause_class`, `serious_row`, `threshold_for`, `level_row`,
`is_green`, `sms_recipients`), the office-hours judge of TM-4 and `calendar_notice`.
Pure: no YAML, no pydantic, no file I/O; a test may build a `Rulebook` by hand, and
`shared.rulebook.load` builds one from a validated document.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


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
