"""The HTTP proxy a source's ``spec.proxySecretRef`` names, read as Flux reads that Secret.

GitRepository, OCIRepository, ImageRepository and Bucket share the Secret's format, so
they share this reader. Keys: ``address`` (required, the proxy URL), ``username`` and ``password``
(optional, sent as ``Proxy-Authorization: Basic``). Flux also accepts ``socks5://``
addresses; fluxd has no SOCKS client, so it says so instead of connecting directly.
Each source decides what its proxy carries (git's rule lives in
:mod:`fluxd.sources.git.proxy`). urllib3 and aiohttp clients send :meth:`Proxy.headers`
to the proxy; aiohttp ones add :meth:`Proxy.forwarded_headers` to each request.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from fluxd.kube.objects import SecretNotFound

__all__ = [
    "MAX_ADDRESS_LENGTH",
    "Proxy",
    "ProxyConfigError",
    "SecretReader",
    "proxy_from_secret",
    "read_proxy",
]

MAX_ADDRESS_LENGTH = 2048  # Flux's limit on the length of a proxy URL


class ProxyConfigError(ValueError):
    """The proxy Secret cannot be used; the message names the Secret and the key."""


class SecretReader(Protocol):
    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes]: ...


@dataclass(frozen=True, kw_only=True)
class Proxy:
    """Where the proxy listens and how to authenticate to it."""

    url: str  # scheme://host:port, without credentials
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return f"Proxy({self.url!r}{', <credentials>' if self.username is not None else ''})"

    def headers(self) -> dict[str, str]:
        """The headers every request to the proxy carries (its basic auth, if any)."""
        if self.username is None:
            return {}
        credentials = f"{self.username}:{self.password or ''}".encode()
        return {"proxy-authorization": f"Basic {base64.b64encode(credentials).decode()}"}

    def forwarded_headers(self, url: str) -> dict[str, str]:
        """What a request for ``url`` itself carries for the proxy: a plain-http request,
        which the proxy forwards, carries its credentials (aiohttp sends ``proxy_headers``
        on a ``CONNECT`` only); an https one keeps them out of the tunnel."""
        return self.headers() if url.startswith("http://") else {}


async def read_proxy(secrets: SecretReader, namespace: str, name: str) -> Proxy:
    """The proxy of Secret ``namespace/name``; ProxyConfigError naming it when it is
    missing or unusable."""
    try:
        data = await secrets.secret_data(namespace, name)
    except SecretNotFound as error:
        raise ProxyConfigError(f"{error}: create it or fix spec.proxySecretRef") from error
    return proxy_from_secret(data, f"{namespace}/{name}")


def proxy_from_secret(data: Mapping[str, bytes], secret: str) -> Proxy:
    """The proxy of Secret ``secret`` (``namespace/name``, for messages)."""
    raw = data.get("address")
    if raw is None:
        raise ProxyConfigError(f"secret '{secret}': key 'address' not found")
    address = raw.decode("utf-8", "replace").strip()
    if not address:
        raise ProxyConfigError(f"secret '{secret}': proxy address is empty (key 'address')")
    if len(address) > MAX_ADDRESS_LENGTH:
        raise ProxyConfigError(
            f"secret '{secret}': proxy address (key 'address') exceeds"
            f" {MAX_ADDRESS_LENGTH} characters"
        )
    parts = urlsplit(address)
    if parts.scheme == "socks5":
        raise ProxyConfigError(
            f"secret '{secret}': socks5 proxies (key 'address') are not supported by fluxd;"
            " use an http:// or https:// proxy"
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise ProxyConfigError(
            f"secret '{secret}': key 'address' must be an http://host:port or"
            f" https://host:port URL, got '{_without_credentials(address)}'"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    url = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    username = _text(data, "username")
    password = _text(data, "password")
    if username is None and parts.username is not None:
        username, password = parts.username, parts.password
    return Proxy(url=url, username=username, password=password if username is not None else None)


def _text(data: Mapping[str, bytes], key: str) -> str | None:
    value = data.get(key)
    return value.decode() if value is not None else None


def _without_credentials(address: str) -> str:
    scheme, sep, rest = address.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else address.rpartition("@")[2]
