"""dispatcher/report.py: the 48-hour technical fault report (技术版故障处理报告, RULES.md TM-7),
drafted from what the read model keeps about a fault (CL-3): a `fault_detail` dict built by
hand, rendered as Markdown and as one offline HTML document."""

from __future__ import annotations

import copy
import re

import pytest

from dispatcher.report import report_html, report_markdown

NASTY = '<script>&"'
TITLE = "【集团客户严重故障】南方航空集团公司 互联网专线中断"
RECIPIENTS = ["prov.gov_enterprise", "prov.network_dept", "prov.nmc", "prov.netservice", "city.GZ.monitoring"]
SECTIONS = ["## 一、故障概况 (Summary)", "## 二、影响范围 (Affected circuits and customers)",
            "## 三、处理过程 (Timeline)", "## 四、工单处理 (Work orders)", "## 五、升级 (Escalations)",
            "## 六、通报与时限 (Notices and deadlines)", "## 七、相关告警 (Alarms)"]


def _fault(**over) -> dict:
    fault = {
        "fault_id": "F-000001", "incident_id": "I-000001", "kind": "outage", "circuit_id": "GZ-INT-0001",
        "customer_id": "C-NH", "customer_name": "南方航空集团公司", "city": "GZ", "service_type": "internet",
        "important": True, "cause_side": "core", "root_resource": "GZ-OTN-A:1-3-1", "layer": "transmission",
        "probable_cause": "LOS", "opened_at": "2026-11-25T10:00:00+08:00", "severity": "serious",
        "serious_at": "2026-11-25T10:30:00+08:00", "rule": "SF-3", "trigger": "duration",
        "ended_at": "2026-11-25T12:14:30+08:00", "attribution": "ours", "customer_reported": True,
        "complaints": ["CSP-20261125-0031"], "work_orders": ["W-000001", "W-000002"], "duration_s": 8070,
        "updated_at": "2026-11-25T12:15:00+08:00"}
    fault.update(over)
    return fault


def _sms(stage: str, at: str) -> dict:
    word = {"new": "新", "update": "进展", "recovered": "恢复"}[stage]
    return {"type": "sms", "at": at, "stage": stage, "rule": None, "queue": None, "target": None,
            "recipients": RECIPIENTS, "text": f"【{word}|影响业务|严重故障|南方航空集团公司互联网专线中断】",
            "deadline": None, "due": None}


def _note(type_: str, at: str, **fields) -> dict:
    return {"type": type_, "at": at, "stage": None, "rule": None, "queue": None, "target": None,
            "recipients": [], "text": None, "deadline": None, "due": None, **fields}


def _order(wid: str, queue: str, rule: str, created: str, **over) -> dict:
    order = {"work_order_id": wid, "queue": queue, "fault_ids": ["F-000001"], "cc": [], "priority": "urgent",
             "title": TITLE, "rule": rule, "status": "resolved",
             "contact_by": None, "arrive_by": None, "created_at": created,
             "updated_at": "2026-11-25T12:15:00+08:00", "resolved_at": "2026-11-25T12:15:00+08:00"}
    order.update(over)
    return order


def detail(**over) -> dict:
    """A serious outage fault of a provincial customer: alarms, a complaint, two orders, an
    escalation, SMS new/update/recovered, phone, on site, a deadline missed, report.due."""
    d = {
        "fault": _fault(),
        "customer": {"customer_id": "C-NH", "name": "南方航空集团公司", "level": "provincial",
                     "grade": "gold", "hq_city": "GZ", "important": True},
        "circuit": {"circuit_id": "GZ-INT-0001", "customer_id": "C-NH", "service_type": "internet",
                    "a_city": "GZ", "z_city": None, "span": "local", "maintenance_transferred": True,
                    "paths": [["GZ-CPE-0001", "GZ-OTN-A:1-3-1", "GZ-PE-01:GE0/0/1"]],
                    "resources": [
                        {"resource_id": "GZ-CPE-0001", "layer": "cpe", "city": "GZ", "maintainer": "city"},
                        {"resource_id": "GZ-OTN-A:1-3-1", "layer": "transmission", "city": "GZ",
                         "maintainer": "province"},
                        {"resource_id": "GZ-PE-01:GE0/0/1", "layer": "data", "city": "GZ",
                         "maintainer": "city"}]},
        "alarms": [
            {"source": "gd-otn-nms-1", "alarm_id": "884213", "resource_id": "GZ-OTN-A:1-3-1",
             "probable_cause": "LOS", "severity": "critical", "state": "cleared",
             "event_time": "2026-11-25T12:14:30+08:00", "text": "R_LOS",
             "first_seen_at": "2026-11-25T10:00:05+08:00",
             "last_seen_at": "2026-11-25T12:15:00+08:00", "count": 2, "unmapped": False},
            {"source": "gd-ip-nms-1", "alarm_id": "T-5521", "resource_id": "GZ-PE-01:GE0/0/1",
             "probable_cause": "TEMPERATURE", "severity": "minor", "state": "raised",
             "event_time": "2026-11-25T10:00:58+08:00", "text": "board temperature high",
             "first_seen_at": "2026-11-25T10:01:00+08:00", "last_seen_at": "2026-11-25T10:01:00+08:00",
             "count": 1, "unmapped": False}],
        "alarms_more": False,
        "complaints": [{"complaint_id": "CSP-20261125-0031", "customer_id": "C-NH", "city": "GZ",
                        "service_type": "internet", "channel": "400", "scope": "all_users",
                        "text": "全部无法上网",
                        "received_at": "2026-11-25T10:07:00+08:00", "fault_id": "F-000001"}],
        "work_orders": [
            _order("W-000001", "prov.specialist.transmission", "RT-2", "2026-11-25T10:00:05+08:00"),
            _order("W-000002", "prov.netservice", "TM-4", "2026-11-25T10:30:00+08:00",
                   arrive_by="2026-11-25T10:40:00+08:00", resolved_at="2026-11-25T12:15:01+08:00")],
        "escalations": [{"reason": "ES-6", "to": "prov.monitoring", "at": "2026-11-25T11:00:00+08:00"}],
        "notifications": [
            _sms("new", "2026-11-25T10:30:00+08:00"),
            _note("phone.notify", "2026-11-25T10:30:00+08:00", target="prov.netservice"),
            _note("onsite.required", "2026-11-25T10:30:00+08:00", rule="TM-3", queue="prov.netservice",
                  deadline="2026-11-25T10:45:00+08:00"),
            _note("deadline.missed", "2026-11-25T10:15:00+08:00", rule="TM-9",
                  deadline="2026-11-25T10:15:00+08:00"),
            _sms("update", "2026-11-25T12:30:00+08:00"),
            _sms("recovered", "2026-11-25T12:15:00+08:00"),
            _note("report.due", "2026-11-25T12:15:00+08:00", due="2026-11-27T12:14:30+08:00")],
        "timers": [],
        "incident": {"incident_id": "I-000001", "root_resource": "GZ-OTN-A:1-3-1",
                     "first_opened_at": "2026-11-25T10:00:00+08:00", "fault_count": 2,
                     "faults": [{"fault_id": "F-000001", "circuit_id": "GZ-INT-0001", "customer_id": "C-NH",
                                 "customer_name": "南方航空集团公司", "city": "GZ",
                                 "service_type": "internet",
                                 "severity": "serious", "opened_at": "2026-11-25T10:00:00+08:00",
                                 "ended_at": "2026-11-25T12:14:30+08:00"},
                                {"fault_id": "F-000002", "circuit_id": "GZ-INT-0003", "customer_id": "C-GDSZ",
                                 "customer_name": "广东省数字政府运营中心", "city": "GZ",
                                 "service_type": "internet",
                                 "severity": "general", "opened_at": "2026-11-25T10:00:00+08:00",
                                 "ended_at": "2026-11-25T12:14:30+08:00"}]},
    }
    d.update(over)
    return d


def empty_detail(**fault) -> dict:
    """A general complaint fault, still open, of which the read model keeps nothing else."""
    return {"fault": _fault(kind="complaint", severity="general", serious_at=None, rule=None, trigger=None,
                            ended_at=None, duration_s=None, circuit_id=None, customer_id=None,
                            customer_name=None,
                            cause_side="unknown", root_resource=None, layer=None, probable_cause=None,
                            incident_id=None, complaints=[], work_orders=[], **fault),
            "customer": None, "circuit": None, "alarms": [], "alarms_more": False, "complaints": [],
            "work_orders": [], "escalations": [], "notifications": [], "timers": [], "incident": None}


def section(md: str, heading: str) -> str:
    """The Markdown of one `## ` section."""
    start = md.index(heading)
    rest = md[start + len(heading):]
    end = rest.find("\n## ")
    return rest if end < 0 else rest[:end]


def rows(text: str) -> list[list[str]]:
    """The body rows of the Markdown tables in `text`, cells stripped."""
    out = []
    for line in text.splitlines():
        if line.startswith("| ") and not re.fullmatch(r"\|(---\|)+", line):
            out.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return out


# ---------------------------------------------------------------------- the sections

def test_CL3_report_has_every_section_in_both_forms():
    d = detail()
    md, page = report_markdown(d), report_html(d)
    assert md.startswith("# 技术版集团客户故障处理报告 (Technical fault report) F-000001\n")
    positions = [md.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    for heading in SECTIONS:
        assert f"<h2>{heading[3:]}</h2>" in page


def test_CL3_summary_gives_the_times_the_rule_and_the_root_cause():
    summary = dict((r[0], r[1]) for r in rows(section(report_markdown(detail()), SECTIONS[0])))
    assert summary["故障编号 (Fault)"] == "F-000001"
    assert summary["故障级别 (Severity)"] == "严重故障 (serious)"
    assert summary["集团客户 (Customer)"] == "南方航空集团公司 (C-NH)"
    assert summary["客户级别 (Level / grade)"] == "省级集团客户 (provincial) / 金牌 (gold)"
    assert summary["业务类型 (Service)"] == "互联网专线 (internet)"
    assert (summary["专线 (Circuit)"], summary["地市 (City)"]) == ("GZ-INT-0001", "GZ")
    assert summary["故障类型 (Kind)"] == "中断 (outage)"
    assert summary["严重故障规则 (Rule)"] == "SF-3"
    assert summary["触发方式 (Trigger)"] == "历时达到门限 (duration)"
    assert summary["故障发生时间 (Opened)"] == "2026-11-25T10:00:00+08:00"
    assert summary["升级严重故障时间 (Serious at)"] == "2026-11-25T10:30:00+08:00"
    assert summary["故障恢复时间 (Ended)"] == "2026-11-25T12:14:30+08:00"
    assert summary["故障历时 (Duration)"] == "2小时14分钟 (2 h 14 min)"        # 8070 s
    assert summary["责任归属 (Attribution)"] == "我方网络 (ours)"
    assert summary["故障点 (Root resource)"] == "GZ-OTN-A:1-3-1"
    assert summary["故障专业 (Layer)"] == "传输网 (transmission)"
    assert summary["告警原因 (Probable cause)"] == "LOS"
    assert summary["故障侧 (Cause side)"] == "核心网络 (core)"
    assert "省级严重故障" in section(report_markdown(detail()), SECTIONS[0])


def test_CL3_duration_is_computed_from_the_times_when_the_row_has_none():
    d = detail(fault=_fault(duration_s=None, ended_at="2026-11-25T11:05:59+08:00"))
    assert "1小时5分钟 (1 h 5 min)" in section(report_markdown(d), SECTIONS[0])


def test_SV4_not_ours_is_stated_and_kept_out_of_the_KPIs():
    md = report_markdown(detail(fault=_fault(attribution="not_ours")))
    assert "非我方原因 (not_ours)，不计入严重故障考核" in section(md, SECTIONS[0])


def test_CL3_report_lists_the_affected_circuit_incident_and_complaint():
    affected = section(report_markdown(detail()), SECTIONS[1])
    assert "GZ-CPE-0001 → GZ-OTN-A:1-3-1 → GZ-PE-01:GE0/0/1" in affected
    assert "传输网 (transmission)" in affected and "省 (province)" in affected
    assert "广东省数字政府运营中心 (C-GDSZ)" in affected and "F-000002" in affected
    assert ["CSP-20261125-0031", "C-NH", "GZ", "互联网专线 (internet)", "400 绿色通道",
            "全部用户 (all_users)", "2026-11-25T10:07:00+08:00", "全部无法上网"] in rows(affected)


def test_CL3_timeline_is_in_time_order_and_holds_every_event():
    timeline = rows(section(report_markdown(detail()), SECTIONS[2]))[1:]          # the header row off
    times = [r[0] for r in timeline]
    assert times == sorted(times)
    events = [r[1] for r in timeline]
    for expected in ("故障发生 (fault opened)", "告警产生 (alarm raised)",
                     "告警产生 (alarm raised, first seen)", "告警清除 (alarm cleared)",
                     "客户报障 (complaint)", "派单 (work order created)",
                     "升级为严重故障 (became serious)", "升级至省 (escalation)", "短信通报 (SMS new)",
                     "短信通报 (SMS update)", "短信通报 (SMS recovered)", "电话知会 (phone notify)",
                     "要求到场 (onsite required)", "超时 (deadline missed)",
                     "工单处理完成 (work order resolved)", "技术报告时限 (report due)",
                     "故障恢复 (fault ended)"):
        assert expected in events, expected
    assert timeline[0][:2] == ["2026-11-25T10:00:00+08:00", "故障发生 (fault opened)"]
    assert timeline[-1][:2] == ["2026-11-25T12:30:00+08:00", "短信通报 (SMS update)"]
    assert ["2026-11-25T12:14:30+08:00", "故障恢复 (fault ended)", "2小时14分钟 (2 h 14 min)"] in timeline


def test_CL3_timeline_orders_by_instant_whatever_the_offset():
    d = detail(escalations=[{"reason": "ES-6", "to": "prov.monitoring", "at": "2026-11-25T01:59:00Z"}])
    timeline = rows(section(report_markdown(d), SECTIONS[2]))[1:]
    escalated = next(i for i, r in enumerate(timeline) if r[1] == "升级至省 (escalation)")
    serious = next(i for i, r in enumerate(timeline) if r[1] == "升级为严重故障 (became serious)")
    assert escalated < serious                    # 09:59 in Shanghai, before 10:30


def test_CL3_report_lists_every_work_order():
    orders = rows(section(report_markdown(detail()), SECTIONS[3]))
    assert orders[1] == ["W-000001", "prov.specialist.transmission", "—", "RT-2", "紧急 (urgent)",
                         "已解决 (resolved)", "2026-11-25T10:00:05+08:00", "2026-11-25T12:15:00+08:00",
                         "【集团客户严重故障】南方航空集团公司 互联网专线中断"]
    assert orders[2][:8] == ["W-000002", "prov.netservice", "—", "TM-4", "紧急 (urgent)", "已解决 (resolved)",
                             "2026-11-25T10:30:00+08:00", "2026-11-25T12:15:01+08:00"]
    assert ["W-000002", "prov.netservice", "—", "2026-11-25T10:40:00+08:00"] in orders     # TM-4 arrive_by


def test_ES_report_lists_the_escalations():
    escalations = rows(section(report_markdown(detail()), SECTIONS[4]))
    assert escalations[1] == ["ES-6", "地市无法独立处理的重要客户故障", "prov.monitoring",
                              "2026-11-25T11:00:00+08:00"]


def test_NT1_NT2_NT3_NT5_report_lists_the_sms_stages_phone_and_onsite():
    notices = section(report_markdown(detail()), SECTIONS[5])
    table = rows(notices)
    stages = [r[0] for r in table if r[0] in ("新 (new)", "进展 (update)", "恢复 (recovered)")]
    assert stages == ["新 (new)", "进展 (update)", "恢复 (recovered)"]
    assert "、".join(RECIPIENTS) in notices
    # a | in a cell is escaped
    assert "【新\\|影响业务\\|严重故障\\|南方航空集团公司互联网专线中断】" in notices
    assert ["prov.netservice", "2026-11-25T10:30:00+08:00"] in table                    # phone.notify
    assert ["prov.netservice", "TM-3", "2026-11-25T10:30:00+08:00", "2026-11-25T10:45:00+08:00"] in table
    assert ["TM-9", "2026-11-25T10:15:00+08:00", "2026-11-25T10:15:00+08:00"] in table  # deadline.missed


def test_TM7_report_due_is_end_plus_48h():
    md = report_markdown(detail())
    summary = dict((r[0], r[1]) for r in rows(section(md, SECTIONS[0])))
    assert summary["报告提交时限 (Report due)"].startswith("2026-11-27T12:14:30+08:00")
    notices = dict((r[0], r[1]) for r in rows(section(md, SECTIONS[5])) if len(r) == 2)
    assert notices["报告提交时限 (Due)"] == "2026-11-27T12:14:30+08:00"
    assert notices["故障恢复时间 (Ended)"] == "2026-11-25T12:14:30+08:00"


def test_TM7_report_due_is_computed_when_no_report_due_was_kept():
    d = detail()
    d["notifications"] = [n for n in d["notifications"] if n["type"] != "report.due"]
    notices = dict((r[0], r[1]) for r in rows(section(report_markdown(d), SECTIONS[5])) if len(r) == 2)
    assert notices["报告提交时限 (Due)"] == "2026-11-27T12:14:30+08:00"
    assert "computed" in notices["依据 (Source)"]


def test_TM7_open_serious_fault_has_no_due_yet():
    d = detail(fault=_fault(ended_at=None, duration_s=None))
    d["notifications"] = [n for n in d["notifications"] if n["type"] != "report.due"]
    md = report_markdown(d)
    summary = dict((r[0], r[1]) for r in rows(section(md, SECTIONS[0])))
    assert summary["故障恢复时间 (Ended)"] == "未恢复 (still open)"
    assert summary["故障历时 (Duration)"] == "未恢复 (still open)"
    assert summary["报告提交时限 (Report due)"] == "不适用 (not required)"


def test_TM7_a_general_fault_still_renders_and_says_it_is_general():
    d = detail(fault=_fault(severity="general", serious_at=None, rule=None, trigger=None))
    d["notifications"] = []
    md, page = report_markdown(d), report_html(d)
    summary = section(md, SECTIONS[0])
    assert "本故障为一般故障 (general fault)" in summary and "仅对严重故障为必需" in summary
    assert dict((r[0], r[1]) for r in rows(summary))["故障级别 (Severity)"] == "一般故障 (general)"
    assert "不适用 (not required)" in section(md, SECTIONS[5])
    assert "本故障为一般故障 (general fault)" in page
    assert all(s in md for s in SECTIONS)


def test_CL3_empty_sections_say_so():
    md = report_markdown(empty_detail())
    for heading, phrase in [(SECTIONS[1], "本故障未关联具体专线 (no circuit)"),
                            (SECTIONS[1], "本故障未关联事件 (no incident)"),
                            (SECTIONS[1], "无客户报障 (no complaints)"),
                            (SECTIONS[3], "无工单 (no work orders)"),
                            (SECTIONS[4], "无升级 (no escalations)"),
                            (SECTIONS[5], "无短信通报 (no SMS sent)"),
                            (SECTIONS[5], "无电话知会 (no phone notification)"),
                            (SECTIONS[5], "无到场要求 (no on-site request)"),
                            (SECTIONS[5], "无超时 (no deadline missed)"),
                            (SECTIONS[5], "无待触发定时器 (no pending timers)"),
                            (SECTIONS[6], "无相关告警 (no alarms recorded)")]:
        assert phrase in section(md, heading), phrase
    page = report_html(empty_detail())
    assert '<p class="empty">无工单 (no work orders)。</p>' in page
    # the timeline still holds the opening
    assert rows(section(md, SECTIONS[2]))[1][1] == "故障发生 (fault opened)"


def test_CL3_pending_timers_and_truncated_alarms_are_shown():
    timer = {"kind": "TM-6", "due": "2026-11-25T12:30:00+08:00", "stage": "dispatch", "shard": "GZ"}
    d = detail(timers=[timer], alarms_more=True)
    md = report_markdown(d)
    pending = rows(section(md, SECTIONS[5]))
    assert ["TM-6", "2小时阶段通报", "2026-11-25T12:30:00+08:00", "dispatch"] in pending
    assert "仅列出前 2 条" in section(md, SECTIONS[6])


# ---------------------------------------------------------------------- HTML and safety

def nasty_detail() -> dict:
    d = detail()
    d["customer"] = {**d["customer"], "name": NASTY}
    d["fault"] = _fault(customer_name=NASTY, root_resource='GZ-OTN-A:1-3-1"><img onerror=x>')
    d["work_orders"][0]["title"] = f"【集团客户严重故障】{NASTY} 互联网专线中断"
    d["complaints"][0]["text"] = "</td></tr></table><script>alert(1)</script>"
    return d


def test_report_html_escapes_every_value():
    page = report_html(nasty_detail())
    assert NASTY not in page and "<script" not in page and "<img" not in page
    assert "&lt;script&gt;&amp;&quot;" in page
    assert "GZ-OTN-A:1-3-1&quot;&gt;&lt;img onerror=x&gt;" in page
    assert "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # the structure is the report's own: as many cells opened as closed
    assert page.count("<td>") == page.count("</td>") and page.count("<table") == page.count("</table>")


def test_report_markdown_carries_no_raw_html_and_keeps_cells_whole():
    d = nasty_detail()
    d["alarms"][1]["text"] = "a|b\nc"
    md = report_markdown(d)
    assert "<script" not in md and "&lt;script&gt;&amp;" in md
    summary = dict((r[0], r[1]) for r in rows(section(md, SECTIONS[0])))
    assert summary["集团客户 (Customer)"] == "&lt;script&gt;&amp;\" (C-NH)"


def test_report_html_is_one_offline_document():
    page = report_html(detail())
    assert page.startswith("<!DOCTYPE html>\n") and page.rstrip().endswith("</html>")
    assert '<meta charset="utf-8">' in page and "<style>" in page
    lowered = page.lower()
    for forbidden in ("http://", "https://", "<script", "<link", "src=", "@import", "url(", "//cdn"):
        assert forbidden not in lowered, forbidden


@pytest.mark.parametrize("render", [report_markdown, report_html])
def test_report_is_pure(render):
    d = detail()
    before = copy.deepcopy(d)
    assert render(d) == render(d)
    assert d == before


def test_report_renders_a_sparse_detail():
    """Missing keys and unknown words do not break it: a detail from an older read model."""
    md = report_markdown({"fault": {"fault_id": "F-9", "kind": "weird", "severity": "serious",
                                    "opened_at": "not a time", "ended_at": None}})
    assert "F-9" in md and "weird" in md and all(s in md for s in SECTIONS)
