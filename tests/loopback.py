"""An aiohttp application served on a free 127.0.0.1 port for the length of a block.

Every stand-in server the tests write (artifact producers, OIDC issuers, registries)
needs the same few lines of runner setup and cleanup; this is them, once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

__all__ = ["serve_on_loopback"]


@asynccontextmanager
async def serve_on_loopback(app: web.Application) -> AsyncIterator[str]:
    """``app`` listening on a free 127.0.0.1 port until the block ends; yields its
    ``host:port``."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, bound = runner.addresses[0][:2]
        yield f"{host}:{bound}"
    finally:
        await runner.cleanup()
