"""A loopback NATS server speaking the client protocol's core (INFO, CONNECT, PUB, PING):
it records every published message and, when given a user, refuses other credentials
with ``-ERR 'Authorization Violation'`` as nats-server does.

Run in a thread with its own event loop, so tests on any loop (or none) can use it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NatsStandIn", "Published", "nats_stand_in"]


@dataclass(frozen=True)
class Published:
    subject: str
    payload: bytes
    connect: dict[str, Any]


@dataclass
class NatsStandIn:
    port: int
    user: tuple[str, str] | None
    published: list[Published] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def on(self, subject: str) -> list[Published]:
        with self.lock:
            return [p for p in self.published if p.subject == subject]

    async def wait_for(self, subject: str, timeout: float = 30.0) -> Published:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.on(subject):
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"nothing published on {subject!r}")


async def _serve(
    stand_in: NatsStandIn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    info = {"server_id": "stand-in", "version": "2.10.0", "proto": 1, "max_payload": 1048576}
    if stand_in.user:
        info["auth_required"] = True
    writer.write(b"INFO " + json.dumps(info).encode() + b"\r\n")
    connect: dict[str, Any] = {}
    try:
        while line := await reader.readuntil(b"\r\n"):
            verb, _, rest = line[:-2].decode().partition(" ")
            if verb == "CONNECT":
                connect = json.loads(rest)
                given = (connect.get("user"), connect.get("pass"))
                if stand_in.user and given != stand_in.user:
                    writer.write(b"-ERR 'Authorization Violation'\r\n")
                    await writer.drain()
                    return
            elif verb == "PUB":
                subject, size = rest.split()
                payload = (await reader.readexactly(int(size) + 2))[:-2]
                with stand_in.lock:
                    stand_in.published.append(Published(subject, payload, connect))
            elif verb == "PING":
                writer.write(b"PONG\r\n")
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@contextmanager
def nats_stand_in(user: tuple[str, str] | None = None) -> Iterator[NatsStandIn]:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def start() -> None:
            server = await asyncio.start_server(
                lambda r, w: _serve(holder["stand_in"], r, w), "127.0.0.1", 0
            )
            holder["server"] = server
            holder["stand_in"] = NatsStandIn(server.sockets[0].getsockname()[1], user)
            started.set()

        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="nats stand-in", daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield holder["stand_in"]
    finally:

        async def stop() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
