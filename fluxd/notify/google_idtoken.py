"""Google-signed OIDC ID tokens, as Google Pub/Sub pushes them to a ``gcr`` Receiver.

An authenticated Pub/Sub push subscription sends ``Authorization: Bearer <JWT>``, an ID
token Google signs for the subscription's service account. Flux checks it with
Google's ID token validator, and so does :func:`verify` here, step by step:

1. the token is a compact JWT whose ``aud`` is a string equal to the expected audience,
   and whose ``exp`` (whole seconds) has not passed;
2. it is signed ``RS256`` by the key its ``kid`` names among Google's published keys
   (:data:`GOOGLE_CERTS_URL`, the documented JSON Web Key Set for Google-signed ID
   tokens; Pub/Sub signs nothing else, so the ``ES256`` keys of Google's IAP are not
   consulted);
3. ``iss`` is ``accounts.google.com`` or ``https://accounts.google.com``;
4. ``email`` is the expected service account and ``email_verified`` is ``true``.

Google's keys are fetched when first needed and kept for the ``max-age`` of the
answer's ``Cache-Control`` (not kept when it gives none), one fetch at a time. Like all
of Flux's outgoing traffic, the fetch honours ``HTTPS_PROXY``/``NO_PROXY`` (``user:password@``
in the proxy address is sent as its basic authentication) and verifies Google's
certificate against the system trust store, which ``SSL_CERT_FILE``/``SSL_CERT_DIR``
replace; both are read at each fetch, so the environment the daemon runs in decides.

A refused token raises :class:`TokenRefused`, whose message says which check failed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from fluxd.kube.client import environment_proxy as proxy_for
from fluxd.notify import jws

__all__ = ["GOOGLE_CERTS_URL", "GOOGLE_ISSUERS", "GoogleKeys", "TokenRefused", "verify"]

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"
GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
_FETCH_TIMEOUT = aiohttp.ClientTimeout(total=10)
_BEARER = "Bearer "
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age=(\d+)", re.IGNORECASE)


class TokenRefused(Exception):
    """The bearer token does not authenticate the request; the message says why."""


def environment_proxy(url: str) -> tuple[str | None, dict[str, str]]:
    """The proxy ``HTTPS_PROXY``/``HTTP_PROXY`` name for ``url`` unless ``NO_PROXY``
    exempts its host, and the ``Proxy-Authorization`` its address's credentials make."""
    address = proxy_for(url)
    if not address:
        return None, {}
    if "://" not in address:
        address = "http://" + address  # Go reads a bare host:port as an http proxy
    proxy = urllib.parse.urlsplit(address)
    if proxy.username is None:
        return address, {}
    credentials = ":".join(
        urllib.parse.unquote(part) for part in (proxy.username, proxy.password or "")
    )
    authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
    bare = proxy._replace(netloc=proxy.netloc.rpartition("@")[2])
    return urllib.parse.urlunsplit(bare), {"Proxy-Authorization": authorization}


def _max_age(cache_control: str) -> int:
    found = _MAX_AGE.search(cache_control)
    return int(found.group(1)) if found else 0


class GoogleKeys:
    """Google's ID token signing keys, fetched on demand and cached as the answer says."""

    def __init__(
        self, *, url: str = GOOGLE_CERTS_URL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._url = url
        self._clock = clock
        self._keys: list[dict[str, Any]] = []
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def keys(self) -> list[dict[str, Any]]:
        """The published keys; :class:`TokenRefused` when they cannot be fetched."""
        async with self._lock:
            if self._keys and self._clock() < self._expires:
                return self._keys
            keys, max_age = await self._fetch()
            self._keys = keys
            self._expires = self._clock() + max_age
            return keys

    async def _fetch(self) -> tuple[list[dict[str, Any]], int]:
        proxy, proxy_headers = environment_proxy(self._url)
        try:
            async with (
                aiohttp.ClientSession(timeout=_FETCH_TIMEOUT) as session,
                session.get(
                    self._url,
                    proxy=proxy,
                    proxy_headers=proxy_headers,
                    ssl=ssl.create_default_context(),
                ) as response,
            ):
                body = await response.read()
                status = response.status
                cache_control = response.headers.get("Cache-Control", "")
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as error:
            via = f" through proxy {proxy}" if proxy else ""
            raise TokenRefused(
                f"unable to fetch Google's keys from {self._url}{via}: {error}"
            ) from error
        if status != 200:
            raise TokenRefused(f"unable to fetch Google's keys: {self._url} answered {status}")
        try:
            listed = json.loads(body).get("keys")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
            raise TokenRefused(
                f"Google's keys at {self._url} are not a JSON Web Key Set"
            ) from error
        if not isinstance(listed, list):
            raise TokenRefused(f"Google's keys at {self._url} are not a JSON Web Key Set")
        return [key for key in listed if isinstance(key, dict)], _max_age(cache_control)


def _claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRefused("invalid ID token: not a JWT")
    try:
        claims = json.loads(jws.b64url_decode(parts[1]))
    except (jws.InvalidSignature, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TokenRefused(f"invalid ID token: its payload does not decode: {error}") from error
    if not isinstance(claims, dict):
        raise TokenRefused("invalid ID token: its payload is not a JSON object")
    return claims


def _check_audience_and_expiry(claims: Mapping[str, Any], audience: str) -> None:
    got = claims.get("aud")
    if got != audience:
        raise TokenRefused(f"invalid ID token: audience is {got!r}, want {audience!r}")
    expiry = claims.get("exp")
    if not isinstance(expiry, int) or isinstance(expiry, bool):
        raise TokenRefused(f"invalid ID token: exp {expiry!r} is not a whole number of seconds")
    if time.time() > expiry:
        raise TokenRefused(f"invalid ID token: token expired at {expiry}")


async def verify(authorization: str, *, email: str, audience: str, keys: GoogleKeys) -> None:
    """Accept the ``Authorization`` header's Google ID token for the service account
    ``email`` and ``audience``; :class:`TokenRefused` naming the check that failed."""
    if not authorization.startswith(_BEARER):
        raise TokenRefused("the Authorization header is missing or malformed")
    token = authorization[len(_BEARER) :]
    claims = _claims(token)
    _check_audience_and_expiry(claims, audience)
    try:
        jws.verify(token, await keys.keys(), {"RS256"})
    except jws.InvalidSignature as error:
        raise TokenRefused(f"invalid ID token: {error}") from error
    issuer = claims.get("iss")
    if issuer not in GOOGLE_ISSUERS:
        raise TokenRefused(
            f"token issuer is {issuer!r}, want 'accounts.google.com' or "
            "'https://accounts.google.com'"
        )
    if claims.get("email") != email:
        raise TokenRefused(f"token email is {claims.get('email')!r}, want {email!r}")
    if claims.get("email_verified") is not True:
        raise TokenRefused(f"token email {email!r} is not verified")
