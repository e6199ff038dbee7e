"""GitHub App installation tokens for ``spec.provider: github``, got as Flux gets them.

The Secret of ``spec.secretRef`` holds the app: ``githubAppID``, either
``githubAppInstallationID`` or ``githubAppInstallationOwner`` (an organisation or user the
app is installed for), ``githubAppPrivateKey`` (PEM, RSA) and optionally
``githubAppBaseURL`` (GitHub Enterprise's API, e.g. ``https://ghe.example.com/api/v3``;
``https://api.github.com`` by default) and ``ca.crt`` for a private CA.

fluxd signs a JWT with the app's key (RS256, ``iss`` the app id, issued a minute in the
past against clock drift, valid for ten minutes as GitHub allows at most) and POSTs it to
``{base}/app/installations/{id}/access_tokens``; the token it gets back is git's password
for the user ``x-access-token``. Tokens live about an hour: :class:`InstallationTokens`
keeps each until 80 % of its lifetime has passed (Flux's token cache does the same), so a
periodic reconcile costs no API call. The GitHub API is reached through the
GitRepository's proxy, when it has one, as Flux does.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
import urllib3
import urllib3.exceptions
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fluxd.sources.git.transport import http_pool
from fluxd.sources.proxy import Proxy

__all__ = [
    "ACCESS_TOKEN_USERNAME",
    "DEFAULT_API_URL",
    "KEY_APP_ID",
    "GitHubApp",
    "GitHubAppError",
    "InstallationTokens",
    "app_from_secret",
    "app_jwt",
]

KEY_APP_ID = "githubAppID"
KEY_INSTALLATION_ID = "githubAppInstallationID"
KEY_INSTALLATION_OWNER = "githubAppInstallationOwner"
KEY_PRIVATE_KEY = "githubAppPrivateKey"
KEY_BASE_URL = "githubAppBaseURL"
ACCESS_TOKEN_USERNAME = "x-access-token"
DEFAULT_API_URL = "https://api.github.com"

JWT_BACKDATE = 60  # seconds: GitHub's advice against clock drift
JWT_LIFETIME = 600  # seconds: the most GitHub accepts
TOKEN_REUSE_FRACTION = 0.8  # of a token's lifetime, as Flux's token cache
TOKEN_REUSE_MAX = 3600.0  # seconds, as Flux's token cache


class GitHubAppError(Exception):
    """No installation token: the message names the Secret key or the API URL at fault."""


@dataclass(frozen=True, kw_only=True)
class GitHubApp:
    """A GitHub App installation, as the Secret describes it."""

    secret: str  # namespace/name of the Secret, for messages
    app_id: int
    installation_id: int | None
    installation_owner: str | None
    private_key_pem: bytes
    api_url: str  # without a trailing slash
    ca_file: bytes | None

    def __repr__(self) -> str:
        return f"GitHubApp(app {self.app_id} from secret '{self.secret}')"


def app_from_secret(data: Mapping[str, bytes], secret: str) -> GitHubApp:
    """The app in Secret ``secret`` (``namespace/name``); GitHubAppError names a bad key."""

    def text(key: str) -> str | None:
        value = data.get(key)
        return value.decode("utf-8", "replace").strip() if value is not None else None

    app_id = _integer(text(KEY_APP_ID), KEY_APP_ID, secret)
    if app_id is None:
        raise GitHubAppError(f"secret '{secret}': key '{KEY_APP_ID}' not found")
    installation_id = _integer(text(KEY_INSTALLATION_ID), KEY_INSTALLATION_ID, secret)
    owner = text(KEY_INSTALLATION_OWNER) or None
    if installation_id is None and owner is None:
        raise GitHubAppError(
            f"secret '{secret}': key '{KEY_INSTALLATION_ID}' (or"
            f" '{KEY_INSTALLATION_OWNER}') not found"
        )
    if installation_id is not None and owner is not None:
        raise GitHubAppError(
            f"secret '{secret}': set only one of '{KEY_INSTALLATION_ID}' and"
            f" '{KEY_INSTALLATION_OWNER}'"
        )
    pem = data.get(KEY_PRIVATE_KEY)
    if not pem:
        raise GitHubAppError(f"secret '{secret}': key '{KEY_PRIVATE_KEY}' not found")
    _private_key(pem, secret)  # fail here, before any request, on a key that cannot sign
    api_url = (text(KEY_BASE_URL) or DEFAULT_API_URL).rstrip("/")
    if not api_url.startswith(("https://", "http://")):
        raise GitHubAppError(
            f"secret '{secret}': key '{KEY_BASE_URL}' must be an http(s):// URL, got '{api_url}'"
        )
    return GitHubApp(
        secret=secret,
        app_id=app_id,
        installation_id=installation_id,
        installation_owner=owner,
        private_key_pem=pem,
        api_url=api_url,
        ca_file=data.get("ca.crt") or data.get("caFile"),
    )


def app_jwt(app: GitHubApp, now: float) -> str:
    """The RS256 JWT that authenticates as the app itself, issued at ``now`` (epoch s)."""
    issued = int(now) - JWT_BACKDATE
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {"iat": issued, "exp": issued + JWT_LIFETIME, "iss": str(app.app_id)}
    signing_input = f"{_b64_json(header)}.{_b64_json(claims)}".encode("ascii")
    key = _private_key(app.private_key_pem, app.secret)
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode('ascii')}.{_b64(signature)}"


class InstallationTokens:
    """Installation tokens by app and proxy, each reused until near its expiry."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[GitHubApp, Proxy | None], tuple[str, float]] = {}

    async def token(self, app: GitHubApp, *, proxy: Proxy | None, timeout: float) -> str:  # noqa: ASYNC109 - the GitRepository's spec.timeout
        """A valid installation token: the cached one, or a new one from the API."""
        key = (app, proxy)
        cached = self._tokens.get(key)
        now = self._clock()
        if cached is not None and now < cached[1]:
            return cached[0]
        work = functools.partial(_request_token, app, proxy, timeout)
        try:
            with anyio.fail_after(timeout):
                token, lifetime = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except TimeoutError:
            raise GitHubAppError(
                f"the GitHub API at '{app.api_url}' did not answer within {timeout:g}s"
            ) from None
        reuse = min(max(lifetime, 0.0), TOKEN_REUSE_MAX) * TOKEN_REUSE_FRACTION
        self._tokens[key] = (token, now + reuse)
        return token


def _request_token(app: GitHubApp, proxy: Proxy | None, timeout: float) -> tuple[str, float]:
    """A token and its lifetime in seconds, POSTed for (after finding the installation by
    owner, if need be)."""
    headers = {
        "Accept": "application/vnd.github+json",
        "Authorization": f"Bearer {app_jwt(app, time.time())}",
        "User-Agent": "fluxd",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    pool = http_pool(headers=headers, ca_file=app.ca_file, proxy=proxy, timeout=timeout)
    try:
        installation = app.installation_id or _find_installation(pool, app)
        url = f"{app.api_url}/app/installations/{installation}/access_tokens"
        status, body = _call(pool, "POST", url)
    except urllib3.exceptions.HTTPError as error:
        raise GitHubAppError(
            f"cannot reach the GitHub API at '{app.api_url}': {_reason(error)}"
        ) from error
    finally:
        pool.clear()
    if status == 404:
        raise GitHubAppError(
            f"GitHub API '{url}': installation {installation} of app {app.app_id} not found"
            f" (HTTP 404): check '{KEY_INSTALLATION_ID}' in secret '{app.secret}'"
        )
    if status != 201:
        raise _api_error(app, url, status, body)
    try:
        token = str(body["token"])
        expires = datetime.datetime.fromisoformat(str(body["expires_at"]))
    except (KeyError, TypeError, ValueError) as error:
        raise GitHubAppError(
            f"GitHub API '{url}' answered without a token and its expires_at"
        ) from error
    return token, expires.timestamp() - time.time()


def _find_installation(pool: urllib3.PoolManager, app: GitHubApp) -> int:
    """The installation id for ``githubAppInstallationOwner``: an organisation, else a user."""
    owner = quote(app.installation_owner or "", safe="")
    for kind in ("orgs", "users"):
        url = f"{app.api_url}/{kind}/{owner}/installation"
        status, body = _call(pool, "GET", url)
        if status == 200 and isinstance(body.get("id"), int):
            return int(body["id"])
        if status != 404:
            raise _api_error(app, url, status, body)
    raise GitHubAppError(
        f"GitHub API '{app.api_url}': app {app.app_id} is not installed for organisation or"
        f" user '{app.installation_owner}': check '{KEY_INSTALLATION_OWNER}' in secret"
        f" '{app.secret}'"
    )


def _call(pool: urllib3.PoolManager, method: str, url: str) -> tuple[int, dict[str, Any]]:
    response = pool.request(method, url)
    try:
        body = json.loads(response.data or b"{}")
    except ValueError:
        body = {}
    return response.status, body if isinstance(body, dict) else {}


def _api_error(app: GitHubApp, url: str, status: int, body: Mapping[str, Any]) -> GitHubAppError:
    detail = f": {body['message']}" if body.get("message") else ""
    if status == 401:
        return GitHubAppError(
            f"GitHub API '{url}' rejected the app's JWT (HTTP 401{detail}): check"
            f" '{KEY_APP_ID}' and '{KEY_PRIVATE_KEY}' in secret '{app.secret}'"
        )
    return GitHubAppError(f"GitHub API '{url}' answered HTTP {status}{detail}")


def _reason(error: Exception) -> str:
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        error = error.reason
    if isinstance(error, urllib3.exceptions.ProxyError):
        return f"the proxy failed: {error.original_error}"
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return "connection refused"
    return f"{type(error).__name__}: {error}"


@functools.lru_cache(maxsize=16)
def _private_key(pem: bytes, secret: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise GitHubAppError(
            f"secret '{secret}': key '{KEY_PRIVATE_KEY}' is not an unencrypted PEM private key"
        ) from error
    if not isinstance(key, rsa.RSAPrivateKey):
        raise GitHubAppError(
            f"secret '{secret}': key '{KEY_PRIVATE_KEY}' is not an RSA key; GitHub Apps sign"
            " with RSA"
        )
    return key


def _integer(value: str | None, key: str, secret: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or int(value) == 0:
        raise GitHubAppError(f"secret '{secret}': key '{key}' must be a positive integer")
    return int(value)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64_json(value: Mapping[str, object]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())
