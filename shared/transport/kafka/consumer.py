"""Receiving: `Consumer`, a group member with manual commits (commit `offset + 1` only once
the result is durable, STYLE.md 11) and rebalance callbacks that run before partitions
leave; aiokafka's records become the port's `Msg`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from shared.transport.kafka.config import KafkaConfig
from shared.transport.kafka.retry import Backoff, is_transient, start_with_retry
from shared.transport.port import TP, Msg, PartitionCallback

log = logging.getLogger("shared.transport.kafka")


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
        self._consumer = await start_with_retry(self._config, deadline_s, self._new_client)

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
            fetch_max_wait_ms=self._config.fetch_max_wait_ms,
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
        backoff = Backoff(self._config, timeout_ms / 1000)
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
