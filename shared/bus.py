"""The message bus port (topics: shared/topics.py) and its in-process implementation.

`faultline run` uses `InMemoryBus`; a Kafka adapter implements the same `Bus` protocol.
Values are UTF-8 JSON bytes, as on Kafka, so a subscriber cannot tell the two apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    key: str | None
    value: bytes


class Subscription(Protocol):
    """Messages of one topic from the moment of subscribing, in publish order."""

    def __aiter__(self) -> AsyncIterator[Message]: ...

    async def get(self) -> Message: ...

    def close(self) -> None: ...


class Bus(Protocol):
    async def publish(self, topic: str, key: str | None, value: bytes) -> None: ...

    def subscribe(self, topic: str) -> Subscription: ...


class _QueueSubscription:
    def __init__(self, bus: InMemoryBus, topic: str) -> None:
        self._bus = bus
        self.topic = topic
        self.queue: asyncio.Queue[Message] = asyncio.Queue()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            yield await self.queue.get()

    async def get(self) -> Message:
        return await self.queue.get()

    def pending(self) -> list[Message]:
        """Drain what has arrived so far without waiting (for tests and shutdown)."""
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out

    def close(self) -> None:
        self._bus._drop(self)


class InMemoryBus:
    """Fan-out to every subscriber of a topic; no retention, no consumer groups."""

    def __init__(self) -> None:
        self._subs: dict[str, list[_QueueSubscription]] = {}

    async def publish(self, topic: str, key: str | None, value: bytes) -> None:
        for sub in self._subs.get(topic, ()):
            sub.queue.put_nowait(Message(topic, key, value))

    def subscribe(self, topic: str) -> _QueueSubscription:
        sub = _QueueSubscription(self, topic)
        self._subs.setdefault(topic, []).append(sub)
        return sub

    def _drop(self, sub: _QueueSubscription) -> None:
        subs = self._subs.get(sub.topic, [])
        if sub in subs:
            subs.remove(sub)
