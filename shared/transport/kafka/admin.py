"""Creating the topics: `ensure_topics`, which creates the missing ones while the broker is
still coming up."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from shared.transport.kafka.config import KafkaConfig
from shared.transport.kafka.retry import Backoff, is_transient

log = logging.getLogger("shared.transport.kafka")

TOPIC_ALREADY_EXISTS = 36  # the Kafka protocol's error code


async def ensure_topics(
    config: KafkaConfig, topics: Mapping[str, int], *, deadline_s: float = 60.0
) -> set[str]:
    """Create the missing `topics` (name → partition count); return the names created.

    A topic that already exists is left as it is, whatever its partition count. While the
    broker is unreachable this retries with backoff until `deadline_s`, then raises.
    """
    backoff = Backoff(config, deadline_s)
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
