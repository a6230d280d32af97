"""Raw feed listeners of `faultline ingest`: syslog over UDP and TCP (RFC 3164/5424 lines, one
per datagram or per line) and SNMP traps over UDP. Each message is published unchanged to
faultline.alarms.raw.syslog / .snmp, stamped with its arrival, where ingest normalizes it —
or, for a format this build cannot parse yet, dead-letters it with the reason. A listener
never parses and never drops: the raw topic is the record of what arrived.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("faultline.listeners")

Publish = Callable[[str, bytes], Awaitable[None]]          # (format, raw bytes)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, fmt: str, publish: Publish) -> None:
        self.fmt = fmt
        self.publish = publish
        self.pending: set[asyncio.Task] = set()

    def datagram_received(self, data: bytes, addr) -> None:
        task = asyncio.ensure_future(self.publish(self.fmt, data))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)


async def start_listeners(publish: Publish, *, syslog_udp: int | None, syslog_tcp: int | None,
                          snmp_udp: int | None, host: str = "0.0.0.0") -> list:
    """Open the listeners whose ports are set; returns handles to close at shutdown."""
    loop = asyncio.get_running_loop()
    handles: list = []
    if syslog_udp:
        transport, _p = await loop.create_datagram_endpoint(lambda: _Datagrams("syslog", publish),
                                                            local_addr=(host, syslog_udp))
        handles.append(transport)
    if snmp_udp:
        transport, _p = await loop.create_datagram_endpoint(lambda: _Datagrams("snmp", publish),
                                                            local_addr=(host, snmp_udp))
        handles.append(transport)
    if syslog_tcp:
        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while line := await reader.readline():
                    if line.strip():
                        await publish("syslog", line.rstrip(b"\r\n"))
            finally:
                writer.close()
        handles.append(await asyncio.start_server(client, host, syslog_tcp))
    for h in handles:
        log.info("listening: %s", h)
    return handles


def now_ms() -> int:
    return int(time.time() * 1000)
