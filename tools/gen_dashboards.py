#!/usr/bin/env python3
"""The Grafana dashboards, as code: writes deploy/grafana/dashboards/*.json.

    .venv/bin/python tools/gen_dashboards.py          # write
    .venv/bin/python tools/gen_dashboards.py --check  # exit 1 if a file is not what this writes

Built with grafana-foundation-sdk (Grafana's own typed builders), one dashboard per screen of
the monitoring room. Panel titles are Chinese (the room's language), descriptions English.
Every panel reads Prometheus (datasource uid `prometheus`, deploy/grafana/provisioning); every
metric is one `faultline run --demo` exports (tests/integration/test_prometheus_dashboards.py
runs each query against a real Prometheus scraping it).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "deploy" / "grafana" / "dashboards"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="prometheus")
CITY = 'city=~"$city"'


@dataclass(frozen=True)
class P:
    """One panel: kind (stat, timeseries, table), Chinese title, English description, unit,
    (PromQL, legend) targets, width in grid columns (of 24)."""

    kind: str
    title: str
    description: str
    unit: str
    targets: tuple[tuple[str, str], ...]
    span: int = 8


WALL = ("faultline-wall", "集团客户专线监控大厅 · 总览", "wall screen: faults, serious faults and deadlines, by city", [
    ("故障", [
        P("stat", "严重故障（在途）", "Serious faults open now (RULES.md §3), all cities shown.", "short",
          ((f'sum(faultline_faults_open{{severity="serious",{CITY}}}) or vector(0)', "严重"),), 6),
        P("stat", "在途故障", "Faults open now, any severity.", "short",
          ((f"sum(faultline_faults_open{{{CITY}}}) or vector(0)", "在途"),), 6),
        P("stat", "近 1 小时宣告严重故障", "Faults declared serious in the last hour (fault.serious records).",
          "short", (('sum(increase(faultline_records_total{type="fault.serious"}[1h])) or vector(0)', "严重"),),
          6),
        P("stat", "近 1 小时超时", "Deadlines missed in the last hour (TM-2…TM-10), every rule.", "short",
          (("sum(increase(faultline_deadlines_missed_total[1h])) or vector(0)", "超时"),), 6),
        P("timeseries", "各地市在途故障（按严重度）", "Open faults by city and severity.", "short",
          ((f"sum by (city, severity) (faultline_faults_open{{{CITY}}})", "{{city}} {{severity}}"),), 12),
        P("table", "各地市在途故障", "Open faults now, one row per city and severity.", "short",
          ((f"sum by (city, severity) (faultline_faults_open{{{CITY}}})", ""),), 12),
    ]),
    ("时限与派单", [
        P("timeseries", "超时（按规则）", "Deadlines missed per rule (TM-2…TM-10), in each interval: "
          "these orders are late now.", "short",
          (("sum by (rule) (increase(faultline_deadlines_missed_total[$__rate_interval]))", "{{rule}}"),), 12),
        P("timeseries", "严重故障宣告（按规则）", "Faults declared serious, per rule of RULES.md §3, "
          "in each interval.", "short",
          (('sum by (type) (increase(faultline_records_total{type=~"fault\\\\.serious|fault\\\\.opened"}'
            '[$__rate_interval]))', "{{type}}"),), 12),
    ]),
])

PIPELINE = ("faultline-pipeline", "告警处理链路 · 健康", "the alarm pipeline: rates, refusals, lag, latency", [
    ("输入", [
        P("timeseries", "告警输入速率", "Alarms handed to the correlator, per second.", "ops",
          (("sum(rate(faultline_alarms_total[$__rate_interval]))", "告警"),), 8),
        P("timeseries", "原始消息（按格式与结果）", "Raw feed messages normalized by ingest, by format and "
          "outcome (refused ones are dead-lettered with the reason).", "ops",
          (("sum by (format, outcome) (rate(faultline_ingest_messages_total[$__rate_interval]))",
            "{{format}} {{outcome}}"),), 8),
        P("timeseries", "拒收输入（死信）", "Inputs refused, by where they came from: HTTP intake (api), "
          "ingest, the router and the shards. Each is kept in the dead letters.", "ops",
          (("sum by (source) (rate(faultline_inputs_rejected_total[$__rate_interval]))", "{{source}}"),
           ('sum by (kind) (rate(faultline_api_inputs_total{outcome="refused"}[$__rate_interval]))',
            "api {{kind}}"),
           ('sum(rate(faultline_ingest_messages_total{outcome="refused"}[$__rate_interval]))', "ingest")), 8),
        P("timeseries", "监听器收包与丢包", "Messages the syslog and SNMP listeners received, and datagrams "
          "dropped because too many waited for the broker.", "ops",
          (("sum by (format) (rate(faultline_listener_messages_total[$__rate_interval]))", "{{format}} 收"),
           ("sum by (format) (rate(faultline_listener_lost_total[$__rate_interval]))", "{{format}} 丢")), 12),
        P("timeseries", "每故障告警数（1 小时）", "Alarms per fault opened over the last hour: how much "
          "correlation folds a storm.", "short",
          (('sum(increase(faultline_alarms_total[1h])) / clamp_min(sum(increase('
            'faultline_records_total{type="fault.opened"}[1h])), 1)', "告警/故障"),), 12),
    ]),
    ("处理", [
        P("timeseries", "消费积压", "Messages not yet consumed, by topic (the router's lag).", "short",
          (("sum by (topic) (faultline_consumer_lag)", "{{topic}}"),), 8),
        P("timeseries", "处理时延 p50 / p95 / p99", "Time to handle one input or timer tick, commit included, "
          "by step.", "s",
          tuple((f"histogram_quantile({q}, sum by (le, step) (rate(faultline_engine_seconds_bucket"
                 f"[$__rate_interval])))", f"p{int(q * 100)} {{{{step}}}}") for q in (0.5, 0.95, 0.99)), 8),
        P("timeseries", "输出记录（按类型）", "Output records emitted per second, by type (§3 records).",
          "ops", (("sum by (type) (rate(faultline_records_total[$__rate_interval]))", "{{type}}"),), 8),
        P("stat", "规则日历剩余天数", "Days until the rulebook's holiday calendar ends (TM-4 falls back to "
          "the weekday rule after it): add the next year's holidays before it reaches 0.", "d",
          (("min(faultline_holiday_calendar_days_left)", "天"),), 8),
        P("timeseries", "事件订阅投递", "TMF hub event deliveries by outcome, and those pending.", "ops",
          (("sum by (outcome) (rate(faultline_hub_deliveries_total[$__rate_interval]))", "{{outcome}}"),
           ("sum(faultline_hub_deliveries_pending)", "待投递")), 16),
        P("timeseries", "输入到决策时延 p50 / p95", "From a message reaching the broker to its decisions "
          "stored and published, by stage.", "s",
          tuple((f"histogram_quantile({q}, sum by (le, stage) (rate(faultline_decision_seconds_bucket"
                 f"[$__rate_interval])))", f"p{int(q * 100)} {{{{stage}}}}") for q in (0.5, 0.95)), 8),
        P("timeseries", "每批消息数 p50 / p95", "Messages a stage handles and stores in one transaction: "
          "large batches mean a storm is being absorbed.", "short",
          tuple((f"histogram_quantile({q}, sum by (le, stage) (rate(faultline_batch_messages_bucket"
                 f"[$__rate_interval])))", f"p{int(q * 100)} {{{{stage}}}}") for q in (0.5, 0.95)), 8),
        P("timeseries", "快照后日志条数", "The most log entries a city shard holds after its latest "
          "snapshot, by stage: what a restart re-runs (bounded by the snapshot policy).", "short",
          (("max by (stage) (faultline_snapshot_entries_behind)", "{{stage}}"),), 8),
    ]),
])

QUEUES = ("faultline-queues", "工单队列 · 省/地市监控室", "work orders per queue, their lifecycle and lateness", [
    ("工单", [
        P("timeseries", "新建工单（按队列）", "Work orders created, per queue (province, city monitoring "
          "rooms), in each interval.", "short",
          (("sum by (queue) (increase(faultline_work_orders_total[$__rate_interval]))", "{{queue}}"),), 12),
        P("table", "未结工单（按队列与状态）", "Work orders not yet resolved, by queue and status (the rules' "
          "statuses: acknowledged, inProgress).", "short",
          (("sum by (queue, status) (faultline_work_orders_open)", ""),), 12),
        P("timeseries", "最久未结工单（按队列）", "How long the oldest unresolved work order of each queue has "
          "waited.", "s", (("max by (queue) (faultline_work_order_oldest_seconds)", "{{queue}}"),), 12),
        P("table", "工单累计（按队列）", "Work orders created since the process started, per queue.", "short",
          (("sum by (queue) (faultline_work_orders_total)", ""),), 12),
        P("timeseries", "工单生命周期", "Work-order records by type: created, upgraded, updated, resolved.",
          "short", (('sum by (type) (increase(faultline_records_total{type=~"work_order\\\\..*"}'
                     '[$__rate_interval]))', "{{type}}"),), 12),
        P("timeseries", "升级与通知", "Escalations (ES) and SMS / phone notices (NT), in each interval.",
          "short", (('sum by (type) (increase(faultline_records_total{type=~"escalation|sms|phone\\\\.notify|onsite\\\\.required"}'
                     '[$__rate_interval]))', "{{type}}"),), 12),
        P("timeseries", "超时（按规则）", "Deadlines missed per rule (TM-2…TM-10).", "short",
          (("sum by (rule) (increase(faultline_deadlines_missed_total[$__rate_interval]))", "{{rule}}"),), 24),
    ]),
])

DASHBOARDS = (WALL, PIPELINE, QUEUES)


def _panel(p: P):
    kind = {"stat": Stat, "timeseries": Timeseries, "table": Table}[p.kind]
    panel = (kind().title(p.title).description(p.description).unit(p.unit).datasource(PROMETHEUS)
             .span(p.span).height(8 if p.kind != "stat" else 5))
    for n, (expr, legend) in enumerate(p.targets):
        query = Dataquery().expr(expr).ref_id(chr(ord("A") + n)).datasource(PROMETHEUS)
        if legend:
            query = query.legend_format(legend)
        if p.kind == "table":
            query = query.instant().format("table")
        panel = panel.with_target(query)
    return panel


def build(uid: str, title: str, what: str, rows) -> dict:
    board = (Dashboard(title).uid(uid).description(f"faultline: {what}. Generated by "
                                                   "tools/gen_dashboards.py; edit that, not this file.")
             .tags(["faultline", "generated"]).refresh("30s").time("now-6h", "now").timezone("browser")
             .with_variable(QueryVariable("city").label("地市").datasource(PROMETHEUS)
                            .query("label_values(faultline_faults_open, city)").include_all(True)
                            .multi(True).all_value(".*").refresh(2)))
    for row_title, panels in rows:
        board = board.with_row(Row(row_title))
        for p in panels:
            board = board.with_panel(_panel(p))
    return json.loads(JSONEncoder(sort_keys=True, indent=2).encode(board.build()))


def panels_of(doc: dict) -> list[dict]:
    return [p for p in doc["panels"] if p.get("type") != "row"]


def render() -> dict[Path, str]:
    return {OUT / f"{uid}.json": json.dumps(build(uid, title, what, rows), ensure_ascii=False, indent=2,
                                            sort_keys=True) + "\n"
            for uid, title, what, rows in DASHBOARDS}


def main(argv: list[str]) -> int:
    files = render()
    if "--check" in argv:
        stale = [str(p.relative_to(ROOT)) for p, text in files.items()
                 if not p.exists() or p.read_text(encoding="utf-8") != text]
        if stale:
            print(f"out of date (run tools/gen_dashboards.py): {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
