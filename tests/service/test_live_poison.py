"""No input stops the embedded engine (issue 7): an input whose handling raises is refused
with the error (422, kept, dead-lettered), the pipeline is rebuilt from the log, and the
next input is handled; a failing store answers 503 and /healthz says so until it is back.

The failure is injected with a test double of the rules core (the decoders are being made
total elsewhere, so no known input raises for long); the store and the bus are real."""

from __future__ import annotations

import asyncio

import orjson
from sqlalchemy.exc import OperationalError

import services.live
from service.support import FIBRE_CUT, T0, FakeClock, alarm, all_decisions, live_service
from services.pipeline import Pipeline
from shared.bus import InMemoryBus
from shared.model import Alarm
from shared.store import Store
from shared.topics import DEADLETTER, DECISIONS
from shared.wire import INTERNAL

POISON = "poison-1"


class PoisonPipeline(Pipeline):
    """The real pipeline, except that an alarm with alarm_id POISON first changes the state
    (it raises the other route of China Southern's line, opening faults) and then raises,
    as a bug half-way through the rules would."""

    def submit(self, event, now):
        if type(event) is Alarm and event.alarm_id == POISON:
            super().submit(Alarm("gd-otn-nms-1", "half-way", "GZ-OTN-B:2-1-4", "LOS", "critical",
                                 "raised", event.event_time, ""), now)
            raise RuntimeError("boom in the rules")
        return super().submit(event, now)


class TimerTrapPipeline(Pipeline):
    """Raises on every timer step while `armed` (the class flag the test flips)."""

    armed = False

    def advance(self, to):
        if TimerTrapPipeline.armed and self._due_by(to):
            raise RuntimeError("timer trap")
        return super().advance(to)


class FlakyStore(Store):
    """The real SQLite store, which can be made to fail as a database that went away."""

    down = False

    def _check(self) -> None:
        if FlakyStore.down:
            raise OperationalError("INSERT", {}, ConnectionRefusedError("database is gone"))

    async def append(self, batch):
        self._check()
        await super().append(batch)

    async def log(self):
        self._check()
        return await super().log()


async def _faults(svc) -> list[dict]:
    return (await svc.client.get("/faults")).json()


async def test_an_input_that_raises_is_refused_dead_lettered_and_the_next_one_is_handled(
        settings, monkeypatch):
    monkeypatch.setattr(services.live, "Pipeline", PoisonPipeline)
    bus = InMemoryBus()
    letters, published = bus.subscribe(DEADLETTER), bus.subscribe(DECISIONS)
    async with live_service(settings, FakeClock(T0 + 5), bus) as svc:
        assert (await svc.client.post("/alarms", json=FIBRE_CUT[2])).status_code == 202
        before = await _faults(svc)
        assert "GZ-INT-0001" not in {f["circuit_id"] for f in before}   # route A alone: B still up
        stored_before = await all_decisions(svc.client)

        resp = await svc.client.post("/alarms", json=alarm("GZ-OTN-A:1-3-1", POISON))
        assert resp.status_code == 422
        reason = resp.json()["reasons"][0]["reason"]
        assert reason == f"{INTERNAL}: RuntimeError: boom in the rules"
        assert (await svc.client.get("/healthz")).status_code == 200
        assert await _faults(svc) == before          # the half-way change was rolled back
        assert await all_decisions(svc.client) == stored_before

        # The next good alarm is handled on the rebuilt state: route B joins route A.
        resp = await svc.client.post("/alarms", json=FIBRE_CUT[0])
        assert resp.status_code == 202 and resp.json()["accepted"] == 1
        after = await _faults(svc)
        assert {f["circuit_id"] for f in after} == {f["circuit_id"] for f in before} | {"GZ-INT-0001"}
        stored = await all_decisions(svc.client)
        refusals = await svc.runtime.store.refusals()
        logged = svc.runtime.engine.logged_inputs
    assert logged == 2                                  # the poison never reached the log
    assert len(refusals) == 1 and refusals[0].reason == reason
    assert orjson.loads(refusals[0].body)["alarm"]["alarm_id"] == POISON
    letter = [orjson.loads(m.value) for m in letters.pending()]
    assert len(letter) == 1 and letter[0]["reason"] == reason
    assert letter[0]["input"]["alarm"]["alarm_id"] == POISON
    # Each stored record was published once: the rebuild re-made none and stored none.
    seqs = [d["seq"] for d in stored]
    assert seqs == sorted(set(seqs))
    assert [orjson.loads(m.value) for m in published.pending()] == [d["record"] for d in stored]

    # A restart rebuilds the same state from the log (the poison is not in it).
    async with live_service(settings, FakeClock(T0 + 60), InMemoryBus()) as svc:
        assert await _faults(svc) == after
        assert await all_decisions(svc.client) == stored


async def test_a_wrong_typed_alarm_does_not_stop_the_engine(settings):
    """The issue's case: a list where the severity belongs. Refused (by the decoder, or by
    the engine's safety net while the decoder still raises), and the service goes on."""
    letters = InMemoryBus()
    dead = letters.subscribe(DEADLETTER)
    async with live_service(settings, FakeClock(T0 + 5), letters) as svc:
        for bad in ({**FIBRE_CUT[2], "severity": ["critical"]}, {**FIBRE_CUT[2], "state": {}},
                    {**FIBRE_CUT[2], "resource_id": {"x": 1}}):
            resp = await svc.client.post("/alarms", json=bad)
            assert resp.status_code == 422, resp.text
            assert resp.json()["reasons"][0]["reason"]
        assert (await svc.client.get("/healthz")).status_code == 200
        assert (await svc.client.post("/alarms", json=FIBRE_CUT[2])).status_code == 202
        assert "GZ-INT-0003" in {f["circuit_id"] for f in await _faults(svc)}
    assert len(dead.pending()) == 3


async def test_an_input_too_deep_to_encode_is_refused_and_kept(settings):
    """An alarm nesting deeper than the JSON encoder goes (orjson reads 1,024 levels but
    writes 254) is refused — by the decoder, or else by the store that cannot log it — and
    kept as text; the engine goes on."""
    deep: object = "x"
    for _ in range(400):
        deep = [deep]
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        resp = await svc.client.post("/alarms", json={**FIBRE_CUT[2], "text": deep})
        assert resp.status_code == 422 and resp.json()["reasons"][0]["reason"]
        assert await _faults(svc) == []
        assert (await svc.client.post("/alarms", json=FIBRE_CUT[2])).status_code == 202
        assert "GZ-INT-0003" in {f["circuit_id"] for f in await _faults(svc)}
        refusals = await svc.runtime.store.refusals()
        assert svc.runtime.engine.logged_inputs == 1
    assert len(refusals) == 1 and "[[[[" in refusals[0].body


async def test_a_store_that_fails_answers_503_and_the_engine_comes_back(settings, monkeypatch):
    monkeypatch.setattr(services.live, "Store", FlakyStore)
    monkeypatch.setattr(FlakyStore, "down", False)
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        assert (await svc.client.post("/alarms", json=FIBRE_CUT[2])).status_code == 202
        before = {f["circuit_id"] for f in await _faults(svc)}
        FlakyStore.down = True
        resp = await svc.client.post("/alarms", json=FIBRE_CUT[0])
        assert resp.status_code == 503                    # not kept: the sender must retry
        assert (await svc.client.get("/healthz")).status_code == 503
        assert "store" in svc.runtime.engine.problem
        assert (await svc.client.post("/alarms", json=FIBRE_CUT[0])).status_code == 503
        FlakyStore.down = False
        for _ in range(100):
            if (await svc.client.get("/healthz")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert (await svc.client.get("/healthz")).status_code == 200
        # The alarm the failed step had applied in memory was rolled back with the rebuild.
        assert {f["circuit_id"] for f in await _faults(svc)} == before
        assert (await svc.client.post("/alarms", json=FIBRE_CUT[0])).status_code == 202
        assert {f["circuit_id"] for f in await _faults(svc)} == before | {"GZ-INT-0001"}
        assert svc.runtime.engine.logged_inputs == 2


async def test_a_bus_message_is_held_while_the_store_is_down_and_handled_when_it_is_back(
        settings, monkeypatch):
    """The in-process bus has no redelivery: the pump keeps the message and tries again."""
    monkeypatch.setattr(services.live, "Store", FlakyStore)
    monkeypatch.setattr(FlakyStore, "down", False)
    bus = InMemoryBus()
    decisions = bus.subscribe(DECISIONS)
    async with live_service(settings, FakeClock(T0 + 5), bus) as svc:
        FlakyStore.down = True
        await bus.publish(services.live.ALARMS, "GZ", orjson.dumps(FIBRE_CUT[2]))
        await asyncio.sleep(0.5)
        assert decisions.pending() == [] and svc.runtime.engine.problem.startswith("the store")
        FlakyStore.down = False
        first = orjson.loads((await asyncio.wait_for(decisions.get(), 15)).value)
        assert first["type"] == "fault.opened" and svc.runtime.engine.logged_inputs == 1


async def test_a_timer_that_keeps_failing_makes_healthz_say_down_until_it_passes(settings, monkeypatch):
    monkeypatch.setattr(services.live, "Pipeline", TimerTrapPipeline)
    monkeypatch.setattr(TimerTrapPipeline, "armed", False)
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
        engine = svc.runtime.engine
        TimerTrapPipeline.armed = True
        clock.jump(40 * 60)                         # SF-3's TM-1 falls due
        await engine.tick()
        assert (await svc.client.get("/healthz")).status_code == 503
        assert "timer" in engine.problem
        assert all(f["severity"] == "general" for f in await _faults(svc))
        TimerTrapPipeline.armed = False
        engine._timer_retry_at = 0.0                # skip the back-off wait in the test
        await engine.tick()
        assert (await svc.client.get("/healthz")).status_code == 200
        faults = await _faults(svc)
    assert {f["fault_id"]: f["severity"] for f in faults}["F-000001"] == "serious"


async def test_an_input_behind_a_failing_timer_waits_503_and_is_not_refused_for_it(settings, monkeypatch):
    """Timers due before an input fire first (T-3); when they fail, the input is not to
    blame: 503, not kept, not refused; once the timer passes, the same input is handled."""
    monkeypatch.setattr(services.live, "Pipeline", TimerTrapPipeline)
    monkeypatch.setattr(TimerTrapPipeline, "armed", False)
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT[2])
        engine = svc.runtime.engine
        TimerTrapPipeline.armed = True
        clock.jump(40 * 60)                         # a timer falls due, and fails
        late = alarm("SZ-PE-1:GE0/0/1", "884299")
        first = await svc.client.post("/alarms", json=late)
        again = await svc.client.post("/alarms", json=late)      # within the back-off: at once
        assert (first.status_code, again.status_code) == (503, 503)
        assert "timer" in first.json()["detail"]
        assert await svc.runtime.store.refusals() == []
        TimerTrapPipeline.armed = False
        engine._timer_retry_at = 0.0                # skip the back-off wait in the test
        assert (await svc.client.post("/alarms", json=late)).status_code == 202
        assert (await svc.client.get("/healthz")).status_code == 200
        assert await svc.runtime.store.refusals() == []


async def test_a_timer_that_fails_at_start_up_does_not_stop_the_service(settings, monkeypatch):
    monkeypatch.setattr(services.live, "Pipeline", TimerTrapPipeline)
    monkeypatch.setattr(TimerTrapPipeline, "armed", False)
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
    TimerTrapPipeline.armed = True
    clock.jump(40 * 60)                             # down while SF-3's TM-1 fell due
    async with live_service(settings, clock) as svc:
        assert (await svc.client.get("/healthz")).status_code == 503
        TimerTrapPipeline.armed = False
        svc.runtime.engine._timer_retry_at = 0.0
        await svc.runtime.engine.tick()
        assert (await svc.client.get("/healthz")).status_code == 200
        assert {f["fault_id"]: f["severity"] for f in await _faults(svc)}["F-000001"] == "serious"


async def test_a_bus_message_behind_a_failing_timer_is_held_and_handled_once_it_passes(settings, monkeypatch):
    monkeypatch.setattr(services.live, "Pipeline", TimerTrapPipeline)
    monkeypatch.setattr(TimerTrapPipeline, "armed", False)
    clock = FakeClock(T0 + 5)
    bus = InMemoryBus()
    decisions = bus.subscribe(DECISIONS)
    async with live_service(settings, clock, bus) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
        decisions.pending()                         # drained: what the fibre cut made
        before = svc.runtime.engine.logged_inputs
        TimerTrapPipeline.armed = True
        clock.jump(40 * 60)                         # SF-3's TM-1 falls due, and fails
        await bus.publish(services.live.ALARMS, "SZ", orjson.dumps(alarm("SZ-PE-1:GE0/0/1", "884299")))
        await asyncio.sleep(0.5)
        assert await svc.runtime.store.refusals() == [] and decisions.pending() == []
        TimerTrapPipeline.armed = False
        svc.runtime.engine._timer_retry_at = 0.0
        first = orjson.loads((await asyncio.wait_for(decisions.get(), 15)).value)
        assert first["type"] == "fault.serious"     # the timer first (T-3), then the held alarm
        for _ in range(100):
            log = await svc.runtime.store.log()
            if len(log) >= before + 2:
                break
            await asyncio.sleep(0.05)
    assert [e.kind for e in log][before:] == ["advance", "alarm"]
    assert await svc.runtime.store.refusals() == []
