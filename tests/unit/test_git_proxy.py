"""The ``spec.proxySecretRef`` Secret read as Flux reads it (fluxd.sources.proxy), and
the transports refusing a URL the proxy cannot carry."""

from __future__ import annotations

import base64

import pytest

from fluxd.sources.git import GitAuth, GitError
from fluxd.sources.git.transport import open_client
from fluxd.sources.proxy import Proxy, ProxyConfigError, proxy_from_secret

SECRET = "ns/proxy"


def test_address_and_credentials_make_basic_proxy_auth() -> None:
    proxy = proxy_from_secret(
        {"address": b"http://proxy.example:3128", "username": b"u", "password": b"p w"}, SECRET
    )
    assert proxy.url == "http://proxy.example:3128"
    expected = base64.b64encode(b"u:p w").decode()
    assert proxy.headers() == {"proxy-authorization": f"Basic {expected}"}


def test_address_alone_sends_no_proxy_auth() -> None:
    proxy = proxy_from_secret({"address": b"https://[::1]:8443"}, SECRET)
    assert proxy == Proxy(url="https://[::1]:8443")
    assert proxy.headers() == {}


def test_credentials_in_the_address_are_used_but_never_shown() -> None:
    proxy = proxy_from_secret({"address": b"http://alice:s3cret@127.0.0.1:3128"}, SECRET)
    assert proxy.url == "http://127.0.0.1:3128"
    assert (proxy.username, proxy.password) == ("alice", "s3cret")
    assert "s3cret" not in repr(proxy)
    assert "s3cret" in GitAuth(proxy=proxy).secrets()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({}, "secret 'ns/proxy': key 'address' not found"),
        ({"address": b"  "}, "proxy address is empty (key 'address')"),
        ({"address": b"socks5://127.0.0.1:1080"}, "socks5 proxies (key 'address')"),
        ({"address": b"ftp://u:pw@host:21"}, "got 'ftp://host:21'"),
        ({"address": b"http://host:port"}, "key 'address' must be an http://host:port"),
        ({"address": b"http://" + b"h" * 2048}, "exceeds 2048 characters"),
    ],
)
def test_unusable_secret_is_named(data: dict[str, bytes], words: str) -> None:
    with pytest.raises(ProxyConfigError) as err:
        proxy_from_secret(data, SECRET)
    assert words in str(err.value)
    assert "pw" not in str(err.value)


@pytest.mark.parametrize("url", ["ssh://git@127.0.0.1:22/r.git", "git://127.0.0.1/r.git"])
def test_a_url_the_proxy_cannot_carry_is_refused_not_sent_around_it(url: str) -> None:
    auth = GitAuth(proxy=Proxy(url="http://127.0.0.1:3128"))
    with pytest.raises(GitError) as err:
        open_client(url, auth, 1)
    assert "spec.proxySecretRef" in err.value.message
    assert "http(s):// git URLs only" in err.value.message
