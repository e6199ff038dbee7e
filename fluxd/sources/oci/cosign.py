"""Cosign signatures of an OCI artifact, checked against public keys (``verify.provider: cosign``).

Cosign (v2, without a transparency log, as Flux checks key-signed artifacts) stores the
signatures of manifest ``sha256:<hex>`` as an image tagged ``sha256-<hex>.sig`` in the same
repository. Each layer of type ``application/vnd.dev.cosign.simplesigning.v1+json`` is a
"simple signing" JSON payload whose ``critical.image.docker-manifest-digest`` names the
signed manifest; its annotation ``dev.cosignproject.cosign/signature`` is the base64
signature of the layer's bytes. A key verifies the artifact when one layer's signature
checks out with it and that layer names the artifact's digest. Cosign v3's bundles,
attached as OCI referrers, are not read: an artifact signed only that way has "no
signatures found", and the message names the tag that was looked for.

Keys are PEM public keys (every ``*.pub`` of the ``verify.secretRef`` Secret, as Flux
reads them): ECDSA (cosign's default P-256) and RSA PKCS#1 v1.5 over SHA-256, Ed25519 over
the payload itself. ``cryptography`` is imported only when an artifact is verified.
Failures raise :class:`~fluxd.sources.oci.errors.RegistryError` with Flux's
``VerificationError`` reason; the message says which key failed and why.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeAlias

from fluxd.sources.oci.client import RegistryClient
from fluxd.sources.oci.errors import RegistryError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    _Key: TypeAlias = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

__all__ = [
    "SIGNATURE_ANNOTATION",
    "SIMPLE_SIGNING_MEDIA_TYPE",
    "VERIFICATION_ERROR",
    "PublicKey",
    "public_keys",
    "signature_tag",
    "verify_signatures",
]

VERIFICATION_ERROR: Final = "VerificationError"
SIMPLE_SIGNING_MEDIA_TYPE: Final = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION: Final = "dev.cosignproject.cosign/signature"
#: A simple signing payload is a few hundred bytes; anything far bigger is not one.
_MAX_PAYLOAD_BYTES: Final = 1024 * 1024


@dataclass(frozen=True)
class PublicKey:
    """One ``*.pub`` entry of the verification Secret: its key name and PEM bytes."""

    name: str
    pem: bytes


@dataclass(frozen=True)
class _Signature:
    payload: bytes
    signature: bytes


def public_keys(data: Mapping[str, bytes], secret: str) -> list[PublicKey]:
    """Every ``*.pub`` key of Secret ``secret`` (``namespace/name``), by name; an error
    naming the Secret when it has none."""
    keys = [PublicKey(name, pem) for name, pem in sorted(data.items()) if name.endswith(".pub")]
    if not keys:
        found = ", ".join(f"'{name}'" for name in sorted(data)) or "no keys"
        raise RegistryError(
            f"secret '{secret}' of spec.verify.secretRef holds no public key: cosign keys"
            f" are read from keys ending in '.pub', the Secret has {found}",
            reason=VERIFICATION_ERROR,
        )
    return keys


def signature_tag(digest: str) -> str:
    """The tag cosign stores the signatures of manifest ``digest`` under."""
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}-{hex_digest}.sig"


async def verify_signatures(
    client: RegistryClient, digest: str, keys: list[PublicKey], *, reference: str
) -> str:
    """The name of the first key that verifies manifest ``digest`` of the client's
    repository (``reference`` names it in messages); RegistryError when none does."""
    signatures = await _signatures(client, digest, reference)
    failures: list[str] = []
    for key in keys:
        outcome = _verify_with(_Verifier(key), signatures, digest)
        if outcome is None:
            return key.name
        failures.append(f"key '{key.name}': {outcome}")
    raise RegistryError(
        f"no matching signatures were found for '{reference}': {'; '.join(failures)}",
        reason=VERIFICATION_ERROR,
    )


async def _signatures(client: RegistryClient, digest: str, reference: str) -> list[_Signature]:
    """The signed payloads of the signature image of ``digest``."""
    tag = signature_tag(digest)
    try:
        manifest = (await client.manifest(tag)).json()
    except RegistryError as error:
        if error.status == 404:
            raise RegistryError(
                f"no signatures found for '{reference}': the repository has no cosign"
                f" signature image '{tag}'",
                reason=VERIFICATION_ERROR,
            ) from error
        raise RegistryError(
            f"failed to fetch the signatures of '{reference}': {error}",
            reason=VERIFICATION_ERROR,
            status=error.status,
        ) from error
    found: list[_Signature] = []
    for layer in manifest.get("layers") or []:
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING_MEDIA_TYPE:
            continue
        encoded = (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION)
        if not isinstance(encoded, str):
            continue
        try:
            signature = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        try:
            payload = await client.blob(str(layer.get("digest")), limit=_MAX_PAYLOAD_BYTES)
        except RegistryError as error:
            raise RegistryError(
                f"failed to fetch a signature payload of '{reference}': {error}",
                reason=VERIFICATION_ERROR,
            ) from error
        found.append(_Signature(payload, signature))
    if not found:
        raise RegistryError(
            f"no signatures found for '{reference}': the signature image '{tag}' has no"
            f" '{SIMPLE_SIGNING_MEDIA_TYPE}' layer with a '{SIGNATURE_ANNOTATION}' annotation",
            reason=VERIFICATION_ERROR,
        )
    return found


class _Verifier:
    """Checks a signature of a payload with one public key, as cosign's verifier for its
    key type (SHA-256 for ECDSA and RSA)."""

    def __init__(self, key: PublicKey) -> None:
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        try:
            loaded = load_pem_public_key(key.pem)
        except (ValueError, UnsupportedAlgorithm) as error:
            raise RegistryError(
                f"key '{key.name}' of spec.verify.secretRef is not a PEM public key: {error}",
                reason=VERIFICATION_ERROR,
            ) from error
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        if not isinstance(
            loaded, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
        ):
            raise RegistryError(
                f"key '{key.name}' of spec.verify.secretRef is a {type(loaded).__name__}:"
                " cosign keys are ECDSA, RSA or Ed25519",
                reason=VERIFICATION_ERROR,
            )
        self._key: _Key = loaded

    def valid(self, signature: bytes, payload: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

        key = self._key
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
            elif isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
            else:
                key.verify(signature, payload)
        except InvalidSignature:
            return False
        return True


def _verify_with(verifier: _Verifier, signatures: list[_Signature], digest: str) -> str | None:
    """None when a signature verifies and names ``digest``; else why none did."""
    signed_other: str | None = None
    for found in signatures:
        if not verifier.valid(found.signature, found.payload):
            continue
        named = _signed_digest(found.payload)
        if named == digest:
            return None
        signed_other = named or "no digest"
    if signed_other is not None:
        return (
            f"the signature is valid but its payload names '{signed_other}', not the"
            f" artifact digest '{digest}'"
        )
    return "invalid signature (the artifact was not signed with this key)"


def _signed_digest(payload: bytes) -> str | None:
    """``critical.image.docker-manifest-digest`` of a simple signing payload."""
    try:
        document = json.loads(payload)
        named = document["critical"]["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError):
        return None
    return named if isinstance(named, str) else None
