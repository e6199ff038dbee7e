"""A loopback OpenID Connect issuer: discovery document, JSON Web Key Set, and the
tokens it signs, for ``generic-oidc`` Receivers.

It speaks the documented protocol (``/.well-known/openid-configuration`` naming its
``issuer``, ``jwks_uri`` and signing algorithms; ``/jwks`` with its public keys) on
127.0.0.1, and :meth:`Issuer.token` signs compact JWTs with an RSA or an EC key of its
own, or with a key it does not publish, to play an impostor.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from tests.loopback import serve_on_loopback

__all__ = ["Issuer", "b64url", "oidc_issuer"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int, size: int | None = None) -> str:
    length = size or (value.bit_length() + 7) // 8
    return b64url(value.to_bytes(length, "big"))


@dataclass
class Issuer:
    """Where it listens, its keys, and how many discovery requests it answered."""

    url: str = ""
    rsa_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    ec_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    discoveries: int = 0

    def jwks(self) -> dict[str, Any]:
        rsa_numbers = self.rsa_key.public_key().public_numbers()
        ec_numbers = self.ec_key.public_key().public_numbers()
        return {
            "keys": [
                {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
                 "n": _int(rsa_numbers.n), "e": _int(rsa_numbers.e)},
                {"kty": "EC", "kid": "ec-1", "crv": "P-256", "use": "sig",
                 "x": _int(ec_numbers.x, 32), "y": _int(ec_numbers.y, 32)},
            ]
        }  # fmt: skip

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Claims of a token this issuer would hand a CI job, with ``overrides``."""
        now = int(time.time())
        return {
            "iss": self.url,
            "aud": "notification-controller",
            "sub": "repo:team/app:ref:refs/heads/main",
            "repository_owner": "team",
            "iat": now,
            "exp": now + 300,
            **overrides,
        }

    def token(self, claims: dict[str, Any], *, alg: str = "RS256", impostor: bool = False) -> str:
        """A compact JWT of ``claims``, signed with the published key for ``alg``
        (``RS256`` or ``ES256``), or with a fresh unpublished one when ``impostor``."""
        kid = "rsa-1" if alg == "RS256" else "ec-1"
        header = b64url(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
        payload = b64url(json.dumps(claims).encode())
        signed = f"{header}.{payload}".encode()
        if alg == "RS256":
            key = self.rsa_key
            if impostor:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
        else:
            ec_key = ec.generate_private_key(ec.SECP256R1()) if impostor else self.ec_key
            r, s = utils.decode_dss_signature(ec_key.sign(signed, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{header}.{payload}.{b64url(signature)}"

    async def _discovery(self, _: web.Request) -> web.Response:
        self.discoveries += 1
        return web.json_response(
            {
                "issuer": self.url,
                "jwks_uri": self.url + "/jwks",
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
            }
        )

    async def _keys(self, _: web.Request) -> web.Response:
        return web.json_response(self.jwks())


@asynccontextmanager
async def oidc_issuer() -> AsyncIterator[Issuer]:
    """An issuer listening on a free loopback port until the block ends."""
    issuer = Issuer()
    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", issuer._discovery)
    app.router.add_get("/jwks", issuer._keys)
    async with serve_on_loopback(app) as address:
        issuer.url = f"http://{address}"
        yield issuer
