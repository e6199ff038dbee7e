"""The HTTP proxy of a GitRepository's ``spec.proxySecretRef``, as Flux reads that Secret.

Flux's Secret keys: ``address`` (required, the proxy URL), ``username`` and ``password``
(optional, sent as ``Proxy-Authorization: Basic``). Flux also accepts ``socks5://``
addresses; fluxd has no SOCKS client, so it says so instead of connecting directly.

The proxy carries git over http(s) (plain http forwarded, https tunnelled with
``CONNECT``) and the GitHub App token requests; an ssh:// or git:// URL is refused by name
rather than silently bypassing the proxy the user asked for (Flux's SSH transport cannot
use an http proxy either).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["MAX_ADDRESS_LENGTH", "Proxy", "ProxyConfigError", "proxy_from_secret", "refuse_url"]

MAX_ADDRESS_LENGTH = 2048  # Flux's limit on the length of a proxy URL


class ProxyConfigError(ValueError):
    """The proxy Secret cannot be used; the message names the Secret and the key."""


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
        import urllib3.util

        credentials = f"{self.username}:{self.password or ''}"
        return urllib3.util.make_headers(proxy_basic_auth=credentials)


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


def refuse_url(url: str, proxy: Proxy | None) -> None:
    """Raise ProxyConfigError when ``url`` would have to bypass ``proxy``."""
    scheme = urlsplit(url).scheme
    if proxy is not None and scheme not in ("http", "https"):
        raise ProxyConfigError(
            f"spec.proxySecretRef: the proxy '{proxy.url}' carries http(s):// git URLs only,"
            f" and fluxd cannot tunnel {scheme}:// through it; use an https:// URL or remove"
            " spec.proxySecretRef"
        )


def _text(data: Mapping[str, bytes], key: str) -> str | None:
    value = data.get(key)
    return value.decode() if value is not None else None


def _without_credentials(address: str) -> str:
    scheme, sep, rest = address.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else address.rpartition("@")[2]
