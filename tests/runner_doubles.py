"""What the runner tests share: a stand-in for the Kafka producer, a correlate stage with a
bug in it, and bench/engine.py's seeded storm generator."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import orjson

from services.drivers.batches import items_of
from services.drivers.stage_logic import CorrelateLogic

ROOT = Path(__file__).resolve().parent.parent
POISON = "poison-1"


def _bench_engine():
    """bench/engine.py (not a package), loaded once."""
    name = "faultline_bench_engine"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "engine.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


bench = _bench_engine()


class Recorder:
    """Stands in for the Kafka producer: keeps what would have been sent, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, str | None]] = []

    async def send_many(self, records):
        self.sent.extend((topic, value, key) for topic, value, key, _p, _ts in records)
        return [(0, i) for i, _r in enumerate(records)]

    def values(self, topic: str) -> list[bytes]:
        """The values sent to `topic`, as sent."""
        return [v for t, v, _k in self.sent if t == topic]

    def on(self, topic: str) -> list[dict]:
        """What was sent to `topic`, decoded, a batch message's inputs each on its own."""
        out = []
        for value in self.values(topic):
            body = orjson.loads(value)
            out.extend(items_of(body) or [body])
        return out


class PoisonCorrelate(CorrelateLogic):
    """The real correlate stage, except that the alarm POISON first changes the shard (it
    raises the other route of China Southern's line) and then raises, as a bug would."""

    def step(self, core, body, seq):
        alarm = (body.get("input") or {}).get("alarm") or {}
        if alarm.get("alarm_id") == POISON:
            half = {**body, "input": {"kind": "alarm", "alarm": {**alarm, "alarm_id": "half-way",
                                                                 "resource_id": "GZ-OTN-B:2-1-4"}}}
            super().step(core, half, seq)
            raise RuntimeError("boom in the rules")
        return super().step(core, body, seq)


class RouterDouble:
    """The router's routing of one message at a time, its asks answered at once by a split
    pipeline fed the same inputs (the shards' state at each input), for tests that feed a
    shard runner what the router would send it without running the router."""

    def __init__(self, inventory, rulebook) -> None:
        from services.drivers.split import SplitPipeline

        self.inventory = inventory
        self.shards = SplitPipeline(inventory, rulebook)

    def route(self, msg) -> list[tuple[str, bytes, str | None]]:
        from services.drivers.city_router import Asking, route
        from services.drivers.envelope import decode_input
        from shared.model import Rejected
        from shared.topics import CORRELATOR_INPUTS

        routed = route(self.inventory, msg)
        if isinstance(routed, Asking):
            for shard in routed.shards:
                outs, said = self.shards.shard(shard)[0].ask("-", routed.event, routed.at)
                self.shards._deliver(shard, outs, [])
                routed.take(shard, said)
            routed = routed.settled(self.inventory)
        inputs = [orjson.loads(v) for t, v, _k in routed if t == CORRELATOR_INPUTS]
        if inputs and "tick" in inputs[0]:
            self.shards.advance(inputs[0]["tick"])
        elif inputs:
            event = decode_input(inputs[0]["input"])
            if not isinstance(event, Rejected):
                self.shards.submit(event, inputs[0]["at"])
        return routed
