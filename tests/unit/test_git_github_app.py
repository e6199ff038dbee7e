"""GitHub App tokens (fluxd.sources.git.github_app): the Secret's keys, the JWT, and the
token requests against a loopback stand-in of GitHub's API (tests/githubapi.py)."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from fluxd.sources.git.github_app import (
    DEFAULT_API_URL,
    GitHubApp,
    GitHubAppError,
    InstallationTokens,
    app_from_secret,
    app_jwt,
)
from tests.gitservers import free_port

if TYPE_CHECKING:  # imported at run time as the plugin below, and only there
    from tests.githubapi import GitHubApp as StandIn

pytest_plugins = ["tests.githubapi"]

SECRET = "ns/app"
APP_ID = 4711
INSTALLATION_ID = 99


def new_app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


KEY = pem(new_app_key())


def data(**overrides: bytes) -> dict[str, bytes]:
    values = {
        "githubAppID": str(APP_ID).encode(),
        "githubAppInstallationID": str(INSTALLATION_ID).encode(),
        "githubAppPrivateKey": KEY,
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v}


def stand_in_app(github_api: StandIn, **overrides: str | bytes) -> GitHubApp:
    """The stand-in's app as fluxd reads it from a Secret."""
    raw = github_api.secret_data(**overrides)
    encoded = {k: v if isinstance(v, bytes) else v.encode() for k, v in raw.items()}
    return app_from_secret(encoded, SECRET)


class Clock:
    """A clock the test moves: the token cache's notion of now."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_secret_keys_and_defaults() -> None:
    app = app_from_secret(data(), SECRET)
    assert (app.app_id, app.installation_id, app.installation_owner) == (
        APP_ID,
        INSTALLATION_ID,
        None,
    )
    assert app.api_url == DEFAULT_API_URL
    owned = app_from_secret(
        data(githubAppInstallationID=b"", githubAppInstallationOwner=b"acme"), SECRET
    )
    assert (owned.installation_id, owned.installation_owner) == (None, "acme")
    assert "BEGIN" not in repr(app)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"githubAppID": b""}, "key 'githubAppID' not found"),
        ({"githubAppID": b"12ab"}, "key 'githubAppID' must be a positive integer"),
        ({"githubAppInstallationID": b""}, "key 'githubAppInstallationID' (or"),
        (
            {"githubAppInstallationOwner": b"acme"},
            "set only one of 'githubAppInstallationID' and 'githubAppInstallationOwner'",
        ),
        ({"githubAppPrivateKey": b""}, "key 'githubAppPrivateKey' not found"),
        ({"githubAppPrivateKey": b"not a key"}, "'githubAppPrivateKey' is not an unencrypted PEM"),
        (
            {
                "githubAppPrivateKey": ec.generate_private_key(ec.SECP256R1()).private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            },
            "'githubAppPrivateKey' is not an RSA key",
        ),
        ({"githubAppBaseURL": b"ghe.example.com"}, "key 'githubAppBaseURL' must be an http(s)"),
    ],
)
def test_bad_secret_names_the_key(overrides: dict[str, bytes], words: str) -> None:
    with pytest.raises(GitHubAppError) as err:
        app_from_secret(data(**overrides), SECRET)
    assert f"secret '{SECRET}'" in str(err.value)
    assert words in str(err.value)


def test_jwt_is_rs256_signed_by_the_app_and_short_lived() -> None:
    key = new_app_key()
    app = app_from_secret(data(githubAppPrivateKey=pem(key)), SECRET)
    header, claims, signature = app_jwt(app, now=1_700_000_000.5).split(".")

    def decode(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    key.public_key().verify(
        decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert json.loads(decode(header)) == {"alg": "RS256", "typ": "JWT"}
    assert json.loads(decode(claims)) == {
        "iat": 1_700_000_000 - 60,
        "exp": 1_700_000_000 - 60 + 600,
        "iss": str(APP_ID),
    }


async def test_token_is_reused_until_most_of_its_hour_has_passed(github_api: StandIn) -> None:
    clock = Clock()
    tokens = InstallationTokens(clock)
    app = stand_in_app(github_api)
    first = await tokens.token(app, proxy=None, timeout=10)
    assert first.startswith("ghs_")
    clock.now += 40 * 60
    assert await tokens.token(app, proxy=None, timeout=10) == first
    assert github_api.token_requests == 1
    clock.now += 10 * 60  # past 80 % of the hour
    assert await tokens.token(app, proxy=None, timeout=10) != first
    assert github_api.token_requests == 2


async def test_installation_found_by_owner(github_api: StandIn) -> None:
    app = stand_in_app(
        github_api, githubAppInstallationID="", githubAppInstallationOwner=github_api.owner
    )
    assert (await InstallationTokens().token(app, proxy=None, timeout=10)).startswith("ghs_")
    stranger = stand_in_app(
        github_api, githubAppInstallationID="", githubAppInstallationOwner="someone-else"
    )
    with pytest.raises(GitHubAppError) as err:
        await InstallationTokens().token(stranger, proxy=None, timeout=10)
    assert "not installed for organisation or user 'someone-else'" in str(err.value)
    assert "githubAppInstallationOwner" in str(err.value)


async def test_api_refusals_name_the_url_and_the_key_to_check(github_api: StandIn) -> None:
    wrong_key = stand_in_app(github_api, githubAppPrivateKey=KEY)
    with pytest.raises(GitHubAppError) as err:
        await InstallationTokens().token(wrong_key, proxy=None, timeout=10)
    assert f"GitHub API '{github_api.base_url}/app/installations/" in str(err.value)
    assert "rejected the app's JWT (HTTP 401" in str(err.value)
    assert "'githubAppPrivateKey'" in str(err.value)
    assert github_api.rejected == ["signature does not match the app's public key"]

    unknown = stand_in_app(github_api, githubAppInstallationID="1")
    with pytest.raises(GitHubAppError) as err:
        await InstallationTokens().token(unknown, proxy=None, timeout=10)
    assert "installation 1 of app" in str(err.value)
    assert "not found (HTTP 404): check 'githubAppInstallationID'" in str(err.value)


async def test_unreachable_api_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}/api/v3"
    app = app_from_secret(data(githubAppBaseURL=url.encode()), SECRET)
    with pytest.raises(GitHubAppError) as err:
        await InstallationTokens().token(app, proxy=None, timeout=10)
    assert f"cannot reach the GitHub API at '{url}': connection refused" in str(err.value)
