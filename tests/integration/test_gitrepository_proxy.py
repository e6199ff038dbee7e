"""GitRepository ``spec.proxySecretRef``: git over http(s) through an authenticated HTTP
proxy on loopback (tests/proxyserver.py), and every way its Secret can be wrong."""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.api import GIT_REPOSITORY, GitRepositoryRef
from fluxd.runtime import conditions
from fluxd.sources.git import GitAuth, GitError, fetch
from fluxd.sources.proxy import Proxy
from tests.gitservers import (
    HTTP_PASSWORD,
    HTTP_USERNAME,
    GitHTTPServer,
    GitRemote,
    RepoRoot,
    SSHServer,
    free_port,
)
from tests.integration.conftest import Fluxd
from tests.proxyserver import HTTPProxy

pytestmark = pytest.mark.integration

MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n"


def ready_message(obj: dict[str, Any]) -> str:
    ready = conditions.get(obj["status"], "Ready")
    assert ready is not None
    assert ready["status"] == "False"
    assert "artifact" not in obj["status"]
    return str(ready["message"])


async def proxy_secret(fluxd: Fluxd, proxy: HTTPProxy, password: str | None = None) -> None:
    await fluxd.secret(
        "proxy",
        {
            "address": proxy.address,
            "username": proxy.username,
            "password": password or proxy.password,
        },
    )


async def test_git_over_https_and_http_goes_through_the_authenticated_proxy(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_https: GitHTTPServer,
    git_http: GitHTTPServer,
    http_proxy: HTTPProxy,
) -> None:
    sha = git_remote.commit({"deploy/cm.yaml": MANIFEST})
    await proxy_secret(fluxd, http_proxy)
    assert git_https.ca_pem is not None
    await fluxd.secret("tls", {"ca.crt": git_https.ca_pem})
    await fluxd.secret("basic", {"username": HTTP_USERNAME, "password": HTTP_PASSWORD})
    proxied = {"proxySecretRef": {"name": "proxy"}, "interval": "1h"}
    await fluxd.create(
        GIT_REPOSITORY,
        "tunnelled",
        {"url": git_https.url(git_remote), "secretRef": {"name": "tls"}, **proxied},
    )
    http_url = git_http.url(git_remote, auth="basic")
    await fluxd.create(
        GIT_REPOSITORY, "forwarded", {"url": http_url, "secretRef": {"name": "basic"}, **proxied}
    )

    for name in ("tunnelled", "forwarded"):
        obj = await fluxd.wait_ready(GIT_REPOSITORY, name)
        assert obj["status"]["artifact"]["revision"] == f"master@sha1:{sha}"
    assert f"127.0.0.1:{git_https.port}" in http_proxy.log.tunnels
    assert any(url.startswith(http_url) for url in http_proxy.log.forwarded)
    assert http_proxy.log.rejected == 0


async def test_wrong_proxy_password_fails_naming_the_proxy(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_https: GitHTTPServer,
    git_http: GitHTTPServer,
    http_proxy: HTTPProxy,
) -> None:
    git_remote.commit({"deploy/cm.yaml": MANIFEST})
    await proxy_secret(fluxd, http_proxy, password="not-the-proxy-password")
    for name, url in (("https", git_https.url(git_remote)), ("http", git_http.url(git_remote))):
        await fluxd.create(
            GIT_REPOSITORY,
            name,
            {"url": url, "interval": "1h", "proxySecretRef": {"name": "proxy"}},
        )
    for name in ("https", "http"):
        obj = await fluxd.wait_not_ready(GIT_REPOSITORY, name, "GitOperationFailed")
        message = ready_message(obj)
        assert f"proxy '{http_proxy.address}' rejected the credentials (HTTP 407)" in message
        assert "spec.proxySecretRef" in message
        assert "not-the-proxy-password" not in message
    assert http_proxy.log.rejected >= 2
    assert http_proxy.log.tunnels == []


async def test_unusable_proxy_secret_is_named_and_nothing_is_fetched(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    git_sshd: SSHServer,
    git_root: RepoRoot,
    http_proxy: HTTPProxy,
) -> None:
    git_remote.commit({"deploy/cm.yaml": MANIFEST})
    await fluxd.secret("no-address", {"username": http_proxy.username})
    await proxy_secret(fluxd, http_proxy)
    url = git_http.url(git_remote)
    cases = {
        "no-address": (url, "no-address"),
        "missing": (url, "not-there"),
        "over-ssh": (git_sshd.url(git_remote, git_root), "proxy"),
    }
    for name, (repo_url, secret) in cases.items():
        await fluxd.create(
            GIT_REPOSITORY,
            name,
            {"url": repo_url, "interval": "1h", "proxySecretRef": {"name": secret}},
        )
    ns = fluxd.namespace

    no_address = await fluxd.wait_not_ready(GIT_REPOSITORY, "no-address", "AuthenticationFailed")
    assert f"secret '{ns}/no-address': key 'address' not found" in ready_message(no_address)

    missing = await fluxd.wait_not_ready(GIT_REPOSITORY, "missing", "AuthenticationFailed")
    message = ready_message(missing)
    assert f"secret '{ns}/not-there' not found" in message
    assert "spec.proxySecretRef" in message

    over_ssh = await fluxd.wait_not_ready(GIT_REPOSITORY, "over-ssh", "UnsupportedField")
    assert "cannot tunnel ssh:// through it" in ready_message(over_ssh)
    stalled = conditions.get(over_ssh["status"], "Stalled")
    assert stalled is not None
    assert stalled["status"] == "True"
    assert http_proxy.log.tunnels == []
    assert http_proxy.log.forwarded == []


async def test_proxy_that_is_not_running_is_blamed_not_the_git_server(
    git_remote: GitRemote, git_http: GitHTTPServer, git_https: GitHTTPServer
) -> None:
    git_remote.commit({"deploy/cm.yaml": MANIFEST})
    closed = f"http://127.0.0.1:{free_port()}"
    auth = GitAuth(proxy=Proxy(url=closed), ca_file=git_https.ca_pem)
    for url in (git_http.url(git_remote), git_https.url(git_remote)):
        with pytest.raises(GitError) as err:
            await fetch(url, GitRepositoryRef(), auth, 10)
        assert f"proxy '{closed}' refused the connection" in err.value.message
        assert "check 'address' in the spec.proxySecretRef Secret" in err.value.message
