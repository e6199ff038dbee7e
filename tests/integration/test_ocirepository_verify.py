"""OCIRepository ``spec.verify`` with cosign public keys, against the suite's docker-registry.

There is no cosign binary here, so each test signs as cosign does: the "simple signing"
JSON payload naming the artifact's manifest digest, signed with a key made here
(``cryptography``), stored as the layer of an image tagged ``sha256-<hex>.sig`` beside
the artifact, its signature in the layer's ``dev.cosignproject.cosign/signature``
annotation. What a user sees: a signed artifact is ``SourceVerified`` and applied; a
wrong key, a missing signature, a signature of another artifact or a Secret without
keys is ``Ready=False`` with ``VerificationError`` naming the failure, and the last
verified artifact stays served; keyless and notation verification stall by name.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from fluxd.api import KUSTOMIZATION, OCI_REPOSITORY
from fluxd.runtime import conditions
from fluxd.sources import oci
from tests.integration.conftest import Fluxd
from tests.integration.kustomizations import CONFIGMAPS, configmap, live
from tests.ociregistry import OCIRegistry

pytestmark = pytest.mark.integration

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def new_p256_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: SigningKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(key: SigningKey, payload: bytes) -> bytes:
    """A signature as cosign makes it with this kind of key."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(payload, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(payload)


def simple_signing_payload(repository: str, digest: str) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": repository},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()


async def push_signature(
    registry: OCIRegistry, url: str, digest: str, key: SigningKey, *, signed_digest: str = ""
) -> str:
    """Store cosign's signature image of ``digest``, whose payload names ``signed_digest``
    (the digest itself unless a test forges another); the signature manifest's digest."""
    repository = oci.parse_url(url, insecure=registry.insecure)
    payload = simple_signing_payload(str(repository), signed_digest or digest)
    config = json.dumps({"architecture": "", "os": "", "rootfs": {"type": "layers"}}).encode()
    async with oci.RegistryClient(repository, registry.auth, push=True) as client:
        config_digest = await client.push_blob(config)
        payload_digest = await client.push_blob(payload)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": oci.SIMPLE_SIGNING_MEDIA_TYPE,
                    "digest": payload_digest,
                    "size": len(payload),
                    "annotations": {
                        oci.SIGNATURE_ANNOTATION: base64.b64encode(sign(key, payload)).decode()
                    },
                }
            ],
        }
        return await client.push_manifest(
            oci.signature_tag(digest),
            json.dumps(manifest).encode(),
            "application/vnd.oci.image.manifest.v1+json",
        )


async def delete_manifest(registry: OCIRegistry, url: str, digest: str) -> None:
    repository = oci.parse_url(url, insecure=registry.insecure)
    target = f"{repository.base_url}/{repository.name}/manifests/{digest}"
    async with aiohttp.ClientSession() as session, session.delete(target) as response:
        assert response.status == 202, f"DELETE {target}: {response.status}"


async def push(registry: OCIRegistry, url: str, files: dict[str, str]) -> str:
    reference = oci.parse_reference(f"{url}:latest", insecure=registry.insecure)
    pushed = await oci.push_files(
        reference,
        {path: text.encode() for path, text in files.items()},
        source="https://github.com/example/app",
        revision="main@sha1:1",
        auth=registry.auth,
    )
    return pushed.digest


def verified_spec(registry: OCIRegistry, url: str, secret: str = "cosign-keys") -> dict[str, Any]:
    return {
        "interval": "1h",
        "url": url,
        "insecure": registry.insecure,
        "verify": {"provider": "cosign", "secretRef": {"name": secret}},
    }


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    found = conditions.get(obj.get("status") or {}, type_)
    assert found is not None, f"no {type_} condition in {obj.get('status')}"
    return found


async def reconcile_now(fluxd: Fluxd, name: str) -> dict[str, Any]:
    stamp = datetime.now(UTC).isoformat()
    await fluxd.patch(
        OCI_REPOSITORY,
        name,
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}},
    )
    return await fluxd.wait_for(
        OCI_REPOSITORY,
        name,
        lambda o: (o.get("status") or {}).get("lastHandledReconcileAt") == stamp,
        f"the reconcile requested at {stamp}",
    )


async def test_signed_artifact_is_verified_applied_and_an_unsigned_push_is_refused(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    url = oci_registry.fresh_url("signed")
    ns = fluxd.namespace
    key = new_p256_key()
    digest = await push(oci_registry, url, {"deploy/app.yaml": configmap(ns, "app", "1")})
    signature = await push_signature(oci_registry, url, digest, key)
    # Every *.pub key is tried: a stranger's key sorts first, other keys are not keys.
    await fluxd.secret(
        "cosign-keys",
        {
            "a-stranger.pub": public_pem(new_p256_key()),
            "cosign.pub": public_pem(key),
            "README": "not a key",
        },
    )
    await fluxd.create(OCI_REPOSITORY, "signed", verified_spec(oci_registry, url))
    obj = await fluxd.wait_ready(OCI_REPOSITORY, "signed")
    verified = condition(obj, "SourceVerified")
    assert verified["status"] == "True"
    assert verified["reason"] == "Succeeded"
    assert verified["message"] == f"verified signature of revision latest@{digest}"
    assert obj["status"]["artifact"]["revision"] == f"latest@{digest}"

    await fluxd.create(
        KUSTOMIZATION,
        "app",
        {
            "interval": "1h",
            "sourceRef": {"kind": "OCIRepository", "name": "signed"},
            "path": "./deploy",
            "prune": True,
        },
    )
    await fluxd.wait_ready(KUSTOMIZATION, "app")
    applied = await live(fluxd, CONFIGMAPS, "app")
    assert applied is not None
    assert applied["data"]["value"] == "1"

    # A verified digest is not verified again: with its signature gone, it still serves.
    await delete_manifest(oci_registry, url, signature)
    again = await reconcile_now(fluxd, "signed")
    assert condition(again, "Ready")["status"] == "True"
    assert condition(again, "SourceVerified")["status"] == "True"

    unsigned = await push(oci_registry, url, {"deploy/app.yaml": configmap(ns, "app", "2")})
    refused = await reconcile_now(fluxd, "signed")
    ready = condition(refused, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "VerificationError")
    assert ready["message"].startswith("failed to verify the signature using provider 'cosign'")
    assert f"no signatures found for '{url.removeprefix('oci://')}@{unsigned}'" in ready["message"]
    failed = condition(refused, "SourceVerified")
    assert (failed["status"], failed["reason"]) == ("False", "VerificationError")
    assert refused["status"]["artifact"]["revision"] == f"latest@{digest}", "old artifact kept"
    still = await live(fluxd, CONFIGMAPS, "app")
    assert still is not None
    assert still["data"]["value"] == "1", "nothing unverified applied"

    await push_signature(oci_registry, url, unsigned, key)
    await reconcile_now(fluxd, "signed")
    obj = await fluxd.wait_ready(OCI_REPOSITORY, "signed")
    assert obj["status"]["artifact"]["revision"] == f"latest@{unsigned}"
    assert condition(obj, "SourceVerified")["status"] == "True"


async def test_rsa_and_ed25519_keys_verify(fluxd: Fluxd, oci_registry: OCIRegistry) -> None:
    keys: dict[str, SigningKey] = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    for name, key in keys.items():
        url = oci_registry.fresh_url(name)
        digest = await push(oci_registry, url, {"a.yaml": "a: 1\n"})
        await push_signature(oci_registry, url, digest, key)
        await fluxd.secret(f"{name}-keys", {"cosign.pub": public_pem(key)})
        await fluxd.create(OCI_REPOSITORY, name, verified_spec(oci_registry, url, f"{name}-keys"))
    for name in keys:
        obj = await fluxd.wait_ready(OCI_REPOSITORY, name)
        assert condition(obj, "SourceVerified")["status"] == "True"


async def test_wrong_key_and_a_signature_of_another_artifact_fail_by_name(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    key = new_p256_key()
    await fluxd.secret("cosign-keys", {"cosign.pub": public_pem(key)})

    wrong_url = oci_registry.fresh_url("wrong-key")
    digest = await push(oci_registry, wrong_url, {"a.yaml": "a: 1\n"})
    await push_signature(oci_registry, wrong_url, digest, new_p256_key())
    await fluxd.create(OCI_REPOSITORY, "wrong-key", verified_spec(oci_registry, wrong_url))

    replay_url = oci_registry.fresh_url("replayed")
    replayed = await push(oci_registry, replay_url, {"b.yaml": "b: 1\n"})
    other = f"sha256:{'0' * 64}"
    await push_signature(oci_registry, replay_url, replayed, key, signed_digest=other)
    await fluxd.create(OCI_REPOSITORY, "replayed", verified_spec(oci_registry, replay_url))

    obj = await fluxd.wait_not_ready(OCI_REPOSITORY, "wrong-key", "VerificationError")
    message = condition(obj, "Ready")["message"]
    assert "no matching signatures were found for" in message
    assert "key 'cosign.pub': invalid signature" in message
    assert condition(obj, "SourceVerified")["status"] == "False"
    assert "artifact" not in obj["status"], "nothing stored"

    obj = await fluxd.wait_not_ready(OCI_REPOSITORY, "replayed", "VerificationError")
    message = condition(obj, "Ready")["message"]
    assert f"its payload names '{other}', not the artifact digest '{replayed}'" in message
    assert "artifact" not in obj["status"]


async def test_verification_secrets_without_keys_are_named(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    url = oci_registry.fresh_url("keyless-secret")
    digest = await push(oci_registry, url, {"a.yaml": "a: 1\n"})
    await push_signature(oci_registry, url, digest, new_p256_key())
    await fluxd.secret("no-pub", {"cosign.key": "private", "notes": "x"})
    await fluxd.secret("bad-pem", {"cosign.pub": "not a PEM key"})
    await fluxd.create(OCI_REPOSITORY, "no-pub", verified_spec(oci_registry, url, "no-pub"))
    await fluxd.create(OCI_REPOSITORY, "bad-pem", verified_spec(oci_registry, url, "bad-pem"))
    await fluxd.create(OCI_REPOSITORY, "missing", verified_spec(oci_registry, url, "ghost"))

    obj = await fluxd.wait_not_ready(OCI_REPOSITORY, "no-pub", "VerificationError")
    message = condition(obj, "Ready")["message"]
    assert f"secret '{fluxd.namespace}/no-pub' of spec.verify.secretRef holds no public key" in (
        message
    )
    assert "'.pub'" in message
    obj = await fluxd.wait_not_ready(OCI_REPOSITORY, "bad-pem", "VerificationError")
    assert (
        "key 'cosign.pub' of spec.verify.secretRef is not a PEM public key"
        in (condition(obj, "Ready")["message"])
    )
    obj = await fluxd.wait_not_ready(OCI_REPOSITORY, "missing", "VerificationError")
    message = condition(obj, "Ready")["message"]
    assert "ghost" in message
    assert "spec.verify.secretRef" in message


async def test_keyless_and_notation_verification_stall_by_name(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    url = oci_registry.fresh_url("unserved")
    refused = {
        "keyless": ({"provider": "cosign"}, "keyless cosign verification"),
        "identity": (
            {
                "provider": "cosign",
                "secretRef": {"name": "cosign-keys"},
                "matchOIDCIdentity": [{"issuer": ".*", "subject": ".*"}],
            },
            "spec.verify.matchOIDCIdentity (keyless cosign verification)",
        ),
        "notation": (
            {"provider": "notation", "secretRef": {"name": "trust"}},
            "notation",
        ),
    }
    for name, (verify, _) in refused.items():
        await fluxd.create(
            OCI_REPOSITORY,
            name,
            {"interval": "1h", "url": url, "insecure": True, "verify": verify},
        )
    for name, (_, text) in refused.items():
        obj = await fluxd.wait_not_ready(OCI_REPOSITORY, name, "UnsupportedField")
        assert text in condition(obj, "Stalled")["message"]
