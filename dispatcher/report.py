"""The 48-hour technical fault report (技术版集团客户故障处理报告, RULES.md TM-7, CL-3).

故障处理结束后，省监控在48小时内组织审核并向网服专业提交技术版集团客户故障处理报告 (the
source, 省级集团客户严重故障处理流程). The report is drafted from what the read model keeps
about the fault: the dict `services/http/fault_detail.py` `fault_detail` returns (see there
for its shape).

Pure: no I/O, no clock. `report_markdown(detail)` and `report_html(detail)` render the same
sections; the HTML is one self-contained document (inline CSS, no script, no external
resource: monitoring rooms are offline) with every value escaped.

Sections: 一 summary, 二 affected circuits and customers, 三 timeline, 四 work orders,
五 escalations, 六 notices and deadlines, 七 alarms. A section with nothing in it says so.
A fault that is not serious still gets a report, whose summary says it is a general fault
(the report is required for serious faults only).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.clock import TimeFormatError, fmt_time, parse_time

__all__ = ["REPORT_DUE_S", "report_html", "report_markdown", "report_sections"]

#: TM-7: the report is due this long after the fault's end (event time).
REPORT_DUE_S = 48 * 3600

_NONE = "—"

_SERVICES = {"internet": "互联网专线", "data": "数据专线", "voice": "语音专线", "gprs_apn": "GPRS企业APN",
             "sms": "集团短信", "circuit_lease": "电路出租"}
_KINDS = {"outage": "中断 (outage)", "degradation": "质量劣化 (degradation)",
          "complaint": "客户报障 (complaint)"}
_TRIGGERS = {"duration": "历时达到门限 (duration)", "confirmed": "确认业务全阻 (confirmed)"}
_CAUSE_SIDES = {"core": "核心网络 (core)", "customer": "客户端 (customer side)",
                "unknown": "未定位 (unknown)"}
_LAYERS = {"core": "核心网 (core)", "data": "数据网 (data)", "vas": "增值网 (vas)",
           "transmission": "传输网 (transmission)", "access": "接入 (access)", "cpe": "客户端设备 (cpe)"}
_ATTRIBUTIONS = {"ours": "我方网络 (ours)",
                 "not_ours": "非我方原因 (not_ours)，不计入严重故障考核"}
_LEVELS = {"provincial": "省级集团客户 (provincial)", "city": "市级集团客户 (city)"}
_GRADES = {"diamond": "钻石级 (diamond)", "gold": "金牌 (gold)", "silver": "银牌 (silver)",
           "bronze": "铜牌 (bronze)", "standard": "标准 (standard)"}
_SPANS = {"local": "本地 (local)", "cross_city": "跨市 (cross_city)",
          "cross_province": "跨省 (cross_province)"}
_MAINTAINERS = {"province": "省 (province)", "city": "地市 (city)"}
_SEVERITIES = {"serious": "严重故障 (serious)", "general": "一般故障 (general)"}
_PRIORITIES = {"normal": "普通 (normal)", "urgent": "紧急 (urgent)"}
_STATUSES = {"acknowledged": "已受理 (acknowledged)", "inProgress": "处理中 (inProgress)",
             "resolved": "已解决 (resolved)", "closed": "已关闭 (closed)", "held": "挂起 (held)",
             "pending": "待处理 (pending)", "cancelled": "已取消 (cancelled)"}
_STAGES = {"new": "新 (new)", "update": "进展 (update)", "recovered": "恢复 (recovered)"}
_CHANNELS = {"10086-8": "10086-8 客服热线", "400": "400 绿色通道", "direct": "直通支撑",
             "account_manager": "客户经理"}
_SCOPES = {"all_users": "全部用户 (all_users)", "partial": "部分用户 (partial)"}
_ESCALATIONS = {"ES-1": "地市发现的省级/钻石级/跨省故障，省未派单", "ES-2": "跨市专线中断超过8小时",
                "ES-3": "省维护资源故障，工单均在地市", "ES-4": "跨省故障需其他省协助",
                "ES-5": "跨市对端不配合", "ES-6": "地市无法独立处理的重要客户故障",
                "ES-7": "地市判断的其他原因"}
_TIMERS = {"TM-1": "严重故障门限", "TM-2": "15分钟客户端到场", "TM-3": "严重故障15分钟到场",
           "TM-4": "省网服到场", "TM-5": "30分钟联系客户确认", "TM-6": "2小时阶段通报",
           "TM-7": "48小时技术报告", "TM-8": "跨市8小时升级", "TM-9": "15分钟初步定位",
           "TM-10": "联系客户时限", "AL-5": "闪断观察"}


# ---------------------------------------------------------------------- the document model

@dataclass(slots=True)
class Block:
    """One piece of a section: `p` (a paragraph), `kv` (label → value rows), `table`
    (headers and rows), `empty` (the section or part has nothing), `h3` (a sub-heading)."""

    kind: str
    text: str = ""
    headers: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()


@dataclass(slots=True)
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def p(self, text: str) -> None:
        self.blocks.append(Block("p", text))

    def h3(self, text: str) -> None:
        self.blocks.append(Block("h3", text))

    def kv(self, rows: Iterable[tuple[str, Any]]) -> None:
        self.blocks.append(Block("kv", rows=[(label, _s(value)) for label, value in rows]))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> None:
        if rows:
            self.blocks.append(Block("table", headers=headers, rows=[[_s(v) for v in r] for r in rows]))
        else:
            self.blocks.append(Block("empty", empty))


def _s(value: Any) -> str:
    if value is None or value == "":
        return _NONE
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (list, tuple)):
        return "、".join(_s(v) for v in value) if value else _NONE
    return str(value)


def _word(table: Mapping[str, str], value: Any) -> str:
    if value is None or value == "":
        return _NONE
    return table.get(value, str(value))


def _ts(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_time(text)
    except (TimeFormatError, ValueError, TypeError):
        return None


def duration_text(seconds: Any) -> str:
    """Whole seconds as 'H小时M分钟 (H h M min)' (seconds dropped)."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds):
        return _NONE
    total = int(seconds) // 60 if seconds > 0 else 0
    hours, minutes = divmod(total, 60)
    return f"{hours}小时{minutes}分钟 ({hours} h {minutes} min)"


def _duration_s(fault: Mapping[str, Any]) -> int | None:
    if isinstance(fault.get("duration_s"), int) and not isinstance(fault.get("duration_s"), bool):
        return fault["duration_s"]
    start, end = _ts(fault.get("opened_at")), _ts(fault.get("ended_at"))
    if start is None or end is None:
        return None
    return max(0, int(end - start))


def report_due(detail: Mapping[str, Any]) -> tuple[str | None, str]:
    """TM-7: (the report's due time, where it comes from). The `report.due` notice's `due`
    when the service emitted one, else the fault's end + 48 h for an ended serious fault."""
    for n in detail.get("notifications") or ():
        if n.get("type") == "report.due" and n.get("due"):
            return n["due"], "report.due (TM-7)"
    fault = detail.get("fault") or {}
    end = _ts(fault.get("ended_at"))
    if fault.get("severity") == "serious" and end is not None:
        return fmt_time(end + REPORT_DUE_S), "恢复时间 + 48 小时 (TM-7, computed)"
    return None, ""


# ---------------------------------------------------------------------- the sections

def _customer_text(detail: Mapping[str, Any]) -> str:
    fault = detail.get("fault") or {}
    customer = detail.get("customer") or {}
    name = customer.get("name") or fault.get("customer_name")
    cid = customer.get("customer_id") or fault.get("customer_id")
    if cid is None:
        return _NONE
    return f"{name} ({cid})" if name else str(cid)


def _summary(detail: Mapping[str, Any]) -> Section:
    fault = detail.get("fault") or {}
    customer = detail.get("customer") or {}
    sec = Section("一、故障概况 (Summary)")
    serious = fault.get("severity") == "serious"
    if serious:
        sec.p("本故障为省级严重故障 (serious fault)；故障处理结束后48小时内须提交"
              "本技术版故障处理报告 (TM-7)。")
    else:
        sec.p("本故障为一般故障 (general fault)，未达到省级严重故障标准；"
              "技术版故障处理报告仅对严重故障为必需 (TM-7)，本报告供参考。")
    ended = fault.get("ended_at")
    duration = _duration_s(fault)
    due, due_from = report_due(detail)
    sec.kv([
        ("故障编号 (Fault)", fault.get("fault_id")),
        ("故障级别 (Severity)", "严重故障 (serious)" if serious else "一般故障 (general)"),
        ("集团客户 (Customer)", _customer_text(detail)),
        ("客户级别 (Level / grade)", " / ".join(x for x in (_word(_LEVELS, customer.get("level")),
                                                           _word(_GRADES, customer.get("grade")))
                                               if x != _NONE) or None),
        ("重要集团客户 (Important)", fault.get("important")),
        ("业务类型 (Service)", _service(fault.get("service_type"))),
        ("专线 (Circuit)", fault.get("circuit_id")),
        ("地市 (City)", fault.get("city")),
        ("故障类型 (Kind)", _word(_KINDS, fault.get("kind"))),
        ("严重故障规则 (Rule)", fault.get("rule")),
        ("触发方式 (Trigger)", _word(_TRIGGERS, fault.get("trigger"))),
        ("故障发生时间 (Opened)", fault.get("opened_at")),
        ("升级严重故障时间 (Serious at)", fault.get("serious_at")),
        ("故障恢复时间 (Ended)", ended if ended else "未恢复 (still open)"),
        ("故障历时 (Duration)", duration_text(duration) if ended else "未恢复 (still open)"),
        ("责任归属 (Attribution)", _word(_ATTRIBUTIONS, fault.get("attribution") or "ours")),
        ("客户报障 (Customer reported)", fault.get("customer_reported")),
        ("故障点 (Root resource)", fault.get("root_resource")),
        ("故障专业 (Layer)", _word(_LAYERS, fault.get("layer"))),
        ("告警原因 (Probable cause)", fault.get("probable_cause")),
        ("故障侧 (Cause side)", _word(_CAUSE_SIDES, fault.get("cause_side"))),
        ("关联事件 (Incident)", fault.get("incident_id")),
        ("报告提交时限 (Report due)", f"{due} — {due_from}" if due else "不适用 (not required)"),
    ])
    return sec


def _service(code: Any) -> str:
    if code is None or code == "":
        return _NONE
    name = _SERVICES.get(code)
    return f"{name} ({code})" if name else str(code)


def _affected(detail: Mapping[str, Any]) -> Section:
    fault = detail.get("fault") or {}
    sec = Section("二、影响范围 (Affected circuits and customers)")
    circuit = detail.get("circuit")
    sec.h3("受影响专线 (Circuit)")
    if circuit and circuit.get("service_type"):
        sec.kv([("专线 (Circuit)", circuit.get("circuit_id")),
                ("业务类型 (Service)", _service(circuit.get("service_type"))),
                ("跨域 (Span)", _word(_SPANS, circuit.get("span"))),
                ("A端地市 (A city)", circuit.get("a_city")),
                ("Z端地市 (Z city)", circuit.get("z_city")),
                ("已移交维护 (Maintenance transferred)", circuit.get("maintenance_transferred"))])
        paths = circuit.get("paths") or []
        sec.table(["路由 (Path)", "资源 (Resources)"],
                  [[f"路由{i} (path {i})", " → ".join(path)] for i, path in enumerate(paths, 1)],
                  "无路由资料 (no path in the inventory)。")
        sec.table(["资源 (Resource)", "专业 (Layer)", "地市 (City)", "维护方 (Maintainer)"],
                  [[r.get("resource_id"), _word(_LAYERS, r.get("layer")), r.get("city"),
                    _word(_MAINTAINERS, r.get("maintainer"))]
                   for r in circuit.get("resources") or ()],
                  "无资源资料 (no resources in the inventory)。")
    elif circuit and circuit.get("circuit_id"):
        sec.p(f"专线 {circuit['circuit_id']}：资源清单中无此专线资料 (not in the inventory)。")
    else:
        sec.blocks.append(Block("empty", "本故障未关联具体专线 (no circuit)。"))

    incident = detail.get("incident")
    sec.h3("同一事件的故障 (Faults of the same incident)")
    if incident:
        sec.kv([("事件 (Incident)", incident.get("incident_id")),
                ("故障点 (Root resource)", incident.get("root_resource")),
                ("首个故障发生 (First opened)", incident.get("first_opened_at")),
                ("故障数 (Faults)", incident.get("fault_count"))])
        members = incident.get("faults") or []
        sec.table(["故障 (Fault)", "专线 (Circuit)", "集团客户 (Customer)", "地市 (City)",
                   "业务 (Service)", "级别 (Severity)", "发生 (Opened)", "恢复 (Ended)"],
                  [[m.get("fault_id"), m.get("circuit_id"),
                    f"{m['customer_name']} ({m['customer_id']})" if m.get("customer_name")
                    else m.get("customer_id"),
                    m.get("city"), _service(m.get("service_type")), _word(_SEVERITIES, m.get("severity")),
                    m.get("opened_at"),
                    m.get("ended_at")] for m in members],
                  "无其他故障记录 (no faults listed)。")
    else:
        sec.blocks.append(Block("empty", "本故障未关联事件 (no incident)。"))

    sec.h3("客户报障 (Complaints)")
    sec.table(["报障单 (Complaint)", "集团客户 (Customer)", "地市 (City)", "业务 (Service)", "渠道 (Channel)",
               "范围 (Scope)", "受理时间 (Received)", "内容 (Text)"],
              [[c.get("complaint_id"), c.get("customer_id"), c.get("city"), _service(c.get("service_type")),
                _word(_CHANNELS, c.get("channel")), _word(_SCOPES, c.get("scope")), c.get("received_at"),
                c.get("text")] for c in detail.get("complaints") or ()],
              "无客户报障 (no complaints)。")
    if not fault.get("customer_id") and not circuit and not detail.get("complaints"):
        sec.p("无受影响集团客户资料 (no affected customer recorded)。")
    return sec


def _timeline(detail: Mapping[str, Any]) -> Section:
    fault = detail.get("fault") or {}
    events: list[tuple[Any, str, str]] = []

    def add(at: Any, what: str, info: str = "") -> None:
        if at:
            events.append((at, what, info))

    add(fault.get("opened_at"), "故障发生 (fault opened)",
        " ".join(x for x in (fault.get("root_resource"), fault.get("probable_cause")) if x))
    for a in detail.get("alarms") or ():
        info = f"{a.get('source')}/{a.get('alarm_id')} {a.get('resource_id')} {a.get('probable_cause')}"
        if a.get("state") == "cleared":
            add(a.get("first_seen_at"), "告警产生 (alarm raised, first seen)", info)
            add(a.get("event_time"), "告警清除 (alarm cleared)", info)
        else:
            add(a.get("event_time") or a.get("first_seen_at"), "告警产生 (alarm raised)", info)
    for c in detail.get("complaints") or ():
        add(c.get("received_at"), "客户报障 (complaint)",
            f"{c.get('complaint_id')} {_word(_CHANNELS, c.get('channel'))} {c.get('customer_id')}")
    add(fault.get("serious_at"), "升级为严重故障 (became serious)",
        f"{fault.get('rule') or ''} {_word(_TRIGGERS, fault.get('trigger'))}".strip())
    for o in detail.get("work_orders") or ():
        order = f"{o.get('work_order_id')} → {o.get('queue')}"
        add(o.get("created_at"), "派单 (work order created)",
            f"{order} [{o.get('rule')}] {_word(_PRIORITIES, o.get('priority'))}")
        add(o.get("resolved_at"), "工单处理完成 (work order resolved)", order)
    for e in detail.get("escalations") or ():
        add(e.get("at"), "升级至省 (escalation)", f"{e.get('reason')} → {e.get('to')}")
    for n in detail.get("notifications") or ():
        what, info = _notice_event(n)
        add(n.get("at"), what, info)
    add(fault.get("ended_at"), "故障恢复 (fault ended)", duration_text(_duration_s(fault)))

    def key(item: tuple[int, tuple[Any, str, str]]) -> tuple[float, int]:
        n, (at, _what, _info) = item          # same instant: in the order added above
        ts = _ts(at)
        return (ts if ts is not None else math.inf, n)

    rows = [[at, what, info] for _n, (at, what, info) in sorted(enumerate(events), key=key)]
    sec = Section("三、处理过程 (Timeline)")
    sec.table(["时间 (Time)", "事件 (Event)", "说明 (Detail)"], rows, "无处理过程记录 (no events recorded)。")
    return sec


def _notice_event(n: Mapping[str, Any]) -> tuple[str, str]:
    kind = n.get("type")
    if kind == "sms":
        return (f"短信通报 (SMS {n.get('stage')})",
                f"{_word(_STAGES, n.get('stage'))}，{len(n.get('recipients') or [])} 个接收方")
    if kind == "phone.notify":
        return "电话知会 (phone notify)", _s(n.get("target"))
    if kind == "onsite.required":
        return "要求到场 (onsite required)", f"{n.get('queue')} [{n.get('rule')}] 时限 {n.get('deadline')}"
    if kind == "deadline.missed":
        return "超时 (deadline missed)", f"[{n.get('rule')}] 时限 {n.get('deadline')}"
    if kind == "report.due":
        return "技术报告时限 (report due)", f"须于 {n.get('due')} 前提交 (TM-7)"
    return str(kind), _s(n.get("text"))


def _orders(detail: Mapping[str, Any]) -> Section:
    sec = Section("四、工单处理 (Work orders)")
    orders = detail.get("work_orders") or []
    sec.table(["工单 (Order)", "队列 (Queue)", "抄送 (cc)", "规则 (Rule)", "优先级 (Priority)",
               "状态 (Status)", "派单时间 (Created)", "处理完成 (Resolved)", "标题 (Title)"],
              [[o.get("work_order_id"), o.get("queue"), o.get("cc") or [], o.get("rule"),
                _word(_PRIORITIES, o.get("priority")), _word(_STATUSES, o.get("status")),
                o.get("created_at"), o.get("resolved_at"), o.get("title")] for o in orders],
              "无工单 (no work orders)。")
    deadlines = [[o.get("work_order_id"), o.get("queue"), o.get("contact_by"), o.get("arrive_by")]
                 for o in orders if o.get("contact_by") or o.get("arrive_by")]
    if deadlines:
        sec.h3("工单时限 (Order deadlines: TM-5 contact_by, TM-4 arrive_by)")
        sec.table(["工单 (Order)", "队列 (Queue)", "联系客户时限 (contact_by)", "到场时限 (arrive_by)"],
                  deadlines, "")
    return sec


def _escalations(detail: Mapping[str, Any]) -> Section:
    sec = Section("五、升级 (Escalations)")
    sec.table(["原因 (Reason)", "说明 (Meaning)", "升级至 (To)", "时间 (At)"],
              [[e.get("reason"), _ESCALATIONS.get(e.get("reason") or "", ""), e.get("to"), e.get("at")]
               for e in detail.get("escalations") or ()],
              "无升级 (no escalations)。")
    return sec


def _notices(detail: Mapping[str, Any]) -> Section:
    sec = Section("六、通报与时限 (Notices and deadlines)")
    notes = detail.get("notifications") or []

    def of(kind: str) -> list[Mapping[str, Any]]:
        return [n for n in notes if n.get("type") == kind]

    sec.h3("短信通报 (SMS, NT-1…NT-4)")
    sec.table(["阶段 (Stage)", "时间 (At)", "接收方 (Recipients)", "内容 (Text)"],
              [[_word(_STAGES, n.get("stage")), n.get("at"), n.get("recipients") or [], n.get("text")]
               for n in of("sms")],
              "无短信通报 (no SMS sent)。")
    sec.h3("电话知会 (Phone notify, NT-5)")
    sec.table(["对象 (Target)", "时间 (At)"], [[n.get("target"), n.get("at")] for n in of("phone.notify")],
              "无电话知会 (no phone notification)。")
    sec.h3("到场要求 (On site, TM-2 / TM-3)")
    sec.table(["队列 (Queue)", "规则 (Rule)", "时间 (At)", "到场时限 (Deadline)"],
              [[n.get("queue"), n.get("rule"), n.get("at"), n.get("deadline")]
               for n in of("onsite.required")],
              "无到场要求 (no on-site request)。")
    sec.h3("超时 (Deadlines missed, TM-9 / TM-10)")
    sec.table(["规则 (Rule)", "时限 (Deadline)", "记录时间 (At)"],
              [[n.get("rule"), n.get("deadline"), n.get("at")] for n in of("deadline.missed")],
              "无超时 (no deadline missed)。")
    sec.h3("技术报告时限 (Report due, TM-7)")
    due, due_from = report_due(detail)
    if due:
        sec.kv([("故障恢复时间 (Ended)", (detail.get("fault") or {}).get("ended_at")),
                ("报告提交时限 (Due)", due), ("依据 (Source)", due_from)])
    else:
        sec.blocks.append(Block("empty", "不适用 (not required)：本故障非已恢复的严重故障。"))
    other = [n for n in notes if n.get("type") not in
             ("sms", "phone.notify", "onsite.required", "deadline.missed", "report.due")]
    if other:
        sec.h3("其他通知 (Other notices)")
        sec.table(["类型 (Type)", "时间 (At)", "内容 (Text)"],
                  [[n.get("type"), n.get("at"), n.get("text")] for n in other], "")
    sec.h3("待触发定时器 (Pending timers)")
    sec.table(["定时器 (Timer)", "说明 (Meaning)", "到期 (Due)", "环节 (Stage)"],
              [[t.get("kind"), _TIMERS.get(t.get("kind") or "", ""), t.get("due"), t.get("stage")]
               for t in detail.get("timers") or ()],
              "无待触发定时器 (no pending timers)。")
    return sec


def _alarms(detail: Mapping[str, Any]) -> Section:
    sec = Section("七、相关告警 (Alarms)")
    alarms = detail.get("alarms") or []
    if alarms:
        sec.p("故障点及专线路由上、与故障时段重叠的告警 (alarms on the root and the circuit's path "
              "resources, overlapping the fault)。")
    sec.table(["来源 (Source)", "告警 (Alarm)", "资源 (Resource)", "原因 (Cause)", "级别 (Severity)",
               "状态 (State)", "事件时间 (Event time)", "首次收到 (First seen)", "最近收到 (Last seen)",
               "次数 (Count)"],
              [[a.get("source"), a.get("alarm_id"), a.get("resource_id"), a.get("probable_cause"),
                a.get("severity"), a.get("state"), a.get("event_time"), a.get("first_seen_at"),
                a.get("last_seen_at"), a.get("count")] for a in alarms],
              "无相关告警 (no alarms recorded)。")
    if detail.get("alarms_more"):
        sec.p(f"仅列出前 {len(alarms)} 条 (truncated: first {len(alarms)} alarms)。")
    return sec


def report_sections(detail: Mapping[str, Any]) -> tuple[str, list[Section]]:
    """The report's title and sections, before rendering."""
    fault = detail.get("fault") or {}
    title = f"技术版集团客户故障处理报告 (Technical fault report) {fault.get('fault_id') or ''}".strip()
    return title, [_summary(detail), _affected(detail), _timeline(detail), _orders(detail),
                   _escalations(detail), _notices(detail), _alarms(detail)]


# ---------------------------------------------------------------------- Markdown

def _md(text: str) -> str:
    """A value in Markdown: no raw HTML, no table break, one line."""
    text = html.escape(text, quote=False).replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.splitlines())


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(_md(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    out.extend("| " + " | ".join(_md(v) for v in row) + " |" for row in rows)
    return out


def report_markdown(detail: dict) -> str:
    """The technical fault report of a `fault_detail` dict, as Markdown."""
    title, sections = report_sections(detail)
    lines = [f"# {_md(title)}", ""]
    for sec in sections:
        lines += [f"## {_md(sec.title)}", ""]
        for b in sec.blocks:
            if b.kind == "h3":
                lines += [f"### {_md(b.text)}", ""]
            elif b.kind == "p":
                lines += [_md(b.text), ""]
            elif b.kind == "empty":
                lines += [f"*{_md(b.text)}*", ""]
            elif b.kind == "kv":
                lines += _md_table(["项目 (Item)", "内容 (Value)"], b.rows) + [""]
            elif b.kind == "table":
                lines += _md_table(b.headers, b.rows) + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------------- HTML

_CSS = """
body{font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",SimSun,sans-serif;margin:2em;color:#222;
line-height:1.5}
h1{font-size:1.5em;border-bottom:2px solid #333;padding-bottom:.3em}
h2{font-size:1.2em;margin-top:1.6em;border-left:4px solid #c00;padding-left:.5em}
h3{font-size:1em;margin-top:1.2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#eee}
table.kv th{width:16em}
p.empty{color:#666;font-style:italic}
@media print{body{margin:1cm}}
"""


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{_h(h)}</th>" for h in headers) + "</tr></thead>",
           "<tbody>"]
    out.extend("<tr>" + "".join(f"<td>{_h(v)}</td>" for v in row) + "</tr>" for row in rows)
    return out + ["</tbody>", "</table>"]


def report_html(detail: dict) -> str:
    """The technical fault report of a `fault_detail` dict, as one self-contained HTML
    document (UTF-8, inline CSS, nothing loaded from elsewhere; every value escaped)."""
    title, sections = report_sections(detail)
    out = ["<!DOCTYPE html>", '<html lang="zh-CN">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_h(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{_h(title)}</h1>"]
    for sec in sections:
        out.append(f"<section><h2>{_h(sec.title)}</h2>")
        for b in sec.blocks:
            if b.kind == "h3":
                out.append(f"<h3>{_h(b.text)}</h3>")
            elif b.kind == "p":
                out.append(f"<p>{_h(b.text)}</p>")
            elif b.kind == "empty":
                out.append(f'<p class="empty">{_h(b.text)}</p>')
            elif b.kind == "kv":
                out.append('<table class="kv"><tbody>')
                out.extend(f"<tr><th>{_h(label)}</th><td>{_h(value)}</td></tr>" for label, value in b.rows)
                out.append("</tbody></table>")
            elif b.kind == "table":
                out.extend(_html_table(b.headers, b.rows))
        out.append("</section>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
