"""A stand-in for the Kafka producer in runner tests: keeps what would have been sent."""

from __future__ import annotations

import orjson

from services.drivers.batches import items_of


class Recorder:
    """Stands in for the Kafka producer: keeps what would have been sent, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, str | None]] = []

    async def send_many(self, records):
        self.sent.extend((topic, value, key) for topic, value, key, _p, _ts in records)
        return [(0, i) for i, _r in enumerate(records)]

    def values(self, topic: str) -> list[bytes]:
        """The values sent to `topic`, as sent."""
        return [v for t, v, _k in self.sent if t == topic]

    def on(self, topic: str) -> list[dict]:
        """What was sent to `topic`, decoded, a batch message's inputs each on its own."""
        out = []
        for value in self.values(topic):
            body = orjson.loads(value)
            out.extend(items_of(body) or [body])
        return out
