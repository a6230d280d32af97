"""The router's consume → route → produce → commit loop (see services/drivers/city_router.py),
asks included: while one is under way, later inputs wait in `queue`, uncommitted."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

import orjson

from services.drivers.batches import pack_records
from services.drivers.city_router import ROUTED_TOPICS, ArrivalOrder, Asking, route_or_dead
from services.drivers.sharding import all_shards
from services.runtime.sessions import Commits, SessionLoop, joined
from shared.inventory import Inventory
from shared.topics import ANSWERS
from shared.transport.port import Msg, Producer, Transport, next_offsets

log = logging.getLogger("faultline.router")

HOLD_S = 0.3
ASK_EVERY_S = 0.05          # end-offset checks while a ripe message waits on a quiet partition
LAG_EVERY_S = 1.0
EARLY_KEPT = 1000            # asks whose answers are kept before the ask is made
MAX_ASK_ID = 1024           # an ask id is a message's coordinates: longer is not one
WAIT_WARN_S = 30.0          # an ask unanswered this long is logged (and again as long again)


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
        behind = Behind(all_shards(self.inventory))
        released_upto = -1

        async def revoked(tps):
            nonlocal released_upto
            order.forget(tps)
            behind.forget(tps)
            released_upto = -1

        # The shards' answers come on the router's own consumer: one active member owns them
        # all, with the inputs they answer about.
        consumer = self.transport.consumer([*ROUTED_TOPICS, ANSWERS], self.group_id, on_revoked=revoked,
                                           single_active=True)
        asked = lag_read = float("-inf")
        async with joined(consumer, stop) as consumer:
            commits = Commits(consumer)
            try:
                while consumer is not None and not stop.is_set():
                    fetched = await consumer.fetch(timeout_ms=100, max_records=2000)
                    if behind.restart:
                        raise RuntimeError("a rebalance revoked some partitions while later messages "
                                           "of others waited behind an ask: starting again from the "
                                           "committed offsets")
                    answers = [m for m in fetched if m.topic == ANSWERS]
                    if answers:
                        fetched = [m for m in fetched if m.topic != ANSWERS]
                        behind.take(answers)
                    order.add(fetched)
                    owned = {tp for tp in consumer.assignment() if tp[0] != ANSWERS}
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
                        behind.queue.extend(ready)
                    outs, done = behind.route(self.inventory)
                    behind.still_waiting()
                    if outs:
                        # One message per city for the lot (services/drivers/batches.py).
                        await self.producer.send_many([(topic, value, key, None, None)
                                                       for topic, value, key in pack_records(outs)])
                    points = _commit_points(done, order, behind.held())
                    points.update(next_offsets(answers))     # an answer lost is asked again
                    if points:
                        await commits.commit(points)
                    self.healthy = True
                    # Nothing came and nothing is held: all that reached the router is routed and on
                    # faultline.correlator.inputs (sent and acknowledged above), so a wall-clock tick of
                    # the shards now cannot overtake an earlier input (ShardRunner.ready_to_tick).
                    self.idle = not fetched and not order.pending() and not behind.held()
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


class Behind:
    """What waits behind an ask: messages released in order but not yet routed, the ask
    under way (an input asked of several shards, services/drivers/city_router.py), and the
    shards' answers kept by ask id until their ask takes them."""

    def __init__(self, shards: list[str]) -> None:
        self.shards = frozenset(shards)      # who may answer: the inventory's shards
        self.queue: deque[Msg] = deque()
        self.asking: Asking | None = None
        self.early: dict[str, dict[str, dict]] = {}
        self.restart = False
        self.asked_since = self.warned_at = 0.0
        self.last_ms, self.tie = -1, 0        # the position of the last message routed

    def route(self, inventory: Inventory) -> tuple[list, list[Msg]]:
        """Route what waits, in order, up to the next ask not yet answered: the messages to
        send, and the messages done (to commit)."""
        outs: list = []
        done: list[Msg] = []
        while True:
            if self.asking is not None:
                if self.asking.waiting_on:
                    break
                outs.extend(self.asking.settled(inventory))
                done.append(self.asking.msg)
                self.asking = None
            if not self.queue:
                break
            m = self.queue.popleft()
            self.tie = self.tie + 1 if m.timestamp_ms == self.last_ms else 0
            self.last_ms = m.timestamp_ms
            # A message that cannot be routed is dead-lettered and committed like any other:
            # retrying it could only fail again, and would hold every later one.
            routed = route_or_dead(inventory, m, self.tie)
            if isinstance(routed, Asking):
                self.asking = routed
                self.asked_since = time.monotonic()
                outs.extend(routed.asks())
                self._settle_from_early()            # answered before it was asked again
            else:
                outs.extend(routed)
                done.append(m)
        return outs, done

    def held(self) -> list[Msg]:
        return [*self.queue, *([self.asking.msg] if self.asking is not None else [])]

    def take(self, answers: list[Msg]) -> None:
        """Keep the answers by ask id until their ask takes them (Asking.take checks their
        shape). An answer may come before its ask is made again: to a router that stopped,
        redelivered with the ask. The newest EARLY_KEPT asks' are kept, from the inventory's
        shards only, so what is kept stays bounded; the others are asked again."""
        for m in answers:
            try:
                obj = orjson.loads(m.value)
            except orjson.JSONDecodeError:
                obj = None
            if (type(obj) is not dict or type(obj.get("shard")) is not str
                    or obj["shard"] not in self.shards or type(obj.get("ask")) is not str
                    or len(obj["ask"]) > MAX_ASK_ID or "answer" not in obj):
                log.warning("not an answer on %s[%d]@%d; passed", m.topic, m.partition, m.offset)
                continue
            self.early.setdefault(obj["ask"], {})[obj["shard"]] = obj["answer"]
            while len(self.early) > EARLY_KEPT:
                del self.early[next(iter(self.early))]
        if self.asking is not None:
            self._settle_from_early()

    def _settle_from_early(self) -> None:
        for shard, said in self.early.pop(self.asking.msg.coordinates, {}).items():
            self.asking.take(shard, said)

    def forget(self, tps: set[tuple[str, int]]) -> None:
        """Partitions revoked: nothing held is committed, so their next owner (maybe this
        member again) fetches it anew from the committed offsets and routes it then, in
        order. (The single-active assignment revokes all at once; were a held message's
        partition kept, the session starts again from the committed offsets instead.)"""
        self.restart = self.restart or any((m.topic, m.partition) not in tps for m in self.held())
        self.queue.clear()
        self.asking = None

    def still_waiting(self) -> None:
        """Said every WAIT_WARN_S while an ask goes unanswered (a shard's process is down)."""
        if self.asking is None:
            return
        now = time.monotonic()
        if now - self.asked_since >= WAIT_WARN_S and now - self.warned_at >= WAIT_WARN_S:
            self.warned_at = now
            asking = self.asking
            log.warning("%s: waiting %.0f s for the answers of shard(s) %s; later inputs wait",
                        asking.msg.coordinates, now - self.asked_since, ", ".join(asking.waiting_on))


def _commit_points(released, order: ArrivalOrder, held: list[Msg]) -> dict[tuple[str, int], int]:
    """Per partition: past the last routed message, but never past one held back (in the
    arrival order, or released and waiting behind an ask)."""
    points = next_offsets(released)
    waiting = [(h[2], h[3], h[4]) for h in order.heap] + [(m.topic, m.partition, m.offset) for m in held]
    for topic, partition, offset in waiting:
        tp = (topic, partition)
        if tp in points and offset < points[tp]:
            points[tp] = offset
    return points
