"""The live service's Prometheus metrics, on an injected CollectorRegistry.

Label values come from enums and codes (record type, queue, rule, city, severity, source),
never from ids or exception text, so every series stays bounded.
"""

from __future__ import annotations

import datetime as dt
import logging
import weakref
from collections import Counter as Tally
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from shared.db.projection import RECORD_TYPES
from shared.rulebook import Rulebook, calendar_notice

log = logging.getLogger("faultline")

Warnings = Callable[[], list[str]]     # what /readyz lists beside its problems
DEADLINE_RULES = ("TM-9", "TM-10")     # the rules whose deadlines a deadline.missed record names


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
        self.batch_messages = Histogram(
            "faultline_batch_messages", "Messages a stage handled and stored in one transaction",
            ["stage"], registry=registry, buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000))
        self.decision_seconds = Histogram(
            "faultline_decision_seconds", "From a message reaching the broker to its decisions stored and "
            "published, by stage (on the clock that stamps messages)", ["stage"], registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
        # Known label values start at 0, so a dashboard or an alert on increase() has a series
        # before the first one happens (Prometheus's advice for counters with labels).
        for kind in sorted(RECORD_TYPES):
            self.records.labels(kind)
        for rule in DEADLINE_RULES:
            self.deadlines_missed.labels(rule)
        for stage in ("correlate", "dispatch"):
            self.rejected.labels(stage)

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


class ListenerCollector:
    """faultline_listener_messages_total{format} and faultline_listener_lost_total{format}: what
    the raw listeners received, and the datagrams dropped past the waiting limit (a storm the
    broker could not take: shared/listeners.py), read at scrape time."""

    def __init__(self, counts: Callable[[], object | None]) -> None:
        self._counts = counts

    def collect(self):
        received = CounterMetricFamily("faultline_listener_messages", "Raw feed messages received by the "
                                       "syslog and SNMP listeners, by format", labels=["format"])
        lost = CounterMetricFamily("faultline_listener_lost", "Datagrams dropped because too many waited "
                                   "for the broker, by format", labels=["format"])
        counts = self._counts()
        by_format = getattr(counts, "by_format", None) or {"syslog": [0, 0], "snmp": [0, 0]}  # none open: 0
        for fmt, (got, dropped) in sorted(by_format.items()):
            received.add_metric([fmt], got)
            lost.add_metric([fmt], dropped)
        yield received
        yield lost

    def describe(self):
        return []


class WorkOrdersCollector:
    """faultline_work_orders_open{queue,status} and faultline_work_order_oldest_seconds{queue}:
    the work orders the dispatch shards hold not yet resolved, and how long the oldest of each
    queue has waited (on the service's clock), read at scrape time. The statuses are the rules'
    (acknowledged, inProgress); an operator's held or pending lives in the read model."""

    def __init__(self, orders: Callable[[], Iterable[object]], now: Callable[[], float]) -> None:
        self._orders = orders
        self._now = now

    def collect(self):
        count = GaugeMetricFamily("faultline_work_orders_open", "Work orders not yet resolved, by queue and "
                                  "status", labels=["queue", "status"])
        oldest = GaugeMetricFamily("faultline_work_order_oldest_seconds", "Age of the oldest work order not "
                                   "yet resolved, by queue", labels=["queue"])
        tally: Tally = Tally()
        first: dict[str, float] = {}
        for wo in self._orders():
            if wo.status == "resolved":
                continue
            tally[(wo.queue, wo.status)] += 1
            first[wo.queue] = min(first.get(wo.queue, wo.created_at), wo.created_at)
        for (queue, status), n in sorted(tally.items()):
            count.add_metric([queue, status], n)
        now = self._now()
        for queue, at in sorted(first.items()):
            oldest.add_metric([queue], max(0.0, now - at))
        yield count
        yield oldest

    def describe(self):
        return []


class SnapshotCollector:
    """faultline_snapshot_entries_behind{stage}: the most log entries any city shard of the
    stage holds after its latest snapshot (0 before the first input), read at scrape time.
    What a restart re-runs grows with it (the snapshot policy keeps it bounded): an alert on
    it catches snapshots that stopped being written. One per registry, over every stage's
    runner in the process (`faultline run` has two)."""

    def __init__(self) -> None:
        self.runners: list = []

    def collect(self):
        gauge = GaugeMetricFamily("faultline_snapshot_entries_behind", "Most log entries a city shard "
                                  "holds after its latest snapshot, by stage", labels=["stage"])
        for runner in self.runners:
            behind = [state.seq - runner.snapshot_seq.get(shard, 0) for shard, state in
                      list(runner.shards.items())]
            gauge.add_metric([runner.logic.stage], max(behind, default=0))
        yield gauge

    def describe(self):
        return []


_snapshot_collectors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def watch_snapshots(registry: CollectorRegistry, runner: object) -> None:
    collector = _snapshot_collectors.get(registry)
    if collector is None:
        collector = _snapshot_collectors[registry] = SnapshotCollector()
        registry.register(collector)
    collector.runners.append(runner)


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
