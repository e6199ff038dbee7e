"""An HTTP proxy on loopback for tests: ``CONNECT`` tunnels and forwarded requests, with
basic proxy authentication, counting what went through it.

Register as a pytest plugin (``pytest_plugins = ["tests.proxyserver"]``). The
``http_proxy`` fixture is a fresh proxy per test, so its counts are the test's own:
``tunnels`` (CONNECT targets it opened, i.e. https through the proxy), ``forwarded``
(absolute-URI requests it passed on, i.e. plain http) and ``rejected`` (407s).
"""

from __future__ import annotations

import base64
import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import urlsplit

import pytest

PROXY_USERNAME = "proxy-user"
PROXY_PASSWORD = "proxy-pa55"
_HOP_BY_HOP = {"proxy-authorization", "proxy-connection", "connection", "keep-alive"}


@dataclass
class ProxyLog:
    tunnels: list[str] = field(default_factory=list)  # host:port of each CONNECT
    forwarded: list[str] = field(default_factory=list)  # absolute URL of each request
    rejected: int = 0  # requests without the right Proxy-Authorization


class _ProxyHandler(socketserver.StreamRequestHandler):
    server: _ProxyServer

    def handle(self) -> None:
        head = self.rfile.readline(65537).decode("latin-1")
        if not head.strip():
            return
        method, target, _version = head.split()
        headers: list[tuple[str, str]] = []
        while (line := self.rfile.readline(65537).decode("latin-1")) not in ("\r\n", "\n", ""):
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        given = next((v for n, v in headers if n.lower() == "proxy-authorization"), None)
        expected = base64.b64encode(f"{PROXY_USERNAME}:{PROXY_PASSWORD}".encode()).decode()
        if given != f"Basic {expected}":
            self.server.log.rejected += 1
            self.wfile.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="proxy"\r\n'
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=30)
            self.server.log.tunnels.append(target)
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._relay(upstream)
            return
        url = urlsplit(target)
        upstream = socket.create_connection((url.hostname or "", url.port or 80), timeout=30)
        self.server.log.forwarded.append(target)
        path = url.path + (f"?{url.query}" if url.query else "")
        kept = [(n, v) for n, v in headers if n.lower() not in _HOP_BY_HOP]
        lines = [f"{method} {path} HTTP/1.1", *(f"{n}: {v}" for n, v in kept)]
        # One request per connection keeps the relay simple: both sides are told to close
        # after it, so the client opens a new connection for its next request.
        upstream.sendall(("\r\n".join([*lines, "Connection: close", "", ""])).encode("latin-1"))
        self._relay(upstream, close_after_response=True)

    def _relay(self, upstream: socket.socket, *, close_after_response: bool = False) -> None:
        def client_to_upstream() -> None:
            try:
                while data := self.rfile.read1(65536):
                    upstream.sendall(data)
                upstream.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        pump = threading.Thread(target=client_to_upstream, name="proxy-pump", daemon=True)
        pump.start()
        reader = upstream.makefile("rb")
        try:
            if close_after_response:
                self._copy_head(reader)
            while data := reader.read1(65536):
                self.connection.sendall(data)
        except OSError:
            pass
        finally:
            reader.close()
            upstream.close()

    def _copy_head(self, reader: BinaryIO) -> None:
        """The response's status line and headers, with ``Connection: close``."""
        head = [reader.readline()]
        while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
            if not line.lower().startswith(b"connection:"):
                head.append(line)
        self.connection.sendall(b"".join([*head, b"Connection: close\r\n\r\n"]))


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.log = ProxyLog()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up mid-tunnel are not test failures


@dataclass(frozen=True)
class HTTPProxy:
    port: int
    log: ProxyLog
    username: str = PROXY_USERNAME
    password: str = PROXY_PASSWORD

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def http_proxy() -> Iterator[HTTPProxy]:
    server = _ProxyServer()
    thread = threading.Thread(target=server.serve_forever, name="http-proxy", daemon=True)
    thread.start()
    try:
        yield HTTPProxy(server.server_address[1], server.log)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
