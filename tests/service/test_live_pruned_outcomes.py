"""The outcome of an input (GET /inputs/{id}) once log retention has let go of its entries, on
`faultline run`'s runtime with a tiny snapshot interval and retention window (FAULTLINE_SNAPSHOT_EVERY,
FAULTLINE_LOG_RETENTION_ENTRIES): a handled input stays accepted (its records no longer known),
a refused one stays refused, by correlate or by dispatch, and an input never seen stays pending."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from tokens import bearer

from service.support import FIBRE_CUT, T0, WAIT, FakeClock, LiveSettings, Service, alarm, db_rows
from services.commands.run import Embedded
from services.settings import Recovery
from shared.db.models import input_log, input_log_horizon, pruned_notices, rejected

RESOLVE = {"kind": "resolve", "select": {"circuit_id": "GZ-INT-0001"}}                  # CL-4: still down
ACK_NOWHERE = {"kind": "ack", "select": {"circuit_id": "GZ-INT-0001"}, "queue": "nowhere"}  # dispatch refuses


@asynccontextmanager
async def pruning_service(settings: LiveSettings, clock: FakeClock,
                          mode: str = "delete") -> AsyncIterator[Service]:
    """live_service, with a snapshot every 4 entries of a shard and 3 entries kept behind it."""
    svc = Embedded(settings.inventory, settings.rulebook, settings.database_url, clock,
                   http=settings.http, registry=CollectorRegistry(), tick_every_s=3600.0,
                   recovery=Recovery(snapshot_every=4, snapshot_bytes_per_entry=0, retention=mode,
                                     retention_entries=3))
    await svc.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=svc.app), headers=await bearer(svc.db),
                                     base_url="http://faultline") as client:
            yield Service(svc, client)
    finally:
        await svc.stop()


async def _storm(svc: Service, clock: FakeClock, rounds: int = 6) -> list[str]:
    """The fibre cut's alarms cleared and raised again, round after round: correlate and
    dispatch log entries on GZ, well past the window. The last round's ids."""
    ids: list[str] = []
    for k in range(rounds):
        clock.jump(60)
        state, at = "cleared" if k % 2 == 0 else "raised", f"2026-11-25T10:{k + 1:02d}:00+08:00"
        sent = await svc.client.post("/alarms", params=WAIT, json=[
            alarm(a["resource_id"], a["alarm_id"], state=state, event_time=at) for a in FIBRE_CUT])
        assert sent.status_code == 202 and sent.json()["pending"] == 0
        ids = sent.json()["input_ids"]
    await svc.settle()
    return ids


async def _logged_keys(svc: Service) -> set[str]:
    return {r.source_key for r in await db_rows(svc.runtime, select(input_log.c.source_key))}


async def test_a_pruned_input_stays_accepted_and_a_refused_one_refused(settings):
    clock = FakeClock(T0 + 5)
    async with pruning_service(settings, clock) as svc:
        cut = await svc.client.post("/alarms", json=FIBRE_CUT, params=WAIT)
        first = cut.json()["input_ids"]
        by_correlate = await svc.client.post("/actions", json=RESOLVE, params=WAIT)
        by_dispatch = await svc.client.post("/actions", json=ACK_NOWHERE, params=WAIT)
        assert by_correlate.status_code == by_dispatch.status_code == 422
        refused = {by_correlate.json()["input_ids"][0]: by_correlate.json()["detail"],
                   by_dispatch.json()["input_ids"][0]: by_dispatch.json()["detail"]}
        assert "still interrupted" in refused[by_correlate.json()["input_ids"][0]]
        assert "holds no open work order" in refused[by_dispatch.json()["input_ids"][0]]
        last = await _storm(svc, clock)

        kept = await _logged_keys(svc)
        assert kept.isdisjoint(first) and kept.isdisjoint(refused)      # their entries are gone
        for input_id in first:
            got = await svc.client.get(f"/inputs/{input_id}")
            assert got.status_code == 200
            assert got.json() == {"input_id": input_id, "status": "accepted", "reason": None, "records": None,
                                  "pruned": True}
        for input_id, reason in refused.items():
            got = (await svc.client.get(f"/inputs/{input_id}")).json()
            assert (got["status"], got["reason"]) == ("refused", reason), got
        # An input whose entries are all still in the logs is answered in full, as before.
        assert set(last) & kept
        clock.jump(60)
        again = await svc.client.post("/alarms", json=alarm("GZ-OTN-A:1-3-1", "884213"), params=WAIT)
        latest = (await svc.client.get(f"/inputs/{again.json()['input_ids'][0]}")).json()
        assert latest["status"] == "accepted" and isinstance(latest["records"], int), latest
        assert "pruned" not in latest and again.json()["records"] == latest["records"]

        # Never seen: past what was published, or a time no input of that offset had.
        offset, ts = first[0].rsplit(":", 1)[1].split("@")
        for never in (f"faultline.alarms:0:{10**9}@{ts}", f"faultline.alarms:0:{offset}@1",
                      f"faultline.alarms:7:{offset}@{ts}", f"faultline.other:0:{offset}@{ts}"):
            got = await svc.client.get(f"/inputs/{never}")
            assert got.status_code == 200 and got.json()["status"] == "pending", never
        assert (await svc.client.get("/inputs/not-an-id")).status_code == 404

        # What is kept for it is a few rows per shard, and the refused notice.
        horizon = await db_rows(svc.runtime, select(input_log_horizon))
        assert {(h.stage, h.kind, h.origin) for h in horizon} <= {
            ("correlate", "source", "faultline.alarms"), ("correlate", "source", "faultline.actions"),
            *(("dispatch", "notice", h.shard) for h in horizon)}
        assert len(horizon) == len({(h.stage, h.shard, h.kind, h.origin, h.partition) for h in horizon}) <= 6
        notices = await db_rows(svc.runtime, select(pruned_notices))
        refusals = {r.source_key for r in await db_rows(svc.runtime, select(rejected.c.source_key))}
        assert [n.source_key for n in notices] == [by_dispatch.json()["input_ids"][0]]
        assert {n.notice_id for n in notices} <= refusals


async def test_archive_mode_answers_a_pruned_input_in_full(settings):
    clock = FakeClock(T0 + 5)
    async with pruning_service(settings, clock, mode="archive") as svc:
        cut = await svc.client.post("/alarms", json=FIBRE_CUT, params=WAIT)
        first = cut.json()["input_ids"]
        waited = {i: (await svc.client.get(f"/inputs/{i}")).json() for i in first}
        by_dispatch = await svc.client.post("/actions", json=ACK_NOWHERE, params=WAIT)
        await _storm(svc, clock)
        assert (await _logged_keys(svc)).isdisjoint(first)
        assert all(w["status"] == "accepted" and "pruned" not in w for w in waited.values())
        for input_id in first:                              # as when its entries were in the log
            assert (await svc.client.get(f"/inputs/{input_id}")).json() == waited[input_id]
        assert sum(w["records"] for w in waited.values()) > 0      # the cut's records, by both stages
        got = (await svc.client.get(f"/inputs/{by_dispatch.json()['input_ids'][0]}")).json()
        assert (got["status"], got["reason"]) == ("refused", by_dispatch.json()["detail"])
