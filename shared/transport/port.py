"""The transport port: what the runtime's loops need from a message broker (CONTRACT §4).

Two adapters implement it: `shared.transport.kafka` (Apache Kafka, Tansu in the tests) for
the production processes, and `shared.transport.local` (one process, kept in the same
SQLite or PostgreSQL database as the logs, or in memory for fast tests) for `faultline
run`. The loops (services/runtime) see only this: topics of partitions, offsets, consumer
groups whose members commit what they have durably handled, keyed sends acknowledged
with (partition, offset). Delivery is at least once in both; the loops' logs and source
keys make the effects exactly once.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

TP = tuple[str, int]
"""A topic partition as the loops see it: (topic, partition)."""

PartitionCallback = Callable[[set[TP]], Awaitable[None]]

Record = tuple[str, bytes, str | None, int | None, int | None]
"""What a producer sends: (topic, value, key, partition, timestamp_ms)."""


def partition_for(key: str, partitions: int) -> int:
    """The partition of a key: CRC-32 of its UTF-8 bytes, the same in every process and run."""
    return zlib.crc32(key.encode("utf-8")) % partitions


@dataclass(frozen=True, slots=True)
class Msg:
    """One consumed record. `key` is decoded from UTF-8 (undecodable bytes replaced)."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    timestamp_ms: int

    @property
    def coordinates(self) -> str:
        """The message's name for dedup and dead letters, `topic:partition:offset@time`: its
        time keeps the name unique when a topic is recreated (offsets start again at 0)."""
        return f"{self.topic}:{self.partition}:{self.offset}@{self.timestamp_ms}"


def next_offsets(msgs: Iterable[Msg]) -> dict[TP, int]:
    """What to commit once these messages are handled: per partition, past the last of them."""
    offsets: dict[TP, int] = {}
    for m in msgs:
        tp = (m.topic, m.partition)
        if m.offset + 1 > offsets.get(tp, -1):
            offsets[tp] = m.offset + 1
    return offsets


class Producer(Protocol):
    async def start(self, *, deadline_s: float | None = 60.0) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes, *, key: str | None = None, partition: int | None = None,
                   timestamp_ms: int | None = None) -> tuple[int, int]: ...

    async def send_many(self, records: Sequence[Record]) -> list[tuple[int, int]]:
        """Send every record, in order per key; return each one's (partition, offset) once
        all are acknowledged (durable)."""
        ...


class Consumer(Protocol):
    async def start(self, *, deadline_s: float | None = 60.0) -> None: ...

    async def stop(self) -> None: ...

    def assignment(self) -> set[TP]: ...

    async def fetch(self, timeout_ms: int = 1000, max_records: int | None = 500) -> list[Msg]: ...

    async def commit(self, offsets: Mapping[TP, int], *, deadline_s: float | None = None) -> None: ...

    async def lag(self) -> dict[TP, int]: ...

    async def drained(self, tps: Iterable[TP], timeout_s: float = 5.0) -> set[TP]: ...


class Transport(Protocol):
    """A broker: makes producers and group consumers, creates topics, says if it answers."""

    name: str                 # "kafka" | "local": for /readyz and logs
    partitions: int           # of the topics this transport creates

    def producer(self) -> Producer: ...

    def consumer(self, topics: Sequence[str], group_id: str, *, on_assigned: PartitionCallback | None = None,
                 on_revoked: PartitionCallback | None = None, single_active: bool = False) -> Consumer:
        """A member of `group_id`. `single_active`: at most one member of the group owns
        partitions at a time (the router, which must see every partition to merge them)."""
        ...

    async def ensure_topics(self, topics: Mapping[str, int], *, deadline_s: float | None = 60.0) -> None: ...

    async def problem(self) -> str | None:
        """Why the broker cannot be used now (for /readyz), or None."""
        ...
