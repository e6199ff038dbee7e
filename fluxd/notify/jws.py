"""JSON Web Signatures checked against a JSON Web Key Set, for OIDC bearer tokens.

A ``generic-oidc`` Receiver trusts a token only once its signature verifies with one of
the issuer's published keys (RFC 7515 compact form, RFC 7517 keys, RFC 7518
algorithms). The algorithms are those an OIDC verifier accepts (``RS*``, ``PS*``,
``ES*``, ``EdDSA``; never ``none`` or the shared-secret ``HS*``), and a key is tried
only when its type and curve fit the algorithm and, if the token names a ``kid``, its
``kid`` is that one. ``cryptography`` is imported on first use: only a daemon that
serves such a Receiver needs it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import hashes

__all__ = ["SIGNING_ALGORITHMS", "InvalidSignature", "b64url_decode", "verify"]

SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: The curve each ECDSA algorithm signs on, and the byte length of its r and s.
_EC_CURVES = {"ES256": ("P-256", 32), "ES384": ("P-384", 48), "ES512": ("P-521", 66)}


class InvalidSignature(ValueError):
    """The token is not a compact JWS signed by one of the keys; the message says why."""


def b64url_decode(part: str) -> bytes:
    """Unpadded base64url, as JWS encodes every part; padding or other characters fail."""
    if "=" in part:
        raise InvalidSignature("illegal base64 data: padding in a JWS part")
    try:
        return base64.b64decode(part + "=" * (-len(part) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidSignature(f"illegal base64 data: {error}") from error


def _integer(key: Mapping[str, Any], name: str) -> int:
    value = key.get(name)
    if not isinstance(value, str):
        raise InvalidSignature(f"key member {name!r} is missing")
    return int.from_bytes(b64url_decode(value), "big")


def _hash(algorithm: str) -> hashes.HashAlgorithm:
    from cryptography.hazmat.primitives import hashes

    sizes: dict[str, type[hashes.HashAlgorithm]] = {
        "256": hashes.SHA256,
        "384": hashes.SHA384,
        "512": hashes.SHA512,
    }
    return sizes[algorithm[2:]]()


def _verify_with(key: Mapping[str, Any], algorithm: str, signed: bytes, signature: bytes) -> bool:
    """Whether ``signature`` over ``signed`` verifies with ``key``; False when the key does
    not fit the algorithm."""
    # Imported here: only a daemon serving a generic-oidc Receiver verifies signatures.
    from cryptography.exceptions import InvalidSignature as BadSignature
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

    kty = key.get("kty")
    try:
        if algorithm[:2] in ("RS", "PS") and kty == "RSA":
            public = rsa.RSAPublicNumbers(_integer(key, "e"), _integer(key, "n")).public_key()
            digest = _hash(algorithm)
            scheme: padding.AsymmetricPadding = padding.PKCS1v15()
            if algorithm.startswith("PS"):
                scheme = padding.PSS(mgf=padding.MGF1(digest), salt_length=padding.PSS.AUTO)
            public.verify(signature, signed, scheme, digest)
            return True
        if algorithm in _EC_CURVES and kty == "EC":
            curve, size = _EC_CURVES[algorithm]
            if key.get("crv") != curve or len(signature) != 2 * size:
                return False
            curves: dict[str, type[ec.EllipticCurve]] = {
                "P-256": ec.SECP256R1,
                "P-384": ec.SECP384R1,
                "P-521": ec.SECP521R1,
            }
            numbers = ec.EllipticCurvePublicNumbers(
                _integer(key, "x"), _integer(key, "y"), curves[curve]()
            )
            der = utils.encode_dss_signature(
                int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            )
            numbers.public_key().verify(der, signed, ec.ECDSA(_hash(algorithm)))
            return True
        if algorithm == "EdDSA" and kty == "OKP" and key.get("crv") == "Ed25519":
            raw = b64url_decode(str(key.get("x", "")))
            ed25519.Ed25519PublicKey.from_public_bytes(raw).verify(signature, signed)
            return True
    except (BadSignature, InvalidSignature, ValueError):
        return False
    return False


def verify(token: str, keys: Iterable[Mapping[str, Any]], algorithms: Iterable[str]) -> bytes:
    """The payload of the compact JWS ``token`` once one of ``keys`` verifies it with an
    algorithm of ``algorithms``; :class:`InvalidSignature` otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidSignature("compact JWS format must have three parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
    except json.JSONDecodeError as error:
        raise InvalidSignature(f"the JWS header is not JSON: {error}") from error
    if not isinstance(header, dict):
        raise InvalidSignature("the JWS header is not a JSON object")
    algorithm = header.get("alg")
    allowed = sorted(set(algorithms) & SIGNING_ALGORITHMS)
    if algorithm not in allowed:
        raise InvalidSignature(f"unexpected signature algorithm {algorithm!r}; expected {allowed}")
    if "crit" in header:
        raise InvalidSignature("unsupported critical JWS header parameters")
    key_id = header.get("kid") or ""
    payload = b64url_decode(parts[1])
    signature = b64url_decode(parts[2])
    signed = f"{parts[0]}.{parts[1]}".encode()
    for key in keys:
        if key_id and key.get("kid") != key_id:
            continue
        if _verify_with(key, str(algorithm), signed, signature):
            return payload
    raise InvalidSignature("failed to verify id token signature")
