"""How fluxd builds its API clients: proxy variables read once, not on every request."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client import Configuration

from fluxd.kube import client

PROXY = "http://proxy.example:3128"


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


async def test_the_environment_proxy_is_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    api = client.api_client(Configuration(host="https://api.example:6443"))
    try:
        assert api.rest_client.proxy == PROXY
        assert api.rest_client.pool_manager.trust_env is False, "looked up on every request"
        assert str(api.user_agent).startswith("fluxd/")
    finally:
        await api.close()


@pytest.mark.parametrize(
    ("no_proxy", "configured", "expected"),
    [
        ("api.example", None, None),
        ("", "http://kubeconfig-proxy:8080", "http://kubeconfig-proxy:8080"),
    ],
    ids=["NO_PROXY exempts the API server", "a kubeconfig proxy-url wins"],
)
async def test_proxy_exemptions_and_precedence(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, configured: str | None, expected: str | None
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    config = Configuration(host="https://api.example:6443")
    config.proxy = configured
    api = client.api_client(config)
    try:
        assert api.rest_client.proxy == expected
    finally:
        await api.close()
