"""The split pipeline in one process: city shards of the correlator and the dispatcher,
connected by notices that cross a JSON boundary exactly as they cross Kafka.

It has Pipeline's surface (`clock`, `submit`, `advance`, `alarms_in`), so Replay can drive
it; the equivalence tests run the same inputs through both and compare the decisions.
The Kafka runners (services/drivers/stage_logic.py) use the same shards and the same codec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from services.drivers.city_shards import NOTICE, RECORD, TICK, CorrelatorShard, DispatcherShard
from services.drivers.sharding import Ask, alarm_shards, complaint_route, select_shards, settle
from shared.facts import decode_notice, encode_notice
from shared.inventory import Inventory
from shared.model import Action, Alarm, Complaint, Rejected
from shared.rulebook import Rulebook


def shards_for(inventory: Inventory, event) -> list[str] | Ask | Rejected:
    """The shards that take an input; for an action whose fault may be in several, the shards
    to ask first (Ask); for an action no shard can match, replay's refusal."""
    if type(event) is Alarm:
        return alarm_shards(inventory, event.resource_id)
    if type(event) is Complaint:
        return complaint_route(inventory, event)
    assert isinstance(event, Action)
    return select_shards(inventory, event.select)


class SplitPipeline:
    def __init__(self, inventory: Inventory, rulebook: Rulebook,
                 warn: Callable[[str], None] | None = None) -> None:
        self.inventory = inventory
        self.rulebook = rulebook
        self.warn = warn
        self.correlators: dict[str, CorrelatorShard] = {}
        self.dispatchers: dict[str, DispatcherShard] = {}
        self.clock: float | None = None
        self.alarms_in = 0
        self.inputs = 0                          # the input order (Correlator.position)

    def shard(self, city: str) -> tuple[CorrelatorShard, DispatcherShard]:
        corr = self.correlators.get(city)
        if corr is None:
            corr = self.correlators[city] = CorrelatorShard(city, self.inventory, self.rulebook)
            self.dispatchers[city] = DispatcherShard(city, self.rulebook, self.warn)
        return corr, self.dispatchers[city]

    def _deliver(self, city: str, outs: list, records: list[dict]) -> Rejected | None:
        disp = self.dispatchers[city]
        for item in outs:
            if item[0] == RECORD:
                records.append(item[1])
            elif item[0] == NOTICE:
                decoded = decode_notice(encode_notice(item[1], item[2], item[3]), self.inventory)
                if isinstance(decoded, Rejected):    # our own encoding refused: say so, do not crash
                    return Rejected(f"notice to the dispatcher: {decoded.reason}")
                made, refused = disp.handle(*decoded)
                records.extend(made)
                if refused is not None:
                    return refused
            elif item[0] == TICK:
                records.extend(disp.tick(item[1]))
        return None

    def submit(self, event, now: float) -> tuple[list[dict], Rejected | None]:
        if self.clock is None or now > self.clock:
            self.clock = now
        if type(event) is Alarm:
            self.alarms_in += 1
        cities = shards_for(self.inventory, event)
        if isinstance(cities, Rejected):
            return [], cities
        records: list[dict] = []
        pick = None
        self.inputs += 1
        if isinstance(cities, Ask):              # the router's ask, answered at once here
            answers = {}
            for city in cities.shards:
                outs, answers[city] = self.shard(city)[0].ask("-", event, now)
                self._deliver(city, outs, records)
            settled = settle(self.inventory, event, answers)
            if isinstance(settled, Rejected):
                return records, settled
            cities, pick = [settled[0]], settled[1]
        refused = None
        for city in cities:
            corr, _disp = self.shard(city)
            outs, rejected = corr.handle(event, now, pick, (self.inputs,))
            refused = self._deliver(city, outs, records) or rejected or refused
        return records, refused

    def submit_alarm(self, alarm: Alarm, now: float) -> list[dict]:
        return self.submit(alarm, now)[0]

    def advance(self, to: float) -> list[dict]:
        """Every shard's clock to `to` (a broadcast tick)."""
        return [rec for chunk in self.advance_chunks(to) for rec in chunk]

    def advance_chunks(self, to: float) -> Iterator[list[dict]]:
        """advance(to) one shard at a time (Replay writes each as it comes). A shard's tick
        is one list (services/drivers/city_shards.py), so this bounds memory by a shard, not a record."""
        if self.clock is None or to > self.clock:
            self.clock = to
        for city in sorted(self.correlators):
            records: list[dict] = []
            self._deliver(city, self.correlators[city].tick(to), records)
            if records:
                yield records
