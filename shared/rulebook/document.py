"""The rulebook document: its vocabulary and its pydantic schema, and `RulebookError`.

`RulebookDoc` is the YAML file as validated at start-up (minutes, lists, tables, the
calendar), extra keys forbidden; the `*Doc` models are its sections. The vocabulary
(`ServiceType`, `Layer`, `Target` ...) is defined once here as Literal types, and the
tuples derived from them (`SERVICE_TYPES`, `LAYERS`, `TARGETS`, `WEEKDAYS`) serve the
checks and the builder. Nothing here reads a file or builds the runtime `Rulebook`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

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
# refusal


class RulebookError(Exception):
    """The rulebook is refused; `problems` lists every reason, each naming its path."""

    def __init__(self, origin: str, problems: list[str]):
        self.origin = origin
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"rulebook {origin} refused ({len(self.problems)} problem(s)):\n{lines}")
