"""The registry Receiver types refuse what Flux refuses and accept what it accepts:
``harbor``'s token, ``nexus``'s HMAC-SHA1, and the push payloads of ``quay``,
``dockerhub``, ``acr`` and ``nexus`` decoded as Go's ``encoding/json`` decodes them,
and ``generic-oidc`` bearer tokens checked against a loopback OIDC issuer."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from fluxd.api import RECEIVER, ReceiverSpec
from fluxd.notify import SUPPORTED_RECEIVER_TYPES
from fluxd.notify.oidc import TokenRefused, invalid_expressions, verify_bearer
from fluxd.notify.payloads import QUAY, PayloadError, decode
from fluxd.notify.receivers import Rejected, authenticate
from tests.oidc_issuer import b64url, oidc_issuer

TOKEN = "registry-t0ken"
QUAY_PUSH = b'{"docker_url": "quay.io/team/app", "updated_tags": ["v1.2.3"], "name": "app"}'
DOCKERHUB_PUSH = (
    b'{"push_data": {"tag": "v1", "pusher": "me"},'
    b' "repository": {"repo_url": "https://hub.docker.com/r/team/app"}}'
)
ACR_PUSH = b'{"id": "1", "action": "push", "target": {"repository": "app", "tag": "v2"}}'
NEXUS_PUSH = b'{"action": "CREATED", "repositoryName": "docker-hosted"}'


def receiver(type_: str) -> ReceiverSpec:
    return RECEIVER.parse_spec(
        {
            "spec": {
                "type": type_,
                "secretRef": {"name": "s"},
                "resources": [{"kind": "OCIRepository", "name": "app"}],
            }
        }
    )


def rejection(type_: str, headers: dict[str, str], body: bytes) -> Rejected:
    with pytest.raises(Rejected) as refused:
        authenticate(receiver(type_), headers, body, TOKEN)
    return refused.value


def nexus_signature(body: bytes, key: str = TOKEN) -> str:
    return hmac.new(key.encode(), body, hashlib.sha1).hexdigest()


def test_the_registry_types_are_served() -> None:
    assert {"harbor", "nexus", "quay", "dockerhub", "acr"} <= SUPPORTED_RECEIVER_TYPES
    assert "generic-oidc" in SUPPORTED_RECEIVER_TYPES
    assert "cdevents" in SUPPORTED_RECEIVER_TYPES
    assert "gcr" in SUPPORTED_RECEIVER_TYPES


def test_harbor_needs_the_token_verbatim_in_authorization() -> None:
    assert authenticate(receiver("harbor"), {"Authorization": TOKEN}, b"", TOKEN) == ""
    for wrong in ({}, {"Authorization": f"Bearer {TOKEN}"}, {"Authorization": TOKEN + "x"}):
        refused = rejection("harbor", wrong, b"{}")
        assert refused.status == 401
        assert "Harbor Authorization header" in str(refused)


def test_nexus_checks_the_hmac_sha1_of_the_body_then_the_payload() -> None:
    headers = {"X-Nexus-Webhook-Signature": nexus_signature(NEXUS_PUSH)}
    event = authenticate(receiver("nexus"), headers, NEXUS_PUSH, TOKEN)
    assert "repositoryName=docker-hosted" in event
    missing = rejection("nexus", {}, NEXUS_PUSH)
    assert (missing.status, str(missing)) == (401, "the Nexus signature is missing from header")
    other_key = {"X-Nexus-Webhook-Signature": nexus_signature(NEXUS_PUSH, "other")}
    assert rejection("nexus", other_key, NEXUS_PUSH).status == 401
    upper = {"X-Nexus-Webhook-Signature": nexus_signature(NEXUS_PUSH).upper()}
    assert rejection("nexus", upper, NEXUS_PUSH).status == 401, "compared byte for byte"
    tampered = NEXUS_PUSH.replace(b"CREATED", b"DELETED")
    assert rejection("nexus", headers, tampered).status == 401


def test_nexus_signed_but_undecodable_body_is_a_bad_request() -> None:
    for body in (b"not json", NEXUS_PUSH + b" trailing", b'{"action": 1}'):
        refused = rejection("nexus", {"X-Nexus-Webhook-Signature": nexus_signature(body)}, body)
        assert refused.status == 400
        assert "cannot decode Nexus webhook payload" in str(refused)


@pytest.mark.parametrize(
    ("type_", "body", "named"),
    [
        ("quay", QUAY_PUSH, "docker_url=quay.io/team/app"),
        ("dockerhub", DOCKERHUB_PUSH, "push_data.tag=v1"),
        ("acr", ACR_PUSH, "target.repository=app"),
    ],
)
def test_registry_push_payloads_are_accepted(type_: str, body: bytes, named: str) -> None:
    assert named in authenticate(receiver(type_), {}, body, TOKEN)


@pytest.mark.parametrize(
    ("type_", "body", "registry"),
    [
        ("quay", b"", "Quay"),
        ("quay", b'{"updated_tags": "v1"}', "Quay"),
        ("quay", b'{"updated_tags": [1]}', "Quay"),
        ("dockerhub", b"[]", "DockerHub"),
        ("dockerhub", b'{"push_data": "v1"}', "DockerHub"),
        ("dockerhub", b'{"repository": {"repo_url": 7}}', "DockerHub"),
        ("acr", b"{", "ACR"),
        ("acr", b'{"target": {"tag": false}}', "ACR"),
        ("acr", b'{"action": NaN}', "ACR"),
    ],
)
def test_registry_payloads_that_do_not_decode_are_bad_requests(
    type_: str, body: bytes, registry: str
) -> None:
    refused = rejection(type_, {}, body)
    assert refused.status == 400
    assert f"cannot decode {registry} webhook payload" in str(refused)


def test_payloads_decode_as_go_does() -> None:
    assert decode(b"null", QUAY, whole=False) == {}, "null decodes into a struct"
    assert decode(b'{"unrelated": [1, {"x": null}]}', QUAY, whole=True) == {}
    assert decode(b'{"DOCKER_URL": "quay.io/a"}', QUAY, whole=True) == {
        "docker_url": "quay.io/a"
    }, "keys match fields whatever their case"
    assert decode(b'{"docker_url": null, "updated_tags": null}', QUAY, whole=True) == {}
    assert decode(b'{"docker_url": "a"} {"next": 1}', QUAY, whole=False) == {"docker_url": "a"}
    with pytest.raises(PayloadError):
        decode(b'{"docker_url": "a"} {"next": 1}', QUAY, whole=True)
    with pytest.raises(PayloadError):
        decode(b"[" * 5000 + b"]" * 5000, QUAY, whole=True)
    with pytest.raises(PayloadError):
        decode(b"   ", QUAY, whole=False)


def oidc_receiver(issuer: str, *, audience: str | None = None) -> ReceiverSpec:
    provider: dict[str, object] = {
        "issuerURL": issuer,
        "validations": [
            {"expression": "claims.repository_owner == 'team'", "message": "owner must be team"},
            {"expression": "claims.sub.startsWith('repo:team/')", "message": "team repos only"},
        ],
    }
    if audience is not None:
        provider["audience"] = audience
    return RECEIVER.parse_spec(
        {
            "spec": {
                "type": "generic-oidc",
                "oidcProviders": [provider],
                "resources": [{"kind": "OCIRepository", "name": "app"}],
            }
        }
    )


async def refused_bearer(spec: ReceiverSpec, authorization: str) -> str:
    with pytest.raises(TokenRefused) as refused:
        await verify_bearer(spec.oidc_providers, authorization)
    return str(refused.value)


async def test_oidc_tokens_signed_by_the_issuer_are_verified() -> None:
    async with oidc_issuer() as issuer:
        spec = oidc_receiver(issuer.url)
        for alg in ("RS256", "ES256"):
            token = issuer.token(issuer.claims(), alg=alg)
            claims = await verify_bearer(spec.oidc_providers, f"Bearer {token}")
            assert claims["repository_owner"] == "team"
        soon = issuer.claims(nbf=int(time.time()) + 120)
        assert await verify_bearer(spec.oidc_providers, f"Bearer {issuer.token(soon)}")
        listed = issuer.claims(aud=["other", "notification-controller"])
        assert await verify_bearer(spec.oidc_providers, f"Bearer {issuer.token(listed)}")
        assert issuer.discoveries == 4, "discovery is read for every request, as Flux does"


async def test_oidc_tokens_that_flux_refuses_are_refused() -> None:
    async with oidc_issuer() as issuer:
        spec = oidc_receiver(issuer.url)
        good = issuer.claims()
        cases = {
            "": "missing or malformed",
            f"bearer {issuer.token(good)}": "missing or malformed",
            "Bearer   ": "missing a bearer token",
            "Bearer not-a-jwt": "token is not a JWT",
            f"Bearer {issuer.token(issuer.claims(iss='https://elsewhere.example'))}": (
                "no oidcProvider configured for issuer 'https://elsewhere.example'"
            ),
            f"Bearer {issuer.token(good, impostor=True)}": "failed to verify OIDC token",
            f"Bearer {issuer.token(good, alg='ES256', impostor=True)}": "failed to verify",
            f"Bearer {issuer.token(issuer.claims(aud='someone-else'))}": "expected audience",
            f"Bearer {issuer.token(issuer.claims(exp=int(time.time()) - 5))}": "expired",
            f"Bearer {issuer.token({k: v for k, v in good.items() if k != 'exp'})}": "expired",
            f"Bearer {issuer.token(issuer.claims(nbf=int(time.time()) + 600))}": "nbf",
            f"Bearer {issuer.token(issuer.claims(repository_owner='intruder'))}": (
                "token validation failed: owner must be team"
            ),
            f"Bearer {issuer.token(issuer.claims(sub='x', repository_owner='y'))}": (
                "owner must be team; team repos only"
            ),
        }
        for authorization, reason in cases.items():
            assert reason in await refused_bearer(spec, authorization), authorization
        header, payload, _ = issuer.token(good).split(".")
        unsigned = b64url(json.dumps({"alg": "none"}).encode())
        assert "algorithm 'none'" in await refused_bearer(spec, f"Bearer {unsigned}.{payload}.")
        shared = b64url(json.dumps({"alg": "HS256"}).encode())
        mac = b64url(hmac.new(b"k", f"{shared}.{payload}".encode(), hashlib.sha256).digest())
        assert "algorithm 'HS256'" in await refused_bearer(spec, f"Bearer {shared}.{payload}.{mac}")
        assert "failed to verify" in await refused_bearer(
            spec, f"Bearer {header}.{b64url(json.dumps(good | {'sub': 'repo:team/x'}).encode())}."
        )


async def test_oidc_audience_and_issuer_discovery_must_match() -> None:
    async with oidc_issuer() as issuer:
        custom = oidc_receiver(issuer.url, audience="fluxd-hooks")
        token = issuer.token(issuer.claims(aud="fluxd-hooks"))
        assert await verify_bearer(custom.oidc_providers, f"Bearer {token}")
        default_audience = issuer.token(issuer.claims())
        assert "expected audience 'fluxd-hooks'" in await refused_bearer(
            custom, f"Bearer {default_audience}"
        )
        slashed = oidc_receiver(issuer.url + "/")
        token = issuer.token(issuer.claims(iss=issuer.url + "/"))
        assert "issuer did not match" in await refused_bearer(slashed, f"Bearer {token}")
    gone = oidc_receiver(issuer.url)
    token = issuer.token(issuer.claims())
    assert "unable to read OIDC discovery" in await refused_bearer(gone, f"Bearer {token}")


def test_oidc_validations_that_do_not_compile_are_named() -> None:
    spec = RECEIVER.parse_spec(
        {
            "spec": {
                "type": "generic-oidc",
                "oidcProviders": [
                    {
                        "issuerURL": "https://token.example",
                        "validations": [{"expression": "claims.(", "message": "broken"}],
                    }
                ],
                "resources": [{"kind": "OCIRepository", "name": "app"}],
            }
        }
    )
    (problem,) = invalid_expressions(spec)
    assert problem.startswith("oidcProviders[0] (issuerURL='https://token.example')")
    assert "validation 'broken'" in problem
    assert invalid_expressions(oidc_receiver("https://token.example")) == []
