"""A loopback HTTP server standing in for Slack, Teams, a generic webhook...: it records
every request (path, headers, body) and answers what the test told it to.

Register as a pytest plugin or import the fixture: ``webhook_server`` is one server per
test module; each test reads only the requests made to the path it gave its Provider.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

__all__ = ["Recorded", "WebhookServer", "webhook_server"]


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"


@dataclass
class WebhookServer:
    """Where it listens, what it was sent, what it answers per path."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def json(self, path: str) -> list[Any]:
        """The JSON bodies posted to ``path``."""
        return [json.loads(r.body) for r in self.received(path)]

    def received(self, path: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    async def wait_for(
        self, path: str, predicate: Callable[[Recorded], bool], what: str, timeout: float = 30.0
    ) -> Recorded:
        """The first request to ``path`` that ``predicate`` accepts; AssertionError naming
        ``what`` after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    found = next((r for r in self.received(path) if predicate(r)), None)
                    if found is not None:
                        return found
                    await asyncio.sleep(0.05)
        except TimeoutError:
            seen = [r.body[:200] for r in self.received(path)]
            raise AssertionError(f"{what} not posted to {path}; seen: {seen}") from None


def _handler(server: WebhookServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with server.lock:
                server.requests.append(
                    Recorded(self.path, dict(self.headers.items()), body, self.command)
                )
                status = server.statuses.get(self.path, 200)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_PUT = do_POST

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def webhook_server() -> Iterator[WebhookServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    server = WebhookServer(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = _handler(server)
    thread = threading.Thread(target=httpd.serve_forever, name="webhook server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
