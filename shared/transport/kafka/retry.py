"""Waiting out a broker that is away: which errors a wait can cure (`is_transient`), the
capped exponential backoff between attempts, and starting an aiokafka client with retries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from shared.transport.kafka.config import KafkaConfig

log = logging.getLogger("shared.transport.kafka")


def is_transient(exc: BaseException) -> bool:
    """True for errors a wait can cure: lost connections, timeouts, leader moves."""
    if isinstance(exc, (KafkaConnectionError, KafkaTimeoutError, ConnectionError, asyncio.TimeoutError)):
        return True
    return isinstance(exc, KafkaError) and exc.retriable


class Backoff:
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


async def start_with_retry(
    config: KafkaConfig, deadline_s: float | None, new_client: Callable[[], Any]
) -> Any:
    """Start a fresh aiokafka client per attempt (a failed one cannot be restarted)."""
    backoff = Backoff(config, deadline_s)
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
