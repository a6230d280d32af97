"""The Kafka adapter: a thin, swappable layer over aiokafka (CONTRACT §4), the transport
port (shared/transport/port.py) for the production processes.

Nothing here knows about alarms or faults; stages see bytes, keys, partitions and offsets.
The adapter adds what every stage needs and aiokafka leaves to the caller:

- `KafkaConfig` (config.py), how to reach the cluster (built by services/settings.py from
  FAULTLINE_*);
- the producer's partitioner (producer.py), `partition_for` of shared/transport/port.py:
  the same in every process and Python run, so one city's messages always land on one
  partition (the producer uses it for keyed sends);
- `ensure_topics` (admin.py), creating missing topics while the broker is still coming up;
- `Producer.send` (producer.py), which awaits the broker's ack and retries a lost
  connection with a capped exponential backoff (retry.py) instead of dropping the message;
- `Consumer` (consumer.py), a group member with manual commits (commit `offset + 1` only
  once the result is durable, STYLE.md 11) and rebalance callbacks that run before
  partitions leave;
- `SingleActiveAssignor` (assign.py), which gives every partition of a group to one member
  (the router's);
- `KafkaTransport` (here), which makes them for the runtime's loops.

Delivery is at least once. Tansu (the broker of the integration tests) does not support the
idempotent producer, so it is off by default; production on Apache Kafka sets
`FAULTLINE_KAFKA_IDEMPOTENCE=true`, which keeps a retried batch from being written twice.
(No Kafka transactions: the stages' exactly-once effects come from their PostgreSQL
outbox and source keys.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from shared.transport.kafka.admin import ensure_topics
from shared.transport.kafka.assign import SingleActiveAssignor
from shared.transport.kafka.config import KafkaConfig
from shared.transport.kafka.consumer import Consumer
from shared.transport.kafka.producer import Producer, ProducerStopped, UnknownPartition
from shared.transport.kafka.retry import is_transient
from shared.transport.port import PartitionCallback

__all__ = [
    "Consumer",
    "KafkaConfig",
    "KafkaTransport",
    "Producer",
    "ProducerStopped",
    "SingleActiveAssignor",
    "UnknownPartition",
    "ensure_topics",
    "is_transient",
]


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
