"""shared.transport.kafka against a real Kafka-protocol broker (Tansu): no mocks."""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared.transport.kafka import (
    Consumer,
    KafkaConfig,
    Producer,
    ensure_topics,
    is_transient,
)
from shared.transport.port import Msg, partition_for

from .kafka_fixtures import Tansu, free_port

# Tansu answers a new group's JoinGroup after half the session timeout: keep it short.
FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 200}


def unique(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}"


def fast_config(bootstrap: str, request_timeout_ms: int = 5000) -> KafkaConfig:
    """Short timeouts and backoffs so outages are noticed within the test's budget."""
    return KafkaConfig(
        bootstrap, request_timeout_ms=request_timeout_ms, retry_backoff_ms=50, max_retry_backoff_s=0.5
    )


@pytest.fixture
def config(kafka_bootstrap: str) -> KafkaConfig:
    return fast_config(kafka_bootstrap)


async def eventually(
    check: Callable[[], bool], timeout: float = 15.0, *, tick: Callable[[], Awaitable] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await (tick() if tick else asyncio.sleep(0.05))


async def drain(consumer: Consumer, count: int, timeout: float = 10.0) -> list[Msg]:
    got: list[Msg] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += await consumer.fetch(timeout_ms=200, max_records=100)
    return got


async def partition_counts(config: KafkaConfig, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described}


def test_partition_for_is_crc32_and_stable() -> None:
    cities = ("GZ", "SZ", "FS", "广州")
    assert [partition_for(c, 6) for c in cities] == [zlib.crc32(c.encode()) % 6 for c in cities]
    assert partition_for("GZ", 6) == 5  # the same in every process and Python run (no hash seed)


def test_config_comes_from_the_contract_variables() -> None:
    """The processes' KafkaConfig is built by the one settings object (services/settings.py)."""
    from services.config import UsageError
    from services.settings import Settings

    env = {
        "FAULTLINE_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
        "FAULTLINE_KAFKA_IDEMPOTENCE": "true",
        "FAULTLINE_TOPIC_PARTITIONS": "12",
        "FAULTLINE_TOPIC_REPLICATION": "3",
    }
    assert Settings.load(environ=env, command="correlate").kafka == KafkaConfig(
        "k1:9092,k2:9092", enable_idempotence=True, partitions=12,
        replication_factor=3,
    )
    plain = Settings.load(environ={"FAULTLINE_KAFKA_BOOTSTRAP": "k:9092"}, command="api")
    assert plain.kafka == KafkaConfig("k:9092")
    for bad in ({}, {"FAULTLINE_KAFKA_BOOTSTRAP": "k", "FAULTLINE_KAFKA_IDEMPOTENCE": "maybe"},
                {"FAULTLINE_KAFKA_BOOTSTRAP": "k", "FAULTLINE_TOPIC_PARTITIONS": "0"}):
        with pytest.raises(UsageError):
            Settings.load(environ=bad, command="dispatch")


async def test_ensure_topics_gives_up_at_its_deadline_when_no_broker_answers() -> None:
    config = fast_config(f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        await ensure_topics(config, {"faultline.test.nobody": 1}, deadline_s=1.0)
    assert is_transient(caught.value)
    assert 1.0 <= time.monotonic() - started < 5.0


async def test_ensure_topics_creates_missing_topics_and_is_idempotent(config: KafkaConfig) -> None:
    a, b = unique("faultline.test.a"), unique("faultline.test.b")
    assert await ensure_topics(config, {a: 3, b: 1}) == {a, b}
    assert await ensure_topics(config, {a: 5, b: 1}) == set()
    assert await partition_counts(config, [a, b]) == {a: 3, b: 1}


async def test_round_trip_keeps_keys_partitions_and_timestamps(config: KafkaConfig) -> None:
    topic = unique("faultline.test.roundtrip")
    await ensure_topics(config, {topic: 4})
    producer = Producer(config)
    await producer.start()
    try:
        keyed = await producer.send(topic, b'{"n":1}', key="GZ", timestamp_ms=1_764_036_000_123)
        explicit = await producer.send(
            topic, b'{"n":2}', key="SZ", partition=3, timestamp_ms=1_764_036_000_456
        )
        unkeyed = await producer.send(topic, b'{"n":3}', partition=1)
        many = await producer.send_many(
            [(topic, b'{"n":%d}' % i, "FS", None, 1_764_036_001_000 + i) for i in range(4, 9)]
        )
    finally:
        await producer.stop()
    assert keyed[0] == partition_for("GZ", 4)
    assert explicit[0] == 3 and unkeyed[0] == 1
    assert {p for p, _ in many} == {partition_for("FS", 4)}
    assert [o for _, o in many] == sorted(o for _, o in many)

    consumer = Consumer(config, [topic], unique("g"), **FAST_GROUP)
    await consumer.start()
    try:
        got = await drain(consumer, 8)
    finally:
        await consumer.stop()
    by_value = {m.value: m for m in got}
    assert len(got) == 8
    assert by_value[b'{"n":1}'] == Msg(topic, keyed[0], keyed[1], "GZ", b'{"n":1}', 1_764_036_000_123)
    assert by_value[b'{"n":2}'] == Msg(topic, 3, explicit[1], "SZ", b'{"n":2}', 1_764_036_000_456)
    assert by_value[b'{"n":3}'].key is None and by_value[b'{"n":3}'].partition == 1
    fs = [m for m in got if m.key == "FS"]
    assert [m.value for m in fs] == [b'{"n":%d}' % i for i in range(4, 9)]
    assert [m.timestamp_ms for m in fs] == [1_764_036_001_000 + i for i in range(4, 9)]


class Recorder:
    """Rebalance callbacks that remember what they were told."""

    def __init__(self) -> None:
        self.assigned: list[set] = []
        self.revoked: list[set] = []

    async def on_assigned(self, tps: set) -> None:
        self.assigned.append(tps)

    async def on_revoked(self, tps: set) -> None:
        self.revoked.append(tps)


def member(config: KafkaConfig, topic: str, group: str, rec: Recorder) -> Consumer:
    return Consumer(
        config, [topic], group, on_assigned=rec.on_assigned, on_revoked=rec.on_revoked, **FAST_GROUP
    )


async def test_group_members_share_partitions_and_the_survivor_takes_all(config: KafkaConfig) -> None:
    topic, group = unique("faultline.test.group"), unique("g")
    await ensure_topics(config, {topic: 4})
    everything = {(topic, p) for p in range(4)}
    r1, r2 = Recorder(), Recorder()
    c1, c2 = member(config, topic, group, r1), member(config, topic, group, r2)
    await c1.start()
    assert c1.assignment() == everything and r1.assigned == [everything]
    try:
        c1_has_two = eventually(lambda: len(c1.assignment()) == 2, tick=lambda: c1.fetch(50))
        await asyncio.gather(c2.start(), c1_has_two)
        assert c1.assignment() | c2.assignment() == everything
        assert not c1.assignment() & c2.assignment()
        assert r1.revoked and r1.revoked[0] == everything
        await c2.stop()
        assert r2.revoked[-1] == r2.assigned[-1]  # stop hands the partitions to on_revoked first
        await eventually(lambda: c1.assignment() == everything, tick=lambda: c1.fetch(50))
        assert r1.assigned[-1] == everything
    finally:
        await c2.stop()
        await c1.stop()


async def test_a_new_member_resumes_after_the_committed_offset(config: KafkaConfig) -> None:
    topic, group = unique("faultline.test.commit"), unique("g")
    await ensure_topics(config, {topic: 1})
    producer = Producer(config)
    await producer.start()
    await producer.send_many([(topic, b"m%d" % i, "GZ", None, None) for i in range(5)])
    await producer.stop()

    first = Consumer(config, [topic], group, **FAST_GROUP)
    await first.start()
    got = await drain(first, 5)
    assert [m.offset for m in got] == [0, 1, 2, 3, 4]
    await first.commit({(topic, 0): got[2].offset + 1})  # m0..m2 are durable
    await first.stop()

    second = Consumer(config, [topic], group, **FAST_GROUP)
    await second.start()
    try:
        resumed = await drain(second, 2)
    finally:
        await second.stop()
    assert [m.value for m in resumed] == [b"m3", b"m4"]


async def test_a_send_during_an_outage_is_retried_until_the_broker_answers(tansu_factory) -> None:
    """A hung broker (SIGSTOP): aiokafka times the request out, the adapter retries with
    backoff, and the record arrives once the broker answers again, at least once: the timed
    out request may still be processed, so without idempotence it can be there twice."""
    broker: Tansu = tansu_factory()
    config = fast_config(broker.bootstrap, request_timeout_ms=1000)
    topic = unique("faultline.test.outage")
    await ensure_topics(config, {topic: 1})
    producer = Producer(config)
    await producer.start()
    try:
        broker.pause()
        during = asyncio.create_task(producer.send(topic, b"during", key="GZ"))
        await asyncio.sleep(2.5)  # more than request_timeout_ms: the adapter's retry loop is at work
        assert not during.done()
        broker.resume()
        partition, _ = await asyncio.wait_for(during, 20)
    finally:
        await producer.stop()
    consumer = Consumer(config, [topic], unique("g"), **FAST_GROUP)
    await consumer.start()
    try:
        got = await drain(consumer, 1, timeout=3)
    finally:
        await consumer.stop()
    assert partition == 0 and got and {m.value for m in got} == {b"during"}


async def test_producer_and_consumer_survive_a_broker_restart(tansu_factory) -> None:
    """Tansu keeps everything in memory: a restart loses topics, records and committed offsets.

    The producer and the consumer carry on once the topics are re-created; a fetch while the
    broker is down returns nothing instead of raising. (Tansu also acks, and drops, a record
    sent to a vanished topic before it is re-created, so this test sends only afterwards.)
    """
    broker: Tansu = tansu_factory()
    config = fast_config(broker.bootstrap, request_timeout_ms=2000)
    topic = unique("faultline.test.restart")
    await ensure_topics(config, {topic: 2})
    producer = Producer(config)
    await producer.start()
    consumer = Consumer(config, [topic], unique("g"), **FAST_GROUP)
    await consumer.start()
    try:
        assert await producer.send(topic, b"before", partition=0) == (0, 0)
        assert [m.value for m in await drain(consumer, 1)] == [b"before"]
        broker.kill()
        assert await consumer.fetch(timeout_ms=500) == []
        await asyncio.to_thread(broker.start)
        # It had vanished; the consumer's metadata requests may re-create it first (Tansu
        # auto-creates), so either this call or that one brought it back.
        assert await ensure_topics(config, {topic: 2}) in ({topic}, set())
        assert await producer.send(topic, b"after", partition=1) == (1, 0)
        assert [m.value for m in await drain(consumer, 1)] == [b"after"]
    finally:
        await producer.stop()
        await consumer.stop()

    again = Consumer(config, [topic], unique("g"), **FAST_GROUP)
    await again.start()
    try:
        assert [m.value for m in await drain(again, 2, timeout=3)] == [b"after"]  # "before" is lost
    finally:
        await again.stop()
