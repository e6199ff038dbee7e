"""Sending one request to a provider: TLS, proxy, timeout, retries as Flux retries.

Flux's notifiers post through go-retryablehttp: up to four retries, waits doubling from
2 s to at most 30 s, on connection errors, 429 and 5xx; any other 4xx fails at once.
The whole delivery (retries included) is bounded by the Provider's ``spec.timeout``
(15 s unless set), so a provider that hangs costs one slot for that long, never more.
A request that carries its own ``publish`` (NATS speaks TCP, not HTTP) is awaited
under the same bound instead.
"""

from __future__ import annotations

import functools
import ssl
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp
import anyio

from fluxd.notify.providers import Request
from fluxd.notify.request import Lookup, PublishFailed
from fluxd.sources.client_certificate import CertificateFilesFailed, load_client_certificate

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
    ValueError when the PEM data is not valid or the certificate cannot be written to
    the temporary files TLS loads it from (the message names the directory)."""
    context = ssl.create_default_context()
    try:
        if ca:
            context.load_verify_locations(cadata=ca.decode("ascii"))
        if cert and key:
            load_client_certificate(context, cert, key)
    except (ssl.SSLError, UnicodeDecodeError) as error:
        raise ValueError(f"the TLS data is not valid PEM: {error}") from error
    except CertificateFilesFailed as error:
        raise ValueError(str(error)) from error
    return context


def _redacted(text: str, url: str) -> str:
    """``text`` without the password of ``url``'s userinfo (``xxxxx`` instead, as Go's
    ``URL.Redacted`` writes it): a Provider's address may come from its Secret with
    credentials in it, and failure messages go to logs and Events."""
    password = urllib.parse.urlsplit(url).password
    return text.replace(password, "xxxxx") if password else text


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class _Unanswered(Exception):
    """No HTTP answer came back, retries included."""


async def send(request: Request, transport: Transport) -> None:
    """Send ``request`` (its lookup first, then the request its answer leads to or its
    follow-up); :class:`DeliveryError` once it failed for good."""
    step: Request | None = request
    try:
        with anyio.fail_after(transport.timeout):
            async with aiohttp.ClientSession() as session:
                while step is not None:
                    if step.publish is not None:
                        await _publish(step.publish, step.failure)
                        step = step.follow_up
                        continue
                    if step.lookup is not None and await _already_done(
                        session, step.lookup, transport
                    ):
                        step = step.follow_up
                        continue
                    answer = await _deliver(session, step, transport)
                    step = step.then(answer) if step.then is not None else step.follow_up
    except TimeoutError:
        url = step.url if step is not None else request.url
        raise DeliveryError(
            f"{request.failure}: no answer from {_redacted(url, url)} within {transport.timeout:g}s"
        ) from None


async def _publish(publish: Callable[[], Awaitable[None]], failure: str) -> None:
    """A delivery over another protocol than HTTP: no retries, as Flux's NATS client."""
    try:
        await publish()
    except PublishFailed as error:
        raise DeliveryError(f"{failure}: {error}") from None


async def _already_done(
    session: aiohttp.ClientSession, lookup: Lookup, transport: Transport
) -> bool:
    try:
        status, body = await _exchange(session, "GET", lookup.url, b"", lookup.headers, transport)
    except _Unanswered as error:
        raise DeliveryError(f"{lookup.failure}: {error}") from None
    if 200 <= status < 300:
        return lookup.already_done(status, body)
    if status in lookup.absent:
        return False
    raise DeliveryError(f"{lookup.failure}: {_refusal(status, body)}")


async def _deliver(session: aiohttp.ClientSession, request: Request, transport: Transport) -> bytes:
    """The body of the request's 2xx answer; :class:`DeliveryError` for any other."""
    try:
        status, body = await _exchange(
            session, request.method, request.url, request.body, request.headers, transport
        )
    except _Unanswered as error:
        raise DeliveryError(f"{request.failure}: {error}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"{request.failure}: {_refusal(status, body)}")
    problem = request.check(body) if request.check else None
    if problem:
        raise DeliveryError(f"{request.failure}: request failed: {problem}")
    return body


def _refusal(status: int, body: bytes) -> str:
    return f"request failed with status code {status}: {body.decode(errors='replace')[:512]}"


async def _exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    data: bytes,
    headers: Mapping[str, str],
    transport: Transport,
) -> tuple[int, bytes]:
    """The final answer's status and body, after retrying connection errors, 429 and 5xx."""
    wait = transport.retry_wait_min
    answer: tuple[int, bytes] | None = None
    last_error = ""
    for attempt in range(MAX_RETRIES + 1):
        if attempt:
            await anyio.sleep(wait)
            wait = min(wait * 2, RETRY_WAIT_MAX)
        try:
            async with session.request(
                method,
                url,
                data=data,
                headers=dict(headers),
                ssl=transport.ssl_context or True,
                proxy=transport.proxy,
                proxy_auth=transport.proxy_auth,
            ) as response:
                answer = (response.status, await response.read())
        except aiohttp.ClientError as error:
            answer = None
            last_error = _redacted(f"failed to execute request: {error}", url)
            continue
        if not _retryable(answer[0]):
            return answer
    if answer is not None:
        return answer
    raise _Unanswered(last_error)
