"""How every loop of the runtime lives: a session (consumer, fetch, handle, commit) that
starts again after any failure, with a doubling wait, until the process is told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from shared.transport.port import Consumer

log = logging.getLogger("faultline")


async def run_sessions(session: Callable[[], Awaitable[None]], stop: asyncio.Event,
                       failed: Callable[[float], None]) -> None:
    """Run `session` again and again until `stop`. After a failure `failed(backoff)` (inside
    the except block: it may log the exception) and a wait, doubling up to 10 s."""
    backoff = 0.2
    while not stop.is_set():
        try:
            await session()
            backoff = 0.2
        except asyncio.CancelledError:
            raise
        except Exception:
            failed(backoff)
            await _sleep_or_stop(stop, backoff)
            backoff = min(backoff * 2, 10.0)


async def until_stopped(coro, stop: asyncio.Event) -> bool:
    """Await `coro` unless `stop` comes first (then cancel it): SIGTERM must not wait for a
    broker that is not coming back. True when `coro` finished."""
    task = asyncio.ensure_future(coro)
    waiter = asyncio.ensure_future(stop.wait())
    done, _pending = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()
        return True
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass
    return False


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


class SessionLoop:
    """A loop of the runtime (router, city shards, ingest, dead-letter keeper): sessions of
    `_session` until the process stops, and `healthy` for /healthz — True once a session's
    pass has worked, False from a failure (or the end) until the next pass works."""

    name = "loop"
    healthy = False

    async def run(self, stop: asyncio.Event) -> None:
        def failed(backoff: float) -> None:
            self._down(failed=True)
            log.exception("%s: session failed; again in %.1fs", self.name, backoff)

        try:
            await run_sessions(lambda: self._session(stop), stop, failed)
        finally:
            self._down(failed=False)

    def _down(self, *, failed: bool) -> None:
        """A session ended (it failed, or the loop stops): what its passes said holds no more."""
        self.healthy = False

    async def _session(self, stop: asyncio.Event) -> None:
        raise NotImplementedError


@contextlib.asynccontextmanager
async def joined(consumer: Consumer, stop: asyncio.Event) -> AsyncIterator[Consumer | None]:
    """A session's consumer: started (waiting for its broker as long as it takes, unless `stop`
    comes first: then None), and stopped when the session ends."""
    if not await until_stopped(consumer.start(deadline_s=None), stop):
        yield None
        return
    try:
        yield consumer
    finally:
        await consumer.stop()


class Commits:
    """A session's offset commits, pipelined: one may be in flight while the loop fetches and
    handles the next batch (a commit is a broker or database round trip per batch, time a
    core would otherwise idle). Each commit waits for the one before, so they land in order;
    `settle()` before the consumer stops. A commit that fails fails the session at the next
    commit or at its end, and what it covered is delivered again (and skipped)."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.task: asyncio.Future | None = None

    async def commit(self, offsets) -> None:
        await self.settle()
        self.task = asyncio.ensure_future(self.consumer.commit(offsets))

    async def settle(self) -> None:
        if self.task is not None:
            task, self.task = self.task, None
            await task
