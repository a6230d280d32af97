"""Sending: `Producer`, which awaits the broker's ack and retries a lost connection with a
capped exponential backoff instead of dropping the message, and its partitioner, the same
in every process and Python run (`partition_for`), so one city's messages always land on
one partition."""

from __future__ import annotations

import asyncio
import logging
import random
import zlib
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.transport.kafka.config import KafkaConfig
from shared.transport.kafka.retry import Backoff, is_transient, start_with_retry

log = logging.getLogger("shared.transport.kafka")


class UnknownPartition(ValueError):
    """An explicit partition that the topic does not have."""


class ProducerStopped(RuntimeError):
    """A send that could not be delivered because the producer was stopped."""


def _crc32_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka partitioner hook: `partition_for` for keyed records, any live partition otherwise."""
    if key is None:
        return random.choice(available or all_partitions)
    ordered = sorted(all_partitions)
    return ordered[zlib.crc32(key) % len(ordered)]


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
        self._producer = await start_with_retry(self._config, deadline_s, self._new_client)

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
        backoff = Backoff(self._config, self._send_deadline_s)
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

