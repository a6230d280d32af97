"""`faultline run --demo`: the bundled Guangdong scenario on an accelerated clock, as a live log.

The scenario (samples/demo_events.jsonl, CONTRACT §3 input lines) is written against a
fixed morning; at start every `at` and `event_time` is shifted so the scenario's base
is the demo clock's now. Inputs go to the engine like any producer's; the log printer is
just a subscriber of faultline.decisions.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import orjson

from shared.clock import fmt_time, local, parse_time
from shared.inventory import Inventory
from shared.liveclock import Clock
from shared.rulebook import Rulebook
from shared.topics import ACTIONS, ALARMS, DEADLETTER, DECISIONS
from shared.transport.local import LocalTransport
from shared.transport.port import Producer, next_offsets

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
DEMO_EVENTS = SAMPLES / "demo_events.jsonl"
DEMO_INVENTORY = SAMPLES / "inventory.json"
TAIL_SECONDS = 2 * 3600          # --exit-after-demo: the timers of the next two simulated hours


@dataclass(frozen=True, slots=True)
class Step:
    at: float                    # relative to the scenario's base, seconds
    body: dict                   # the §3 input object without `at`


def load_scenario(path: Path = DEMO_EVENTS) -> list[Step]:
    """The scenario's lines with times relative to its base (the first line's minute)."""
    lines = [orjson.loads(raw) for raw in path.read_bytes().splitlines() if raw.strip()]
    first = parse_time(lines[0]["at"])
    base = first - first % 60
    steps = []
    for obj in lines:
        body = {k: v for k, v in obj.items() if k != "at"}
        if obj["kind"] == "alarm":
            alarm = dict(obj["alarm"])
            alarm["event_time"] = parse_time(alarm["event_time"]) - base
            body["alarm"] = alarm
        steps.append(Step(parse_time(obj["at"]) - base, body))
    return steps


def shifted(step: Step, origin: float) -> dict:
    """The step's input with its relative times placed after `origin`."""
    body = step.body
    if body["kind"] == "alarm":
        alarm = dict(body["alarm"])
        alarm["event_time"] = fmt_time(origin + alarm["event_time"])
        body = {**body, "alarm": alarm}
    return body


# ---------------------------------------------------------------------- the live log

class LiveLog:
    """Readable one-line renderings of inputs and records, Chinese titles intact."""

    def __init__(self, inventory: Inventory, rulebook: Rulebook, out: IO[str]) -> None:
        self.inventory = inventory
        self.rulebook = rulebook
        self.out = out

    def line(self, at: float | str, text: str) -> None:
        ts = parse_time(at) if isinstance(at, str) else at
        self.out.write(f"{local(ts):%H:%M:%S}  {text}\n")
        self.out.flush()

    def input(self, at: float, body: dict) -> None:
        self.line(at, "  → " + describe_input(body, self.rulebook))

    def record(self, rec: dict) -> None:
        text = describe_record(rec, self.inventory, self.rulebook)
        if text:
            self.line(rec["at"], text)


def describe_input(body: dict, rb: Rulebook) -> str:
    kind = body["kind"]
    if kind == "alarm":
        a = body["alarm"]
        state = "产生" if a["state"] == "raised" else "清除"
        return f"告警 {a['resource_id']} {a['probable_cause']} {state}  ({a['source']} #{a['alarm_id']})"
    if kind == "complaint":
        c = body["complaint"]
        city = rb.city_names.get(c["city"], c["city"])
        service = rb.service_names.get(c["service_type"], c["service_type"])
        return f"投诉 {c['customer_id']} {city} {service} ({c['channel']}) “{c.get('text', '')}”"
    detail = " ".join(f"{k}={v}" for k, v in body.items() if k not in ("kind", "select"))
    return f"操作 {kind} {orjson.dumps(body.get('select')).decode()} {detail}".rstrip()


def _hm(text: str) -> str:
    return f"{local(parse_time(text)):%H:%M:%S}"


def _opened(rec: dict, inv: Inventory, rb: Rulebook) -> str:
    words = {"outage": "中断", "degradation": "劣化", "complaint": "客户报障"}
    customer = inv.customers.get(rec["customer_id"]) if rec["customer_id"] else None
    service = rb.service_names.get(rec["service_type"], rec["service_type"])
    if customer is None:
        city = rb.city_names.get(rec["city"], rec["city"])
        who = f"{city} {service} 多家普通客户批量报障"
    else:
        who = f"{customer.name} {rec['circuit_id'] or service} {words.get(rec['kind'], rec['kind'])}"
    root = f" (root {rec['root_resource']})" if rec["root_resource"] else ""
    return f"故障 {rec['fault_id']} 打开  {who}{root}"


def describe_record(rec: dict, inv: Inventory, rb: Rulebook) -> str | None:  # noqa: C901 - a table
    t = rec["type"]
    if t == "fault.opened":
        return _opened(rec, inv, rb)
    if t == "fault.serious":
        how = "时长达到门限" if rec["trigger"] == "duration" else "确认全阻"
        return f"严重 {rec['fault_id']} {rec['rule']} ({how})"
    if t == "fault.cleared":
        sev = "严重故障" if rec["severity"] == "serious" else "一般故障"
        return f"恢复 {rec['fault_id']} {sev} 历时 {rec['duration_s'] // 60} 分钟"
    if t == "work_order.created":
        urgent = " [紧急]" if rec["priority"] == "urgent" else ""
        cc = f" cc {','.join(rec['cc'])}" if rec["cc"] else ""
        return f"工单 {rec['work_order_id']} → {rec['queue']} {rec['title']}{urgent} ({rec['rule']}){cc}"
    if t == "work_order.upgraded":
        return f"工单 {rec['work_order_id']} 升级为紧急"
    if t == "work_order.updated":
        return f"工单 {rec['work_order_id']} 合并故障 {', '.join(rec['fault_ids'])}"
    if t == "work_order.resolved":
        return f"工单 {rec['work_order_id']} 已解决"
    if t == "escalation":
        return f"上报 {rec['fault_id']} {rec['reason']} → {rec['to']}"
    if t == "onsite.required":
        return f"上站 {rec['fault_id']} {rec['queue']} 截止 {_hm(rec['deadline'])} ({rec['rule']})"
    if t == "deadline.missed":
        return f"超时 {rec['fault_id']} {rec['rule']} 截止 {_hm(rec['deadline'])}"
    if t == "sms":
        return f"短信 {rec['fault_id']} → {len(rec['recipients'])} 个部门  {rec['text']}"
    if t == "phone.notify":
        return f"电话 {rec['fault_id']} → {rec['target']}"
    if t == "report.due":
        return f"报告 {rec['fault_id']} 技术版故障报告 {local(parse_time(rec['due'])):%m-%d %H:%M} 前提交"
    if t == "fault.attributed":
        return f"归属 {rec['fault_id']} {rec['attribution']}"
    if t == "alarm.unmapped":
        return f"未入库资源告警 {rec['resource_id']} ({rec['source']} #{rec['alarm_id']})"
    return f"{t} {orjson.dumps({k: v for k, v in rec.items() if k not in ('type', 'at')}).decode()}"


# ---------------------------------------------------------------------- running it

class DemoService(Protocol):
    """What the demo feeds and watches: `faultline run`'s runtime (services/commands/run.Embedded)."""

    inventory: Inventory
    rulebook: Rulebook
    clock: Clock
    transport: LocalTransport
    producer: Producer

    async def tick(self) -> None: ...


async def print_decisions(svc: DemoService, live: LiveLog) -> None:
    """Every decision and refusal, as the loops publish them (a consumer group of its own)."""
    consumer = svc.transport.consumer([DECISIONS, DEADLETTER], "faultline-demo-log")
    await consumer.start()
    try:
        while True:
            msgs = await consumer.fetch(timeout_ms=1000)
            for msg in msgs:
                body = orjson.loads(msg.value)
                if msg.topic == DECISIONS:
                    live.record(body)
                else:
                    live.line(svc.clock.now(), f"  ✗ 拒绝: {body.get('reason')}")
            if msgs:
                await consumer.commit(next_offsets(msgs))
    finally:
        await consumer.stop()


async def run_demo(svc: DemoService, steps: list[Step], *, exit_after: bool,
                   on_done: Callable[[], None], out: IO[str] = sys.stdout) -> None:
    """Feed the scenario on the service's clock, as a producer of faultline.alarms and
    faultline.actions would; with exit_after, stop 2 h after the last input."""
    live = LiveLog(svc.inventory, svc.rulebook, out)
    printer = asyncio.create_task(print_decisions(svc, live))
    clock = svc.clock
    try:
        if svc.transport.end((ALARMS, 0)) or svc.transport.end((ACTIONS, 0)):
            out.write("demo: this database already holds inputs; not feeding the scenario again\n")
        else:
            origin = clock.now()
            for step in steps:
                await _sleep_until(clock, origin + step.at)
                body = shifted(step, origin)
                live.input(clock.now(), body)
                topic, value = (ALARMS, body["alarm"]) if body["kind"] == "alarm" else (ACTIONS, body)
                await svc.producer.send(topic, orjson.dumps(value))
            if exit_after:
                await _sleep_until(clock, origin + steps[-1].at + TAIL_SECONDS)
        if not exit_after:
            await printer                         # keep the log going until shutdown
            return
        await svc.tick()
        await asyncio.sleep(0.3)                  # let the printer write what the tick made
        live.line(clock.now(), "演示结束")
        on_done()
    finally:
        printer.cancel()


async def _sleep_until(clock, t: float) -> None:
    while (left := t - clock.now()) > 0:
        await asyncio.sleep(min(clock.real_seconds(left), 1.0))
