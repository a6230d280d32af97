"""The transport port's contract (shared/transport/port.py): the same tests against every adapter.

Adapters: LocalTransport in memory, LocalTransport over a migrated SQLite file, LocalTransport
over a fresh PostgreSQL database, and KafkaTransport over Tansu. Only what the runtime's
loops rely on is pinned: acknowledged (partition, offset) per record and the key's
partition, delivery of every message to a group with its key, value and time, fetch's wait,
commits that a new member of the group starts after, redelivery of what was not committed
(at least once). Then what only LocalTransport promises: one global order, durability across
a restart, retention, lag/drained/settled, its callbacks and its errors.

The local cases need neither broker nor database server: the PostgreSQL and Kafka fixtures
are requested only by their own cases (`request.getfixturevalue`). Every test uses its own
topic and group names, so the session's one Tansu broker serves them all.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.drivers.dead_letters import MAX_VALUE
from shared.db.migrate import upgrade_async
from shared.db.models import transport_messages
from shared.transport import local
from shared.transport.kafka import Consumer, KafkaConfig, KafkaTransport, SingleActiveAssignor
from shared.transport.local import LocalTransport, TransportClosed
from shared.transport.port import TP, Msg, partition_for

PARTITIONS = 3
ALL = ("memory", "sqlite", "postgres", "kafka")
LOCAL = ("memory", "sqlite", "postgres")
DURABLE = ("sqlite", "postgres")
FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 200}


class FastGroupKafka(KafkaTransport):
    """KafkaTransport whose consumers have a short session: Tansu answers a new group's
    JoinGroup only after half the session timeout (5 s with the default 10 s), which would
    make each consumer start here cost seconds. Everything else is KafkaTransport's."""

    def consumer(self, topics: Sequence[str], group_id: str, *, on_assigned=None, on_revoked=None,
                 single_active: bool = False) -> Consumer:
        return Consumer(self.config, topics, group_id, on_assigned=on_assigned, on_revoked=on_revoked,
                        assignors=(SingleActiveAssignor,) if single_active else None, **FAST_GROUP)


@dataclass
class Adapter:
    kind: str
    transport: Any
    url: str | None = None                 # the database of a LocalTransport kept in one
    engine: AsyncEngine | None = None
    wait_s: float = 5.0                    # how long a delivery may take (a Kafka group joins slowly)
    clients: list = field(default_factory=list)
    engines: list = field(default_factory=list)

    def topic(self, name: str = "t") -> str:
        return f"contract.{name}.{uuid.uuid4().hex[:10]}"

    def group(self) -> str:
        return f"g.{uuid.uuid4().hex[:10]}"

    async def topics(self, *names: str) -> list[str]:
        topics = [self.topic(n) for n in names]
        await self.transport.ensure_topics({t: PARTITIONS for t in topics}, deadline_s=30)
        return topics

    async def producer(self, transport: Any = None):
        p = (transport or self.transport).producer()
        await p.start(deadline_s=30)
        self.clients.append(p)
        return p

    async def consumer(self, topics: Sequence[str], group: str, transport: Any = None, **kwargs):
        c = (transport or self.transport).consumer(list(topics), group, **kwargs)
        await c.start(deadline_s=30)
        self.clients.append(c)
        return c

    async def restart(self, **kwargs) -> LocalTransport:
        """'A restart': the engine is disposed, and a new LocalTransport over a new engine on
        the same database starts from what the database holds."""
        assert self.url is not None
        await self.engine.dispose()
        self.engine = create_async_engine(self.url)
        self.engines.append(self.engine)
        self.transport = LocalTransport(self.engine, partitions=PARTITIONS, **kwargs)
        return self.transport

    async def stored(self, tp: TP) -> int:
        """How many messages of `tp` the local transport still keeps."""
        t: LocalTransport = self.transport
        if t.db is None:
            part = t._parts.get(tp)
            return 0 if part is None else len(part.msgs)
        c = transport_messages.c
        async with t.db.connect() as conn:
            return (await conn.execute(select(func.count()).where(c.topic == tp[0], c.partition == tp[1]))
                    ).scalar_one()


async def open_adapter(kind: str, request: pytest.FixtureRequest, tmp_path, **local_kwargs) -> Adapter:
    if kind == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        config = KafkaConfig(bootstrap, partitions=PARTITIONS, request_timeout_ms=5000, retry_backoff_ms=50,
                             max_retry_backoff_s=0.5)
        return Adapter(kind, FastGroupKafka(config), wait_s=20.0)
    if kind == "memory":
        return Adapter(kind, LocalTransport(partitions=PARTITIONS, **local_kwargs))
    url = (f"sqlite+aiosqlite:///{tmp_path}/t.sqlite3" if kind == "sqlite"
           else request.getfixturevalue("pg_url"))
    await upgrade_async(url)
    engine = create_async_engine(url)
    transport = LocalTransport(engine, partitions=PARTITIONS, **local_kwargs)
    return Adapter(kind, transport, url=url, engine=engine, engines=[engine])


async def close_adapter(a: Adapter) -> None:
    for client in reversed(a.clients):
        try:
            await client.stop()
        except Exception:                  # teardown: a client a test already broke
            pass
    for engine in a.engines:
        await engine.dispose()


@pytest.fixture(params=ALL)
async def adapter(request, tmp_path) -> AsyncIterator[Adapter]:
    a = await open_adapter(request.param, request, tmp_path)
    yield a
    await close_adapter(a)


@pytest.fixture(params=LOCAL)
async def local_adapter(request, tmp_path) -> AsyncIterator[Adapter]:
    a = await open_adapter(request.param, request, tmp_path)
    yield a
    await close_adapter(a)


@pytest.fixture(params=DURABLE)
async def durable(request, tmp_path) -> AsyncIterator[Adapter]:
    a = await open_adapter(request.param, request, tmp_path)
    yield a
    await close_adapter(a)


async def collect(consumer, count: int, timeout_s: float) -> list[Msg]:
    """Fetch until `count` messages came or `timeout_s` passed."""
    got: list[Msg] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        got += await consumer.fetch(timeout_ms=200, max_records=100)
    return got


async def joined(consumer, timeout_s: float) -> list[Msg]:
    """Fetch until the member owns partitions (a Kafka group join takes a while); what came meanwhile."""
    got: list[Msg] = []
    deadline = time.monotonic() + timeout_s
    while not consumer.assignment():
        assert time.monotonic() < deadline, "no assignment in time"
        got += await consumer.fetch(timeout_ms=100)
    return got


def row(m: Msg) -> tuple:
    return (m.topic, m.partition, m.offset, m.key, m.value, m.timestamp_ms)


# ---------------------------------------------------------------------------- every adapter


async def test_send_many_acknowledges_partition_and_offset_of_each_record(adapter: Adapter) -> None:
    (topic,) = await adapter.topics("send")
    p = await adapter.producer()
    keys = ["GZ", "SH", "HZ", "广州", "GZ", "东莞", "SH", "佛山", "HZ"]       # partitions 2 1 0 2 2 0 1 1 0
    acks = await p.send_many([(topic, f"v{i}".encode(), k, None, None) for i, k in enumerate(keys)])
    assert [part for part, _o in acks] == [partition_for(k, PARTITIONS) for k in keys]
    assert {part for part, _o in acks} == set(range(PARTITIONS))
    per_partition: dict[int, list[int]] = {}
    for part, offset in acks:
        per_partition.setdefault(part, []).append(offset)
    assert all(offs == list(range(len(offs))) for offs in per_partition.values()), per_partition
    # an explicit partition wins over the key; offsets go on from where the partition is
    explicit = (partition_for("GZ", PARTITIONS) + 1) % PARTITIONS
    before = len(per_partition.get(explicit, []))
    assert await p.send(topic, b"x", key="GZ", partition=explicit) == (explicit, before)
    assert await p.send_many([]) == []


async def test_a_given_timestamp_is_kept_and_a_missing_one_is_stamped(adapter: Adapter) -> None:
    (topic,) = await adapter.topics("time")
    p = await adapter.producer()
    before = int(time.time() * 1000)
    acks = await p.send_many([(topic, b"given", "k", None, 1_600_000_000_123),
                              (topic, b"stamped", "k", None, None)])
    after = int(time.time() * 1000)
    c = await adapter.consumer([topic], adapter.group())
    got = {m.value: m for m in await collect(c, 2, adapter.wait_s)}
    assert got[b"given"].timestamp_ms == 1_600_000_000_123
    assert before - 1000 <= got[b"stamped"].timestamp_ms <= after + 1000
    assert [(m.partition, m.offset) for m in (got[b"given"], got[b"stamped"])] == acks


async def test_a_group_gets_every_message_of_its_topics_once_intact(adapter: Adapter) -> None:
    a, b = await adapter.topics("a", "b")
    p = await adapter.producer()
    records = [(t, f'{{"n":{i}}}'.encode(), k, None, 1_700_000_000_000 + i)
               for i, (t, k) in enumerate((t, k) for t in (a, b) for k in ("GZ", "SH", "HZ", "广州", None))]
    acks = await p.send_many(records)
    if adapter.kind != "kafka":           # a keyless record: partition 0 locally, any partition on Kafka
        assert acks[4][0] == 0
    sent = {(t, part, off, k, v, ts) for (t, v, k, _p, ts), (part, off) in zip(records, acks, strict=True)}
    c = await adapter.consumer([a, b], adapter.group())
    got = await collect(c, len(records), adapter.wait_s)
    assert sorted(map(row, got), key=repr) == sorted(sent, key=repr)
    assert await c.fetch(timeout_ms=300) == []                  # once: nothing more comes
    late = await p.send(b, b"late", key="GZ", timestamp_ms=1_700_000_000_999)
    (m,) = await collect(c, 1, adapter.wait_s)
    assert row(m) == (b, *late, "GZ", b"late", 1_700_000_000_999)


async def test_fetch_with_nothing_waits_its_timeout_and_returns_nothing(adapter: Adapter) -> None:
    (topic,) = await adapter.topics("empty")
    c = await adapter.consumer([topic], adapter.group())
    assert await joined(c, adapter.wait_s) == []
    start = time.monotonic()
    assert await c.fetch(timeout_ms=400) == []
    elapsed = time.monotonic() - start
    assert 0.35 <= elapsed < (0.6 if adapter.kind != "kafka" else 3.0), elapsed


async def test_fetch_returns_early_when_a_message_arrives(adapter: Adapter) -> None:
    (topic,) = await adapter.topics("early")
    p = await adapter.producer()
    c = await adapter.consumer([topic], adapter.group())
    await joined(c, adapter.wait_s)

    async def later() -> None:
        await asyncio.sleep(0.2)
        await p.send(topic, b"now", key="GZ")

    task = asyncio.create_task(later())
    start = time.monotonic()
    got = await c.fetch(timeout_ms=10_000)
    elapsed = time.monotonic() - start
    await task
    assert [m.value for m in got] == [b"now"]
    # locally the append wakes the fetch; Kafka's fetch returns within its long-poll wait
    assert elapsed < (0.5 if adapter.kind != "kafka" else 5.0), elapsed


async def test_a_new_member_starts_after_the_committed_offset(adapter: Adapter) -> None:
    (topic,) = await adapter.topics("commit")
    p = await adapter.producer()
    await p.send_many([(topic, f"m{i}".encode(), None, 1, None) for i in range(5)])
    group = adapter.group()
    c = await adapter.consumer([topic], group)
    first = await collect(c, 5, adapter.wait_s)
    assert [m.offset for m in first] == [0, 1, 2, 3, 4]
    await c.commit({(topic, 1): 3})                          # m0..m2 handled; m3, m4 not
    await c.stop()
    again = await adapter.consumer([topic], group)
    got = await collect(again, 2, adapter.wait_s)
    assert [(m.offset, m.value) for m in got] == [(3, b"m3"), (4, b"m4")]
    assert await again.fetch(timeout_ms=300) == []


async def test_what_was_not_committed_is_delivered_again(adapter: Adapter) -> None:
    (topic,) = await adapter.topics("again")
    p = await adapter.producer()
    await p.send_many([(topic, f"m{i}".encode(), "GZ", None, None) for i in range(3)])
    group = adapter.group()
    c = await adapter.consumer([topic], group)
    assert len(await collect(c, 3, adapter.wait_s)) == 3
    await c.stop()                                             # nothing committed
    again = await adapter.consumer([topic], group)
    assert [m.value for m in await collect(again, 3, adapter.wait_s)] == [b"m0", b"m1", b"m2"]


async def test_a_send_to_a_partition_the_topic_lacks_raises(adapter: Adapter) -> None:
    (topic,) = await adapter.topics("nopart")
    p = await adapter.producer()
    with pytest.raises(ValueError):
        await p.send(topic, b"x", partition=PARTITIONS)
    with pytest.raises(ValueError):
        await p.send(topic, b"x", partition=-1)
    with pytest.raises(ValueError):
        await p.send_many([(topic, b"ok", None, 0, None), (topic, b"x", None, PARTITIONS + 5, None)])


# ---------------------------------------------------------------------------- hostile values


async def round_trip(adapter: Adapter, values: Sequence[bytes], key: str | None = "GZ") -> list[Msg]:
    (topic,) = await adapter.topics("hostile")
    p = await adapter.producer()
    acks = await p.send_many([(topic, v, key, None, None) for v in values])
    c = await adapter.consumer([topic], adapter.group())
    got = sorted(await collect(c, len(values), adapter.wait_s), key=lambda m: m.offset)
    assert [(m.partition, m.offset) for m in got] == acks
    return got


async def test_empty_and_largest_sendable_values_come_back_whole(adapter: Adapter) -> None:
    big = b'{"text":"' + b"\xe5\xb9\xbf" * ((MAX_VALUE - 12) // 3) + b'"}'   # UTF-8 JSON near MAX_VALUE
    assert len(big) <= MAX_VALUE
    got = await round_trip(adapter, [b"", big, b"{}"])
    assert [m.value for m in got] == [b"", big, b"{}"]


async def test_a_one_mib_value(adapter: Adapter) -> None:
    """LocalTransport keeps a 1 MiB value; aiokafka refuses it (max_request_size is 1 MiB with
    the framing), so the loops hold values to MAX_VALUE before sending (services/drivers/dead_letters.py)."""
    value = b"a" * (1 << 20)
    if adapter.kind == "kafka":
        (topic,) = await adapter.topics("mib")
        p = await adapter.producer()
        with pytest.raises(MessageSizeTooLargeError):
            await asyncio.wait_for(p.send(topic, value, key="GZ"), 30)
        return
    (m,) = await round_trip(adapter, [value])
    assert m.value == value


async def test_a_unicode_key_is_kept_and_partitioned_by_its_utf8_bytes(adapter: Adapter) -> None:
    key = "广州-天河 ☎ \U0001f4e1"
    (m,) = await round_trip(adapter, [b"{}"], key=key)
    assert m.key == key
    assert m.partition == partition_for(key, PARTITIONS)


async def test_bytes_that_are_not_utf8_come_back_unchanged(adapter: Adapter) -> None:
    values = [b"\xff\xfe\xfd", b"\x30\x82\x01\x0a\x02\x01\x01\x04\x06public\xa7\x82", b"ok \xc3( bad"]
    got = await round_trip(adapter, values)
    assert [m.value for m in got] == values


# ---------------------------------------------------------------------------- LocalTransport only


async def test_local_messages_of_two_topics_come_in_append_order(local_adapter: Adapter) -> None:
    a, b = await local_adapter.topics("a", "b")
    p = await local_adapter.producer()
    order = []
    for i in range(12):
        topic, key = (a if i % 3 else b), ("GZ", "SZ", "FS", "广州")[i % 4]
        await p.send(topic, str(i).encode(), key=key)
        order.append(str(i).encode())
    await p.send_many([(b if i % 2 else a, str(i).encode(), str(i), None, None) for i in range(12, 20)])
    order += [str(i).encode() for i in range(12, 20)]
    c = await local_adapter.consumer([a, b], local_adapter.group())
    got: list[Msg] = []
    while batch := await c.fetch(timeout_ms=50, max_records=3):
        assert len(batch) <= 3
        got += batch
    assert [m.value for m in got] == order


async def test_local_messages_and_commits_survive_a_restart(durable: Adapter) -> None:
    (topic,) = await durable.topics("durable")
    p = await durable.producer()
    acks = await p.send_many([(topic, f"m{i}".encode(), "GZ", None, 1000 + i) for i in range(4)])
    part = acks[0][0]
    group = durable.group()
    c = await durable.consumer([topic], group)
    assert len(await collect(c, 4, 1)) == 4
    await c.commit({(topic, part): 2})
    await c.stop()
    await p.stop()

    t = await durable.restart()
    p = await durable.producer(t)
    assert await p.send(topic, b"m4", key="GZ", timestamp_ms=1004) == (part, 4)   # offsets go on
    c = await durable.consumer([topic], group, transport=t)
    got = await collect(c, 3, 1)
    assert [row(m) for m in got] == [(topic, part, i, "GZ", f"m{i}".encode(), 1000 + i) for i in (2, 3, 4)]
    other = await durable.consumer([topic], durable.group(), transport=t)   # a new group: from the start
    assert [m.offset for m in await collect(other, 5, 1)] == [0, 1, 2, 3, 4]


async def test_local_retention_drops_what_every_group_committed(local_adapter: Adapter, monkeypatch) -> None:
    monkeypatch.setattr(local, "TRIM_EVERY", 1)              # a trim at every append and commit
    (topic,) = await local_adapter.topics("retain")
    tp = (topic, 0)
    p = await local_adapter.producer()
    g1, g2 = local_adapter.group(), local_adapter.group()
    c1 = await local_adapter.consumer([topic], g1)
    c2 = await local_adapter.consumer([topic], g2)
    await p.send_many([(topic, f"m{i}".encode(), None, 0, None) for i in range(10)])   # both need all
    assert await local_adapter.stored(tp) == 10
    for m in await collect(c1, 10, 1):
        await c1.commit({tp: m.offset + 1})                   # g1 commits all ten, one by one
    for m in (await collect(c2, 10, 1))[:6]:
        await c2.commit({tp: m.offset + 1})                   # g2 only six
    assert await local_adapter.stored(tp) == 4                # below 6 (both committed) is gone
    await c2.stop()
    c2 = await local_adapter.consumer([topic], g2)            # still starts at its commit
    assert [m.offset for m in await collect(c2, 4, 1)] == [6, 7, 8, 9]
    await c1.stop()
    c1 = await local_adapter.consumer([topic], g1)
    assert await c1.fetch(timeout_ms=50) == []
    if local_adapter.kind in DURABLE:                         # and so after a restart
        await c1.stop()
        await c2.stop()
        t = await local_adapter.restart()
        c2 = await local_adapter.consumer([topic], g2, transport=t)
        assert [m.offset for m in await collect(c2, 4, 1)] == [6, 7, 8, 9]
        p = await local_adapter.producer(t)
        assert await p.send(topic, b"m10", partition=0) == (0, 10)


async def test_local_retention_keeps_what_a_live_member_has_not_committed(local_adapter: Adapter,
                                                                         monkeypatch) -> None:
    """A group whose member is running but has committed nothing yet still needs every message."""
    monkeypatch.setattr(local, "TRIM_EVERY", 4)
    (topic,) = await local_adapter.topics("slow")
    tp = (topic, 0)
    local_adapter.transport.keep_unconsumed = 2
    p = await local_adapter.producer()
    fast = await local_adapter.consumer([topic], local_adapter.group())
    slow = await local_adapter.consumer([topic], local_adapter.group())
    await p.send_many([(topic, f"m{i}".encode(), None, 0, None) for i in range(10)])
    for m in await collect(fast, 10, 1):
        await fast.commit({tp: m.offset + 1})
    assert [m.offset for m in await collect(slow, 10, 1)] == list(range(10))


async def test_local_unconsumed_topics_keep_their_latest_messages(local_adapter: Adapter,
                                                                  monkeypatch) -> None:
    monkeypatch.setattr(local, "TRIM_EVERY", 5)
    (topic,) = await local_adapter.topics("unconsumed")
    local_adapter.transport.keep_unconsumed = 3
    tp = (topic, 0)
    p = await local_adapter.producer()
    await p.send_many([(topic, f"m{i}".encode(), None, 0, None) for i in range(10)])
    assert await local_adapter.stored(tp) == 3
    c = await local_adapter.consumer([topic], local_adapter.group())       # a reader to come
    assert [m.value for m in await collect(c, 3, 1)] == [b"m7", b"m8", b"m9"]


async def test_local_lag_drained_and_settled(local_adapter: Adapter) -> None:
    a, b = await local_adapter.topics("a", "b")
    t: LocalTransport = local_adapter.transport
    p = await local_adapter.producer()
    c = await local_adapter.consumer([a, b], local_adapter.group())
    everything = {(x, i) for x in (a, b) for i in range(PARTITIONS)}
    assert await c.lag() == dict.fromkeys(everything, 0)
    assert await c.drained(everything) == everything
    assert await t.settled(timeout_s=0.1)
    await p.send_many([(a, b"1", None, 0, None), (a, b"2", None, 0, None), (b, b"3", None, 2, None)])
    assert await c.lag() == {**dict.fromkeys(everything, 0), (a, 0): 2, (b, 2): 1}
    assert await c.drained(everything) == everything - {(a, 0), (b, 2)}
    assert await c.drained([("other", 0)]) == set()            # not owned: never drained
    assert not await t.settled(timeout_s=0.05)
    msgs = await c.fetch(timeout_ms=50)
    assert await c.lag() == dict.fromkeys(everything, 0)       # fetched: caught up ...
    assert await c.drained(everything) == everything
    assert not await t.settled(timeout_s=0.05)                 # ... but not settled until committed
    await c.commit({(a, 0): 1, (b, 2): 1})
    assert not await t.settled(timeout_s=0.05)
    waiter = asyncio.create_task(t.settled(timeout_s=5))
    await asyncio.sleep(0.02)
    await c.commit({(m.topic, m.partition): m.offset + 1 for m in msgs})
    assert await waiter


async def test_local_callbacks_see_every_partition_and_a_revoke_may_commit(local_adapter: Adapter) -> None:
    (topic,) = await local_adapter.topics("cb")
    calls: list[tuple[str, set]] = []
    c = None

    async def assigned(tps: set) -> None:
        calls.append(("assigned", tps))

    async def revoked(tps: set) -> None:
        calls.append(("revoked", tps))
        await c.commit({tp: 1 for tp in tps})                 # flush on revoke, as Kafka allows

    p = await local_adapter.producer()
    await p.send_many([(topic, b"x", None, i, None) for i in range(PARTITIONS)])
    group = local_adapter.group()
    c = await local_adapter.consumer([topic], group, on_assigned=assigned, on_revoked=revoked)
    everything = {(topic, i) for i in range(PARTITIONS)}
    assert calls == [("assigned", everything)]
    assert c.assignment() == everything
    assert len(await c.fetch(timeout_ms=50)) == PARTITIONS
    await c.stop()
    assert calls == [("assigned", everything), ("revoked", everything)]
    assert c.assignment() == set()
    again = await local_adapter.consumer([topic], group)
    assert await again.fetch(timeout_ms=50) == []             # the commit made in on_revoked held


async def test_local_one_live_member_per_group(local_adapter: Adapter) -> None:
    (topic,) = await local_adapter.topics("member")
    group = local_adapter.group()
    first = await local_adapter.consumer([topic], group)
    second = local_adapter.transport.consumer([topic], group)
    with pytest.raises(RuntimeError):
        await second.start()
    await local_adapter.consumer([topic], local_adapter.group())        # another group: fine
    await first.stop()
    await second.start()                                      # once the first stopped
    local_adapter.clients.append(second)
    assert second.assignment()


async def test_local_clients_not_started_raise_transport_closed(local_adapter: Adapter) -> None:
    (topic,) = await local_adapter.topics("closed")
    p = local_adapter.transport.producer()
    with pytest.raises(TransportClosed):
        await p.send(topic, b"x")
    await p.start()
    await p.send(topic, b"x")
    await p.stop()
    with pytest.raises(TransportClosed):
        await p.send_many([(topic, b"x", None, None, None)])
    c = local_adapter.transport.consumer([topic], local_adapter.group())
    with pytest.raises(TransportClosed):
        await c.fetch(timeout_ms=10)


async def test_local_a_nul_byte_in_a_value(local_adapter: Adapter) -> None:
    """JSON never holds a raw NUL (orjson escapes it), but a raw syslog line may. PostgreSQL's
    text cannot store one: the send raises instead of acknowledging (bug; see the report)."""
    (m,) = await round_trip(local_adapter, [b"a\x00b"])
    assert m.value == b"a\x00b"
