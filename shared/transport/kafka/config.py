"""How the Kafka adapter reaches the cluster: `KafkaConfig` (built by services/settings.py
from FAULTLINE_*)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
    # How long the broker may hold a fetch with nothing to return. Apache Kafka answers as
    # soon as a record is there, so its default of 500 costs nothing; Tansu holds every fetch
    # until this runs out, data or not (measured: delays up to the wait), so each hop of the
    # pipeline waited up to 500 ms there: the tests and bench/ use 50 on Tansu.
    fetch_max_wait_ms: int = 500

    def client_kwargs(self) -> dict[str, Any]:
        """The connection settings every aiokafka client takes."""
        return {
            "bootstrap_servers": self.bootstrap,
            "client_id": self.client_id,
            "request_timeout_ms": self.request_timeout_ms,
            "retry_backoff_ms": self.retry_backoff_ms,
            "metadata_max_age_ms": self.metadata_max_age_ms,
        }
