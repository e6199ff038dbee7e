"""A loopback TCP relay for tests that can cut HTTP responses off mid-body.

Put it in front of any plain-HTTP server a test already runs (git smart HTTP, a registry,
a chart repository, S3) and point the source's URL at :attr:`CutRelay.address` instead.
Passing through, it copies bytes both ways unchanged, so signed requests (S3's ``Host``
header) still verify. After :meth:`CutRelay.cut_after` it still forwards every response's
status line and headers whole, then only the first ``limit`` bytes of its body, and closes
both sockets: the client is left with a ``Content-Length`` or chunked stream that ends
early, as when a server or a middlebox dies mid-transfer. :meth:`CutRelay.pass_through`
restores full responses.

To find where each response ends on a keep-alive connection (a manifest HEAD, then a
blob GET), the relay reads HTTP framing in both directions: the request's method tells
whether its response has a body at all, ``Content-Length`` or chunked encoding where it
ends. Whether a response is cut is decided when its headers arrive, so connections opened
before the switch obey it too. Responses whose body fits in ``limit`` pass whole, which
lets a test truncate the large transfer (a pack, a blob, an archive) while the small
listings before it still succeed. Each cut is recorded in :attr:`CutRelay.cuts`.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import BufferedReader

__all__ = ["CutRelay", "cut_relay"]

#: Statuses whose responses never carry a body, whatever their headers say.
_BODYLESS_STATUSES = {204, 304}
_Send = Callable[[bytes], object]

#: Seconds the response side waits for the request it answers before giving up.
_REQUEST_WAIT = 60.0


class _Cut(Exception):
    """The body reached the limit: the connection is to be closed now."""


@dataclass
class CutRelay:
    """The relay's address and switch, and the request targets whose responses it cut."""

    upstream_port: int
    port: int = 0
    cuts: list[str] = field(default_factory=list)
    _limit: int | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``, to put where the upstream's address was."""
        return f"127.0.0.1:{self.port}"

    def cut_after(self, limit: int) -> None:
        """From the next response on, send at most ``limit`` body bytes, then hang up."""
        with self._lock:
            self._limit = limit

    def pass_through(self) -> None:
        """From the next response on, send every response whole."""
        with self._lock:
            self._limit = None

    def current_limit(self) -> int | None:
        """Body bytes a response may carry now; None: no limit."""
        with self._lock:
            return self._limit

    def record_cut(self, target: str) -> None:
        """Note that the response to the request for ``target`` was cut off."""
        with self._lock:
            self.cuts.append(target)


@dataclass(frozen=True)
class _Request:
    method: str
    target: str


class _Connection:
    """One client connection and its own connection upstream, pumped by two threads."""

    def __init__(self, relay: CutRelay, client: socket.socket) -> None:
        self.relay = relay
        self.client = client
        self.upstream = socket.create_connection(("127.0.0.1", relay.upstream_port), timeout=60)
        self.pending: queue.Queue[_Request] = queue.Queue()

    def run(self) -> None:
        requests = threading.Thread(target=self._pump_requests, name="cut-relay-requests")
        requests.daemon = True
        requests.start()
        try:
            self._pump_responses()
        except (OSError, _Cut, queue.Empty, ValueError):
            pass  # a hang-up, a cut, or bytes that are not HTTP: the connection ends either way
        finally:
            self._close()
            requests.join(5)

    def _close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _pump_requests(self) -> None:
        reader = self.client.makefile("rb")
        try:
            while True:
                head = _read_head(reader)
                if not head:
                    break
                method, target, _ = head[0].decode("latin-1").split(" ", 2)
                self.pending.put(_Request(method, target))
                self.upstream.sendall(b"".join(head))
                _copy_body(reader, _headers(head), None, self.upstream.sendall)
            self.upstream.shutdown(socket.SHUT_WR)
        except (OSError, ValueError):
            pass
        finally:
            reader.close()

    def _pump_responses(self) -> None:
        reader = self.upstream.makefile("rb")
        try:
            while True:
                head = _read_head(reader)
                if not head:
                    return
                status = int(head[0].split(b" ", 2)[1])
                self.client.sendall(b"".join(head))
                if 100 <= status < 200:
                    continue  # an interim response: the final one follows
                request = self.pending.get(timeout=_REQUEST_WAIT)
                if request.method == "HEAD" or status in _BODYLESS_STATUSES:
                    continue
                send = _Budget(self.client.sendall, self.relay.current_limit())
                try:
                    _copy_body(reader, _headers(head), -1, send)
                except _Cut:
                    self.relay.record_cut(request.target)
                    raise
        finally:
            reader.close()


class _Budget:
    """Sends body bytes while the limit allows, then raises :class:`_Cut`."""

    def __init__(self, send: _Send, limit: int | None) -> None:
        self.send = send
        self.left = limit

    def __call__(self, data: bytes) -> None:
        if self.left is None:
            self.send(data)
            return
        if len(data) > self.left:
            self.send(data[: self.left])
            raise _Cut
        self.send(data)
        self.left -= len(data)


def _read_head(reader: BufferedReader) -> list[bytes]:
    """The start line and header lines, blank line included; empty at a clean EOF."""
    lines: list[bytes] = []
    while True:
        line = reader.readline(65537)
        if not line:
            if lines:
                raise ValueError("connection closed inside an HTTP head")
            return lines
        lines.append(line)
        if line in (b"\r\n", b"\n") and len(lines) > 1:
            return lines


def _headers(head: list[bytes]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in head[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        if value:
            found[name.strip().lower()] = value.strip()
    return found


def _copy_body(
    reader: BufferedReader, headers: dict[str, str], unframed: int | None, send: _Send
) -> None:
    """Copy one message body from ``reader`` to ``send``, framing bytes included.

    A body with neither ``Content-Length`` nor chunked encoding is empty for a request
    (``unframed`` None) and runs to the end of the connection for a response (-1).
    """
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = reader.readline(65537)
            if not size_line:
                raise ValueError("connection closed inside a chunked body")
            send(size_line)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            _copy_exactly(reader, size + 2, send)
        while (trailer := reader.readline(65537)) not in (b"\r\n", b"\n", b""):
            send(trailer)
        send(b"\r\n")
        return
    if "content-length" in headers:
        _copy_exactly(reader, int(headers["content-length"]), send)
        return
    if unframed == -1:
        while data := reader.read1(65536):
            send(data)


def _copy_exactly(reader: BufferedReader, size: int, send: _Send) -> None:
    while size > 0:
        data = reader.read1(min(size, 65536))
        if not data:
            raise ValueError("connection closed inside a body")
        send(data)
        size -= len(data)


@contextlib.contextmanager
def cut_relay(upstream_port: int) -> Iterator[CutRelay]:
    """A relay on 127.0.0.1 in front of ``127.0.0.1:<upstream_port>``, passing through."""
    relay = CutRelay(upstream_port)
    listener = socket.create_server(("127.0.0.1", 0))
    relay.port = listener.getsockname()[1]
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                connection = _Connection(relay, client)
            except OSError:
                client.close()
                continue
            threading.Thread(target=connection.run, name="cut-relay", daemon=True).start()

    acceptor = threading.Thread(target=accept, name="cut-relay-accept", daemon=True)
    acceptor.start()
    try:
        yield relay
    finally:
        stopping.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        acceptor.join(5)
