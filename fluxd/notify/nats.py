"""The ``nats`` Provider type: Flux's JSON event published to a NATS subject.

Flux's notification-controller connects with the NATS Go client, publishes once and
closes; fluxd speaks the same client protocol (the text protocol over TCP: the
server's ``INFO``, then ``CONNECT``, ``PUB``, and a ``PING`` whose ``PONG`` proves the
server took the message, or ``-ERR`` saying why not). ``spec.address`` is the server
(``nats://host:port``, port 4222 unless given), ``spec.channel`` the subject, and the
Secret's ``username`` and ``password`` (both, or neither) the user. The payload is the
generic provider's JSON. TLS servers (``tls://``, or an ``INFO`` requiring TLS) are
refused by name rather than spoken to in clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from fluxd.notify.event import Notification, go_json
from fluxd.notify.request import InvalidProvider, ProviderSettings, PublishFailed, Request

__all__ = ["CLIENT_NAME", "NatsServer", "nats_request", "publish"]

DEFAULT_PORT = 4222
#: The connection name Flux's publisher announces.
CLIENT_NAME = "NATS Provider Publisher"
MAX_LINE = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class NatsServer:
    """Where to publish, and as whom (empty: no user)."""

    host: str
    port: int
    username: str = ""
    password: str = ""


def _server(settings: ProviderSettings) -> NatsServer:
    if not settings.address:
        raise InvalidProvider("NATS server (address) cannot be empty")
    parts = urlsplit(settings.address)
    if parts.scheme == "tls":
        raise InvalidProvider(
            f"NATS address {settings.address!r}: TLS connections are not supported by fluxd; "
            "use a nats:// address"
        )
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        port = 0
    if parts.scheme != "nats" or not parts.hostname or not port:
        raise InvalidProvider(
            f"invalid NATS address {settings.address!r}: a nats://host:port URL is needed"
        )
    username, password = settings.username, settings.password
    if not (username and password) and parts.username:
        username, password = unquote(parts.username), unquote(parts.password or "")
    if not (username and password):
        username = password = ""
    return NatsServer(host=parts.hostname, port=port, username=username, password=password)


def nats_request(settings: ProviderSettings, event: Notification) -> Request:
    """The publication of ``event`` to subject ``spec.channel`` on ``spec.address``."""
    server = _server(settings)
    subject = settings.channel
    if not subject:
        raise InvalidProvider("NATS subject (channel) cannot be empty")
    if any(char.isspace() for char in subject):
        raise InvalidProvider(f"invalid NATS subject {subject!r}: subjects contain no spaces")
    payload = go_json(event.to_dict())
    return Request(
        url=f"nats://{server.host}:{server.port}",
        body=payload,
        headers={},
        failure=f"error publishing event to subject {subject}",
        publish=_bound(server, subject, payload),
    )


def _bound(server: NatsServer, subject: str, payload: bytes) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await publish(server, subject, payload)

    return run


async def publish(server: NatsServer, subject: str, payload: bytes) -> None:
    """Connect, publish ``payload`` on ``subject``, wait for the server's ``PONG``;
    :class:`PublishFailed` names the refusal or the broken connection."""
    try:
        reader, writer = await asyncio.open_connection(server.host, server.port, limit=MAX_LINE)
    except OSError as error:
        raise PublishFailed(
            f"error connecting to server nats://{server.host}:{server.port}: {error}"
        ) from None
    try:
        info = await _line(reader)
        if not info.startswith("INFO "):
            raise PublishFailed(f"not a NATS server: it greeted with {info[:80]!r}")
        try:
            details = json.loads(info[5:])
        except ValueError:
            details = {}
        if isinstance(details, dict) and details.get("tls_required"):
            raise PublishFailed("the server requires TLS, which fluxd does not speak to NATS")
        writer.write(_connect(server) + _pub(subject, payload) + b"PING\r\n")
        await writer.drain()
        while True:
            answer = await _line(reader)
            if answer == "PONG":
                return
            if answer.startswith("-ERR"):
                raise PublishFailed(f"the server refused: {answer[4:].strip()}")
            if answer == "PING":
                writer.write(b"PONG\r\n")
                await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        raise PublishFailed(f"error publishing message to server: {error}") from None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _line(reader: asyncio.StreamReader) -> str:
    raw = await reader.readuntil(b"\r\n")
    return raw[:-2].decode(errors="replace")


def _connect(server: NatsServer) -> bytes:
    options: dict[str, object] = {
        "verbose": False,
        "pedantic": False,
        "tls_required": False,
        "name": CLIENT_NAME,
        "lang": "python",
        "version": "fluxd",
        "protocol": 1,
    }
    if server.username:
        options["user"] = server.username
        options["pass"] = server.password
    return b"CONNECT " + go_json(options) + b"\r\n"


def _pub(subject: str, payload: bytes) -> bytes:
    return f"PUB {subject} {len(payload)}\r\n".encode() + payload + b"\r\n"
