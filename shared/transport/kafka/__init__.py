"""The Kafka adapter: a thin, swappable layer over aiokafka (CONTRACT §4).

Nothing here knows about alarms or faults; stages see bytes, keys, partitions and offsets.
The adapter adds what every stage needs and aiokafka leaves to the caller:

- `KafkaConfig`, how to reach the cluster (built by services/settings.py from FAULTLINE_*);
- `partition_for`, a partitioner that is the same in every process and Python run, so
  one city's messages always land on one partition (the producer uses it for keyed sends);
- `ensure_topics`, creating missing topics while the broker is still coming up;
- `Producer.send`, which awaits the broker's ack and retries a lost connection with a
  capped exponential backoff instead of dropping the message;
- `Consumer`, a group member with manual commits (commit `offset + 1` only once the result
  is durable, STYLE.md 11) and rebalance callbacks that run before partitions leave.

Delivery is at least once. Tansu (the broker of the integration tests) does not support the
idempotent producer, so it is off by default; production on Apache Kafka sets
`FAULTLINE_KAFKA_IDEMPOTENCE=true`, which keeps a retried batch from being written twice.
(No Kafka transactions: the stages' exactly-once effects come from their PostgreSQL
outbox and source keys.)
"""

from __future__ import annotations

import asyncio
import logging
import random
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, for_code

from shared.kafka_assign import SingleActiveAssignor
from shared.transport.port import TP, Msg, PartitionCallback

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36  # the Kafka protocol's error code



class UnknownPartition(ValueError):
    """An explicit partition that the topic does not have."""


class ProducerStopped(RuntimeError):
    """A send that could not be delivered because the producer was stopped."""


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    """How to reach the cluster and how to create topics.

    `enable_idempotence` is off by default because Tansu rejects InitProducerId; production
    on Apache Kafka turns it on.
    """

    bootstrap: str
    client_id: str = "faultline"
    enable_idempotence: bool = False
    acks: str | int = "all"
    partitions: int = 6
    replication_factor: int = 1
    request_timeout_ms: int = 30000
    retry_backoff_ms: int = 200
    max_retry_backoff_s: float = 10.0
    # How often clients refresh topic metadata. Tansu acknowledges and drops records sent to
    # a topic it lost in a restart, so the tests refresh every few seconds; Kafka answers
    # UNKNOWN_TOPIC_OR_PARTITION instead and the default of 5 minutes is right there.
    metadata_max_age_ms: int = 300000

    def client_kwargs(self) -> dict[str, Any]:
        """The connection settings every aiokafka client takes."""
        return {
            "bootstrap_servers": self.bootstrap,
            "client_id": self.client_id,
            "request_timeout_ms": self.request_timeout_ms,
            "retry_backoff_ms": self.retry_backoff_ms,
            "metadata_max_age_ms": self.metadata_max_age_ms,
        }


def _crc32_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka partitioner hook: `partition_for` for keyed records, any live partition otherwise."""
    if key is None:
        return random.choice(available or all_partitions)
    ordered = sorted(all_partitions)
    return ordered[zlib.crc32(key) % len(ordered)]


def is_transient(exc: BaseException) -> bool:
    """True for errors a wait can cure: lost connections, timeouts, leader moves."""
    if isinstance(exc, (KafkaConnectionError, KafkaTimeoutError, ConnectionError, asyncio.TimeoutError)):
        return True
    return isinstance(exc, KafkaError) and exc.retriable


class _Backoff:
    """Exponential delays from `retry_backoff_ms`, doubling up to `max_retry_backoff_s`."""

    def __init__(self, config: KafkaConfig, deadline_s: float | None) -> None:
        self._delay = config.retry_backoff_ms / 1000
        self._cap = config.max_retry_backoff_s
        loop = asyncio.get_running_loop()
        self._deadline = None if deadline_s is None else loop.time() + deadline_s

    def expired(self) -> bool:
        return self._deadline is not None and asyncio.get_running_loop().time() >= self._deadline

    async def wait(self) -> None:
        delay = self._delay
        if self._deadline is not None:
            delay = max(0.0, min(delay, self._deadline - asyncio.get_running_loop().time()))
        await asyncio.sleep(delay)
        self._delay = min(self._cap, self._delay * 2)


async def ensure_topics(
    config: KafkaConfig, topics: Mapping[str, int], *, deadline_s: float = 60.0
) -> set[str]:
    """Create the missing `topics` (name → partition count); return the names created.

    A topic that already exists is left as it is, whatever its partition count. While the
    broker is unreachable this retries with backoff until `deadline_s`, then raises.
    """
    backoff = _Backoff(config, deadline_s)
    while True:
        try:
            return await _create_missing(config, topics)
        except Exception as exc:
            if not is_transient(exc) or backoff.expired():
                raise
            log.warning("ensure_topics: broker %s not ready (%r); retrying", config.bootstrap, exc)
            await backoff.wait()


async def _create_missing(config: KafkaConfig, topics: Mapping[str, int]) -> set[str]:
    admin = AIOKafkaAdminClient(**config.client_kwargs())
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, p, config.replication_factor) for n, p in topics.items() if n not in existing]
        if not missing:
            return set()
        response = await admin.create_topics(missing)
        created = set()
        for topic, code, *message in response.topic_errors:
            if code == 0:
                created.add(topic)
            elif code != TOPIC_ALREADY_EXISTS:
                raise for_code(code)(f"creating topic {topic}: {message[0] if message else code}")
        return created
    finally:
        await admin.close()


class Producer:
    """Sends bytes and returns (partition, offset) once the broker has acknowledged them.

    A keyed record without an explicit partition goes to `partition_for(key, n)`. A send
    that fails for a transient reason is retried with capped exponential backoff until its
    deadline (default: until the producer is stopped); it then raises, never drops. A retry
    after a timeout may write the record twice unless idempotence is on (Apache Kafka).
    """

    def __init__(self, config: KafkaConfig, *, send_deadline_s: float | None = None) -> None:
        self._config = config
        self._send_deadline_s = send_deadline_s
        self._producer: AIOKafkaProducer | None = None
        self._stopping = False

    async def start(self, *, deadline_s: float | None = 60.0) -> None:
        """Connect, retrying an unreachable broker until `deadline_s` (None: forever)."""
        self._producer = await _start_with_retry(self._config, deadline_s, self._new_client)

    def _new_client(self) -> AIOKafkaProducer:
        c = self._config
        return AIOKafkaProducer(
            **c.client_kwargs(),
            acks=c.acks,
            enable_idempotence=c.enable_idempotence,
            partitioner=_crc32_partitioner,
        )

    async def stop(self) -> None:
        """Flush what is queued and disconnect; sends still retrying raise ProducerStopped."""
        self._stopping = True
        if self._producer is not None:
            await self._producer.stop()

    async def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: str | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> tuple[int, int]:
        """Send one record and await its ack; return (partition, offset)."""
        backoff = _Backoff(self._config, self._send_deadline_s)
        while True:
            try:
                fut = await self._enqueue(topic, value, key, partition, timestamp_ms)
                meta = await fut
                return meta.partition, meta.offset
            except Exception as exc:
                if self._stopping:
                    raise ProducerStopped(f"producer stopped before {topic} acknowledged a record") from exc
                if not is_transient(exc) or backoff.expired():
                    raise
                log.warning("send to %s failed (%r); retrying", topic, exc)
                await backoff.wait()

    async def send_many(
        self, records: Sequence[tuple[str, bytes, str | None, int | None, int | None]]
    ) -> list[tuple[int, int]]:
        """Send (topic, value, key, partition, timestamp_ms) records concurrently; await every ack.

        Records are queued in the given order, so one key's records keep their order on the
        first attempt; a record that has to be retried is re-sent after the others were queued.
        """
        futures = [await self._enqueue_or_none(*r) for r in records]
        results: list[tuple[int, int]] = []
        for record, fut in zip(records, futures, strict=True):
            results.append(await self._ack_or_resend(record, fut))
        return results

    async def _enqueue_or_none(self, *record: Any) -> asyncio.Future | None:
        try:
            return await self._enqueue(*record)
        except Exception as exc:
            if not is_transient(exc):
                raise
            return None

    async def _ack_or_resend(self, record: tuple, fut: asyncio.Future | None) -> tuple[int, int]:
        if fut is not None:
            try:
                meta = await fut
                return meta.partition, meta.offset
            except Exception as exc:
                if not is_transient(exc):
                    raise
        topic, value, key, partition, timestamp_ms = record
        return await self.send(topic, value, key=key, partition=partition, timestamp_ms=timestamp_ms)

    async def _enqueue(
        self, topic: str, value: bytes, key: str | None, partition: int | None, timestamp_ms: int | None
    ) -> asyncio.Future:
        if self._producer is None:
            raise RuntimeError("Producer.start() was not called")
        if self._stopping:
            raise ProducerStopped("producer is stopped")
        if partition is not None and partition not in await self._producer.partitions_for(topic):
            raise UnknownPartition(f"{topic} has no partition {partition}")
        key_bytes = None if key is None else key.encode("utf-8")
        return await self._producer.send(
            topic, value, key=key_bytes, partition=partition, timestamp_ms=timestamp_ms
        )


class _Listener(ConsumerRebalanceListener):
    """Turns aiokafka's TopicPartition sets into (topic, partition) sets for our callbacks."""

    def __init__(self, on_assigned: PartitionCallback | None, on_revoked: PartitionCallback | None) -> None:
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        tps = {(tp.topic, tp.partition) for tp in revoked}
        if tps and self._on_revoked is not None:
            await self._on_revoked(tps)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        if self._on_assigned is not None:
            await self._on_assigned({(tp.topic, tp.partition) for tp in assigned})


class Consumer:
    """A member of a consumer group that commits only what the caller says is done.

    `on_revoked` runs before partitions leave this member (at a rebalance and at `stop`),
    so the caller can flush its state and `commit`; `on_assigned` runs once the new
    assignment is known and before records of it are fetched. An exception in either is
    logged by aiokafka and does not stop the group.
    """

    def __init__(
        self,
        config: KafkaConfig,
        topics: Sequence[str],
        group_id: str,
        *,
        on_assigned: PartitionCallback | None = None,
        on_revoked: PartitionCallback | None = None,
        session_timeout_ms: int = 10000,
        heartbeat_interval_ms: int = 3000,
        max_poll_interval_ms: int = 300000,
        isolation_level: str = "read_uncommitted",
        assignors: tuple | None = None,
    ) -> None:
        self._config = config
        self._topics = list(topics)
        self._group_id = group_id
        self._listener = _Listener(on_assigned, on_revoked)
        self._on_revoked = on_revoked
        self._options = {
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "max_poll_interval_ms": max_poll_interval_ms,
            "isolation_level": isolation_level,
        }
        if assignors:                       # e.g. (SingleActiveAssignor,) for the router group
            self._options["partition_assignment_strategy"] = assignors
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self, *, deadline_s: float | None = 60.0) -> None:
        """Join the group and wait for the first assignment, retrying an unreachable broker."""
        self._consumer = await _start_with_retry(self._config, deadline_s, self._new_client)

    def _new_client(self) -> AIOKafkaConsumer:
        kwargs = self._config.client_kwargs()
        # JoinGroup may legitimately wait a whole rebalance timeout (= session timeout) at
        # the broker; aiokafka applies request_timeout_ms to it, so keep that longer (as
        # the Java client does).
        join_wait_ms = self._options["session_timeout_ms"] + 5000
        kwargs["request_timeout_ms"] = max(kwargs["request_timeout_ms"], join_wait_ms)
        consumer = AIOKafkaConsumer(
            **kwargs,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **self._options,
        )
        consumer.subscribe(self._topics, listener=self._listener)
        return consumer

    async def stop(self) -> None:
        """Hand the assignment to `on_revoked` (aiokafka does not at stop), then leave the group."""
        consumer = self._consumer
        if consumer is None:
            return
        try:
            owned = self._assignment_of(consumer)
            if owned and self._on_revoked is not None:
                await self._on_revoked(owned)
        finally:
            self._consumer = None
            await consumer.stop()

    def assignment(self) -> set[TP]:
        """The partitions this member owns now."""
        return set() if self._consumer is None else self._assignment_of(self._consumer)

    @staticmethod
    def _assignment_of(consumer: AIOKafkaConsumer) -> set[TP]:
        return {(tp.topic, tp.partition) for tp in consumer.assignment()}

    async def fetch(self, timeout_ms: int = 1000, max_records: int | None = 500) -> list[Msg]:
        """Records of the owned partitions, waiting up to `timeout_ms` for the first.

        A transient error (broker gone, leader moving) is logged and retried until the
        timeout; the result is then empty, and the caller simply fetches again.
        """
        consumer = self._require()
        backoff = _Backoff(self._config, timeout_ms / 1000)
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
                return [_to_msg(r) for records in batch.values() for r in records]
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("fetch from %s failed (%r); retrying", self._topics, exc)
                if backoff.expired():
                    return []
                await backoff.wait()

    async def commit(self, offsets: Mapping[TP, int], *, deadline_s: float | None = None) -> None:
        """Commit NEXT offsets (last processed + 1) of owned partitions.

        aiokafka retries transient failures itself; `deadline_s` bounds the wait. Raises
        aiokafka's CommitFailedError when the group rebalanced the partition away meanwhile.
        """
        consumer = self._require()
        payload = {TopicPartition(t, p): off for (t, p), off in offsets.items()}
        if deadline_s is None:
            await consumer.commit(payload)
        else:
            await asyncio.wait_for(consumer.commit(payload), deadline_s)

    async def lag(self) -> dict[TP, int]:
        """Per owned partition, how many records lie beyond what was fetched (0: caught up).

        A partition whose end the broker has not reported yet is left out (unknown)."""
        consumer = self._require()
        out: dict[TP, int] = {}
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is None:
                continue
            try:                                # position() waits while an offset is being reset
                position = await asyncio.wait_for(consumer.position(tp), 0.05)
            except TimeoutError:
                continue
            out[(tp.topic, tp.partition)] = max(0, end - position)
        return out

    async def drained(self, tps: Iterable[TP], timeout_s: float = 5.0) -> set[TP]:
        """Of `tps` (owned), those with nothing left to hand out: every record the broker
        held when this call began was already returned by `fetch`. Asks the broker for the
        end offsets (ListOffsets), so unlike `lag` it never trusts an old fetch response.
        A broker that does not answer in time leaves every partition undrained."""
        consumer = self._require()
        owned = {TopicPartition(t, p) for t, p in tps} & consumer.assignment()
        if not owned:
            return set()
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(list(owned)), timeout_s)
        except (KafkaError, TimeoutError) as exc:
            log.warning("end offsets of %d partition(s) unavailable (%r)", len(owned), exc)
            return set()
        out: set[TP] = set()
        for tp, end in ends.items():
            if tp not in consumer.assignment():
                continue
            try:                                # position() waits while an offset is being reset
                position = await asyncio.wait_for(consumer.position(tp), 0.05)
            except TimeoutError:
                continue
            if position >= end:
                out.add((tp.topic, tp.partition))
        return out

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("Consumer.start() was not called, or it was stopped")
        return self._consumer


def _to_msg(record: Any) -> Msg:
    key = None if record.key is None else record.key.decode("utf-8", errors="replace")
    return Msg(record.topic, record.partition, record.offset, key, record.value or b"", record.timestamp)


async def _start_with_retry(
    config: KafkaConfig, deadline_s: float | None, new_client: Callable[[], Any]
) -> Any:
    """Start a fresh aiokafka client per attempt (a failed one cannot be restarted)."""
    backoff = _Backoff(config, deadline_s)
    while True:
        client = new_client()
        try:
            await client.start()
            return client
        except Exception as exc:
            await client.stop()
            if not is_transient(exc) or backoff.expired():
                raise
            log.warning("Kafka at %s not reachable (%r); retrying", config.bootstrap, exc)
            await backoff.wait()


class KafkaTransport:
    """The transport port (shared/transport/port.py) over Apache Kafka (Tansu in the tests)."""

    name = "kafka"

    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self.partitions = config.partitions

    def producer(self) -> Producer:
        return Producer(self.config)

    def consumer(self, topics: Sequence[str], group_id: str, *, on_assigned: PartitionCallback | None = None,
                 on_revoked: PartitionCallback | None = None, single_active: bool = False) -> Consumer:
        return Consumer(self.config, topics, group_id, on_assigned=on_assigned, on_revoked=on_revoked,
                        assignors=(SingleActiveAssignor,) if single_active else None)

    async def ensure_topics(self, topics: Mapping[str, int], *, deadline_s: float | None = 60.0) -> None:
        await ensure_topics(self.config, topics, deadline_s=deadline_s)

    async def problem(self) -> str | None:
        """Can a connection to the first bootstrap server be opened (for /readyz)?"""
        try:
            host, _, port = self.config.bootstrap.split(",")[0].rpartition(":")
            _r, w = await asyncio.wait_for(asyncio.open_connection(host or "127.0.0.1", int(port)), 3)
            w.close()
        except Exception as err:                       # any failure: not ready, with its reason
            return f"kafka: {type(err).__name__}"
        return None
