"""Google's ID token keys are fetched as the environment says (``HTTPS_PROXY`` with its
credentials, ``NO_PROXY``) and kept exactly as long as Google's ``Cache-Control``
allows; a key set that is not one refuses the token, saying so; claims Google's
validator would not accept (a list ``aud``, a ``exp`` that is no number, an
``email_verified`` that is not ``true``, an ``ES256`` signature) refuse it too."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fluxd.notify.google_idtoken import GoogleKeys, TokenRefused, environment_proxy, verify
from tests.loopback import serve_on_loopback
from tests.oidc_issuer import b64url

GOOGLE = "https://www.googleapis.com/oauth2/v3/certs"
EMAIL = "sa@p.iam.gserviceaccount.com"
KEY = {"kty": "RSA", "kid": "k1", "n": "AQAB", "e": "AQAB"}


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_https_proxy_credentials_become_basic_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://egress:p%40ss@proxy.corp:3128")
    proxy, headers = environment_proxy(GOOGLE)
    assert proxy == "http://proxy.corp:3128", "the credentials are not in the address"
    expected = base64.b64encode(b"egress:p@ss").decode()
    assert headers == {"Proxy-Authorization": f"Basic {expected}"}


def test_a_bare_proxy_address_is_an_http_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "proxy.corp:3128")
    assert environment_proxy(GOOGLE) == ("http://proxy.corp:3128", {})


def test_no_proxy_exempts_google(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example,googleapis.com")
    assert environment_proxy(GOOGLE) == (None, {})
    assert environment_proxy("https://example.com/x") == ("http://proxy.corp:3128", {})


def test_no_proxy_variable_means_a_direct_connection() -> None:
    assert environment_proxy(GOOGLE) == (None, {})


@dataclass
class KeyServer:
    url: str = ""
    fetches: int = 0


@asynccontextmanager
async def key_server(body: bytes, cache_control: str | None) -> AsyncIterator[KeyServer]:
    """A key set at 127.0.0.1, counting how often it was fetched."""
    server = KeyServer()

    async def certs(request: web.Request) -> web.Response:
        server.fetches += 1
        headers = {"Cache-Control": cache_control} if cache_control else {}
        return web.Response(body=body, headers=headers, content_type="application/json")

    app = web.Application()
    app.router.add_get("/oauth2/v3/certs", certs)
    async with serve_on_loopback(app) as address:
        server.url = f"http://{address}/oauth2/v3/certs"
        yield server


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_keys_are_kept_for_the_cache_control_max_age() -> None:
    async with key_server(json.dumps({"keys": [KEY]}).encode(), "public, max-age=60") as server:
        clock = Clock()
        keys = GoogleKeys(url=server.url, clock=clock)
        assert await keys.keys() == [KEY]
        clock.now += 59
        assert await keys.keys() == [KEY]
        assert server.fetches == 1
        clock.now += 2
        assert await keys.keys() == [KEY]
        assert server.fetches == 2, "fetched again once max-age passed"


async def test_keys_without_max_age_are_fetched_every_time() -> None:
    async with key_server(json.dumps({"keys": [KEY]}).encode(), "no-store") as server:
        keys = GoogleKeys(url=server.url)
        await keys.keys()
        await keys.keys()
        assert server.fetches == 2


@pytest.mark.parametrize("body", [b"<html>", b"[]", b'{"keys": {}}'])
async def test_a_body_that_is_no_key_set_refuses_the_token(body: bytes) -> None:
    async with key_server(body, "max-age=3600") as server:
        with pytest.raises(TokenRefused, match="are not a JSON Web Key Set"):
            await GoogleKeys(url=server.url).keys()


async def test_an_unreachable_key_server_names_the_address() -> None:
    with pytest.raises(TokenRefused, match=r"unable to fetch Google's keys from http://127\.0"):
        await GoogleKeys(url="http://127.0.0.1:9/oauth2/v3/certs").keys()


def google_token(signer: rsa.RSAPrivateKey, claims: dict[str, object], alg: str = "RS256") -> str:
    header = b64url(json.dumps({"alg": alg, "kid": "k1"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signature = signer.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{b64url(signature)}"


@pytest.mark.parametrize(
    ("overrides", "alg", "reason"),
    [
        ({"aud": ["aud-1"]}, "RS256", "audience is ['aud-1'], want 'aud-1'"),
        ({"exp": "tomorrow"}, "RS256", "is not a whole number of seconds"),
        ({"email_verified": "true"}, "RS256", "is not verified"),
        ({}, "ES256", "unexpected signature algorithm 'ES256'"),
    ],
)
async def test_claims_google_would_not_accept_refuse_the_token(
    overrides: dict[str, object], alg: str, reason: str
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    jwk = {"kty": "RSA", "kid": "k1", "n": b64url(numbers.n.to_bytes(256, "big")), "e": "AQAB"}
    claims: dict[str, object] = {
        "iss": "accounts.google.com",
        "aud": "aud-1",
        "exp": int(time.time()) + 60,
        "email": EMAIL,
        "email_verified": True,
    }
    async with key_server(json.dumps({"keys": [jwk]}).encode(), "max-age=60") as server:
        keys = GoogleKeys(url=server.url)
        valid = google_token(key, claims)
        await verify(f"Bearer {valid}", email=EMAIL, audience="aud-1", keys=keys)
        token = google_token(key, claims | overrides, alg)
        with pytest.raises(TokenRefused, match=re.escape(reason)):
            await verify(f"Bearer {token}", email=EMAIL, audience="aud-1", keys=keys)
