"""The rulebook as data: the built-in Guangdong V2.2, validation, office hours (TM-4)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import importlib.util
from pathlib import Path

import pytest
import yaml

from shared.rulebook import (
    Rulebook,
    RulebookError,
    _Loader,
    builtin_path,
    calendar_notice,
    load_rulebook,
    parse_rulebook,
)

ROOT = Path(__file__).resolve().parents[2]
CST = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def rb() -> Rulebook:
    return load_rulebook()


@pytest.fixture()
def doc() -> dict:
    return yaml.load(builtin_path().read_text(encoding="utf-8"), Loader=_Loader)


def problems_of(doc: dict) -> list[str]:
    with pytest.raises(RulebookError) as exc:
        parse_rulebook(doc, "test")
    return exc.value.problems


def ts(*args: int) -> float:
    return dt.datetime(*args, tzinfo=CST).timestamp()


# -- the built-in rulebook ---------------------------------------------------------------


def test_builtin_loads(rb: Rulebook) -> None:
    assert rb.name == "Guangdong V2.2"
    assert rb.timezone == "Asia/Shanghai"
    assert rb.origin.startswith("builtin:")


def test_AL_2_cause_classes(rb: Rulebook) -> None:
    assert rb.cause_class("LOS") == "outage"
    assert rb.cause_class("GATEWAY_CONN_LOST") == "outage"
    assert rb.cause_class("PACKET_LOSS") == "degradation"
    assert rb.cause_class("FLAPPING") == "degradation"
    assert rb.cause_class("TEMPERATURE") == "other"
    assert rb.cause_class("NO_SUCH_CAUSE") == "other"
    assert len(rb.outage_causes) == 17 and len(rb.degradation_causes) == 5


def test_SF_rows_in_table_order(rb: Rulebook) -> None:
    assert [r.id for r in rb.serious_rows] == ["SF-1a", "SF-1b", "SF-2", "SF-3", "SF-4", "SF-5"]
    assert all(r.threshold_s == 1800 for r in rb.serious_rows)


def test_SF_1_sms_split_by_gateway_cause(rb: Rulebook) -> None:
    assert rb.serious_row("sms", "vas", "LINK_DOWN").id == "SF-1a"
    assert rb.serious_row("sms", "vas", "GATEWAY_CONN_LOST").id == "SF-1b"


def test_SF_2_gprs_apn_root_layers(rb: Rulebook) -> None:
    row = rb.serious_rows[2]
    assert row.root_layers == frozenset({"core", "data", "vas", "transmission", "access"})
    assert rb.serious_row("gprs_apn", "core", "APN_DOWN").id == "SF-2"
    assert rb.serious_row("gprs_apn", "cpe", "APN_DOWN") is None


def test_SF_3_SF_4_any_root(rb: Rulebook) -> None:
    assert rb.serious_row("internet", "cpe", "LOS").id == "SF-3"
    assert rb.serious_row("voice", "core", "TRUNK_DOWN").id == "SF-4"
    assert rb.serious_row("data", "transmission", "LOS") is None  # no row for data lines


def test_SF_5_circuit_lease_thresholds(rb: Rulebook) -> None:
    row = rb.serious_row("circuit_lease", "transmission", "LOS")
    assert row is not None and row.id == "SF-5"
    assert rb.serious_row("circuit_lease", "core", "LOS") is None
    assert row.threshold_for("city", "silver", "cross_city") == 8 * 3600
    assert row.threshold_for("city", "diamond", "cross_city") == 1800
    assert row.threshold_for("provincial", "gold", "cross_city") == 1800
    assert row.threshold_for("city", "silver", "local") == 1800
    assert rb.serious_rows[3].threshold_for("city", "silver", "cross_city") == 1800


def test_SF_6_complaint_numbers(rb: Rulebook) -> None:
    assert rb.complaint_threshold_s == 1800
    assert (rb.sf6b_customers, rb.sf6b_window_s, rb.sf6b_threshold_s) == (3, 1800, 1800)


def test_AL_5_AL_6_numbers(rb: Rulebook) -> None:
    assert (rb.flap_max_s, rb.flap_count, rb.flap_window_s, rb.flap_quiet_s) == (120, 3, 1800, 1800)
    assert rb.incident_window_s == 300


def test_timers(rb: Rulebook) -> None:
    assert (rb.tm2_s, rb.tm3_deadline_s, rb.tm4_office_s, rb.tm4_outside_s, rb.tm5_s) == (
        900, 900, 600, 1800, 1800)
    assert (rb.tm6_s, rb.tm7_s, rb.tm8_s, rb.tm9_s) == (7200, 172800, 28800, 900)


def test_CP_2_green_channel(rb: Rulebook) -> None:
    assert rb.green_channels == frozenset({"400", "account_manager"})
    assert rb.is_green("400", "standard")
    assert rb.is_green("direct", "diamond")
    assert not rb.is_green("direct", "gold")
    assert not rb.is_green("10086-8", "diamond")


def test_RT_level_rows(rb: Rulebook) -> None:
    assert [r.id for r in rb.level_rows] == ["RT-5", "RT-2", "RT-3", "RT-4", "RT-6", "RT-7", "RT-8"]
    assert rb.level_row("diamond", "city", "core").id == "RT-5"
    assert rb.level_row("diamond", "city", "core").to == ("prov.team", "city.monitoring")
    assert rb.level_row("gold", "provincial", "core").to == ("prov.team",)
    assert rb.level_row("gold", "provincial", "unknown").to == ("prov.specialist.transmission",
                                                                "city.monitoring")
    assert rb.level_row("standard", "city", "customer").id == "RT-7"
    assert rb.level_row("standard", "city", "unknown").to == ("city.specialist.transmission",
                                                              "city.netservice")


def test_NT_1_recipients(rb: Rulebook) -> None:
    assert rb.sms_province == ("prov.gov_enterprise", "prov.network_dept", "prov.nmc", "prov.netservice")
    assert rb.sms_recipients(["GZ", "SZ", "GZ"]) == (
        "prov.gov_enterprise", "prov.network_dept", "prov.nmc", "prov.netservice",
        "city.GZ.monitoring", "city.GZ.gov_enterprise", "city.GZ.netservice", "city.GZ.maintenance",
        "city.SZ.monitoring", "city.SZ.gov_enterprise", "city.SZ.netservice", "city.SZ.maintenance",
    )


def test_names(rb: Rulebook) -> None:
    assert len(rb.city_names) == 21
    assert rb.city_names["GZ"] == "广州" and rb.city_names["YF"] == "云浮"
    assert rb.service_names["internet"] == "互联网专线"
    assert set(rb.service_names) == {"internet", "data", "voice", "gprs_apn", "sms", "circuit_lease"}
    assert rb.city_sources == {}


def test_calendar_range(rb: Rulebook) -> None:
    assert rb.calendar_first == dt.date(2004, 1, 1)
    assert rb.calendar_last >= dt.date(2026, 12, 31)
    assert dt.date(2026, 10, 1) in rb.holidays
    assert dt.date(2026, 10, 10) in rb.workdays


def test_calendar_matches_chinese_calendar_package(rb: Rulebook) -> None:
    constants = pytest.importorskip("chinese_calendar.constants")

    def covered(days):
        return {d for d in days if rb.calendar_first <= d <= rb.calendar_last}

    assert covered(constants.holidays) == set(rb.holidays)
    assert covered(constants.workdays) == set(rb.workdays)


def test_gen_calendar_rewrites_only_its_section() -> None:
    spec = importlib.util.spec_from_file_location("gen_calendar", ROOT / "tools" / "gen_calendar.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = "a: 1\n# BEGIN calendar (old)\nholidays: []\n# END calendar\nb: 2\n"
    section = mod.render_section(dt.date(2030, 1, 1), dt.date(2030, 12, 31),
                                 [dt.date(2030, 1, 1)], [], "test")
    new = mod.replace_section(text, section)
    assert new.startswith("a: 1\n# BEGIN calendar") and new.endswith("# END calendar\nb: 2\n")
    loaded = yaml.safe_load(new)
    assert loaded["holidays"] == [dt.date(2030, 1, 1)] and loaded["workdays"] == []
    assert loaded["calendar_covers"] == {"first": dt.date(2030, 1, 1), "last": dt.date(2030, 12, 31)}


def test_gen_calendar_warns_when_the_package_lacks_next_year() -> None:
    spec = importlib.util.spec_from_file_location("gen_calendar", ROOT / "tools" / "gen_calendar.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    warning = mod.stale_warning(dt.date(2026, 12, 31), "1.11.0", dt.date(2026, 12, 6))
    assert "chinese-calendar 1.11.0 ends on 2026-12-31" in warning
    assert "国务院办公厅关于2027年部分节假日安排的通知" in warning and "holidays_add" in warning
    assert mod.stale_warning(dt.date(2027, 12, 31), "1.12.0", dt.date(2026, 12, 6)) is None


# -- TM-4: office hours ---------------------------------------------------------------------


def test_TM_4_office_hours_monday_morning(rb: Rulebook) -> None:
    assert rb.is_office_hours(ts(2026, 11, 23, 9, 0))  # Monday


def test_TM_4_office_hours_boundaries(rb: Rulebook) -> None:
    assert not rb.is_office_hours(ts(2026, 11, 23, 8, 29, 59))
    assert rb.is_office_hours(ts(2026, 11, 23, 8, 30))
    assert rb.is_office_hours(ts(2026, 11, 23, 17, 29, 59))
    assert not rb.is_office_hours(ts(2026, 11, 23, 17, 30))


def test_TM_4_office_hours_friday_afternoon(rb: Rulebook) -> None:
    assert rb.is_office_hours(ts(2026, 11, 27, 16, 59))  # Friday
    assert not rb.is_office_hours(ts(2026, 11, 27, 17, 10))


def test_TM_4_office_hours_thursday_afternoon(rb: Rulebook) -> None:
    assert rb.is_office_hours(ts(2026, 11, 26, 17, 20))  # Thursday


def test_TM_4_office_hours_weekend(rb: Rulebook) -> None:
    assert not rb.is_office_hours(ts(2026, 11, 28, 10, 0))  # Saturday


def test_TM_4_statutory_holiday_outside_office_hours(rb: Rulebook) -> None:
    assert not rb.is_office_hours(ts(2026, 10, 1, 10, 0))  # National Day, a Thursday


def test_TM_4_adjusted_working_day_on_weekend(rb: Rulebook) -> None:
    day = dt.date(2026, 10, 10)  # Saturday, worked in lieu (调休)
    assert day.weekday() == 5 and day in rb.workdays
    assert rb.is_office_hours(ts(2026, 10, 10, 10, 0))
    assert rb.is_office_hours(ts(2026, 10, 10, 17, 20))  # Mon-Thu hours
    assert not rb.is_office_hours(ts(2026, 10, 10, 18, 0))


def test_TM_4_uses_shanghai_time_not_utc(rb: Rulebook) -> None:
    # 01:00 UTC on a Monday is 09:00 in Shanghai
    assert rb.is_office_hours(dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC).timestamp())


def test_TM_4_date_outside_calendar_warns_and_uses_weekday_rule() -> None:
    rb = load_rulebook()
    warnings: list[str] = []
    assert rb.is_office_hours(ts(2031, 10, 1, 10, 0), warnings.append)  # a Wednesday
    assert not rb.is_office_hours(ts(2031, 10, 4, 10, 0), warnings.append)  # a Saturday
    assert len(warnings) == 2
    assert "2031-10-01" in warnings[0] and "2031-10-04" in warnings[1]
    rb.is_office_hours(ts(2031, 10, 1, 11, 0), warnings.append)
    assert len(warnings) == 2  # once per date


def test_TM_4_never_raises(rb: Rulebook) -> None:
    warnings: list[str] = []
    assert rb.is_office_hours(float("nan"), warnings.append) is False
    assert rb.is_office_hours(1e20, warnings.append) is False
    assert warnings

    def broken(_: str) -> None:
        raise RuntimeError("logger down")

    assert rb.is_office_hours(ts(2032, 3, 1, 10, 0), broken)


# -- TM-4: the calendar's end is announced before it comes --------------------------------


def _ending(rb: Rulebook, last: dt.date, warn_days: int = 60) -> Rulebook:
    return dataclasses.replace(rb, calendar_last=last, calendar_warn_days=warn_days)


def test_TM_4_calendar_ends_is_calendar_covers_last(rb: Rulebook, doc: dict) -> None:
    assert rb.calendar_ends == rb.calendar_last
    assert rb.calendar_ends.isoformat() == str(doc["calendar_covers"]["last"])  # _Loader keeps strings
    assert rb.calendar_ends.month == 12 and rb.calendar_ends.day == 31


def test_TM_4_calendar_notice_within_warn_days(rb: Rulebook) -> None:
    book = _ending(rb, dt.date(2027, 12, 31))
    notice = calendar_notice(book, ts(2027, 12, 6, 12, 0))
    assert notice is not None
    assert "holiday calendar" in notice and "ends 2027-12-31 (in 25 days)" in notice
    assert "holidays_add" in notice and "workdays_add" in notice and "weekday rule" in notice


def test_TM_4_calendar_notice_none_while_far_from_the_end(rb: Rulebook) -> None:
    book = _ending(rb, dt.date(2027, 12, 31))
    assert calendar_notice(book, ts(2027, 1, 1, 0, 0)) is None
    assert calendar_notice(book, ts(2027, 10, 31, 23, 59)) is None  # 61 days left
    assert calendar_notice(book, ts(2027, 11, 1, 0, 0)) is not None  # 60 days left


def test_TM_4_calendar_notice_on_the_last_day_and_after(rb: Rulebook) -> None:
    book = _ending(rb, dt.date(2027, 12, 31))
    assert "ends 2027-12-31 (today)" in calendar_notice(book, ts(2027, 12, 31, 23, 59))
    assert "ended 2027-12-31 (1 day ago)" in calendar_notice(book, ts(2028, 1, 1, 0, 0))
    assert "ended 2027-12-31 (366 days ago)" in calendar_notice(book, ts(2028, 12, 31, 9, 0))


def test_TM_4_calendar_notice_judges_the_date_in_the_rulebook_time_zone(rb: Rulebook) -> None:
    book = _ending(rb, dt.date(2027, 12, 31), warn_days=0)
    # 16:30 UTC on 30 December is already 31 December in Shanghai
    now = dt.datetime(2027, 12, 30, 16, 30, tzinfo=dt.UTC).timestamp()
    assert "(today)" in calendar_notice(book, now)
    assert calendar_notice(book, now - 3600) is None  # 30 December 23:30 in Shanghai


def test_TM_4_calendar_notice_ignores_an_unusable_clock(rb: Rulebook) -> None:
    book = _ending(rb, dt.date(2027, 12, 31))
    for now in (float("nan"), float("inf"), -float("inf"), 1e20, -1e20):
        assert calendar_notice(book, now) is None


def test_TM_4_calendar_warn_days_from_the_rulebook(doc: dict) -> None:
    doc["calendar_warn_days"] = 10
    book = parse_rulebook(doc, "test")
    assert book.calendar_warn_days == 10
    last = book.calendar_ends
    assert calendar_notice(book, ts(last.year, last.month, last.day - 11, 12, 0)) is None
    assert calendar_notice(book, ts(last.year, last.month, last.day - 10, 12, 0)) is not None


def test_TM_4_calendar_warn_days_default_and_validation(doc: dict) -> None:
    del doc["calendar_warn_days"]
    assert parse_rulebook(copy.deepcopy(doc), "test").calendar_warn_days == 60
    for bad in (-1, "60", 1.5, 100000):
        d = copy.deepcopy(doc)
        d["calendar_warn_days"] = bad
        assert any(p.startswith("calendar_warn_days") for p in problems_of(d)), bad


# -- extends: builtin --------------------------------------------------------------------------


def test_extends_builtin_merges_and_adds_holidays(tmp_path: Path) -> None:
    path = tmp_path / "op.yaml"
    path.write_text(
        "extends: builtin\n"
        "name: Guangdong V2.2 + 2027\n"
        "timers: {tm8_min: 600}\n"
        "calendar_covers: {first: 2004-01-01, last: 2027-12-31}\n"
        "holidays_add: [2027-01-01]\n"
        "workdays_add: [2027-01-02]\n"
        "city_sources: {gz-otn-nms-2: GZ}\n",
        encoding="utf-8",
    )
    rb = load_rulebook(path)
    assert rb.name == "Guangdong V2.2 + 2027"
    assert rb.tm8_s == 36000 and rb.tm2_s == 900
    assert dt.date(2027, 1, 1) in rb.holidays and dt.date(2026, 10, 1) in rb.holidays
    assert dt.date(2027, 1, 2) in rb.workdays
    assert rb.city_sources == {"gz-otn-nms-2": "GZ"}
    assert not rb.is_office_hours(ts(2027, 1, 1, 10, 0))
    assert rb.is_office_hours(ts(2027, 1, 2, 10, 0))  # a Saturday worked in lieu


def test_TM_4_statutory_days_after_the_calendar_are_outside_office_hours() -> None:
    """2027 has no State Council notice in any package yet: the days the law fixes are
    holidays (Spring Festival eve, a Friday), the rest follows the weekday rule (the
    Tuesday after, whose in-lieu status only the notice can tell), with the warning."""
    rb = load_rulebook()
    warnings: list[str] = []
    assert rb.calendar_ends == dt.date(2026, 12, 31)
    assert not rb.is_office_hours(ts(2027, 2, 5, 10, 0), warnings.append)      # 除夕, a Friday
    assert not rb.is_office_hours(ts(2027, 10, 1, 10, 0), warnings.append)     # 国庆, a Friday
    assert rb.is_office_hours(ts(2027, 2, 9, 10, 0), warnings.append)          # a Tuesday
    assert len(warnings) == 3 and "statutory days fixed by law" in warnings[0]


def test_TM_4_an_operators_calendar_governs_the_statutory_days_it_covers(tmp_path: Path) -> None:
    path = tmp_path / "op.yaml"
    path.write_text("extends: builtin\ncalendar_covers: {first: 2004-01-01, last: 2027-12-31}\n"
                    "holidays_add: [2027-02-09]\n", encoding="utf-8")
    rb = load_rulebook(path)
    assert not rb.is_office_hours(ts(2027, 2, 9, 10, 0))
    assert rb.is_office_hours(ts(2027, 2, 5, 10, 0))  # covered now: only the lists count


def test_statutory_days_match_the_holidays_package(rb: Rulebook) -> None:
    spec = importlib.util.spec_from_file_location("gen_calendar", ROOT / "tools" / "gen_calendar.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    pytest.importorskip("holidays")
    days, _source = gen.statutory_from_law(rb.calendar_last)
    assert days and set(days) == set(rb.statutory_days)
    assert dt.date(2027, 2, 5) in days and dt.date(2027, 2, 9) not in days   # no 'observed' days


def test_own_calendar_replaces_builtin(doc: dict) -> None:
    doc["holidays"] = ["2026-11-23"]
    doc["workdays"] = []
    rb = parse_rulebook(doc, "test")
    assert rb.holidays == frozenset({dt.date(2026, 11, 23)})
    assert not rb.is_office_hours(ts(2026, 11, 23, 10, 0))
    assert not rb.is_office_hours(ts(2026, 10, 10, 10, 0))  # no longer a working Saturday


def test_extends_only_builtin(doc: dict) -> None:
    doc["extends"] = "hubei"
    assert any(p.startswith("extends: 'hubei' is not one of builtin") for p in problems_of(doc))


# -- validation: every bad case a named problem, all at once -----------------------------------


def test_threshold_not_positive(doc: dict) -> None:
    doc["serious_rows"][2]["threshold_min"] = 0
    assert problems_of(doc) == ["serious_rows[2].threshold_min: must be > 0 (got 0)"]


def test_timer_not_positive(doc: dict) -> None:
    doc["timers"]["tm9_min"] = -5
    assert problems_of(doc) == ["timers.tm9_min: must be > 0 (got -5)"]


def test_unknown_key(doc: dict) -> None:
    doc["serious_rows"][0]["treshold_min"] = 30
    doc["colour"] = "red"
    problems = problems_of(doc)
    assert "serious_rows[0].treshold_min: unknown key" in problems
    assert "colour: unknown key" in problems


def test_bad_type(doc: dict) -> None:
    doc["flapping"]["count"] = "three"
    doc["incident_window_min"] = True
    problems = problems_of(doc)
    assert any(p.startswith("flapping.count: must be an integer") for p in problems)
    assert any(p.startswith("incident_window_min: must be an integer") for p in problems)


def test_missing_section(doc: dict) -> None:
    del doc["timers"]
    assert problems_of(doc) == ["timers: required field is missing"]


def test_unknown_service_type_layer_level_grade_cause_side_target(doc: dict) -> None:
    doc["serious_rows"][3]["service_type"] = "ftth"
    doc["serious_rows"][2]["root_layers"] = ["core_network", "radio"]
    doc["level_rows"][1]["level"] = "prov"
    doc["level_rows"][0]["grade"] = "platinum"
    doc["level_rows"][2]["cause_side"] = "network"
    doc["level_rows"][3]["to"] = ["prov.specialist.transmission", "prov.boss"]
    problems = problems_of(doc)
    paths = [p.split(":")[0] for p in problems]
    assert paths == [
        "serious_rows[2].root_layers[1]",
        "serious_rows[3].service_type",
        "level_rows[0].grade",
        "level_rows[1].level",
        "level_rows[2].cause_side",
        "level_rows[3].to[1]",
    ]
    assert problems[1].startswith("serious_rows[3].service_type: 'ftth' is not one of internet, data")


def test_duplicate_row_ids(doc: dict) -> None:
    doc["serious_rows"][4]["id"] = "SF-3"
    doc["level_rows"][6]["id"] = "RT-2"
    problems = problems_of(doc)
    assert "serious_rows[4].id: duplicate row id SF-3 (first at serious_rows[3])" in problems
    assert "level_rows[6].id: duplicate row id RT-2 (first at level_rows[1])" in problems


def test_AL_2_cause_in_both_classes(doc: dict) -> None:
    doc["cause_classes"]["degradation"].append("LOS")
    problems = problems_of(doc)
    assert problems == ["cause_classes.degradation[5]: LOS is in both the outage and the degradation class "
                        "(see cause_classes.outage[0])"]


def test_row_cause_must_be_known(doc: dict) -> None:
    doc["serious_rows"][1]["causes"] = ["GATEWAY_CONN_LOSS"]
    assert problems_of(doc) == ["serious_rows[1].causes[0]: unknown cause GATEWAY_CONN_LOSS "
                                "(not in cause_classes)"]


def test_bad_date(doc: dict) -> None:
    doc["holidays"][3] = "2026-02-30"
    doc["calendar_covers"]["last"] = "end of 2026"
    problems = problems_of(doc)
    assert any(p.startswith("holidays[3]: must be a date") for p in problems)
    assert any(p.startswith("calendar_covers.last: must be a date") for p in problems)


def test_bad_date_in_yaml_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "op.yaml"
    path.write_text("extends: builtin\nholidays_add: [2026-02-30]\n", encoding="utf-8")
    with pytest.raises(RulebookError) as exc:
        load_rulebook(path)
    assert [p.split(":")[0] for p in exc.value.problems] == ["holidays_add[0]"]


def test_holiday_outside_calendar_covers(doc: dict) -> None:
    doc["holidays_add"] = ["2027-01-01"]
    assert problems_of(doc) == ["holidays_add[0]: 2027-01-01 is outside calendar_covers "
                                "(2004-01-01..2026-12-31)"]


def test_day_both_holiday_and_workday(doc: dict) -> None:
    doc["workdays_add"] = ["2026-10-01"]
    problems = problems_of(doc)
    assert len(problems) == 1 and problems[0].startswith("workdays_add[0]: 2026-10-01 is both a holiday")


def test_office_hours_start_not_before_end(doc: dict) -> None:
    doc["office_hours"]["fri"] = {"start": "17:00", "end": "08:30"}
    doc["adjusted_workday_hours"] = {"start": "09:00", "end": "09:00"}
    assert problems_of(doc) == [
        "office_hours.fri: start 17:00 must be before end 08:30",
        "adjusted_workday_hours: start 09:00 must be before end 09:00",
    ]


def test_office_hours_unquoted_time_is_refused(doc: dict) -> None:
    doc["office_hours"]["mon"] = {"start": "08:30", "end": 1050}  # YAML read 17:30 as base 60
    problems = problems_of(doc)
    assert problems[0].startswith("office_hours.mon.end: must be a string")


def test_unknown_city_source_and_missing_service_name(doc: dict) -> None:
    doc["city_sources"] = {"gd-otn-nms-9": "XX"}
    del doc["services"]["sms"]
    problems = problems_of(doc)
    assert "city_sources.gd-otn-nms-9: unknown city XX (not in cities)" in problems
    assert "services: no name for sms" in problems


def test_sms_city_template_needs_city(doc: dict) -> None:
    doc["sms"]["city"] = ["city.monitoring", "city.{town}.x"]
    assert problems_of(doc) == ["sms.city[0]: must contain {city}",
                                "sms.city[1]: only the placeholder {city} may be used"]


def test_several_problems_listed_together(doc: dict) -> None:
    bad = copy.deepcopy(doc)
    bad["serious_rows"][2]["threshold_min"] = 0
    bad["serious_rows"][5]["id"] = "SF-1a"
    bad["cause_classes"]["degradation"].append("FIBER_CUT")
    bad["office_hours"]["mon"] = {"start": "18:00", "end": "08:30"}
    bad["holidays"][0] = "not-a-date"
    bad["level_rows"][0]["to"] = ["prov.ceo"]
    with pytest.raises(RulebookError) as exc:
        parse_rulebook(bad, "op.yaml")
    paths = {p.split(":")[0] for p in exc.value.problems}
    assert {"serious_rows[2].threshold_min", "serious_rows[5].id", "cause_classes.degradation[5]",
            "office_hours.mon", "holidays[0]", "level_rows[0].to[0]"} <= paths
    assert len(exc.value.problems) == 6
    assert "op.yaml" in str(exc.value) and "6 problem(s)" in str(exc.value)


def test_unreadable_and_bad_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(RulebookError) as exc:
        load_rulebook(tmp_path / "missing.yaml")
    assert "cannot read" in exc.value.problems[0]
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(RulebookError) as exc:
        load_rulebook(path)
    assert exc.value.problems[0].startswith(f"{path}:2:")
    path.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(RulebookError) as exc:
        load_rulebook(path)
    assert exc.value.problems == ["(document): must be a mapping of sections"]


def test_rulebook_is_frozen(rb: Rulebook) -> None:
    with pytest.raises(AttributeError):
        rb.tm2_s = 1  # type: ignore[misc]


# -- hostile files: size and nesting are bounded (issue 7, part 5) ----------------------------


def test_rulebook_over_4_mib_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with open(path, "wb") as f:
        f.truncate((4 << 20) + 1)  # sparse: refused from its size, never read
    with pytest.raises(RulebookError) as exc:
        load_rulebook(path)
    assert exc.value.problems == [f"{path}: refused: larger than the limit of 4 MiB"]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_rulebook_from_an_endless_device_is_refused() -> None:
    with pytest.raises(RulebookError) as exc:
        load_rulebook("/dev/zero")
    assert exc.value.problems == ["/dev/zero: refused: larger than the limit of 4 MiB"]


@pytest.mark.parametrize("text", [
    "extends: builtin\nx: " + "[" * 1000 + "]" * 1000 + "\n",                      # flow, JSON-like
    "extends: builtin\n" + "".join("  " * i + "k:\n" for i in range(1000)) + "  " * 1000 + "k: 1\n",
    "extends: builtin\nx: " + "{a: " * 1000 + "1" + "}" * 1000 + "\n",
], ids=["flow-lists", "block-mappings", "flow-mappings"])
def test_rulebook_nested_1000_deep_is_refused_with_its_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulebookError) as exc:
        load_rulebook(path)
    [problem] = exc.value.problems
    assert problem.startswith(f"{path}:") and problem.endswith(": refused: nested deeper than 64 levels")


def test_rulebook_nested_through_aliases_or_into_itself_is_refused(tmp_path: Path) -> None:
    chain = "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 100))
    for name, text in (("chain.yaml", chain), ("cycle.yaml", "x: &a [*a]\n"),
                       ("cycle-map.yaml", "x: &m {self: *m}\n")):
        path = tmp_path / name
        path.write_text("extends: builtin\n" + text, encoding="utf-8")
        with pytest.raises(RulebookError) as exc:
            load_rulebook(path)
        assert exc.value.problems == [f"{path}: refused: nested deeper than 64 levels (or refers to itself)"]


def test_rulebook_nesting_up_to_64_levels_is_read(tmp_path: Path) -> None:
    # document + 63 levels: within the limit, so the (unknown) key is judged as usual
    path = tmp_path / "ok.yaml"
    path.write_text("extends: builtin\nx: " + "[" * 63 + "]" * 63 + "\n", encoding="utf-8")
    with pytest.raises(RulebookError) as exc:
        load_rulebook(path)
    assert exc.value.problems == ["x: unknown key"]


def test_parse_rulebook_refuses_a_deep_document(doc: dict) -> None:
    deep: list = []
    for _ in range(500):
        deep = [deep]
    doc["timers"]["tm2_min"] = deep
    assert problems_of(doc) == ["test: refused: nested deeper than 64 levels (or refers to itself)"]
