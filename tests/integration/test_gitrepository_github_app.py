"""GitRepository ``spec.provider: github``: a GitHub App's installation token, got from a
loopback stand-in of GitHub's API (tests/githubapi.py), opens a git server that accepts
nothing else; and every way the App's Secret can be wrong."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fluxd.api import GIT_REPOSITORY
from fluxd.runtime import conditions
from tests.githubapi import GitHubApp
from tests.gitservers import AccessTokenGitServer, GitHTTPServer, GitRemote
from tests.integration.conftest import Fluxd
from tests.integration.test_gitrepository import request_reconcile
from tests.proxyserver import HTTPProxy

pytestmark = pytest.mark.integration

MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n"


@pytest.fixture
def app(github_api: GitHubApp, git_http_access_token: AccessTokenGitServer) -> GitHubApp:
    """The stand-in's app, whose tokens the git server accepts."""
    github_api.on_token = git_http_access_token.accepted.add
    return github_api


def failure(obj: dict[str, Any]) -> str:
    """Ready's message, after checking nothing was fetched."""
    assert "artifact" not in obj["status"]
    ready = conditions.get(obj["status"], "Ready")
    assert ready is not None
    assert ready["status"] == "False"
    return str(ready["message"])


async def test_app_token_opens_the_repository_and_is_reused(
    fluxd: Fluxd, git_remote: GitRemote, git_http_access_token: AccessTokenGitServer, app: GitHubApp
) -> None:
    first = git_remote.commit({"deploy/cm.yaml": MANIFEST})
    await fluxd.secret("app", app.secret_data())
    await fluxd.create(
        GIT_REPOSITORY,
        "repo",
        {
            "url": git_http_access_token.url(git_remote),
            "interval": "1h",
            "provider": "github",
            "secretRef": {"name": "app"},
        },
    )
    ready = await fluxd.wait_ready(GIT_REPOSITORY, "repo")
    assert ready["status"]["artifact"]["revision"] == f"master@sha1:{first}"
    assert app.token_requests == 1
    assert app.rejected == []

    second = git_remote.commit({"deploy/cm.yaml": MANIFEST + "data: {}\n"})
    stamp = await request_reconcile(fluxd, "repo")
    again = await fluxd.wait_for(
        GIT_REPOSITORY,
        "repo",
        lambda o: (o.get("status") or {}).get("lastHandledReconcileAt") == stamp,
        "the requested reconcile",
    )
    assert again["status"]["artifact"]["revision"] == f"master@sha1:{second}"
    assert app.token_requests == 1  # the cached token opened the repository again


async def test_api_calls_and_git_both_go_through_the_proxy(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_http_access_token: AccessTokenGitServer,
    app: GitHubApp,
    http_proxy: HTTPProxy,
) -> None:
    git_remote.commit({"deploy/cm.yaml": MANIFEST})
    await fluxd.secret("app", app.secret_data())
    await fluxd.secret(
        "proxy",
        {
            "address": http_proxy.address,
            "username": http_proxy.username,
            "password": http_proxy.password,
        },
    )
    await fluxd.create(
        GIT_REPOSITORY,
        "repo",
        {
            "url": git_http_access_token.url(git_remote),
            "interval": "1h",
            "provider": "github",
            "secretRef": {"name": "app"},
            "proxySecretRef": {"name": "proxy"},
        },
    )
    await fluxd.wait_ready(GIT_REPOSITORY, "repo")
    forwarded = http_proxy.log.forwarded
    assert f"{app.base_url}/app/installations/{app.installation_id}/access_tokens" in forwarded
    assert any(url.startswith(git_http_access_token.url(git_remote)) for url in forwarded)


async def test_bad_key_and_unknown_installation_fail_clearly(
    fluxd: Fluxd, git_remote: GitRemote, git_http_access_token: AccessTokenGitServer, app: GitHubApp
) -> None:
    git_remote.commit({"deploy/cm.yaml": MANIFEST})
    stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    secrets = {
        "garbled-key": app.secret_data(githubAppPrivateKey="-----BEGIN RSA PRIVATE KEY-----\n"),
        "stranger-key": app.secret_data(githubAppPrivateKey=stranger_key),
        "unknown-installation": app.secret_data(githubAppInstallationID="12345"),
    }
    for name, data in secrets.items():
        await fluxd.secret(name, data)
        await fluxd.create(
            GIT_REPOSITORY,
            name,
            {
                "url": git_http_access_token.url(git_remote),
                "interval": "1h",
                "provider": "github",
                "secretRef": {"name": name},
            },
        )
    ns = fluxd.namespace
    expected = {
        "garbled-key": f"secret '{ns}/garbled-key': key 'githubAppPrivateKey' is not an"
        " unencrypted PEM private key",
        "stranger-key": f"GitHub API '{app.base_url}/app/installations/{app.installation_id}"
        "/access_tokens' rejected the app's JWT (HTTP 401",
        "unknown-installation": f"GitHub API '{app.base_url}/app/installations/12345"
        "/access_tokens': installation 12345 of app",
    }
    for name, words in expected.items():
        obj = await fluxd.wait_not_ready(GIT_REPOSITORY, name, "AuthenticationFailed")
        message = failure(obj)
        assert words in message, name
        assert "BEGIN" not in message
    assert git_http_access_token.requests == []


async def test_provider_and_secret_must_agree(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, app: GitHubApp
) -> None:
    url = git_http.url(git_remote)
    await fluxd.secret("app", app.secret_data())
    await fluxd.secret("basic", {"username": "u", "password": "p"})
    cases: dict[str, dict[str, Any]] = {
        "no-secret": {"provider": "github"},
        "not-an-app": {"provider": "github", "secretRef": {"name": "basic"}},
        "generic-with-app": {"secretRef": {"name": "app"}},
        "over-ssh": {
            "provider": "github",
            "secretRef": {"name": "app"},
            "url": "ssh://git@127.0.0.1:22/never-contacted.git",
        },
    }
    for name, extra in cases.items():
        await fluxd.create(GIT_REPOSITORY, name, {"url": url, "interval": "1h", **extra})
    ns = fluxd.namespace
    expected = {
        "no-secret": "spec.provider 'github' needs spec.secretRef",
        "not-an-app": f"secret '{ns}/basic': key 'githubAppID' not found",
        "generic-with-app": f"secret '{ns}/app' has GitHub App data (githubAppID) but"
        " spec.provider is not 'github'",
        "over-ssh": "spec.provider 'github' authenticates https:// URLs only",
    }
    for name, words in expected.items():
        obj = await fluxd.wait_not_ready(GIT_REPOSITORY, name, "InvalidProviderConfiguration")
        assert words in failure(obj), name
    for name in ("no-secret", "over-ssh"):  # only a spec change can help these
        stalled = conditions.get((await fluxd.get(GIT_REPOSITORY, name))["status"], "Stalled")
        assert stalled is not None
        assert stalled["status"] == "True", name
    assert app.token_requests == 0
