"""Raw feed listeners: syslog over UDP and TCP, SNMP traps over UDP (`faultline ingest`, and
`faultline run` when their ports are set).

A listener never parses and never decides: each message is published unchanged to
faultline.alarms.raw.syslog / .snmp, keyed by the address it came from and stamped with its
arrival, where ingest normalizes it (a slow correlator never makes a device's message
vanish: the raw topic is the record of what arrived).

- UDP: one message per datagram. Datagrams wait in a bounded queue and go to the broker in
  batches; past `MAX_WAITING` (a storm the broker cannot take), a datagram is counted as
  lost and logged, as the kernel would drop it: memory stays bounded.
- TCP (RFC 6587): octet-counted (`123 <PRI>…`) or newline-framed, told apart per message
  by its first byte; a message longer than `MAX_MESSAGE` is published cut (ingest refuses
  it with the reason); at most `MAX_CONNECTIONS` connections, each closed after
  `IDLE_S` without a byte. A TCP message waits for room in the same queue (published in the
  same batches), so a slow broker slows the sender rather than losing lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("faultline.listeners")

#: (format, raw bytes, sender address) → published; a batch at a time.
Publish = Callable[[list[tuple[str, bytes, str]]], Awaitable[None]]

MAX_MESSAGE = 65536
MAX_WAITING = 20000
UDP_RECEIVE_BUFFER = 32 << 20
MAX_BATCH = 500
MAX_CONNECTIONS = 256
IDLE_S = 600.0


class Counts:
    """What the listeners did, for metrics and tests (`by_format`: received and lost per feed)."""

    def __init__(self) -> None:
        self.refused_connections = 0
        self.by_format: dict[str, list[int]] = {"syslog": [0, 0], "snmp": [0, 0]}   # [received, lost]

    @property
    def received(self) -> int:
        return sum(got for got, _lost in self.by_format.values())

    @property
    def lost(self) -> int:
        return sum(lost for _got, lost in self.by_format.values())


class _Queue:
    """Datagrams waiting to be published, in arrival order, drained in batches by one task."""

    def __init__(self, publish: Publish, counts: Counts) -> None:
        self.publish = publish
        self.counts = counts
        self.items: asyncio.Queue[tuple[str, bytes, str]] = asyncio.Queue(MAX_WAITING)
        self._warned = 0.0

    def put(self, item: tuple[str, bytes, str]) -> None:
        self.counts.by_format[item[0]][0] += 1
        try:
            self.items.put_nowait(item)
        except asyncio.QueueFull:
            self.counts.by_format[item[0]][1] += 1
            if time.monotonic() - self._warned > 10:
                self._warned = time.monotonic()
                log.error("raw listener: %d datagrams waiting for the broker; dropping (%d lost so far)",
                          MAX_WAITING, self.counts.lost)

    async def wait_put(self, item: tuple[str, bytes, str]) -> None:
        """A TCP message: waits for room (the sender is slowed, nothing is dropped)."""
        self.counts.by_format[item[0]][0] += 1
        await self.items.put(item)

    async def drain(self) -> None:
        while True:
            batch = [await self.items.get()]
            while len(batch) < MAX_BATCH and not self.items.empty():
                batch.append(self.items.get_nowait())
            await _retrying(self.publish, batch)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, fmt: str, queue: _Queue) -> None:
        self.fmt = fmt
        self.queue = queue

    def datagram_received(self, data: bytes, addr) -> None:
        self.queue.put((self.fmt, data, str(addr[0])))

    def error_received(self, exc: Exception) -> None:       # ICMP errors: nothing to do
        log.debug("raw listener: %s", exc)


def _big_receive_buffer(sock: socket.socket | None) -> int:
    """Ask the kernel for a deep receive buffer: a storm's datagrams wait there whenever the
    event loop is busy for a moment, and the default (~208 KiB, ~1,500 lines) overflows in a
    tenth of a second at 20,000 lines/s. The kernel caps SO_RCVBUF at net.core.rmem_max;
    SO_RCVBUFFORCE passes the cap where the process may (root, CAP_NET_ADMIN)."""
    if sock is None:
        return 0
    for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_RECEIVE_BUFFER)
            break
        except OSError:
            continue
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


async def _framed(reader: asyncio.StreamReader) -> bytes | None:
    """The next message of an RFC 6587 stream (None at its end): `LEN SP MSG` when it starts
    with a digit, else a line."""
    first = await reader.read(1)
    while first in (b"\n", b"\r"):                   # blank lines between messages
        first = await reader.read(1)
    if not first:
        return None
    if first.isdigit():
        digits = first
        while len(digits) <= 6:
            c = await reader.read(1)
            if c == b" ":
                length = int(digits)
                if length > MAX_MESSAGE:
                    data = await reader.readexactly(MAX_MESSAGE)
                    left = length - MAX_MESSAGE
                    while left > 0:                    # skip the rest, keep the stream framed
                        left -= len(await reader.read(min(left, 65536))) or left
                    return data
                return await reader.readexactly(length)
            if not c.isdigit():
                digits += c
                break
            digits += c
        return digits + await _line(reader)         # not a count after all: a line
    return first + await _line(reader)


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        return (await reader.readuntil(b"\n")).rstrip(b"\r\n")
    except asyncio.IncompleteReadError as err:       # the last line, without its newline
        return err.partial
    except asyncio.LimitOverrunError as err:         # too long: keep what fits, skip the rest
        data = await reader.readexactly(err.consumed)
        while True:
            try:
                await reader.readuntil(b"\n")
                break
            except asyncio.LimitOverrunError as more:
                await reader.readexactly(more.consumed)
            except asyncio.IncompleteReadError:
                break
        return data[:MAX_MESSAGE]


async def _retrying(publish: Publish, batch: list[tuple[str, bytes, str]]) -> None:
    while True:
        try:
            await publish(batch)
            return
        except asyncio.CancelledError:
            raise
        except Exception:                             # the broker is away: keep the batch, retry
            log.exception("raw listener: publishing %d messages failed; retrying", len(batch))
            await asyncio.sleep(1.0)


class Listeners:
    """The open listeners; `close()` stops taking messages, then publishes what waits."""

    def __init__(self, counts: Counts, queue: _Queue) -> None:
        self.counts = counts
        self.queue = queue
        self.handles: list = []
        self.task: asyncio.Task | None = None

    async def close(self, drain_s: float = 5.0) -> None:
        for h in self.handles:
            h.close()
        deadline = time.monotonic() + drain_s
        while not self.queue.items.empty() and time.monotonic() < deadline and self.task is not None \
                and not self.task.done():
            await asyncio.sleep(0.02)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def start_listeners(publish: Publish, *, syslog_udp: int | None, syslog_tcp: int | None,
                          snmp_udp: int | None, host: str = "0.0.0.0") -> Listeners:
    """Open the listeners whose ports are set (none: nothing is opened)."""
    loop = asyncio.get_running_loop()
    counts = Counts()
    queue = _Queue(publish, counts)
    out = Listeners(counts, queue)
    for fmt, port in (("syslog", syslog_udp), ("snmp", snmp_udp)):
        if port:
            transport, _p = await loop.create_datagram_endpoint(lambda fmt=fmt: _Datagrams(fmt, queue),
                                                                local_addr=(host, port))
            out.handles.append(transport)
            size = _big_receive_buffer(transport.get_extra_info("socket"))
            log.info("listening for %s on udp %s:%d (receive buffer %d KiB)", fmt, host, port, size >> 10)
    if syslog_tcp:
        open_now: set[asyncio.StreamWriter] = set()

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if len(open_now) >= MAX_CONNECTIONS:
                counts.refused_connections += 1
                writer.close()
                return
            open_now.add(writer)
            sender = str((writer.get_extra_info("peername") or ("?",))[0])
            try:
                while True:
                    data = await asyncio.wait_for(_framed(reader), IDLE_S)
                    if data is None:
                        break
                    if data.strip():
                        await queue.wait_put(("syslog", data, sender))
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                pass                                  # idle, cut short or reset: the sender's end
            finally:
                open_now.discard(writer)
                writer.close()
        out.handles.append(await asyncio.start_server(client, host, syslog_tcp, limit=MAX_MESSAGE))
        log.info("listening for syslog on tcp %s:%d", host, syslog_tcp)
    if out.handles:
        out.task = asyncio.create_task(queue.drain(), name="raw-listener-queue")
    return out


def now_ms() -> int:
    return int(time.time() * 1000)
