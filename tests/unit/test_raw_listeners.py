"""The raw listeners (shared/listeners.py) on real sockets: TCP framing by RFC 6587 (octet
counting and newlines, told apart per message), cut-off and junk kept for ingest to refuse,
sender addresses as keys, batches, the bounded UDP queue, and close() publishing what waits."""

from __future__ import annotations

import asyncio
import socket

import pytest

from shared import listeners
from shared.listeners import start_listeners

pytestmark = pytest.mark.asyncio


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Published:
    def __init__(self) -> None:
        self.batches: list[list[tuple[str, bytes, str]]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, batch):
        await self.gate.wait()
        self.batches.append(list(batch))

    @property
    def messages(self) -> list[tuple[str, bytes, str]]:
        return [m for b in self.batches for m in b]

    async def until(self, n: int) -> list[tuple[str, bytes, str]]:
        for _ in range(500):
            if len(self.messages) >= n:
                break
            await asyncio.sleep(0.01)
        return self.messages


async def test_tcp_reads_octet_counted_and_newline_framed_messages_on_one_connection():
    got, port = Published(), _port()
    lis = await start_listeners(got, syslog_udp=None, syslog_tcp=port, snmp_udp=None, host="127.0.0.1")
    try:
        _r, w = await asyncio.open_connection("127.0.0.1", port)
        first = b"<13>1 - h a - - - with\nnewline inside"
        w.write(b"%d %s" % (len(first), first) + b"<13>Dec  7 10:00:00 h x: plain\r\n\n"
                + b"12 <13>counted!" + b"42abc not a count\n" + b"tail without newline")
        await w.drain()
        w.close()
        msgs = await got.until(5)
    finally:
        await lis.close()
    assert [m[1] for m in msgs] == [first, b"<13>Dec  7 10:00:00 h x: plain", b"<13>counted!",
                                    b"42abc not a count", b"tail without newline"]
    assert {(m[0], m[2]) for m in msgs} == {("syslog", "127.0.0.1")}


async def test_a_tcp_message_longer_than_the_limit_is_kept_cut_and_the_stream_stays_framed(monkeypatch):
    monkeypatch.setattr(listeners, "MAX_MESSAGE", 64)
    got, port = Published(), _port()
    lis = await start_listeners(got, syslog_udp=None, syslog_tcp=port, snmp_udp=None, host="127.0.0.1")
    try:
        _r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"100 " + b"x" * 100 + b"<13>after\n")
        await w.drain()
        w.close()
        msgs = await got.until(2)
    finally:
        await lis.close()
    assert [m[1] for m in msgs] == [b"x" * 64, b"<13>after"]


async def test_udp_datagrams_go_in_batches_keyed_by_sender_and_close_publishes_what_waits():
    got, port, trap = Published(), _port(), _port()
    got.gate.clear()                                   # the broker is slow: datagrams wait
    lis = await start_listeners(got, syslog_udp=port, syslog_tcp=None, snmp_udp=trap, host="127.0.0.1")
    with socket.socket(type=socket.SOCK_DGRAM) as udp:
        for n in range(50):
            udp.sendto(b"<13>line %d" % n, ("127.0.0.1", port))
        udp.sendto(b"\x30\x00", ("127.0.0.1", trap))
    await asyncio.sleep(0.2)
    got.gate.set()
    await lis.close()
    msgs = got.messages
    assert len(msgs) == 51 and lis.counts.received == 51 and lis.counts.lost == 0
    assert sorted(m[1] for m in msgs if m[0] == "syslog") == sorted(b"<13>line %d" % n for n in range(50))
    assert [m for m in msgs if m[0] == "snmp"] == [("snmp", b"\x30\x00", "127.0.0.1")]
    assert len(got.batches) < 51                       # batched, not one send per datagram


async def test_past_the_waiting_limit_a_datagram_is_counted_lost_and_memory_stays_bounded(monkeypatch):
    monkeypatch.setattr(listeners, "MAX_WAITING", 10)
    got, port = Published(), _port()
    got.gate.clear()
    lis = await start_listeners(got, syslog_udp=port, syslog_tcp=None, snmp_udp=None, host="127.0.0.1")
    with socket.socket(type=socket.SOCK_DGRAM) as udp:
        for n in range(40):
            udp.sendto(b"<13>line %d" % n, ("127.0.0.1", port))
    for _ in range(100):
        if lis.counts.received >= 40:
            break
        await asyncio.sleep(0.01)
    assert lis.counts.received == 40 and lis.queue.items.qsize() <= 10
    got.gate.set()
    await lis.close()
    assert lis.counts.lost == 40 - len(got.messages) and lis.counts.lost >= 29


async def test_a_publish_failure_is_retried_not_dropped(monkeypatch):
    monkeypatch.setattr(asyncio, "sleep", _fast_sleep)
    calls: list[int] = []

    async def flaky(batch):
        calls.append(len(batch))
        if len(calls) < 3:
            raise ConnectionError("broker away")
    port = _port()
    lis = await start_listeners(flaky, syslog_udp=port, syslog_tcp=None, snmp_udp=None, host="127.0.0.1")
    with socket.socket(type=socket.SOCK_DGRAM) as udp:
        udp.sendto(b"<13>kept", ("127.0.0.1", port))
    for _ in range(200):
        if len(calls) >= 3:
            break
        await _real_sleep(0.01)
    await lis.close()
    assert calls == [1, 1, 1]


_real_sleep = asyncio.sleep


async def _fast_sleep(delay, result=None):
    return await _real_sleep(min(delay, 0.01), result)
