"""No input stops `faultline run`'s loops (issue 7): an input whose handling raises is refused
with the error (its outcome: 422 when waited for), kept in `rejected` and dead-lettered, the
city shard is rebuilt from its log, and the next input is handled; a database that fails
answers intake 503 (nothing kept: the sender retries), makes the loop that needs it say so
on /healthz and rebuild when it is back; a timer that fails makes its shard `degraded` on
/readyz and holds back the inputs behind it (T-3), which are handled, never refused, once
it passes.

A bug is simulated by making a rule function raise (the correlator's input handling, its
timer firing); the transport, the database and the loops are the real ones. A database
that fails is a real SQLite file whose write lock another process holds."""

from __future__ import annotations

import asyncio

import orjson
import pytest

import correlator.engine
import services.drivers.city_shards
from service.support import (
    FIBRE_CUT,
    MINUTE,
    T0,
    WAIT,
    FakeClock,
    alarm,
    all_decisions,
    live_service,
    log_entries,
    published,
    published_values,
    refusals,
    short_busy_timeout,
    status_is,
    until,
    write_locked,
)
from shared.model import Alarm
from shared.topics import ALARMS, DEADLETTER, DECISIONS
from shared.wire import INTERNAL

POISON = "poison-1"


@pytest.fixture
def poisoned(monkeypatch) -> None:
    """The correlator's input handling, except that the alarm POISON first changes the shard
    (it raises the other route of China Southern's line, opening faults) and then raises,
    as a bug half-way through the rules would."""
    real = services.drivers.city_shards.on_input

    def on_input(correlator, event, t, pick=None):
        if type(event) is Alarm and event.alarm_id == POISON:
            real(correlator, Alarm("gd-otn-nms-1", "half-way", "GZ-OTN-B:2-1-4", "LOS", "critical",
                                   "raised", event.event_time, ""), t)
            raise RuntimeError("boom in the rules")
        return real(correlator, event, t, pick)
    monkeypatch.setattr(services.drivers.city_shards, "on_input", on_input)


@pytest.fixture
def timer_trap(monkeypatch) -> dict:
    """GZ's correlator raises whenever one of its timers fires while trap["armed"]: in a tick
    and in the timer step before an input (T-3) alike."""
    trap = {"armed": False}
    real = correlator.engine.Correlator.fire_next

    def fire_next(self, now):
        if trap["armed"] and self.id_prefix == "GZ-":
            raise RuntimeError("timer trap")
        return real(self, now)
    monkeypatch.setattr(correlator.engine.Correlator, "fire_next", fire_next)
    return trap


async def _faults(svc) -> list[dict]:
    return (await svc.client.get("/faults")).json()


async def _inputs_logged(svc) -> int:
    return sum(e.kind == "input" for e in await log_entries(svc.runtime, "correlate"))


def _serious(decisions: list[dict]) -> list[str]:
    return [d["record"]["fault_id"] for d in decisions if d["record"]["type"] == "fault.serious"]


async def test_an_input_that_raises_is_refused_dead_lettered_and_the_next_one_is_handled(settings, poisoned):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        assert (await svc.client.post("/alarms", json=FIBRE_CUT[2], params=WAIT)).status_code == 202
        before = await _faults(svc)
        assert "GZ-INT-0001" not in {f["circuit_id"] for f in before}   # route A alone: B still up
        stored_before = await all_decisions(svc.client)

        resp = await svc.client.post("/alarms", json=alarm("GZ-OTN-A:1-3-1", POISON), params=WAIT)
        assert resp.status_code == 422
        reason = resp.json()["reasons"][0]["reason"]
        assert reason == f"{INTERNAL}: RuntimeError: boom in the rules"
        poison_id = resp.json()["input_ids"][0]
        assert (await svc.client.get("/healthz")).status_code == 200
        await svc.settle()
        assert await _faults(svc) == before          # the half-way change was rolled back
        assert await all_decisions(svc.client) == stored_before

        # The next good alarm is handled on the rebuilt shard: route B joins route A.
        resp = await svc.client.post("/alarms", json=FIBRE_CUT[0], params=WAIT)
        assert resp.status_code == 202 and resp.json()["accepted"] == 1
        await svc.settle()
        after = await _faults(svc)
        assert {f["circuit_id"] for f in after} == {f["circuit_id"] for f in before} | {"GZ-INT-0001"}
        stored = await all_decisions(svc.client)
        kept = await refusals(svc.runtime)
        letters = await published_values(svc.runtime, DEADLETTER)
        sent = await published_values(svc.runtime, DECISIONS)
        logged = await _inputs_logged(svc)
    assert logged == 2                                  # the poison never reached the log
    assert [(r.stage, r.source_key, r.reason) for r in kept] == [("correlate", poison_id, reason)]
    assert orjson.loads(kept[0].body)["input"]["alarm"]["alarm_id"] == POISON
    assert len(letters) == 1 and (letters[0]["reason"], letters[0]["stage"]) == (reason, "correlate")
    assert letters[0]["source"] == poison_id and letters[0]["value"]["input"]["alarm"]["alarm_id"] == POISON
    # Each stored record was published once: the rebuild re-made none and stored none.
    seqs = [d["seq"] for d in stored]
    assert seqs == sorted(set(seqs))
    assert sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in sent) == sorted(
        orjson.dumps(d["record"], option=orjson.OPT_SORT_KEYS) for d in stored)

    # A restart rebuilds the same state from the log (the poison is not in it).
    async with live_service(settings, FakeClock(T0 + 60)) as svc:
        await svc.settle()
        assert await _faults(svc) == after
        assert await all_decisions(svc.client) == stored


async def test_a_wrong_typed_alarm_does_not_stop_the_service(settings):
    """The issue's case: a list where the severity belongs. Refused at the door (the decoders
    are total), kept, and the service goes on."""
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        reasons = []
        for bad in ({**FIBRE_CUT[2], "severity": ["critical"]}, {**FIBRE_CUT[2], "state": {}},
                    {**FIBRE_CUT[2], "resource_id": {"x": 1}}):
            resp = await svc.client.post("/alarms", json=bad)
            assert resp.status_code == 422, resp.text
            reasons.append(resp.json()["reasons"][0]["reason"])
        assert all(reasons)
        assert (await svc.client.get("/healthz")).status_code == 200
        assert (await svc.client.post("/alarms", json=FIBRE_CUT[2], params=WAIT)).status_code == 202
        await svc.settle()
        assert "GZ-INT-0003" in {f["circuit_id"] for f in await _faults(svc)}
        letters = await published_values(svc.runtime, DEADLETTER)
        kept = await refusals(svc.runtime)
    assert [letter["reason"] for letter in letters] == reasons
    assert sorted(r.reason for r in kept) == sorted(reasons)


async def test_an_input_too_deep_to_encode_is_refused_and_kept(settings):
    """An alarm nesting deeper than the JSON encoder goes (orjson reads 1,024 levels but
    writes 254) is refused at the door and kept as text; the service goes on."""
    deep: object = "x"
    for _ in range(400):
        deep = [deep]
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        resp = await svc.client.post("/alarms", json={**FIBRE_CUT[2], "text": deep})
        assert resp.status_code == 422 and resp.json()["reasons"][0]["reason"]
        await svc.settle()
        assert await _faults(svc) == []
        assert (await svc.client.post("/alarms", json=FIBRE_CUT[2], params=WAIT)).status_code == 202
        await svc.settle()
        assert "GZ-INT-0003" in {f["circuit_id"] for f in await _faults(svc)}
        kept = await refusals(svc.runtime)
        letters = await published_values(svc.runtime, DEADLETTER)
        assert await _inputs_logged(svc) == 1
    assert len(kept) == 1 and "[[[[" in kept[0].body
    assert len(letters) == 1 and "[[[[" in letters[0]["value"]


async def test_a_database_that_fails_answers_503_and_the_service_comes_back(settings, monkeypatch):
    short_busy_timeout(monkeypatch)
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        assert (await svc.client.post("/alarms", json=FIBRE_CUT[2], params=WAIT)).status_code == 202
        await svc.settle()
        before = {f["circuit_id"] for f in await _faults(svc)}
        with write_locked(settings.database_url):
            resp = await svc.client.post("/alarms", json=FIBRE_CUT[0])
            assert resp.status_code == 503                    # not kept: the sender must retry
            assert "database unavailable" in resp.json()["detail"]
            # A loop that must write: the correlate shards' tick, with SF-3's TM-1 due, fires
            # it in memory and cannot store it; the session fails and says so.
            clock.jump(40 * MINUTE)
            ticking = asyncio.create_task(svc.runtime.correlate.tick_now())
            await until(lambda: status_is(svc.client, "/healthz", 503), what="healthz 503")
            assert "correlate" in (await svc.client.get("/healthz")).json()["detail"]
            assert (await svc.client.get("/readyz")).status_code == 503
            assert (await svc.client.post("/alarms", json=FIBRE_CUT[0])).status_code == 503
            severities = {f["circuit_id"]: f["severity"] for f in await _faults(svc)}
            assert severities == dict.fromkeys(before, "general")
        await until(lambda: status_is(svc.client, "/healthz", 200), what="healthz 200 again")
        ticking.cancel()                    # see test_a_tick_asked_while_the_database_fails_returns
        await svc.tick()
        # The timers the failed tick fired in memory were dropped with the shard: fired once.
        serious = _serious(await all_decisions(svc.client))
        assert serious and len(serious) == len(set(serious))
        assert [m.offset for m in await published(svc.runtime, ALARMS)] == [0]    # the 503s: not kept
        assert await _inputs_logged(svc) == 1
        assert (await svc.client.post("/alarms", json=FIBRE_CUT[0], params=WAIT)).status_code == 202
        await svc.settle()
        assert {f["circuit_id"] for f in await _faults(svc)} == before | {"GZ-INT-0001"}
        assert await _inputs_logged(svc) == 2


async def test_a_bus_message_is_held_while_the_database_is_down_and_handled_when_it_is_back(
        settings, monkeypatch):
    """A producer's message already on faultline.alarms when the database fails: the loop
    that cannot store what it made does not commit it, and it is handled once the database
    is back — once."""
    short_busy_timeout(monkeypatch)
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        await svc.runtime.producer.send(ALARMS, orjson.dumps(FIBRE_CUT[2]), key="GZ-OTN-A:1-3-1")
        with write_locked(settings.database_url):             # before any loop has seen it
            await until(lambda: status_is(svc.client, "/healthz", 503), what="healthz 503")
            assert "router" in (await svc.client.get("/healthz")).json()["detail"]
            assert await published(svc.runtime, DECISIONS) == []
        await until(lambda: status_is(svc.client, "/healthz", 200), what="healthz 200 again")
        await svc.settle()
        decisions = await published_values(svc.runtime, DECISIONS)
        assert decisions[0]["type"] == "fault.opened" and await _inputs_logged(svc) == 1
        assert len(decisions) == len(await all_decisions(svc.client))
        assert await refusals(svc.runtime) == []


async def test_a_timer_that_keeps_failing_makes_readyz_say_degraded_until_it_passes(settings, timer_trap):
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT, params=WAIT)
        timer_trap["armed"] = True
        clock.jump(40 * MINUTE)                         # SF-3's TM-1 falls due
        await svc.tick()
        ready = await svc.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "not ready"
        assert ready.json()["problems"] == ["correlate GZ: a due timer fails; retrying"]
        assert (await svc.client.get("/healthz")).status_code == 200       # alive: not a dead loop
        assert all(f["severity"] == "general" for f in await _faults(svc))
        await svc.tick()                                # within the back-off: not retried
        assert svc.runtime.correlate.failing["GZ"][0] == 1
        timer_trap["armed"] = False
        svc.runtime.correlate.failing["GZ"] = (1, 0.0)  # skip the back-off wait in the test
        await svc.tick()
        assert (await svc.client.get("/readyz")).status_code == 200
        faults = await _faults(svc)
    assert {f["fault_id"]: f["severity"] for f in faults}["F-GZ-000001"] == "serious"


async def test_an_input_behind_a_failing_timer_waits_and_is_not_refused_for_it(settings, timer_trap):
    """Timers due before an input fire first (T-3); when they fail, the input is not to
    blame: not refused, not logged, pending (its message is not committed: the correlate
    session starts again, with back-off, reported on /healthz and /readyz); once the timer
    passes, the same input is handled, after the timer."""
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT[2], params=WAIT)
        timer_trap["armed"] = True
        clock.jump(40 * MINUTE)                         # a timer falls due, and fails
        late = alarm("GZ-SDH-TH-07:1-1-2", "884299")   # GZ-VOI-0102's path: a GZ input
        resp = await svc.client.post("/alarms", json=late, params={"wait_s": 0.5})
        assert resp.status_code == 202
        assert (resp.json()["accepted"], resp.json()["rejected"], resp.json()["pending"]) == (1, 0, 1)
        late_id = resp.json()["input_ids"][0]
        await until(lambda: status_is(svc.client, "/readyz", 503), what="readyz 503")
        assert (await svc.client.get(f"/inputs/{late_id}")).json()["status"] == "pending"
        assert await refusals(svc.runtime) == [] and await published(svc.runtime, DEADLETTER) == []
        timer_trap["armed"] = False
        outcome = (await svc.client.get(f"/inputs/{late_id}", params={"wait_s": 15})).json()
        assert outcome["status"] == "accepted" and outcome["records"] > 0
        await until(lambda: status_is(svc.client, "/readyz", 200), what="readyz 200 again")
        await svc.settle()
        assert await refusals(svc.runtime) == []
        decisions = [d["record"] for d in await all_decisions(svc.client)]
    late_opened = next(i for i, r in enumerate(decisions)
                       if r["type"] == "fault.opened" and r["circuit_id"] == "GZ-VOI-0102")
    assert "fault.serious" in [r["type"] for r in decisions[:late_opened]]    # the timer first (T-3)


async def test_a_timer_that_fails_at_start_up_does_not_stop_the_service(settings, timer_trap):
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT, params=WAIT)
    timer_trap["armed"] = True
    clock.jump(40 * MINUTE)                             # down while SF-3's TM-1 fell due
    async with live_service(settings, clock) as svc:
        await until(lambda: status_is(svc.client, "/readyz", 503), what="readyz 503")
        assert (await svc.client.get("/readyz")).json()["problems"] == [
            "correlate GZ: a due timer fails; retrying"]
        assert (await svc.client.get("/healthz")).status_code == 200
        timer_trap["armed"] = False
        svc.runtime.correlate.failing["GZ"] = (1, 0.0)
        await svc.tick()
        assert (await svc.client.get("/readyz")).status_code == 200
        assert {f["fault_id"]: f["severity"] for f in await _faults(svc)}["F-GZ-000001"] == "serious"


async def test_a_bus_message_behind_a_failing_timer_is_held_and_handled_once_it_passes(settings, timer_trap):
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT, params=WAIT)
        await svc.settle()
        before = len(await log_entries(svc.runtime, "correlate", "GZ"))
        timer_trap["armed"] = True
        clock.jump(40 * MINUTE)                         # SF-3's TM-1 falls due, and fails
        msg = alarm("GZ-SDH-TH-07:1-1-2", "884299")
        await svc.runtime.producer.send(ALARMS, orjson.dumps(msg), key=msg["resource_id"])
        await until(lambda: status_is(svc.client, "/readyz", 503), what="readyz 503")
        assert await refusals(svc.runtime) == [] and await published(svc.runtime, DEADLETTER) == []
        assert len(await log_entries(svc.runtime, "correlate", "GZ")) == before
        timer_trap["armed"] = False
        await until(lambda: status_is(svc.client, "/readyz", 200), what="readyz 200 again")
        await svc.settle()
        logged = (await log_entries(svc.runtime, "correlate", "GZ"))[before:]
        decisions = [d["record"] for d in await all_decisions(svc.client)]
    assert [e.kind for e in logged] == ["input"] and logged[0].source_key.startswith(f"{ALARMS}:0:3@")
    new = [r["type"] for r in decisions if r["at"] >= "2026-11-25T10:30:00+08:00"]
    assert new[0] == "fault.serious"                    # the timer first (T-3), then the held alarm
    assert "fault.opened" in new and await refusals(svc.runtime) == []


async def test_a_tick_asked_while_the_database_fails_returns_once_a_tick_has_run(settings, monkeypatch):
    short_busy_timeout(monkeypatch)
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT[2], params=WAIT)
        await svc.settle()
        with write_locked(settings.database_url):
            clock.jump(40 * MINUTE)
            ticking = asyncio.create_task(svc.tick())
            await until(lambda: status_is(svc.client, "/healthz", 503), what="healthz 503")
        try:
            await asyncio.wait_for(asyncio.shield(ticking), 1)     # the next session ticks at once
        finally:
            ticking.cancel()
        assert _serious(await all_decisions(svc.client))
