"""Sending one request to a provider: TLS, proxy, timeout, retries as Flux retries.

Flux's notifiers post through go-retryablehttp: up to four retries, waits doubling from
2 s to at most 30 s, on connection errors, 429 and 5xx; any other 4xx fails at once.
The whole delivery (retries included) is bounded by the Provider's ``spec.timeout``
(15 s unless set), so a provider that hangs costs one slot for that long, never more.
"""

from __future__ import annotations

import functools
import os
import ssl
import tempfile
from dataclasses import dataclass

import aiohttp
import anyio

from fluxd.notify.providers import Request

__all__ = ["DeliveryError", "Transport", "send", "tls_context"]

MAX_RETRIES = 4
RETRY_WAIT_MIN = 2.0
RETRY_WAIT_MAX = 30.0


class DeliveryError(Exception):
    """The provider did not accept the notification; the message says why."""


@dataclass(frozen=True, kw_only=True)
class Transport:
    """How a request reaches the provider."""

    timeout: float = 15.0
    ssl_context: ssl.SSLContext | None = None
    proxy: str | None = None
    proxy_auth: aiohttp.BasicAuth | None = None
    retry_wait_min: float = RETRY_WAIT_MIN


@functools.lru_cache(maxsize=32)
def tls_context(ca: bytes | None, cert: bytes | None, key: bytes | None) -> ssl.SSLContext:
    """A client context trusting the system store plus ``ca``, presenting ``cert``;
    ValueError when the PEM data is not valid."""
    context = ssl.create_default_context()
    try:
        if ca:
            context.load_verify_locations(cadata=ca.decode("ascii"))
        if cert and key:
            # The ssl module reads a client certificate from files only.
            with tempfile.TemporaryDirectory(prefix="fluxd-notify-tls-") as directory:
                paths = []
                for name, content in (("tls.crt", cert), ("tls.key", key)):
                    path = os.path.join(directory, name)
                    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
                        out.write(content)
                    paths.append(path)
                context.load_cert_chain(paths[0], paths[1])
    except (ssl.SSLError, UnicodeDecodeError) as error:
        raise ValueError(f"the TLS data is not valid PEM: {error}") from error
    return context


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


async def send(request: Request, transport: Transport) -> None:
    """POST ``request``; :class:`DeliveryError` once it failed for good."""
    try:
        with anyio.fail_after(transport.timeout):
            await _send_with_retries(request, transport)
    except TimeoutError:
        raise DeliveryError(
            f"postMessage failed: no answer from {request.url} within {transport.timeout:g}s"
        ) from None


async def _send_with_retries(request: Request, transport: Transport) -> None:
    wait = transport.retry_wait_min
    last = ""
    async with aiohttp.ClientSession() as session:
        for attempt in range(MAX_RETRIES + 1):
            if attempt:
                await anyio.sleep(wait)
                wait = min(wait * 2, RETRY_WAIT_MAX)
            try:
                async with session.request(
                    request.method,
                    request.url,
                    data=request.body,
                    headers=dict(request.headers),
                    ssl=transport.ssl_context or True,
                    proxy=transport.proxy,
                    proxy_auth=transport.proxy_auth,
                ) as response:
                    body = await response.read()
                    status = response.status
            except aiohttp.ClientError as error:
                last = f"failed to execute request: {error}"
                continue
            if 200 <= status < 300:
                problem = request.check(body) if request.check else None
                if problem:
                    raise DeliveryError(f"postMessage failed: request failed: {problem}")
                return
            last = (
                f"request failed with status code {status}: {body.decode(errors='replace')[:512]}"
            )
            if not _retryable(status):
                break
    raise DeliveryError(f"postMessage failed: {last}")
