"""The router's consume → route → produce → commit loop (see services/drivers/city_router.py)."""

from __future__ import annotations

import asyncio
import logging
import time

from services.drivers.batches import pack_records
from services.drivers.city_router import ROUTED_TOPICS, ArrivalOrder, route_or_dead
from services.runtime.sessions import Commits, SessionLoop, joined
from shared.inventory import Inventory
from shared.transport.port import Producer, Transport, next_offsets

log = logging.getLogger("faultline.router")

HOLD_S = 0.3
ASK_EVERY_S = 0.05          # end-offset checks while a ripe message waits on a quiet partition
LAG_EVERY_S = 1.0


class RouterRunner(SessionLoop):
    def __init__(self, inventory: Inventory, transport: Transport, producer: Producer,
                 group_id: str = "faultline-router", hold_s: float = HOLD_S) -> None:
        self.inventory = inventory
        self.transport = transport
        self.producer = producer
        self.group_id = group_id
        self.hold_s = hold_s
        self.late = 0              # messages released after a later one: beyond the hold
        self.lag: dict[tuple[str, int], int] = {}
        # /healthz: True once a pass of the loop has completed, False from a failure until the
        # next pass completes, so a session that fails every few seconds never reads healthy.
        self.healthy = False
        self.idle = False          # the last pass fetched nothing and holds nothing back
        self.name = "router"

    def _down(self, *, failed: bool) -> None:
        self.healthy = self.idle = False

    async def _session(self, stop: asyncio.Event) -> None:
        order = ArrivalOrder(self.hold_s)

        async def revoked(tps):
            order.forget(tps)

        consumer = self.transport.consumer(list(ROUTED_TOPICS), self.group_id, on_revoked=revoked,
                                           single_active=True)
        released_upto = -1
        asked = lag_read = float("-inf")
        async with joined(consumer, stop) as consumer:
            commits = Commits(consumer)
            try:
                while consumer is not None and not stop.is_set():
                    fetched = await consumer.fetch(timeout_ms=100, max_records=2000)
                    order.add(fetched)
                    owned = consumer.assignment()
                    ask = order.waiting_on(owned)
                    if ask and time.monotonic() - asked >= ASK_EVERY_S:
                        asked = time.monotonic()              # before the request: what it shows is this late
                        order.drained(await consumer.drained(ask), asked)
                    if time.monotonic() - lag_read >= LAG_EVERY_S:    # for the gauge, read every 5 s
                        lag_read = time.monotonic()
                        self.lag = await consumer.lag()
                    ready = order.release(owned)
                    if ready:
                        released_upto = self._count_late(ready, released_upto)
                        # A message that cannot be routed is dead-lettered and committed like any
                        # other: retrying it could only fail again, and would hold every later one.
                        outs = [o for m in ready for o in route_or_dead(self.inventory, m)]
                        # One message per city for the lot (services/drivers/batches.py).
                        await self.producer.send_many([(topic, value, key, None, None)
                                                       for topic, value, key in pack_records(outs)])
                        await commits.commit(_commit_points(ready, order))
                    self.healthy = True
                    # Nothing came and nothing is held: all that reached the router is routed and on
                    # faultline.correlator.inputs (sent and acknowledged above), so a wall-clock tick of
                    # the shards now cannot overtake an earlier input (ShardRunner.ready_to_tick).
                    self.idle = not fetched and not order.pending()
            finally:
                await commits.settle()           # the last commit lands before the consumer stops

    def _count_late(self, ready, released_upto: int) -> int:
        """A message whose time is before one already routed reached the broker more than the
        hold after it: it is handled in arrival order (the shard's clock does not go back), so
        the decisions may differ from a replay of the same lines. Counted and logged, because
        a producer or broker that is that far behind is something the operator must see."""
        late = [m for m in ready if m.timestamp_ms < released_upto]
        for m in ready:
            released_upto = max(released_upto, m.timestamp_ms)
        if late:
            self.late += len(late)
            worst = min(late, key=lambda m: m.timestamp_ms)
            log.warning("%d message(s) arrived more than the hold (%.0f ms) after later ones; the latest "
                        "by %d ms (%s[%d]@%d); handled in arrival order", len(late), self.hold_s * 1000,
                        released_upto - worst.timestamp_ms, worst.topic, worst.partition, worst.offset)
        return released_upto


def _commit_points(released, order: ArrivalOrder) -> dict[tuple[str, int], int]:
    """Per partition: past the last released message, but never past a held-back one."""
    points = next_offsets(released)
    for _ts, _seq, topic, partition, offset, _fetched, _m in order.heap:
        tp = (topic, partition)
        if tp in points and offset < points[tp]:
            points[tp] = offset
    return points
