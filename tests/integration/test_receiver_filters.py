"""Receivers that choose what they trigger, end to end: a real control plane, the
daemon, and webhook requests at each Receiver's ``status.webhookPath``.

What a user sees: ``resourceFilter`` and ``resources[].filter`` decide, from the
request's JSON body (``req``), the object's metadata (``res``) and a ``generic-oidc``
token's claims, which objects get ``reconcile.fluxcd.io/requestedAt``; a filter that
does not compile stalls the Receiver with ``InvalidCELExpression`` naming the field; a
filter that fails at request time answers 500 and annotates nothing it could not
decide on. A ``cdevents`` Receiver is triggered by CDEvents of the types it lists and
refuses other bodies. A burst at one path is cut off with 429, and a refused request
triggers nothing.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from fluxd.api import GIT_REPOSITORY, RECEIVER
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.runtime import conditions
from tests.integration.conftest import Fluxd
from tests.oidc_issuer import oidc_issuer

pytestmark = pytest.mark.integration

TOKEN = "filter-t0ken"
UNREACHABLE_GIT = "http://127.0.0.1:9/never-answers.git"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
JSON = {"Content-Type": "application/json"}
QUEUED = "dev.cdevents.pipelinerun.queued.0.2.0"


async def post(fluxd: Fluxd, path: str, headers: dict[str, str], body: bytes) -> int:
    host, port = fluxd.daemon.addresses["artifacts"]
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://{host}:{port}{path}", data=body, headers=headers) as response,
    ):
        return response.status


async def repository(fluxd: Fluxd, name: str, **labels: str) -> None:
    await fluxd.create(GIT_REPOSITORY, name, {"interval": "1h", "url": UNREACHABLE_GIT})
    if labels:
        await fluxd.patch(GIT_REPOSITORY, name, {"metadata": {"labels": labels}})


async def stamps(fluxd: Fluxd, *names: str) -> dict[str, str | None]:
    found = {}
    for name in names:
        obj = await fluxd.get(GIT_REPOSITORY, name)
        found[name] = (obj["metadata"].get("annotations") or {}).get(REQUESTED_AT)
    return found


async def receiver(fluxd: Fluxd, name: str, spec: dict[str, Any]) -> str:
    if spec.get("type") != "generic-oidc":
        spec = {"secretRef": {"name": "hook-token"}} | spec
    await fluxd.create(RECEIVER, name, spec)
    obj = await fluxd.wait_ready(RECEIVER, name)
    return str(obj["status"]["webhookPath"])


async def test_filters_choose_the_objects_a_webhook_reconciles(fluxd: Fluxd) -> None:
    await fluxd.secret("hook-token", {"token": TOKEN})
    await repository(fluxd, "web", team="apps", repo="web")
    await repository(fluxd, "web-canary", team="apps", repo="web")
    await repository(fluxd, "api", team="apps", repo="api")
    await repository(fluxd, "infra", repo="web")
    path = await receiver(
        fluxd,
        "push",
        {
            "type": "generic",
            "resourceFilter": "res.metadata.labels.repo == req.repository",
            "resources": [
                {
                    "kind": "GitRepository",
                    "name": "*",
                    "matchLabels": {"team": "apps"},
                    "filter": "!res.metadata.name.endsWith('-canary')",
                },
                {"kind": "GitRepository", "name": "infra", "filter": "req.ref == 'main'"},
            ],
        },
    )
    body = json.dumps({"repository": "web", "ref": "release"}).encode()
    assert await post(fluxd, path, JSON, body) == 200
    after = await stamps(fluxd, "web", "web-canary", "api", "infra")
    assert after["web"] is not None
    assert after == {"web": after["web"], "web-canary": None, "api": None, "infra": None}

    body = json.dumps({"repository": "web", "ref": "main"}).encode()
    assert await post(fluxd, path, JSON, body) == 200
    again = await stamps(fluxd, "web", "web-canary", "api", "infra")
    assert again["infra"] is not None, "both the top-level and its own filter hold"
    assert again["web"] != after["web"]
    assert again["web-canary"] is None
    assert again["api"] is None


async def test_a_filter_failing_at_request_time_answers_500_and_annotates_nothing(
    fluxd: Fluxd,
) -> None:
    await fluxd.secret("hook-token", {"token": TOKEN})
    await repository(fluxd, "web", repo="web")
    await repository(fluxd, "unlabelled")
    path = await receiver(
        fluxd,
        "push",
        {
            "type": "generic",
            "resourceFilter": "res.metadata.labels.repo == req.repository",
            "resources": [
                {"kind": "GitRepository", "name": "unlabelled"},
                {"kind": "GitRepository", "name": "web"},
            ],
        },
    )
    body = json.dumps({"repository": "web"}).encode()
    assert await post(fluxd, path, {"Content-Type": "text/plain"}, body) == 500, (
        "the body is not JSON to the filter, so req.repository fails"
    )
    assert await post(fluxd, path, JSON, b"{not json") == 500
    assert await stamps(fluxd, "web", "unlabelled") == {"web": None, "unlabelled": None}

    assert await post(fluxd, path, JSON, body) == 500, "the unlabelled one has no 'repo'"
    after = await stamps(fluxd, "web", "unlabelled")
    assert after["web"] is not None, "the object the filter could decide on is reconciled"
    assert after["unlabelled"] is None
    assert (await fluxd.wait_ready(RECEIVER, "push"))["status"]["webhookPath"] == path


async def test_filters_that_do_not_compile_stall_naming_the_field(fluxd: Fluxd) -> None:
    await fluxd.secret("hook-token", {"token": TOKEN})
    resources = [{"kind": "GitRepository", "name": "web"}]
    await fluxd.create(
        RECEIVER,
        "top",
        {"type": "generic", "secretRef": {"name": "hook-token"}, "resources": resources,
         "resourceFilter": "res.metadata.name =="},
    )  # fmt: skip
    await fluxd.create(
        RECEIVER,
        "per-resource",
        {"type": "github", "secretRef": {"name": "hook-token"},
         "resources": [resources[0] | {"filter": "claims.sub == 'x'"}]},
    )  # fmt: skip
    top = await fluxd.wait_not_ready(RECEIVER, "top", "InvalidCELExpression")
    per_resource = await fluxd.wait_not_ready(RECEIVER, "per-resource", "InvalidCELExpression")
    for obj, field in (
        (top, "invalid resourceFilter expression"),
        (per_resource, "resources[0] (kind='GitRepository', name='web')"),
    ):
        ready = conditions.get(obj["status"], "Ready")
        stalled = conditions.get(obj["status"], "Stalled")
        assert ready is not None
        assert field in ready["message"]
        assert stalled is not None
        assert stalled["status"] == "True"
        assert "webhookPath" not in obj["status"], "no path answers"
    ready = conditions.get(per_resource["status"], "Ready")
    assert ready is not None
    assert "undeclared reference to 'claims'" in ready["message"]

    await repository(fluxd, "web")
    path = await receiver(fluxd, "fine", {"type": "generic", "resources": resources})
    assert await post(fluxd, path, {}, b"") == 200, "the daemon serves the others"


async def test_generic_oidc_filters_and_variables_see_the_tokens_claims(fluxd: Fluxd) -> None:
    await repository(fluxd, "team-app", owner="team")
    await repository(fluxd, "other-app", owner="other")
    async with oidc_issuer() as issuer:
        path = await receiver(
            fluxd,
            "ci",
            {
                "type": "generic-oidc",
                "oidcProviders": [
                    {
                        "issuerURL": issuer.url,
                        "variables": [
                            {"name": "repo", "expression": "claims.sub.split(':')[1]"},
                            {"name": "team", "expression": "vars.repo.startsWith('team/')"},
                        ],
                        "validations": [{"expression": "vars.team", "message": "team repos only"}],
                    }
                ],
                "resourceFilter": "res.metadata.labels.owner == claims.repository_owner",
                "resources": [
                    {"kind": "GitRepository", "name": "team-app"},
                    {"kind": "GitRepository", "name": "other-app"},
                ],
            },
        )
        outsider = issuer.claims(sub="repo:other/app:ref:refs/heads/main")
        headers = {"Authorization": f"Bearer {issuer.token(outsider)}"}
        assert await post(fluxd, path, headers, b"{}") == 401, "the variables' validation"
        assert await stamps(fluxd, "team-app", "other-app") == {
            "team-app": None,
            "other-app": None,
        }
        headers = {"Authorization": f"Bearer {issuer.token(issuer.claims())}"}
        assert await post(fluxd, path, headers, b"{}") == 200
        after = await stamps(fluxd, "team-app", "other-app")
        assert after["team-app"] is not None
        assert after["other-app"] is None, "the filter compares the labels with the claims"


def cdevent(event_type: str = QUEUED) -> bytes:
    return json.dumps(
        {
            "context": {
                "version": "0.4.1",
                "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
                "source": "/pipelines/release",
                "type": event_type,
                "timestamp": "2026-03-20T14:27:05.315384Z",
            },
            "subject": {
                "id": "release-42",
                "type": "pipelineRun",
                "content": {"pipelineName": "release", "url": "https://ci.example/42"},
            },
        }
    ).encode()


async def test_a_cdevents_receiver_is_triggered_by_the_events_it_lists(fluxd: Fluxd) -> None:
    await fluxd.secret("hook-token", {"token": TOKEN})
    await repository(fluxd, "web")
    path = await receiver(
        fluxd,
        "cd",
        {
            "type": "cdevents",
            "events": [QUEUED],
            "resources": [{"kind": "GitRepository", "name": "web"}],
        },
    )
    finished = "dev.cdevents.pipelinerun.finished.0.2.0"
    refused = [
        ({"Ce-Type": finished}, cdevent(finished)),
        ({"Ce-Type": QUEUED}, b'{"context": {}}'),
        ({"Ce-Type": QUEUED}, cdevent("dev.cdevents.pipelinerun.exploded.0.2.0")),
        ({"Ce-Type": QUEUED}, b"not json"),
    ]
    for headers, body in refused:
        assert await post(fluxd, path, headers | JSON, body) == 400, body
    assert await stamps(fluxd, "web") == {"web": None}, "a refused event triggers nothing"
    assert await post(fluxd, path, {"Ce-Type": QUEUED} | JSON, cdevent()) == 200
    assert (await stamps(fluxd, "web"))["web"] is not None


async def watch_stamps(fluxd: Fluxd, name: str, seen: set[str]) -> None:
    async for _, obj in client.watch(
        fluxd.api,
        resource_of(GIT_REPOSITORY),
        fluxd.namespace,
        field_selector=f"metadata.name={name}",
    ):
        stamp = (obj.get("metadata", {}).get("annotations") or {}).get(REQUESTED_AT)
        if stamp:
            seen.add(stamp)


async def test_a_burst_at_one_path_is_limited_and_refused_requests_trigger_nothing(
    fluxd: Fluxd,
) -> None:
    await fluxd.secret("hook-token", {"token": TOKEN})
    await repository(fluxd, "web")
    await repository(fluxd, "api")
    spec = {"type": "generic", "resources": [{"kind": "GitRepository", "name": "web"}]}
    path = await receiver(fluxd, "noisy", spec)
    quiet = await receiver(
        fluxd, "quiet", spec | {"resources": [{"kind": "GitRepository", "name": "api"}]}
    )
    seen: set[str] = set()
    watcher = asyncio.create_task(watch_stamps(fluxd, "web", seen))
    try:
        host, port = fluxd.daemon.addresses["artifacts"]
        async with aiohttp.ClientSession() as session:

            async def hit() -> tuple[int, str | None]:
                async with session.post(f"http://{host}:{port}{path}", data=b"") as response:
                    return response.status, response.headers.get("Retry-After")

            answers = await asyncio.gather(*(hit() for _ in range(40)))
        accepted = [status for status, _ in answers if status == 200]
        limited = [retry for status, retry in answers if status == 429]
        assert len(accepted) + len(limited) == len(answers)
        assert 20 <= len(accepted) <= 28, "a burst of 20, then about one a second"
        assert len(limited) >= 12
        assert all(retry is not None and int(retry) >= 1 for retry in limited)
        assert await post(fluxd, quiet, {}, b"") == 200, "another path has its own bucket"
        async with asyncio.timeout(10):
            while len(seen) < len(accepted):
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert len(seen) == len(accepted), "each accepted request, and only those, annotated"
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
