"""A GitRepository's git credentials: its ``secretRef``, ``provider`` and ``proxySecretRef``.

Flux documents which keys of the ``secretRef`` Secret mean what: ``username``/``password``
or ``bearerToken`` for HTTPS, ``ca.crt`` (formerly ``caFile``) for a private CA,
``identity`` and ``known_hosts`` for SSH, with ``password`` as the identity's passphrase;
with ``provider: github`` the same Secret holds a GitHub App instead (see
:mod:`~fluxd.sources.git.github_app`), whose installation token becomes the password.
``proxySecretRef`` adds the proxy (see :mod:`~fluxd.sources.git.proxy`).

The reconciler and the CLI both read such Secrets; mapping the keys here, once, means
the two cannot authenticate the same repository differently. Failures are
:class:`CredentialsError` with Flux's reason (``AuthenticationFailed``,
``InvalidProviderConfiguration``) and whether retrying can help.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

from fluxd.api import GitRepositorySpec, parse_duration
from fluxd.kube.objects import SecretNotFound
from fluxd.sources.git.github_app import (
    ACCESS_TOKEN_USERNAME,
    KEY_APP_ID,
    GitHubAppError,
    InstallationTokens,
    app_from_secret,
)
from fluxd.sources.git.proxy import refuse_url
from fluxd.sources.git.transport import GitAuth, GitError
from fluxd.sources.proxy import Proxy, ProxyConfigError, proxy_from_secret

__all__ = [
    "CredentialsError",
    "SecretReader",
    "auth_from_secret",
    "installation_tokens",
    "repository_auth",
]

AUTHENTICATION_FAILED = "AuthenticationFailed"
INVALID_PROVIDER_CONFIGURATION = "InvalidProviderConfiguration"

installation_tokens = InstallationTokens()
"""The process's GitHub App tokens, shared by every GitRepository (Flux has one cache)."""


class CredentialsError(GitError):
    """No usable credentials; ``stalled`` when only a spec change can help."""

    def __init__(self, message: str, *, reason: str, stalled: bool = False) -> None:
        super().__init__(message, reason=reason)
        self.stalled = stalled


class SecretReader(Protocol):
    """Where Secrets come from (the reconciler's object API)."""

    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes]: ...


def auth_from_secret(data: Mapping[str, bytes]) -> GitAuth:
    """Flux's Secret keys for git: https (basic, bearer, CA) and ssh (key, host keys)."""

    def text(key: str) -> str | None:
        value = data.get(key)
        return value.decode() if value is not None else None

    return GitAuth(
        username=text("username"),
        password=text("password"),
        bearer_token=text("bearerToken"),
        ca_file=data.get("ca.crt") or data.get("caFile"),
        identity=data.get("identity"),
        passphrase=text("password") if "identity" in data else None,
        known_hosts=data.get("known_hosts"),
    )


async def repository_auth(
    secrets: SecretReader,
    namespace: str,
    spec: GitRepositorySpec,
    *,
    tokens: InstallationTokens = installation_tokens,
) -> GitAuth:
    """Everything needed to reach ``spec.url``; GitHub App tokens come from ``tokens``.

    ``spec.provider`` ``aws``/``azure`` are not handled here (the reconciler refuses them).
    """
    proxy = await _proxy(secrets, namespace, spec)
    github = spec.provider == "github"
    if github:
        _check_github_spec(spec)
    if spec.secret_ref is None:
        return GitAuth(proxy=proxy)
    secret = f"{namespace}/{spec.secret_ref.name}"
    try:
        data = await secrets.secret_data(namespace, spec.secret_ref.name)
    except SecretNotFound as error:
        raise CredentialsError(
            f"failed to get credentials: {error}: create it or fix spec.secretRef",
            reason=AUTHENTICATION_FAILED,
        ) from error
    auth = dataclasses.replace(auth_from_secret(data), proxy=proxy)
    if github:
        return await _with_app_token(auth, data, secret, parse_duration(spec.timeout), tokens)
    if data.get(KEY_APP_ID):
        raise CredentialsError(
            f"secret '{secret}' has GitHub App data ({KEY_APP_ID}) but spec.provider is"
            " not 'github': set spec.provider to 'github'",
            reason=INVALID_PROVIDER_CONFIGURATION,
        )
    return auth


def _check_github_spec(spec: GitRepositorySpec) -> None:
    """Stall on a ``provider: github`` spec that no Secret can make work."""
    if spec.secret_ref is None:
        raise CredentialsError(
            "spec.provider 'github' needs spec.secretRef naming a Secret with the GitHub App"
            " (githubAppID, githubAppInstallationID, githubAppPrivateKey)",
            reason=INVALID_PROVIDER_CONFIGURATION,
            stalled=True,
        )
    scheme = urlsplit(spec.url).scheme
    if scheme not in ("http", "https"):
        raise CredentialsError(
            "spec.provider 'github' authenticates https:// URLs only (a GitHub App token is"
            f" an HTTP password), not '{scheme}://': use the repository's https:// URL",
            reason=INVALID_PROVIDER_CONFIGURATION,
            stalled=True,
        )


async def _with_app_token(
    auth: GitAuth,
    data: Mapping[str, bytes],
    secret: str,
    timeout: float,  # noqa: ASYNC109 - the GitRepository's spec.timeout
    tokens: InstallationTokens,
) -> GitAuth:
    """``auth`` with the installation token of the app in ``data`` as its password."""
    if not data.get(KEY_APP_ID):
        raise CredentialsError(
            f"secret '{secret}': key '{KEY_APP_ID}' not found; spec.provider 'github' needs"
            " the GitHub App in spec.secretRef",
            reason=INVALID_PROVIDER_CONFIGURATION,
        )
    try:
        app = app_from_secret(data, secret)
        token = await tokens.token(app, proxy=auth.proxy, timeout=timeout)
    except (GitHubAppError, GitError) as error:
        raise CredentialsError(
            f"failed to get a GitHub App installation token: {error}",
            reason=AUTHENTICATION_FAILED,
        ) from error
    return dataclasses.replace(
        auth, username=ACCESS_TOKEN_USERNAME, password=token, bearer_token=None
    )


async def _proxy(secrets: SecretReader, namespace: str, spec: GitRepositorySpec) -> Proxy | None:
    if spec.proxy_secret_ref is None:
        return None
    name = spec.proxy_secret_ref.name
    try:
        proxy = proxy_from_secret(await secrets.secret_data(namespace, name), f"{namespace}/{name}")
    except SecretNotFound as error:
        raise CredentialsError(
            f"failed to configure proxy options: {error}: create it or fix spec.proxySecretRef",
            reason=AUTHENTICATION_FAILED,
        ) from error
    except ProxyConfigError as error:
        raise CredentialsError(
            f"failed to configure proxy options: {error}", reason=AUTHENTICATION_FAILED
        ) from error
    try:
        refuse_url(spec.url, proxy)
    except ProxyConfigError as error:
        raise CredentialsError(str(error), reason="UnsupportedField", stalled=True) from error
    return proxy
