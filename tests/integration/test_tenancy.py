"""``--no-cross-namespace-refs``: a tenant that names another namespace's objects is refused.

A daemon started with the flag (Flux's multi-tenancy lockdown) serves a tenant namespace.
Each kind that follows a reference tries to reach the other namespace: the object stalls
with ``AccessDenied`` and its controller's words, nothing is read or created there, and
the same objects pointing inside the namespace still work; an Alert gets the events of its
own namespace only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fluxd.api import (
    ALERT,
    GIT_REPOSITORY,
    HELM_CHART,
    HELM_RELEASE,
    IMAGE_POLICY,
    IMAGE_UPDATE_AUTOMATION,
    KUSTOMIZATION,
    PROVIDER,
    KindInfo,
)
from fluxd.kube import client
from fluxd.kube.client import ApiClient
from fluxd.kube.objects import resource_of
from fluxd.runtime import conditions
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import Fluxd, create_labelled, labelled_fluxd, namespaced_fluxd
from tests.integration.kustomizations import applied, configmap, kustomization, setup_source
from tests.webhooks import Recorded, WebhookServer, webhook_server  # noqa: F401

pytestmark = pytest.mark.integration

ELSEWHERE = "shared-sources"


@pytest.fixture
async def locked(api_client: ApiClient, namespace: str) -> AsyncIterator[Fluxd]:
    async with namespaced_fluxd(api_client, namespace, no_cross_namespace_refs=True) as running:
        yield running


async def stalled_message(fluxd: Fluxd, kind: KindInfo[Any], name: str) -> str:
    obj = await fluxd.wait_not_ready(kind, name, "AccessDenied")
    stalled = conditions.get(obj["status"], "Stalled") or {}
    assert stalled.get("reason") == "AccessDenied"
    return str(stalled.get("message"))


async def test_references_to_another_namespace_are_refused(locked: Fluxd) -> None:
    ns = locked.namespace
    source = {"kind": "GitRepository", "name": "fleet", "namespace": ELSEWHERE}
    await locked.create(
        KUSTOMIZATION, "escape", {"interval": "1h", "prune": True, "sourceRef": source}
    )
    assert await stalled_message(locked, KUSTOMIZATION, "escape") == (
        f"can't access 'GitRepository/{ELSEWHERE}/fleet', cross-namespace references have "
        "been blocked"
    )

    chart = {
        "spec": {
            "chart": "app",
            "sourceRef": {"kind": "HelmRepository", "name": "charts", "namespace": ELSEWHERE},
        }
    }
    await locked.create(HELM_RELEASE, "escape", {"interval": "1h", "chart": chart})
    assert await stalled_message(locked, HELM_RELEASE, "escape") == (
        "cross-namespace references are not allowed: cannot access HelmChart "
        f"{ELSEWHERE}/{ns}-escape"
    )
    # Nothing was made in the other namespace on the tenant's behalf.
    made = await client.get(
        locked.api, resource_of(HELM_CHART), ELSEWHERE, f"{ns}-escape", missing_ok=True
    )
    assert made is None

    chart_ref = {"kind": "OCIRepository", "name": "chart", "namespace": ELSEWHERE}
    await locked.create(HELM_RELEASE, "by-ref", {"interval": "1h", "chartRef": chart_ref})
    assert await stalled_message(locked, HELM_RELEASE, "by-ref") == (
        f"cross-namespace references are not allowed: cannot access OCIRepository {ELSEWHERE}/chart"
    )
    external = {"kind": "ExternalArtifact", "name": "chart", "namespace": ELSEWHERE}
    await locked.create(HELM_RELEASE, "by-external", {"interval": "1h", "chartRef": external})
    assert await stalled_message(locked, HELM_RELEASE, "by-external") == (
        "cross-namespace references are not allowed: cannot access ExternalArtifact "
        f"{ELSEWHERE}/chart"
    )

    repository = {"name": "app", "namespace": ELSEWHERE}
    policy = {"imageRepositoryRef": repository, "policy": {"semver": {"range": "1.x"}}}
    await locked.create(IMAGE_POLICY, "escape", policy)
    assert await stalled_message(locked, IMAGE_POLICY, "escape") == (
        f"cannot access 'ImageRepository/{ELSEWHERE}/app', cross-namespace references have "
        "been blocked"
    )

    automation = {
        "interval": "1h",
        "sourceRef": {"kind": "GitRepository", "name": "fleet", "namespace": ELSEWHERE},
        "git": {"commit": {"author": {"name": "bot", "email": "bot@example.com"}}},
    }
    await locked.create(IMAGE_UPDATE_AUTOMATION, "escape", automation)
    assert await stalled_message(locked, IMAGE_UPDATE_AUTOMATION, "escape") == (
        f"can't access 'GitRepository/{ELSEWHERE}/fleet', cross-namespace references have "
        "been blocked"
    )


async def test_references_inside_the_namespace_still_work(
    locked: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = locked.namespace
    sha = git_remote.commit({"deploy/settings.yaml": configmap(ns, "settings")})
    await setup_source(locked, git_remote, git_http)
    # Naming its own namespace explicitly is no crossing.
    spec = kustomization("./deploy")
    spec["sourceRef"] = {"kind": "GitRepository", "name": "source", "namespace": ns}
    await locked.create(KUSTOMIZATION, "apps", spec)
    await locked.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    assert (await locked.get(GIT_REPOSITORY, "source"))["status"]["artifact"]


async def test_alerts_get_only_their_own_namespace_events(
    api_client: ApiClient,
    namespace: str,
    other_namespace: str,
    webhook_server: WebhookServer,  # noqa: F811
) -> None:
    path = f"/{namespace}/tenancy"
    views = labelled_fluxd(api_client, [namespace, other_namespace], no_cross_namespace_refs=True)
    async with views as (tenant, other):
        provider: dict[str, object] = {"type": "generic", "address": webhook_server.url + path}
        await create_labelled(tenant, PROVIDER, "hook", provider)
        sources = [
            {"kind": "GitRepository", "name": "*"},
            {"kind": "GitRepository", "name": "*", "namespace": other_namespace},
        ]
        alert: dict[str, object] = {"providerRef": {"name": "hook"}, "eventSources": sources}
        await create_labelled(tenant, ALERT, "all", alert)
        await tenant.wait_ready(ALERT, "all")
        dead: dict[str, object] = {"interval": "1h", "url": "http://127.0.0.1:9/none.git"}
        await create_labelled(other, GIT_REPOSITORY, "theirs", dead)
        await other.wait_not_ready(GIT_REPOSITORY, "theirs", "GitOperationFailed")
        await create_labelled(tenant, GIT_REPOSITORY, "mine", dead)

        def from_mine(request: Recorded) -> bool:
            return bool(json.loads(request.body)["involvedObject"]["name"] == "mine")

        await webhook_server.wait_for(path, from_mine, "the tenant's own event")
        names = {body["involvedObject"]["namespace"] for body in webhook_server.json(path)}
        assert names == {namespace}, "no event of the other namespace was delivered"
