"""The correlate stage's router: faultline.alarms and faultline.actions → city shards.

Producers may key those topics however they like (or not at all). The router reads them
as one stream in arrival order — it merges the partitions by message time, holding a
message back while another partition could still deliver an earlier one (ArrivalOrder)
— validates each message, stamps its arrival (`at`: the message's own time, or the `at`
of a CONTRACT §3 action), and republishes it to faultline.correlator.inputs keyed by the
owning city (services/drivers/sharding.py). Refused messages go to faultline.deadletter with the
reason and their topic, partition and offset. Offsets are committed only after the
broker acknowledged what they became; a crash in between re-sends them, and the shard's
log skips the duplicate by its source key.

An input whose effect depends on state several shards hold — an operator action whose
select may mean a fault in any of them, or a complaint (services/drivers/sharding.py, Ask) —
is *asked*: the router sends each of those shards an ask at the input's place in the order,
holds every later input until all have answered (faultline.correlator.answers), and then
sends the input to the one shard the answers settle on, with the fault it means (`pick`),
or dead-letters it with replay's own refusal (CL-4). Nothing reaches those shards in
between, so each answers about exactly the state replay has at that input. The asked
message is committed only once settled; a router that stops before asks again, and a
shard that answered before says the same again (services/drivers/stage_logic.py).

No message stops the router: one whose routing raises (a case nothing above foresaw) is
dead-lettered with the error and passed like any refusal (`route_or_dead`), so the same
offset is never retried forever.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from alarm_ingest.normalized import alarm_from_dict
from services.drivers.dead_letters import MAX_VALUE, NOTHING, dead_letter
from services.drivers.envelope import decode_input
from services.drivers.sharding import Ask, all_shards, checked_answer, settle
from services.drivers.split import shards_for
from services.drivers.stage_logic import tick_message
from shared.clock import TimeFormatError, parse_time
from shared.inventory import Inventory
from shared.model import Action, Complaint, Rejected
from shared.topics import ACTIONS, ALARMS, CORRELATOR_INPUTS, DEADLETTER
from shared.transport.port import Msg
from shared.wire import ACTION_KINDS, INTERNAL, describe

log = logging.getLogger("faultline.router")

Out = tuple[str, bytes, str | None]          # topic, value, key
ACTIONS_KINDS = ("complaint", *ACTION_KINDS)  # what faultline.actions carries (CONTRACT §4)

# aiokafka's max_request_size is 1 MiB: a routed value or dead letter beyond it could never
# be sent, and the message would be retried forever. Kept values stop well short of it
# (services/drivers/dead_letters.py).


@dataclass(slots=True)
class Asking:
    """A message whose input is asked of several shards before it goes to one (Ask)."""

    msg: Msg
    event: Action | Complaint
    body: dict                     # its CONTRACT §3 object
    at: float
    shards: tuple[str, ...]
    # Its place in the input order: (time, place among the messages of that time released
    # before it). A shard orders faults opened by inputs of different shards by it.
    position: list[int]
    answers: dict[str, dict] = field(default_factory=dict)

    def asks(self) -> list[Out]:
        """The ask to each shard, with a source key of its own (`<the input's>?<shard>`: the
        input's is kept for the input, and every key names one entry of one shard's log)."""
        source = self.msg.coordinates
        return [(CORRELATOR_INPUTS, orjson.dumps({"at": self.at, "source": f"{source}?{shard}",
                                                  "ask": {"id": source, "input": self.body}}), shard)
                for shard in self.shards]

    def take(self, shard: str, said: object) -> None:
        """A shard's answer, if it is one of the shards asked and the answer has the shape a
        shard gives for this kind of input (any other is passed, and the shard waited on)."""
        said = checked_answer(said, type(self.event) is Complaint)
        if shard in self.shards and said is not None:
            self.answers[shard] = said

    @property
    def waiting_on(self) -> list[str]:
        return [s for s in self.shards if s not in self.answers]

    def settled(self, inventory: Inventory) -> list[Out]:
        """Once every shard has answered: the input to the shard it means, or its refusal."""
        where = settle(inventory, self.event, self.answers)
        if isinstance(where, Rejected):
            return [dead(self.msg, where.reason, self.body)]
        shard, pick = where
        routed = {"at": self.at, "source": self.msg.coordinates, "input": self.body, "pos": self.position}
        if pick is not None:
            routed["pick"] = pick
        return [(CORRELATOR_INPUTS, orjson.dumps(routed), shard)]


def route(inventory: Inventory, msg: Msg, tie: int = 0) -> list[Out] | Asking:
    """What one message of faultline.alarms or faultline.actions becomes: messages to send
    (the input to its shards, or a dead letter), or an Asking. `tie`: how many messages of
    the same time the router released before it (its place among them)."""
    source = msg.coordinates                     # the shard's dedup key for it
    try:
        obj = orjson.loads(msg.value)
    except orjson.JSONDecodeError as err:
        return [dead(msg, f"not valid JSON: {err}")]
    at = msg.timestamp_ms / 1000
    if msg.topic == ALARMS:
        event, body = alarm_from_dict(obj), {"kind": "alarm", "alarm": obj}
    else:
        if type(obj) is not dict:
            return [dead(msg, "expected a JSON object with kind", obj)]
        if obj.get("at") is not None:
            try:
                at = parse_time(obj["at"])
            except TimeFormatError as err:
                return [dead(msg, f"at: {err}", obj)]
        if obj.get("kind") == "tick":
            return [(CORRELATOR_INPUTS, tick_message(at), city) for city in all_shards(inventory)]
        event, body = decode_input(obj, ACTIONS_KINDS), obj
    if isinstance(event, Rejected):
        return [dead(msg, event.reason, obj)]
    cities = shards_for(inventory, event)
    if isinstance(cities, Rejected):
        return [dead(msg, cities.reason, obj)]
    if isinstance(cities, Ask):
        asking = Asking(msg, event, body, at, cities.shards, [msg.timestamp_ms, tie])
        size = len(asking.asks()[0][1])
        if size > MAX_VALUE:
            return [dead(msg, f"message too large: {size} bytes routed, at most {MAX_VALUE}")]
        return asking
    # The same for every city.
    value = orjson.dumps({"at": at, "source": source, "input": body, "pos": [msg.timestamp_ms, tie]})
    if len(value) > MAX_VALUE:
        return [dead(msg, f"message too large: {len(value)} bytes routed, at most {MAX_VALUE}")]
    return [(CORRELATOR_INPUTS, value, city) for city in cities]


def route_or_dead(inventory: Inventory, msg: Msg, tie: int = 0) -> list[Out] | Asking:
    """route(), but an unexpected error while routing one message dead-letters that message."""
    try:
        return route(inventory, msg, tie)
    except Exception as err:
        log.exception("internal error while routing %s[%d]@%d; dead-lettered", msg.topic, msg.partition,
                      msg.offset)
        return [dead(msg, f"{INTERNAL}: {describe(err)}")]


def dead(msg: Msg, reason: str, value: object = NOTHING, stage: str = "router") -> Out:
    """A dead letter naming the message (topic, partition, offset) with the reason and the value:
    the decoded JSON when given and it encodes within MAX_KEPT bytes, else the raw text (cut to
    fit, with `truncated`; services/drivers/dead_letters.py). Never raises: a letter must
    always be sendable."""
    return (DEADLETTER, dead_letter(reason, stage, value, source=msg.coordinates, msg=msg, raw=msg.value),
            _key(msg))


def _key(msg: Msg) -> str | None:
    """The message's own key, unless it is too long to be a key."""
    return msg.key if msg.key is None or len(msg.key) <= 1024 else None


class ArrivalOrder:
    """Merges partitions into one stream by message time, then the order they were fetched.

    Producers send to several partitions at once, so a message can reach the broker a
    little after a later-stamped one on another partition. The router allows that skew up
    to `hold_s` (FAULTLINE_ARRIVAL_HOLD_MS): a message fetched at f is released only when
    every owned partition has either shown a message at least as late, or been found
    drained (`drained`) by an end-offset check begun at or after f + hold_s — so anything
    earlier that reached the broker within the hold was fetched and goes first. A check
    is only trusted when made that late: a fetch response or a check from before could
    predate a record still on its way. A message later than the hold is handled when it
    comes (the runner counts it).

    Messages of the same millisecond go in the order they were fetched: on the local
    transport that is the order they were sent (one global append order, so `faultline
    run` takes an alarm and an action of the same instant as a replay file lists them); on
    Kafka, partitions carry no order between them, and a tie goes as the fetch returned it."""

    def __init__(self, hold_s: float = 0.3, now: Callable[[], float] = time.monotonic) -> None:
        self.hold_s = hold_s
        self.now = now
        self.heap: list[tuple[int, int, str, int, int, float, Msg]] = []   # (ts, seq, tp, offset, …)
        self._seq = 0
        self.latest: dict[tuple[str, int], int] = {}
        self.drained_at: dict[tuple[str, int], float] = {}

    def add(self, msgs: list[Msg]) -> None:
        fetched = self.now()
        latest = self.latest
        for m in msgs:
            self._seq += 1
            heapq.heappush(self.heap, (m.timestamp_ms, self._seq, m.topic, m.partition, m.offset, fetched, m))
            tp = (m.topic, m.partition)
            if latest.get(tp, -1) < m.timestamp_ms:
                latest[tp] = m.timestamp_ms

    def drained(self, tps: set[tuple[str, int]], asked_at: float) -> None:
        """These partitions had nothing left to fetch when a check begun at `asked_at` ran."""
        for tp in tps:
            if self.drained_at.get(tp, float("-inf")) < asked_at:
                self.drained_at[tp] = asked_at

    def forget(self, tps: set[tuple[str, int]]) -> None:
        self.heap = [h for h in self.heap if (h[2], h[3]) not in tps]
        heapq.heapify(self.heap)
        for tp in tps:
            self.latest.pop(tp, None)
            self.drained_at.pop(tp, None)

    def _holding(self, owned: set[tuple[str, int]], ts: int, fetched: float) -> list[tuple[str, int]]:
        """The partitions that could still deliver something earlier than (ts, fetched)."""
        need = fetched + self.hold_s
        latest, drained_at, never = self.latest, self.drained_at, float("-inf")
        return [tp for tp in owned if latest.get(tp, -1) < ts and drained_at.get(tp, never) < need]

    def waiting_on(self, owned: set[tuple[str, int]]) -> set[tuple[str, int]]:
        """The partitions whose drain check would let the first held message go (none while
        it is still within its hold: a check then would come too early to count)."""
        if not self.heap:
            return set()
        ts, _s, _t, _p, _o, fetched, _m = self.heap[0]
        if fetched > self.now() - self.hold_s:
            return set()
        return set(self._holding(owned, ts, fetched))

    def release(self, owned: set[tuple[str, int]]) -> list[Msg]:
        ripe = self.now() - self.hold_s
        heap, out = self.heap, []
        while heap:
            ts, _s, _t, _p, _o, fetched, m = heap[0]
            if fetched > ripe or self._holding(owned, ts, fetched):
                break
            out.append(heapq.heappop(heap)[6])
        return out

    def pending(self) -> int:
        return len(self.heap)


ROUTED_TOPICS = (ALARMS, ACTIONS)
