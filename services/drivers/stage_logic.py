"""The correlate and dispatch stages of the Kafka pipeline: what each message means to a
city shard. The runner (services/runtime/shard_runner.py) does the I/O around them.

faultline.correlator.inputs (key: city), from the router:
    {"at": <Unix s>, "source": "<topic>:<partition>:<offset>", "input": <CONTRACT §3 object>,
     "pos": [<place in the input order>…], "pick": "<fault id>"}      (pos, pick: optional)
    {"at": …, "source": "<the input's source>?<city>", "ask": {"id": "<the input's source>",
     "input": <§3 object>}}                    (an ask: services/drivers/city_router.py)
    {"tick": <Unix s>}                                   (stream clock only)
faultline.correlator.answers (key: city), correlate → router, one per ask:
    {"ask": "<id>", "shard": "<city>", "answer": <sharding.answer>}
faultline.faults (key: city), correlator → dispatcher:
    {"id": "<city>:<seq>:<n>", "notice": …, "key": [due, fault, rank], "now": <Unix s>}
    {"tick": <Unix s>}

Anything else on these topics is refused with a reason (the runner dead-letters it): a
message not of these shapes, or a time that is not a number inside the sane window (a
clock moved to the year 30000 would fire every timer of the shard at once, for good).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from services.drivers.city_shards import NOTICE, RECORD, TICK, CorrelatorShard, DispatcherShard
from services.drivers.envelope import decode_input
from services.drivers.sharding import alarm_shards, all_shards
from shared.clock import TIME_MAX_TEXT, TIME_MIN_TEXT, in_window
from shared.facts import ACK, decode_notice, encode_notice
from shared.inventory import Inventory
from shared.model import Action, Complaint, Rejected
from shared.rulebook import Rulebook
from shared.topics import ANSWERS, CORRELATOR_INPUTS, DECISIONS, FAULTS, workorders_topic
from shared.wire import show


@dataclass(slots=True)
class Entry:
    seq: int
    kind: str                     # input | tick | refused
    clock: float
    body: dict | None
    source_key: str | None


@dataclass(slots=True)
class Step:
    """What one input or tick did to a shard, for the log and the outbox."""

    log: bool                                            # store it in the shard's log
    outgoing: dict[str, list[bytes]] = field(default_factory=dict)   # topic → message values
    records: list[dict] = field(default_factory=list)    # decision records (read model)
    refused: str | None = None
    inputs: list[tuple[str, dict, float]] = field(default_factory=list)   # (kind, body, at) kept
    # Read-model state no record carries, as (table, key, values) updates (shared.db.projection.apply_state)
    state: list[tuple[str, dict, dict]] = field(default_factory=list)
    # Messages sent at once, before the step is stored: what the shard would say the same
    # again if the step were lost (its inputs come again, and make the same state).
    at_once: list[tuple[str, bytes]] = field(default_factory=list)


def tick_message(t: float) -> bytes:
    return orjson.dumps({"tick": t})


def _instant(value: object, name: str) -> str | None:
    """Why `value` is not a usable Unix time (None when it is)."""
    if type(value) not in (int, float):
        return f"{name}: expected Unix seconds, got {type(value).__name__}"
    if not in_window(value):                 # the sane window of shared.clock (NaN is outside)
        return f"{name}: {show(value)} is outside {TIME_MIN_TEXT} … {TIME_MAX_TEXT}"
    return None


def _clock_of(body: dict, name: str) -> float | None:
    value = body["tick"] if "tick" in body else body.get(name)
    return None if _instant(value, name) is not None else float(value)


class CorrelateLogic:
    stage = "correlate"
    input_topic = CORRELATOR_INPUTS

    def __init__(self, inventory: Inventory, rulebook: Rulebook) -> None:
        self.inventory = inventory
        self.rulebook = rulebook
        self.known_shards = frozenset(all_shards(inventory))   # the only keys the router writes

    def new_shard(self, shard: str) -> CorrelatorShard:
        return CorrelatorShard(shard, self.inventory, self.rulebook)

    def rerun(self, core: CorrelatorShard, entry: Entry) -> int:
        """Re-run a logged entry (nothing is emitted); the number of records it made again."""
        body = entry.body
        if entry.kind == "tick" or (body is not None and "tick" in body):
            outs = core.tick(entry.clock)
        elif entry.kind == "input" and "ask" in body:
            event = decode_input(body["ask"]["input"])
            if type(event) not in (Action, Complaint):
                return 0
            outs = core.ask(body["ask"]["id"], event, entry.clock)[0]
        elif entry.kind == "input":
            event = decode_input(body["input"])
            if isinstance(event, Rejected):
                return 0
            outs = core.handle(event, entry.clock, body.get("pick"), tuple(body.get("pos") or ()))[0]
        else:
            return 0
        return sum(1 for item in outs if item[0] == RECORD)

    def redelivered(self, core: CorrelatorShard, body: dict) -> list[tuple[str, bytes]]:
        """What to send again for a message handled before: an ask's answer, as first given
        (the router asks again what it had not settled when it stopped)."""
        ask = body.get("ask")
        said = core.answers.get(ask["id"]) if type(ask) is dict and type(ask.get("id")) is str else None
        return [] if said is None else [(ANSWERS, _answer_message(ask["id"], core.shard, said))]

    def source_key(self, body: dict) -> str | None:
        return body.get("source")

    def clock_of(self, body: dict) -> float | None:
        """The clock a message moves the shard to (its timers fire first), if it says one."""
        return _clock_of(body, "at")

    def step(self, core: CorrelatorShard, body: dict, seq: int) -> tuple[Step, float]:
        if "tick" in body:                                # a stream-clock tick is an input: logged
            bad = _instant(body["tick"], "tick")
            if bad is not None:
                return Step(log=False, refused=bad), 0.0
            t = float(body["tick"])
            step = self.tick(core, t, seq)
            step.log = True
            return step, t
        bad = _instant(body.get("at"), "at")
        if bad is None and "ask" in body:
            return self._ask(core, body, seq)
        if bad is None and type(body.get("input")) is not dict:
            bad = f"input: expected a CONTRACT §3 object, got {type(body.get('input')).__name__}"
        bad = bad or _routing_refusal(body)
        if bad is not None:
            return Step(log=False, refused=bad), 0.0
        at = float(body["at"])
        event = decode_input(body["input"])
        if isinstance(event, Rejected):                  # the router checks; belt and braces
            return Step(log=False, refused=event.reason), at
        outs, refused = core.handle(event, at, body.get("pick"), tuple(body.get("pos") or ()))
        step = self._step(core.shard, outs, seq)
        step.log = True                                  # every input is logged (its clock matters)
        step.refused = refused.reason if refused else None
        # Every input is kept in the city's log; the alarms and complaints tables are filled
        # too. An alarm on a resource shared by cities reaches each of their shards: the first
        # of them keeps its row, so no two shards (maybe two processes) write the same row.
        kind = body["input"].get("kind")
        if kind == "alarm" and refused is None:
            alarm = body["input"]["alarm"]
            if alarm_shards(self.inventory, alarm["resource_id"])[0] == core.shard:
                step.inputs.append(("alarm", alarm, at))
        elif kind == "complaint":
            step.inputs.append(("complaint", body["input"]["complaint"], at))
        complained = event if kind == "complaint" and refused is None else None
        step.state = complaint_links(core, step.records, complained)
        return step, core.clock                          # handle() always sets it

    def _ask(self, core: CorrelatorShard, body: dict, seq: int) -> tuple[Step, float]:
        """The router asks what this shard holds about an input before it settles where the
        input goes (services/drivers/sharding.py, Ask): logged, as it fires the timers due
        by then. The answer goes at once, before the batch is stored: the router waits on
        it, holding every later input, and were the batch lost the shard would make the
        same state again from the same inputs (nothing after the ask reaches it before it
        is settled) and say the same."""
        ask = body["ask"]
        event = decode_input(ask.get("input")) if type(ask) is dict else None
        if type(ask) is not dict or type(ask.get("id")) is not str:
            return Step(log=False, refused="ask: expected {id: text, input: a CONTRACT §3 object}"), 0.0
        if type(event) not in (Action, Complaint):
            reason = event.reason if isinstance(event, Rejected) else "not an operator action or a complaint"
            return Step(log=False, refused=f"ask: {reason}"), 0.0
        outs, said = core.ask(ask["id"], event, float(body["at"]))
        step = self._step(core.shard, outs, seq)
        step.log = True
        step.at_once.append((ANSWERS, _answer_message(ask["id"], core.shard, said)))
        return step, core.clock

    def tick(self, core: CorrelatorShard, now: float, seq: int) -> Step:
        outs = core.tick(now)
        step = self._step(core.shard, outs, seq)
        step.log = any(item[0] != TICK for item in outs)  # a tick that fired nothing changes nothing
        return step

    @staticmethod
    def _step(shard: str, outs: list, seq: int) -> Step:
        step = Step(log=False)
        decisions, notices = [], []
        for n, item in enumerate(outs):
            if item[0] == RECORD:
                step.records.append(item[1])
                decisions.append(orjson.dumps(item[1]))
            elif item[0] == NOTICE:
                wire = orjson.loads(encode_notice(item[1], item[2], item[3]))
                wire["id"] = f"{shard}:{seq}:{n}"
                notices.append(orjson.dumps(wire))
            elif item[0] == TICK:
                notices.append(tick_message(item[1]))
        if decisions:
            step.outgoing[DECISIONS] = decisions
        if notices:
            step.outgoing[FAULTS] = notices
        return step


def _answer_message(ask_id: str, shard: str, said: dict) -> bytes:
    return orjson.dumps({"ask": ask_id, "shard": shard, "answer": said})


def _routing_refusal(body: dict) -> str | None:
    """Why the router's `pick` or `pos` of an input cannot be used, or None."""
    pick, pos = body.get("pick"), body.get("pos")
    if pick is not None and type(pick) is not str:
        return f"pick: expected a fault id, got {type(pick).__name__}"
    if pos is not None and not (type(pos) is list and len(pos) <= 8 and all(type(p) is int for p in pos)):
        return "pos: expected a list of at most 8 integers"
    return None


class DispatchLogic:
    stage = "dispatch"
    input_topic = FAULTS

    def __init__(self, inventory: Inventory, rulebook: Rulebook, warn=None, *,
                 catch_up_s: float | None = None) -> None:
        self.inventory = inventory
        self.rulebook = rulebook
        self.warn = warn
        self.known_shards = frozenset(all_shards(inventory))   # the only keys correlate writes
        self.catch_up_s = catch_up_s          # wall clock: shared.timers.LIVE_CATCH_UP_S; stream: None

    def new_shard(self, shard: str) -> DispatcherShard:
        return DispatcherShard(shard, self.rulebook, self.warn, catch_up_s=self.catch_up_s)

    def rerun(self, core: DispatcherShard, entry: Entry) -> int:
        """Re-run a logged entry (nothing is emitted); the number of records it made again."""
        if entry.kind == "tick" or (entry.body is not None and "tick" in entry.body):
            return len(core.tick(entry.clock))
        if entry.kind == "input":
            decoded = decode_notice(orjson.dumps(entry.body), self.inventory)
            if isinstance(decoded, Rejected):     # logged under an older decoder: passed, as at first
                return 0
            return len(core.handle(*decoded)[0])
        return 0

    def source_key(self, body: dict) -> str | None:
        return body.get("id")

    def redelivered(self, core: DispatcherShard, body: dict) -> list[tuple[str, bytes]]:
        return []                     # a notice handled before has nothing to say again

    def clock_of(self, body: dict) -> float | None:
        return _clock_of(body, "now")

    def step(self, core: DispatcherShard, body: dict, seq: int) -> tuple[Step, float]:
        if "tick" in body:
            bad = _instant(body["tick"], "tick")
            if bad is not None:
                return Step(log=False, refused=bad), 0.0
            t = float(body["tick"])
            step = self.tick(core, t, seq)
            return step, t
        bad = _instant(body.get("now"), "now")
        if bad is not None:
            return Step(log=False, refused=bad), 0.0
        decoded = decode_notice(orjson.dumps(body), self.inventory)
        if isinstance(decoded, Rejected):
            return Step(log=False, refused=decoded.reason), 0.0
        notice, key, now = decoded
        records, refused = core.handle(notice, key, now)
        step = self._step(core, records)
        step.log = True
        step.refused = refused.reason if refused else None
        if notice.kind == ACK and refused is None:       # the order taken in hand: no record says so
            df = core.dispatcher.faults.get(notice.facts.fault_id)
            wo = df.orders.get(notice.arg or "") if df is not None else None
            if wo is not None and wo.status == "inProgress":
                # Only from `acknowledged`: an order an operator has since held, closed or
                # cancelled through TMF621 keeps that status (services/http/tickets.py).
                step.state.append(("work_orders", {"work_order_id": wo.work_order_id,
                                                   "status": "acknowledged"}, {"status": "inProgress"}))
        return step, now

    def tick(self, core: DispatcherShard, now: float, seq: int) -> Step:
        step = self._step(core, core.tick(now))
        step.log = bool(step.records)
        return step

    @staticmethod
    def _step(core: DispatcherShard, records: list[dict]) -> Step:
        """Every record to faultline.decisions; work_order.* also to its queue's topic."""
        step = Step(log=False, records=records)
        if records:
            step.outgoing[DECISIONS] = [orjson.dumps(r) for r in records]
        orders = core.dispatcher.orders
        for r in records:
            if r["type"].startswith("work_order."):
                queue = r.get("queue") or orders[r["work_order_id"]].queue
                step.outgoing.setdefault(workorders_topic(queue), []).append(orjson.dumps(r))
        return step


def complaint_links(core: CorrelatorShard, records: list[dict], complaint) -> list[tuple[str, dict, dict]]:
    """The read-model state no record carries about complaints (services/runtime/shard_runner.Step.state):
    the complaints a fault holds and whether its customer reported it, for the faults this
    step opened and, after a complaint, every open fault holding it; the fault a complaint
    formed or joined (the first that holds it)."""
    if not records and complaint is None:
        return []                                     # most inputs of a storm: nothing opened
    corr = core.correlator
    touched = {r["fault_id"]: corr.faults.get(r["fault_id"]) for r in records if r["type"] == "fault.opened"}
    if complaint is not None:
        cid = complaint.complaint_id
        touched.update((f.fault_id, f) for f in corr.open_faults.values() if cid in f.complaints)
    out: list[tuple[str, dict, dict]] = []
    for fid, f in touched.items():
        if f is None or not (f.complaints or f.customer_reported):
            continue
        out.append(("faults", {"fault_id": fid}, {"complaints": orjson.dumps(f.complaints).decode(),
                                                  "customer_reported": f.customer_reported}))
        for cid in f.complaints:
            out.append(("complaints", {"complaint_id": cid, "fault_id": None}, {"fault_id": fid}))
    return out
