"""What a GitRepository's proxy (``spec.proxySecretRef``) can carry, and what it cannot.

The Secret itself is read by :mod:`fluxd.sources.proxy`, shared with the other sources.
The proxy carries git over http(s) (plain http forwarded, https tunnelled with
``CONNECT``) and the GitHub App token requests; an ssh:// or git:// URL is refused by name
rather than silently bypassing the proxy the user asked for (Flux's SSH transport cannot
use an http proxy either).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fluxd.sources.proxy import Proxy, ProxyConfigError

__all__ = ["refuse_url"]


def refuse_url(url: str, proxy: Proxy | None) -> None:
    """Raise ProxyConfigError when ``url`` would have to bypass ``proxy``."""
    scheme = urlsplit(url).scheme
    if proxy is not None and scheme not in ("http", "https"):
        raise ProxyConfigError(
            f"spec.proxySecretRef: the proxy '{proxy.url}' carries http(s):// git URLs only,"
            f" and fluxd cannot tunnel {scheme}:// through it; use an https:// URL or remove"
            " spec.proxySecretRef"
        )
