"""The live service's Prometheus metrics, on an injected CollectorRegistry.

Label values come from enums and codes (record type, queue, rule, city, severity, source),
never from ids or exception text, so every series stays bounded.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter as Tally
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from shared.rulebook import Rulebook, calendar_notice

log = logging.getLogger("faultline")

Warnings = Callable[[], list[str]]     # what /readyz lists beside its problems


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.alarms = Counter("faultline_alarms", "Alarms handed to the correlator",
                              registry=registry)
        self.rejected = Counter("faultline_inputs_rejected", "Inputs refused, by where they came from",
                                ["source"], registry=registry)
        self.records = Counter("faultline_records", "Output records emitted, by type",
                               ["type"], registry=registry)
        self.work_orders = Counter("faultline_work_orders", "Work orders created, by queue",
                                   ["queue"], registry=registry)
        self.deadlines_missed = Counter("faultline_deadlines_missed", "Deadlines missed, by rule",
                                        ["rule"], registry=registry)
        self.engine_seconds = Histogram(
            "faultline_engine_seconds", "Time to handle one input or timer tick, commit included",
            ["step"], registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))

    def observe_records(self, records: Iterable[dict]) -> None:
        for rec in records:
            kind = rec["type"]
            self.records.labels(kind).inc()
            if kind == "work_order.created":
                self.work_orders.labels(rec["queue"]).inc()
            elif kind == "deadline.missed":
                self.deadlines_missed.labels(rec["rule"]).inc()


class OpenFaultsCollector:
    """faultline_faults_open{city,severity}, read from the engine's state at scrape time."""

    def __init__(self, open_faults: Callable[[], Iterable[object]]) -> None:
        self._open_faults = open_faults

    def collect(self):
        gauge = GaugeMetricFamily("faultline_faults_open", "Open faults by city and severity",
                                  labels=["city", "severity"])
        tally = Tally((f.city, f.severity) for f in self._open_faults())
        for (city, severity), n in sorted(tally.items()):
            gauge.add_metric([city, severity], n)
        yield gauge

    def describe(self):
        return []


class CalendarCollector:
    """faultline_holiday_calendar_days_left: days from today (the rulebook's time zone, on the
    service's clock) to the last day of the holiday calendar, computed at scrape time so it
    stays current; alert below 60 (TM-4: after the end, holidays fall back to the weekday rule)."""

    def __init__(self, rulebook: Rulebook, now: Callable[[], float]) -> None:
        self._rulebook = rulebook
        self._now = now

    def collect(self):
        gauge = GaugeMetricFamily("faultline_holiday_calendar_days_left",
                                  "Days until the rulebook's holiday calendar ends (negative: ended)")
        try:
            today = dt.datetime.fromtimestamp(self._now(), self._rulebook.tz).date()
        except (OverflowError, OSError, ValueError):
            yield gauge                # an unusable clock: no sample rather than a wrong one
            return
        gauge.add_metric([], (self._rulebook.calendar_ends - today).days)
        yield gauge

    def describe(self):
        return []


def calendar_watch(rulebook: Rulebook, registry: CollectorRegistry, now: Callable[[], float]) -> Warnings:
    """TM-4's calendar end, for every app that loads a rulebook (`faultline run`, correlate,
    dispatch): the warning logged once now, the days-left gauge, and what /readyz lists (read
    on the service's clock `now` each time)."""
    notice = calendar_notice(rulebook, now())
    if notice:
        log.warning("%s", notice)
    registry.register(CalendarCollector(rulebook, now))

    def warnings() -> list[str]:
        notice = calendar_notice(rulebook, now())
        return [notice] if notice else []
    return warnings
