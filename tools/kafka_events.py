"""Feed a §3 event file to the production pipeline and compare what it decides with replay.

    python tools/kafka_events.py send EVENTS.jsonl [--until TIME]
    python tools/kafka_events.py compare EVENTS.jsonl --inventory INVENTORY.json [--until TIME]

`send` puts each line where the live service takes it — an `alarm` line's alarm on
faultline.alarms (keyed by resource), any other line on faultline.actions — with the line's
`at` as the message time, then a `tick` to `--until` that advances every city's clock.
Run the stages with FAULTLINE_CLOCK=stream so only message time moves their clocks; then
`compare` runs `faultline replay` on the same file in-process, reads faultline.decisions
(a fresh consumer group, from the start) until every expected decision arrived and the
topic stayed quiet, and reports whether the two agree, ids aside (the production pipeline
names faults per city, `F-GZ-000001`, replay `F-000001`). Exit 0 when they agree.
The broker is FAULTLINE_KAFKA_BOOTSTRAP (default 127.0.0.1:9092).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.commands.replay import Replay  # noqa: E402
from services.drivers.pipeline import Pipeline  # noqa: E402
from shared.clock import parse_time  # noqa: E402
from shared.topics import ACTIONS, ALARMS, DECISIONS  # noqa: E402
from shared.transport.kafka import Consumer, KafkaConfig, Producer  # noqa: E402

BATCH = 500     # each batch acknowledged before the next: well inside the router's arrival hold


def canonical(records: list[dict]) -> Counter:
    """Decisions with ids replaced by what they name, as a multiset (refusals left out: the
    pipeline dead-letters them instead of publishing them)."""
    faults, orders = {}, {}
    for r in records:
        if r["type"] == "fault.opened":
            faults[r["fault_id"]] = "|".join(str(r[k]) for k in ("kind", "circuit_id", "customer_id", "city",
                                                                 "service_type", "opened_at", "at"))
    for r in records:
        if r["type"] == "work_order.created":
            orders[r["work_order_id"]] = r["queue"] + "@" + faults[r["fault_ids"][0]]
    out: Counter = Counter()
    for r in records:
        if r["type"] == "input.rejected":
            continue
        c = dict(r)
        c.pop("incident_id", None)
        if "fault_id" in c:
            c["fault_id"] = faults.get(c["fault_id"], c["fault_id"])
        if "fault_ids" in c:
            c["fault_ids"] = sorted(faults[f] for f in c["fault_ids"])
        if "work_order_id" in c:
            c["work_order_id"] = orders[c["work_order_id"]]
        out[orjson.dumps(c, option=orjson.OPT_SORT_KEYS)] += 1
    return out


def replay_records(inventory, rulebook, lines: list[bytes], until: str | None, *,
                   pipeline=Pipeline) -> list[dict]:
    """What `faultline replay` prints for these lines (`pipeline`: the class that decides)."""
    out = io.BytesIO()
    Replay(pipeline(inventory, rulebook), out).run(io.BytesIO(b"\n".join(lines) + b"\n"),
                                                   parse_time(until) if until else None)
    return [orjson.loads(x) for x in out.getvalue().splitlines()]


def messages(lines: list[bytes], until: str | None) -> list[tuple]:
    """(topic, value, key, partition, timestamp_ms) for each line, then the closing tick."""
    out = []
    for raw in lines:
        if not raw.strip():
            continue
        obj = orjson.loads(raw)
        ts = int(parse_time(obj["at"]) * 1000)
        if obj["kind"] == "alarm":
            alarm = obj["alarm"]
            # Keyed by resource as a feed would; an alarm the decoder will refuse may lack it.
            key = alarm.get("resource_id") if type(alarm) is dict else None
            out.append((ALARMS, orjson.dumps(alarm), key if type(key) is str else None, None, ts))
        else:
            out.append((ACTIONS, raw, None, None, ts))
    if until:
        out.append((ACTIONS, orjson.dumps({"kind": "tick", "at": until}), None, None,
                    int(parse_time(until) * 1000)))
    return out


async def send(bootstrap: str, lines: list[bytes], until: str | None = None) -> int:
    producer = Producer(KafkaConfig(bootstrap))
    await producer.start()
    try:
        batch = messages(lines, until)
        for i in range(0, len(batch), BATCH):
            await producer.send_many(batch[i:i + BATCH])
        return len(batch)
    finally:
        await producer.stop()


async def read_decisions(bootstrap: str, *, expect: int, quiet_s: float = 2.0,
                         timeout_s: float = 120.0, topic: str = DECISIONS) -> list[dict]:
    """The records of faultline.decisions (or `topic`), once at least `expect` distinct ones
    arrived and none for `quiet_s` (or the timeout passed). A record re-published after a
    crash comes again with the same bytes: it is returned once."""
    consumer = Consumer(KafkaConfig(bootstrap), [topic], f"kafka-events-{time.time_ns()}")
    await consumer.start()
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msgs = await consumer.fetch(timeout_ms=500, max_records=5000)
            if msgs:
                values.extend(m.value for m in msgs)
                last = time.monotonic()
            elif len(set(values)) >= expect and time.monotonic() - last >= quiet_s:
                break
    finally:
        await consumer.stop()
    return [orjson.loads(v) for v in dict.fromkeys(values)]


def published(records: list[dict]) -> int:
    return sum(1 for r in records if r["type"] != "input.rejected")


async def compare(bootstrap: str, lines: list[bytes], inventory_path: str, rulebook_path: str | None,
                  until: str | None, timeout_s: float) -> int:
    from services.config import load_config

    inventory, rulebook = load_config(inventory_path, rulebook_path)
    expected = replay_records(inventory, rulebook, lines, until)
    got = await read_decisions(bootstrap, expect=published(expected), timeout_s=timeout_s)
    want, have = canonical(expected), canonical(got)
    if want == have:
        print(f"same {sum(want.values())} decisions as faultline replay (ids aside)")
        return 0
    print(f"replay: {sum(want.values())} decisions; faultline.decisions: {sum(have.values())}")
    for label, extra in (("only in replay", want - have), ("only on faultline.decisions", have - want)):
        for line in list(extra.elements())[:5]:
            print(f"{label}: {line.decode()}")
    return 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("send", "compare"):
        p = sub.add_parser(name)
        p.add_argument("events", type=Path)
        p.add_argument("--until", help="ISO-8601 time the clocks advance to at the end")
        if name == "compare":
            p.add_argument("--inventory", required=True)
            p.add_argument("--rulebook")
            p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the decisions")
    args = ap.parse_args(argv)
    bootstrap = os.environ.get("FAULTLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    lines = args.events.read_bytes().splitlines()
    if args.command == "send":
        n = asyncio.run(send(bootstrap, lines, args.until))
        print(f"sent {n} messages to {bootstrap}")
        return 0
    return asyncio.run(compare(bootstrap, lines, args.inventory, args.rulebook, args.until, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
