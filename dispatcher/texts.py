"""Work-order titles (RT-14) and SMS texts (NT-4), in the source's words."""

from __future__ import annotations

from shared.clock import local
from shared.facts import FaultFacts
from shared.rulebook import Rulebook

_KIND_WORDS = {"outage": "中断", "degradation": "质量劣化", "complaint": "客户报障"}


def tag(f: FaultFacts, serious: bool) -> str:
    """RT-14: 集团客户 or 绿色通道 (green-channel complaint), 一般 or 严重."""
    family = "绿色通道" if f.green else "集团客户"
    return f"【{family}{'严重' if serious else '一般'}故障】"


def who(f: FaultFacts, rb: Rulebook) -> str:
    """The customer's name; for an SF-6b fault, the city and how many customers complained."""
    if f.customer is not None:
        return f.customer.name
    city = rb.city_names.get(f.city, f.city)
    return f"{city}{f.listed}家普通集团客户"


def summary(f: FaultFacts, rb: Rulebook) -> str:
    """Which service is down how, e.g. 互联网专线中断."""
    service = rb.service_names.get(f.service_type, f.service_type)
    if f.probable_cause == "FLAPPING":
        return f"{service}闪断"
    if f.probable_cause == "GATEWAY_CONN_LOST":
        return f"{service}无法连接行业网关"
    if f.customer is None:
        return f"{service}全部用户无法使用"
    return f"{service}{_KIND_WORDS[f.kind]}"


def title(f: FaultFacts, rb: Rulebook, serious: bool, faults: int = 1, customers: int = 1) -> str:
    """RT-14; an order over several faults of an incident names the root and the customer count."""
    if faults > 1 and f.root_resource:
        return f"{tag(f, serious)}{f.root_resource} 影响{customers}个集团客户 {summary(f, rb)}"
    return f"{tag(f, serious)}{who(f, rb)} {summary(f, rb)}"


def _minutes(seconds: float) -> str:
    total = int(seconds // 60) if seconds > 0 else 0
    hours, minutes = divmod(total, 60)
    return f"{hours}小时{minutes}分钟" if hours else f"{minutes}分钟"


_STAGE_WORDS = {"new": "新", "update": "进展", "recovered": "恢复"}


def sms_text(f: FaultFacts, rb: Rulebook, stage: str, now: float) -> str:
    """NT-4: 【新|影响业务|严重故障|<name><summary>】YYYY/MM/DD HH:MM，<detail>."""
    when = f.opened_at if stage == "new" else now
    stamp = local(when).strftime("%Y/%m/%d %H:%M")
    end = f.ended_at if stage == "recovered" and f.ended_at is not None else now
    detail = []
    if f.circuit is not None:
        detail.append(f"专线{f.circuit.circuit_id}")
    if f.root_resource:
        detail.append(f"故障点{f.root_resource}")
    elif f.customer is None:
        detail.append(f"{rb.city_names.get(f.city, f.city)}{f.listed}家普通集团客户报障")
    else:
        detail.append("客户报障")
    word = "历时" if stage == "recovered" else "已历时"
    detail.append(f"{word}{_minutes(end - f.opened_at)}")
    head = f"【{_STAGE_WORDS[stage]}|影响业务|严重故障|{who(f, rb)}{summary(f, rb)}】"
    return f"{head}{stamp}，{'，'.join(detail)}"


def sms_recipients(f: FaultFacts, rb: Rulebook) -> list[str]:
    """NT-1: the province's list, then each affected city of this province."""
    cities = [f.city]
    circuit = f.circuit
    if f.kind != "complaint" and circuit is not None and circuit.span == "cross_city" and circuit.z_city:
        cities.append(circuit.z_city)
    out = list(rb.sms_province)
    for city in dict.fromkeys(cities):
        out.extend(t.format(city=city) for t in rb.sms_city)
    return out
