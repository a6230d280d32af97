"""LocalTransport in memory and over a migrated SQLite file: a fast subset of the transport
contract (the whole of it, for every adapter, is tests/integration/test_transport_contract.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db.migrate import upgrade_async
from shared.transport import local
from shared.transport.local import LocalTransport, TransportClosed
from shared.transport.port import Msg, next_offsets, partition_for

PARTITIONS = 3


class Local:
    """A LocalTransport and what a test needs around it: its clients and a restart."""

    def __init__(self, kind: str, url: str | None) -> None:
        self.kind, self.url = kind, url
        self.engines: list = []
        self.clients: list = []
        self.transport = self.new()

    def new(self) -> LocalTransport:
        if self.url is None:
            return LocalTransport(partitions=PARTITIONS)
        self.engines.append(create_async_engine(self.url))
        return LocalTransport(self.engines[-1], partitions=PARTITIONS)

    async def restart(self) -> LocalTransport:
        """A new transport over the same database (its clients and memory are gone)."""
        for c in self.clients:
            await c.stop()
        await self.engines[-1].dispose()
        self.transport = self.new()
        return self.transport

    async def producer(self):
        p = self.transport.producer()
        await p.start()
        self.clients.append(p)
        return p

    async def consumer(self, topics: list[str], group: str, **kwargs):
        c = self.transport.consumer(topics, group, **kwargs)
        await c.start()
        self.clients.append(c)
        return c


@pytest.fixture(params=["memory", "sqlite"])
async def lt(request, tmp_path) -> AsyncIterator[Local]:
    url = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/t.sqlite3"
        await upgrade_async(url)
    made = Local(request.param, url)
    yield made
    for c in made.clients:
        await c.stop()
    for e in made.engines:
        await e.dispose()


async def fetch_all(consumer) -> list[Msg]:
    got: list[Msg] = []
    while batch := await consumer.fetch(timeout_ms=20):
        got += batch
    return got


async def test_acks_order_and_delivery(lt: Local) -> None:
    p = await lt.producer()
    keys = ["GZ", "SH", "广州", "GZ", None]                     # partitions 2 1 2 2 0
    acks = await p.send_many([(t, f"{i}".encode(), k, None, 1000 + i)
                              for i, (t, k) in enumerate(zip("abab" "a", keys, strict=True))])
    assert [part for part, _o in acks] == [partition_for(k, PARTITIONS) if k else 0 for k in keys]
    assert acks[3] == (partition_for("GZ", PARTITIONS), 0)    # topic b's first GZ: offset 0
    c = await lt.consumer(["a", "b"], "g")
    got = await fetch_all(c)
    assert [(m.topic, m.key, m.value, m.timestamp_ms) for m in got] == [           # append order
        (t, k, f"{i}".encode(), 1000 + i) for i, (t, k) in enumerate(zip("abab" "a", keys, strict=True))]
    with pytest.raises(ValueError):
        await p.send("a", b"x", partition=PARTITIONS)


async def test_commit_then_a_new_member_goes_on_after_it(lt: Local) -> None:
    p = await lt.producer()
    await p.send_many([("a", f"m{i}".encode(), None, 0, None) for i in range(4)])
    c = await lt.consumer(["a"], "g")
    got = await fetch_all(c)
    await c.commit(next_offsets(got[:2]))
    await c.stop()
    c = await lt.consumer(["a"], "g")
    assert [m.value for m in await fetch_all(c)] == [b"m2", b"m3"]           # at least once
    if lt.kind == "sqlite":
        t = await lt.restart()
        assert await (await lt.producer()).send("a", b"m4", partition=0) == (0, 4)
        c = await lt.consumer(["a"], "g")
        assert [m.value for m in await fetch_all(c)] == [b"m2", b"m3", b"m4"]
        assert t.end(("a", 0)) == 5


async def test_retention_spares_a_live_group_that_committed_nothing(lt: Local, monkeypatch) -> None:
    monkeypatch.setattr(local, "TRIM_EVERY", 1)
    lt.transport.keep_unconsumed = 1
    p = await lt.producer()
    fast = await lt.consumer(["a"], "fast")
    slow = await lt.consumer(["a"], "slow")
    await p.send_many([("a", f"m{i}".encode(), None, 0, None) for i in range(5)])
    for m in await fetch_all(fast):
        await fast.commit(next_offsets([m]))
    assert len(await fetch_all(slow)) == 5
    await slow.commit({("a", 0): 3})
    await fast.stop()
    assert lt.transport._parts[("a", 0)].base == 3               # now below both commits is gone
    fresh = await lt.consumer(["a"], "fast")
    assert await fetch_all(fresh) == []


async def test_a_revoke_at_stop_may_still_commit(lt: Local) -> None:
    c = None

    async def revoked(tps: set) -> None:
        await c.commit(dict.fromkeys(tps, 1))

    await (await lt.producer()).send("a", b"x", partition=1)
    c = await lt.consumer(["a"], "g", on_revoked=revoked)
    assert len(await fetch_all(c)) == 1
    await c.stop()
    assert await fetch_all(await lt.consumer(["a"], "g")) == []


async def test_membership_and_closed_clients(lt: Local) -> None:
    await lt.consumer(["a"], "g")
    with pytest.raises(RuntimeError):
        await lt.transport.consumer(["a"], "g").start()
    p = lt.transport.producer()
    with pytest.raises(TransportClosed):
        await p.send("a", b"x")
    with pytest.raises(TransportClosed):
        await lt.transport.consumer(["a"], "h").fetch(timeout_ms=1)


async def test_hostile_values(lt: Local) -> None:
    values = [b"", b"x" * (1 << 20), "é".encode(), b"\xff\xfe BER \x30\x82"]
    p = await lt.producer()
    await p.send_many([("a", v, "广州 ☎", None, None) for v in values])
    got = await fetch_all(await lt.consumer(["a"], "g"))
    assert [m.key for m in got] == ["广州 ☎"] * 4
    assert [m.value for m in got] == values


async def test_concurrent_sends_share_a_commit_and_each_gets_its_own_offsets(lt: Local) -> None:
    """Group commit: sends that come while a write is under way are stored together by the
    next one (fewer transactions than sends), each acknowledged with its own offsets, in
    one order; every message is there after a restart."""
    import asyncio

    from sqlalchemy import event

    producer = await lt.producer()
    commits = []
    if lt.engines:
        event.listen(lt.engines[-1].sync_engine, "commit", lambda _conn: commits.append(1))
    sends = [[("t", b"%d-%d" % (n, i), None, 0, 1) for i in range(3)] for n in range(20)]
    acks = await asyncio.gather(*(producer.send_many(s) for s in sends))
    offsets = [off for ack in acks for _p, off in ack]
    assert sorted(offsets) == list(range(60))
    assert all(ack == [(0, ack[0][1] + i) for i in range(3)] for ack in acks)   # each send contiguous
    if lt.engines:
        assert 1 <= len(commits) < len(sends)
        await lt.restart()
    consumer = await lt.consumer(["t"], "g")
    got = await fetch_all(consumer)
    by_offset = {m.offset: m.value for m in got if m.partition == 0}
    for send, ack in zip(sends, acks, strict=True):
        assert [by_offset[off] for _p, off in ack] == [v for _t, v, _k, _p, _ts in send]


async def test_a_fetch_stops_once_past_its_byte_cap(lt: Local, monkeypatch) -> None:
    """As Kafka's fetch_max_bytes: a backlog of large (batch) messages is not fetched, and so
    not held decoded, all at once; a message larger than the cap still comes."""
    if lt.url is None:
        return                                   # the memory adapter keeps references, no copies
    monkeypatch.setattr(local, "FETCH_MAX_BYTES", 250)
    producer = await lt.producer()
    await producer.send_many([("t", b"%03d" % i + b"x" * 97, None, 0, 1) for i in range(5)])
    await producer.send_many([("t", b"y" * 1000, None, 0, 1)])
    consumer = await lt.consumer(["t"], "g")
    first = await consumer.fetch(timeout_ms=20, max_records=100)
    assert [m.offset for m in first] == [0, 1, 2]          # 300 bytes: past the cap of 250
    second = await consumer.fetch(timeout_ms=20, max_records=100)
    assert [m.offset for m in second] == [3, 4, 5]
    assert await consumer.fetch(timeout_ms=20, max_records=100) == []
