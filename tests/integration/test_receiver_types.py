"""The registry Receiver types end to end: a real control plane, the daemon, and
webhook requests at each Receiver's ``status.webhookPath`` on the artifact port.

What a user sees: ``harbor``, ``nexus``, ``quay``, ``dockerhub`` and ``acr`` Receivers
become Ready; a wrong token or signature answers 401 and a payload the registry would
never send answers 400, with nothing annotated; a valid request sets
``reconcile.fluxcd.io/requestedAt`` on the target. A ``generic-oidc`` Receiver accepts
only tokens its (loopback) issuer signed for its audience that meet its validations.
An expression that does not compile (a validation's or a variable's) stalls with
``InvalidCELExpression``, and the daemon goes on serving the others (``gcr`` is
exercised in ``test_receiver_gcr.py``).
"""

from __future__ import annotations

import hashlib
import hmac

import aiohttp
import pytest

from fluxd.api import GIT_REPOSITORY, RECEIVER
from fluxd.runtime import conditions
from tests.integration.conftest import Fluxd
from tests.oidc_issuer import oidc_issuer

pytestmark = pytest.mark.integration

TOKEN = "registry-t0ken"
UNREACHABLE_GIT = "http://127.0.0.1:9/never-answers.git"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
NEXUS_PUSH = b'{"action": "CREATED", "repositoryName": "docker-hosted"}'
VALID: dict[str, tuple[dict[str, str], bytes]] = {
    "harbor": ({"Authorization": TOKEN}, b'{"type": "PUSH_ARTIFACT"}'),
    "nexus": (
        {"X-Nexus-Webhook-Signature": hmac.new(TOKEN.encode(), NEXUS_PUSH, "sha1").hexdigest()},
        NEXUS_PUSH,
    ),
    "quay": ({}, b'{"docker_url": "quay.io/team/app", "updated_tags": ["v1"]}'),
    "dockerhub": ({}, b'{"push_data": {"tag": "v1"}, "repository": {"repo_url": "x"}}'),
    "acr": ({}, b'{"action": "push", "target": {"repository": "app", "tag": "v1"}}'),
}
INVALID: list[tuple[str, dict[str, str], bytes, int]] = [
    ("harbor", {"Authorization": "Bearer " + TOKEN}, b"{}", 401),
    ("harbor", {}, b"{}", 401),
    ("nexus", {}, NEXUS_PUSH, 401),
    ("nexus", {"X-Nexus-Webhook-Signature": "0" * 40}, NEXUS_PUSH, 401),
    (
        "nexus",
        {"X-Nexus-Webhook-Signature": hmac.new(TOKEN.encode(), b"[1]", "sha1").hexdigest()},
        b"[1]",
        400,
    ),
    ("quay", {}, b'{"updated_tags": "v1"}', 400),
    ("dockerhub", {}, b"not json", 400),
    ("acr", {}, b'{"target": []}', 400),
]


async def post(fluxd: Fluxd, path: str, headers: dict[str, str], body: bytes) -> int:
    host, port = fluxd.daemon.addresses["artifacts"]
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://{host}:{port}{path}", data=body, headers=headers) as response,
    ):
        return response.status


async def requested_at(fluxd: Fluxd) -> str | None:
    target = await fluxd.get(GIT_REPOSITORY, "target")
    annotations: dict[str, str] = target["metadata"].get("annotations") or {}
    return annotations.get(REQUESTED_AT)


async def test_registry_receivers_trigger_only_on_valid_requests(fluxd: Fluxd) -> None:
    await fluxd.secret("registry-token", {"token": TOKEN})
    await fluxd.create(GIT_REPOSITORY, "target", {"interval": "1h", "url": UNREACHABLE_GIT})
    paths = {}
    for receiver_type in VALID:
        await fluxd.create(
            RECEIVER,
            receiver_type,
            {
                "type": receiver_type,
                "secretRef": {"name": "registry-token"},
                "resources": [{"kind": "GitRepository", "name": "target"}],
            },
        )
    for receiver_type in VALID:
        obj = await fluxd.wait_ready(RECEIVER, receiver_type)
        digest = hashlib.sha256((TOKEN + receiver_type + fluxd.namespace).encode()).hexdigest()
        paths[receiver_type] = obj["status"]["webhookPath"]
        assert paths[receiver_type] == f"/hook/{digest}"

    for receiver_type, headers, body, status in INVALID:
        answered = await post(fluxd, paths[receiver_type], headers, body)
        assert answered == status, f"{receiver_type} {headers} {body!r}"
    assert await requested_at(fluxd) is None, "a rejected request triggers nothing"

    seen: set[str] = set()
    for receiver_type, (headers, body) in VALID.items():
        assert await post(fluxd, paths[receiver_type], headers, body) == 200, receiver_type
        stamp = await requested_at(fluxd)
        assert stamp is not None
        assert stamp not in seen, f"{receiver_type} requested a fresh reconcile"
        seen.add(stamp)


async def test_generic_oidc_receiver_trusts_only_the_issuers_tokens(fluxd: Fluxd) -> None:
    async with oidc_issuer() as issuer:
        await fluxd.create(GIT_REPOSITORY, "target", {"interval": "1h", "url": UNREACHABLE_GIT})
        await fluxd.create(
            RECEIVER,
            "ci",
            {
                "type": "generic-oidc",
                "oidcProviders": [
                    {
                        "issuerURL": issuer.url,
                        "validations": [
                            {
                                "expression": "claims.repository_owner == 'team'",
                                "message": "only the team's pipelines",
                            }
                        ],
                    }
                ],
                "resources": [{"kind": "GitRepository", "name": "target"}],
            },
        )
        obj = await fluxd.wait_ready(RECEIVER, "ci")
        path = obj["status"]["webhookPath"]
        assert path == "/hook/" + hashlib.sha256(("ci" + fluxd.namespace).encode()).hexdigest()

        refused = [
            {},
            {"Authorization": f"Bearer {issuer.token(issuer.claims(), impostor=True)}"},
            {"Authorization": f"Bearer {issuer.token(issuer.claims(aud='other'))}"},
            {"Authorization": f"Bearer {issuer.token(issuer.claims(repository_owner='x'))}"},
        ]
        for headers in refused:
            assert await post(fluxd, path, headers, b"{}") == 401, headers
        assert await requested_at(fluxd) is None, "a refused token triggers nothing"

        valid = {"Authorization": f"Bearer {issuer.token(issuer.claims(), alg='ES256')}"}
        assert await post(fluxd, path, valid, b"{}") == 200
        assert await requested_at(fluxd) is not None


async def test_generic_oidc_configuration_fluxd_cannot_honour_stalls(fluxd: Fluxd) -> None:
    resources = [{"kind": "GitRepository", "name": "target"}]
    provider = {"issuerURL": "https://token.example", "validations": []}
    await fluxd.create(
        RECEIVER,
        "bad-variable",
        {
            "type": "generic-oidc",
            "resources": resources,
            "oidcProviders": [
                provider
                | {
                    "variables": [{"name": "owner", "expression": "claims.repository_owner +"}],
                    "validations": [{"expression": "vars.owner == 'team'", "message": "team"}],
                }
            ],
        },
    )
    await fluxd.create(
        RECEIVER,
        "bad-cel",
        {
            "type": "generic-oidc",
            "resources": resources,
            "oidcProviders": [
                provider | {"validations": [{"expression": "claims.(", "message": "broken"}]}
            ],
        },
    )
    bad_variable = await fluxd.wait_not_ready(RECEIVER, "bad-variable", "InvalidCELExpression")
    ready = conditions.get(bad_variable["status"], "Ready")
    assert ready is not None
    assert "oidcProviders[0]" in ready["message"]
    assert "variable 'owner'" in ready["message"]
    bad_cel = await fluxd.wait_not_ready(RECEIVER, "bad-cel", "InvalidCELExpression")
    ready = conditions.get(bad_cel["status"], "Ready")
    stalled = conditions.get(bad_cel["status"], "Stalled")
    assert ready is not None
    assert "validation 'broken'" in ready["message"]
    assert stalled is not None
    assert stalled["status"] == "True"
    for stalled_receiver in (bad_variable, bad_cel):
        assert "webhookPath" not in stalled_receiver["status"], "no path answers"
