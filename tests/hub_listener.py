"""A TMF event listener for the hub's tests (services/hub.py): a `http.server` on 127.0.0.1
in a thread (the `listeners` fixture of tests/conftest.py makes and closes them)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Listener:
    """A TMF listener on 127.0.0.1: answers the statuses of `script` in turn, then `then`;
    keeps every body it was sent (and, per path, in order)."""

    def __init__(self, script: list[int] | None = None, then: int = 201, delay_s: float = 0.0) -> None:
        self.script = list(script or [])
        self.then = then
        self.delay_s = delay_s
        self.received: list[tuple[str, dict]] = []        # (path, envelope), every try
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                with outer.lock:
                    outer.received.append((self.path, json.loads(body)))
                    status = outer.script.pop(0) if outer.script else outer.then
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self, path: str | None = None) -> list[dict]:
        with self.lock:
            return [b for p, b in self.received if path is None or p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
