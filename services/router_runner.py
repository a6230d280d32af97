"""The router's consume → route → produce → commit loop (see services/router.py)."""

from __future__ import annotations

import asyncio
import logging
import time

from services.router import ROUTED_TOPICS, ArrivalOrder, route
from services.shard_runner import until_stopped
from shared.inventory import Inventory
from shared.kafka import Consumer, KafkaConfig, Producer
from shared.kafka_assign import SingleActiveAssignor

log = logging.getLogger("faultline.router")

IDLE_S = 1.0


class RouterRunner:
    def __init__(self, inventory: Inventory, kafka: KafkaConfig, producer: Producer,
                 group_id: str = "faultline-router") -> None:
        self.inventory = inventory
        self.kafka = kafka
        self.producer = producer
        self.group_id = group_id
        self.routed = 0
        self.lag: dict[tuple[str, int], int] = {}
        self.healthy = False

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            try:
                await self._session(stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.healthy = False
                log.exception("router session failed; again in %.1fs", backoff)
                try:
                    await asyncio.wait_for(stop.wait(), backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, 10.0)

    async def _session(self, stop: asyncio.Event) -> None:
        started = time.monotonic()
        last_message: dict[tuple[str, int], float] = {}

        def caught_up(tp: tuple[str, int]) -> bool:
            """Nothing left to fetch — or, while the broker has not said, quiet for a second
            (an idle partition must not hold the others back)."""
            if tp in self.lag:
                return self.lag[tp] == 0
            return time.monotonic() - last_message.get(tp, started) > IDLE_S

        order = ArrivalOrder(caught_up)

        async def revoked(tps):
            order.forget(tps)

        consumer = Consumer(self.kafka, list(ROUTED_TOPICS), self.group_id, on_revoked=revoked,
                            assignors=(SingleActiveAssignor,))
        if not await until_stopped(consumer.start(deadline_s=None), stop):
            return
        self.healthy = True
        try:
            while not stop.is_set():
                fetched = await consumer.fetch(timeout_ms=100, max_records=1000)
                now = time.monotonic()
                for m in fetched:
                    last_message[(m.topic, m.partition)] = now
                order.add(fetched)
                self.lag = await consumer.lag()
                ready = order.release(consumer.assignment())
                if not ready:
                    continue
                outs = [o for m in ready for o in route(self.inventory, m)]
                await self.producer.send_many([(topic, value, key, None, None) for topic, value, key in outs])
                self.routed += len(ready)
                await consumer.commit(_commit_points(ready, order))
        finally:
            await consumer.stop()


def _commit_points(released, order: ArrivalOrder) -> dict[tuple[str, int], int]:
    """Per partition: past the last released message, but never past a held-back one."""
    points: dict[tuple[str, int], int] = {}
    for m in released:
        tp = (m.topic, m.partition)
        points[tp] = max(points.get(tp, 0), m.offset + 1)
    for _ts, topic, partition, offset, _fetched, _m in order.heap:
        tp = (topic, partition)
        if tp in points and offset < points[tp]:
            points[tp] = offset
    return points
