"""Kustomization health checks, CRD staging and ``dependsOn``, end to end.

What a Flux user relies on when a Kustomization says Ready: the objects named in
``healthChecks`` (or, with ``wait: true``, everything applied) really rolled out; a CRD
and the custom resources of it land in one reconcile; ``healthCheckExprs`` decide the
health of custom kinds; and a Kustomization with ``dependsOn`` applies nothing until its
dependencies are Ready at their latest generation, in whichever namespace they live.

The control plane's node simulator plays the kubelet: pods are Ready at once, Job pods
exit after a second, and a pod annotated ``fluxd.test/fail: "true"`` exits with an error.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client import ApiClient

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.kube.resources import Resource
from fluxd.runtime import conditions
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import (
    WAIT_TIMEOUT,
    Fluxd,
    create_labelled,
    labelled_fluxd,
    ready_reason,
)
from tests.integration.kustomizations import (
    CONFIGMAPS,
    DEPLOYMENTS,
    applied,
    configmap,
    kustomization,
    live,
    push_and_refresh,
    reconcile_now,
    setup_source,
    until,
)
from tests.integration.widgets import widget_crd

pytestmark = pytest.mark.integration

CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
JOBS = Resource("batch", "v1", "jobs")
#: Longer than any wait in these tests: a failure seen in time was not a timeout.
LONG_TIMEOUT = "2m"


def deployment(namespace: str, name: str, *, cpu: str | None = None) -> str:
    """One replica; a ``cpu`` request the simulated node cannot meet keeps it Pending."""
    resources = (
        f"        resources:\n          requests:\n            cpu: '{cpu}'\n" if cpu else ""
    )
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n"
        f"  namespace: {namespace}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n"
        f"      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n"
        f"    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n"
        f"{resources}"
    )


def job(namespace: str, name: str, *, fail: bool = False) -> str:
    """A Job whose one pod exits after a second, with an error when ``fail``."""
    failing = "    metadata:\n      annotations:\n        fluxd.test/fail: 'true'\n" if fail else ""
    return (
        f"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
        f"spec:\n  backoffLimit: 0\n  template:\n{failing}"
        "    spec:\n      restartPolicy: Never\n      containers:\n"
        "      - name: migrate\n        image: busybox:1.36\n"
    )


def widget(group: str, namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"size": 1},
    }


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    found = conditions.get(obj.get("status") or {}, type_)
    assert found is not None, f"no {type_} condition in {obj.get('status')}"
    return dict(found)


async def served(api: ApiClient, resource: Resource, namespace: str) -> bool:
    try:
        await client.list_page(api, resource, namespace, limit=1)
    except client.ApiError as error:
        if error.not_found:
            return False
        raise
    return True


@pytest.fixture
async def crd_group(api_client: ApiClient) -> AsyncIterator[str]:
    """A fresh API group for a ``Widget`` kind; its CRD is deleted at teardown, whoever
    created it."""
    group = f"t{uuid.uuid4().hex[:8]}.fluxd.test"
    try:
        yield group
    finally:
        await client.delete(api_client, CRDS, None, f"widgets.{group}")


# -- healthChecks ----------------------------------------------------------------------------


async def test_health_checks_name_the_unready_deployment_until_git_fixes_it(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    git_remote.commit(
        {
            "deploy/web.yaml": deployment(ns, "web"),
            "deploy/stuck.yaml": deployment(ns, "stuck", cpu="1000"),
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    checks = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "stuck", "namespace": ns},
    ]
    await fluxd.create(
        KUSTOMIZATION, "apps", kustomization("deploy", healthChecks=checks, timeout="5s")
    )

    # Flux never waits less than 30s, whatever spec.timeout says: leave room for that.
    failed = await fluxd.wait_for(
        KUSTOMIZATION,
        "apps",
        lambda o: ready_reason(o) == ("False", "HealthCheckFailed"),
        "Ready=False/HealthCheckFailed",
        timeout=WAIT_TIMEOUT + 30,
    )
    ready = condition(failed, "Ready")
    assert "timeout waiting for" in ready["message"], ready["message"]
    assert f"Deployment/{ns}/stuck status: 'InProgress'" in ready["message"]
    assert f"Deployment/{ns}/web" not in ready["message"], "the healthy Deployment is listed"
    healthy = condition(failed, "Healthy")
    assert (healthy["status"], healthy["reason"]) == ("False", "HealthCheckFailed")
    assert f"Deployment/{ns}/stuck" in healthy["message"]
    assert "lastAppliedRevision" not in failed["status"], "an unhealthy revision counts as applied"
    assert await live(fluxd, DEPLOYMENTS, "stuck") is not None, "health checks run after apply"

    fixed = await push_and_refresh(
        fluxd, git_remote, {"deploy/stuck.yaml": deployment(ns, "stuck")}
    )
    obj = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, fixed), "fix applied")
    healthy = condition(obj, "Healthy")
    assert (healthy["status"], healthy["reason"]) == ("True", "Succeeded")
    rolled_out = await live(fluxd, DEPLOYMENTS, "stuck")
    assert rolled_out is not None
    assert rolled_out["status"].get("readyReplicas") == 1, "Ready before the rollout finished"


async def test_health_checks_reach_a_custom_kind_in_another_namespace(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    crd_group: str,
    other_namespace: str,
) -> None:
    ns, other = fluxd.namespace, other_namespace
    widgets = Resource(crd_group, "v1", "widgets")
    await client.create(fluxd.api, CRDS, widget_crd(crd_group))
    await until("the Widget kind served", lambda: served(fluxd.api, widgets, other))
    await client.create(fluxd.api, widgets, widget(crd_group, other, "w"))
    stalled = {
        "type": "Stalled",
        "status": "True",
        "reason": "Unsupported",
        "message": "size 1 is not supported",
    }
    await client.patch_status(fluxd.api, widgets, other, "w", {"conditions": [stalled]})

    git_remote.commit({"deploy/settings.yaml": configmap(ns, "settings")})
    await setup_source(fluxd, git_remote, git_http)
    check = {"apiVersion": f"{crd_group}/v1", "kind": "Widget", "name": "w", "namespace": other}
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        kustomization("deploy", healthChecks=[check], timeout=LONG_TIMEOUT),
    )
    failed = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "HealthCheckFailed")
    message = condition(failed, "Ready")["message"]
    # Seen long before the timeout: a Failed object ends the wait at once.
    assert f"Widget/{other}/w status: 'Failed': size 1 is not supported" in message, message

    ready = {"type": "Ready", "status": "True", "reason": "Running", "message": "up"}
    await client.patch_status(fluxd.api, widgets, other, "w", {"conditions": [ready]})
    obj = await reconcile_now(fluxd, "apps", "widget-ready")
    assert condition(obj, "Ready")["status"] == "True", obj["status"]
    assert condition(obj, "Healthy")["status"] == "True"


# -- CRDs and healthCheckExprs -------------------------------------------------------------


async def test_crd_and_its_custom_resource_apply_in_one_reconcile_judged_by_cel(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, crd_group: str
) -> None:
    ns = fluxd.namespace
    widgets = Resource(crd_group, "v1", "widgets")
    git_remote.commit(
        {
            "deploy/crd.yaml": yaml.safe_dump(widget_crd(crd_group)),
            "deploy/widget.yaml": yaml.safe_dump(widget(crd_group, ns, "w")),
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        kustomization(
            "deploy",
            wait=True,
            timeout=LONG_TIMEOUT,
            healthCheckExprs=[
                {
                    "apiVersion": f"{crd_group}/v1",
                    "kind": "Widget",
                    "inProgress": "status.phase == 'Provisioning'",
                    "failed": "status.phase == 'Failed'",
                    "current": "status.phase == 'Ready'",
                }
            ],
        ),
    )

    async def widget_applied() -> bool:
        return await live(fluxd, widgets, "w") is not None

    await until("the Widget applied", widget_applied)
    await client.patch_status(fluxd.api, widgets, ns, "w", {"phase": "Failed"})
    failed = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "HealthCheckFailed")
    message = condition(failed, "Ready")["message"]
    assert f"Widget/{ns}/w status: 'Failed'" in message, message
    assert f"CustomResourceDefinition/widgets.{crd_group}" not in message, "the CRD is healthy"
    ids = {entry["id"] for entry in failed["status"]["inventory"]["entries"]}
    assert ids == {
        f"_widgets.{crd_group}_apiextensions.k8s.io_CustomResourceDefinition",
        f"{ns}_w_{crd_group}_Widget",
    }
    # One reconcile created both: the CRD stage waited until the kind was served.
    await fluxd.wait_event(
        "apps",
        lambda e: (
            e["reason"] == "Progressing"
            and f"CustomResourceDefinition/widgets.{crd_group} created" in e["message"]
            and f"Widget/{ns}/w created" in e["message"]
        ),
        "one apply creating the CRD and the Widget",
    )

    await client.patch_status(fluxd.api, widgets, ns, "w", {"phase": "Ready"})
    obj = await reconcile_now(fluxd, "apps", "widget-ready")
    assert condition(obj, "Ready")["status"] == "True", obj["status"]
    assert condition(obj, "Healthy")["status"] == "True"


async def test_invalid_cel_expression_stalls_the_kustomization(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    git_remote.commit({"deploy/settings.yaml": configmap(ns, "settings")})
    await setup_source(fluxd, git_remote, git_http)
    broken = "status.conditions.exists(c, c.type == 'Ready' &&"
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        kustomization(
            "deploy",
            wait=True,
            healthCheckExprs=[
                {"apiVersion": "example.com/v1", "kind": "Widget", "current": broken}
            ],
        ),
    )
    obj = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "InvalidCELExpression")
    assert broken in condition(obj, "Ready")["message"]
    stalled = condition(obj, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidCELExpression")
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]


# -- wait: true with Jobs ----------------------------------------------------------------------


async def test_wait_follows_jobs_to_completion_and_fails_early_on_a_failed_job(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    git_remote.commit(
        {
            "migrate/job.yaml": job(ns, "migrate"),
            "broken/job.yaml": job(ns, "broken", fail=True),
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(
        KUSTOMIZATION, "migrate", kustomization("migrate", wait=True, timeout=LONG_TIMEOUT)
    )
    await fluxd.create(
        KUSTOMIZATION, "broken", kustomization("broken", wait=True, timeout=LONG_TIMEOUT)
    )

    await fluxd.wait_ready(KUSTOMIZATION, "migrate")
    completed = await client.get(fluxd.api, JOBS, ns, "migrate")
    assert completed["status"].get("succeeded") == 1, "Ready before the Job completed"

    # wait_not_ready gives up long before the 2m timeout: the failure ended the wait.
    failed = await fluxd.wait_not_ready(KUSTOMIZATION, "broken", "HealthCheckFailed")
    message = condition(failed, "Ready")["message"]
    assert f"Job/{ns}/broken status: 'Failed'" in message, message
    assert "timeout" not in message


# -- dependsOn ---------------------------------------------------------------------------------


def namespace_manifest(name: str) -> str:
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"


async def test_depends_on_chain_created_in_reverse_applies_in_order(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    # Each layer uses the namespace the previous one creates: applied out of order, the
    # server would refuse it.
    infra_ns, apps_ns = f"{ns}-infra", f"{ns}-apps"
    git_remote.commit(
        {
            "infra/ns.yaml": namespace_manifest(infra_ns),
            "apps/ns.yaml": namespace_manifest(apps_ns),
            "apps/settings.yaml": configmap(infra_ns, "apps-settings"),
            "web/settings.yaml": configmap(apps_ns, "web-settings"),
        }
    )
    await setup_source(fluxd, git_remote, git_http)

    def layer(path: str, *needs: str) -> dict[str, object]:
        # retryInterval 1h: only a dependency turning Ready can wake a layer in time.
        return kustomization(path, retryInterval="1h", dependsOn=[{"name": name} for name in needs])

    await fluxd.create(KUSTOMIZATION, "web", layer("web", "apps"))
    web = await fluxd.wait_not_ready(KUSTOMIZATION, "web", "DependencyNotReady")
    assert f"'{ns}/apps'" in condition(web, "Ready")["message"], "the missing one is not named"

    await fluxd.create(KUSTOMIZATION, "apps", layer("apps", "infra"))
    apps = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "DependencyNotReady")
    assert f"'{ns}/infra'" in condition(apps, "Ready")["message"]
    web = await fluxd.get(KUSTOMIZATION, "web")
    assert ready_reason(web) == ("False", "DependencyNotReady")
    assert f"'{ns}/apps'" in condition(web, "Ready")["message"]

    await fluxd.create(KUSTOMIZATION, "infra", layer("infra"))
    for name in ("infra", "apps", "web"):
        await fluxd.wait_ready(KUSTOMIZATION, name)
    assert await client.get(fluxd.api, CONFIGMAPS, apps_ns, "web-settings")
    for name in ("apps", "web"):
        found = await client.request(
            fluxd.api,
            "GET",
            f"/api/v1/namespaces/{ns}/events",
            query={"fieldSelector": f"involvedObject.name={name}"},
        )
        refused = [e["message"] for e in found["items"] if e["reason"] == "ReconciliationFailed"]
        assert not refused, f"{name} was applied before its dependency: {refused}"


async def test_dependency_ready_at_an_old_generation_is_not_ready(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = fluxd.namespace
    git_remote.commit({"infra/a.yaml": configmap(ns, "infra"), "apps/b.yaml": configmap(ns, "app")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "infra", kustomization("infra"))
    await fluxd.wait_ready(KUSTOMIZATION, "infra")

    # Suspended, infra keeps the Ready condition of generation 1 while at generation 2.
    await fluxd.patch(KUSTOMIZATION, "infra", {"spec": {"suspend": True}})
    infra = await fluxd.wait_for(
        KUSTOMIZATION, "infra", lambda o: o["metadata"]["generation"] == 2, "generation 2"
    )
    assert condition(infra, "Ready")["status"] == "True"
    assert infra["status"]["observedGeneration"] == 1

    # retryInterval 1h: only the dependency turning Ready at its new generation (same
    # revision) can wake the dependent in time.
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        kustomization("apps", retryInterval="1h", dependsOn=[{"name": "infra"}]),
    )
    waiting = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "DependencyNotReady")
    assert f"'{ns}/infra'" in condition(waiting, "Ready")["message"]
    assert await live(fluxd, CONFIGMAPS, "app") is None

    await fluxd.patch(KUSTOMIZATION, "infra", {"spec": {"suspend": False}})
    await fluxd.wait_ready(KUSTOMIZATION, "infra")
    await fluxd.wait_ready(KUSTOMIZATION, "apps")
    assert await live(fluxd, CONFIGMAPS, "app") is not None


async def test_dependency_in_another_namespace(
    api_client: ApiClient,
    namespace: str,
    other_namespace: str,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
) -> None:
    git_remote.commit(
        {
            "infra/a.yaml": configmap(other_namespace, "infra"),
            "apps/b.yaml": configmap(namespace, "app"),
        }
    )
    async with labelled_fluxd(api_client, [namespace, other_namespace]) as (apps, infra):
        await create_labelled(
            apps, GIT_REPOSITORY, "source", {"interval": "1h", "url": git_http.url(git_remote)}
        )
        await apps.wait_ready(GIT_REPOSITORY, "source")
        await create_labelled(
            apps,
            KUSTOMIZATION,
            "apps",
            kustomization(
                "apps",
                retryInterval="1h",
                dependsOn=[{"name": "infra", "namespace": other_namespace}],
            ),
        )
        waiting = await apps.wait_not_ready(KUSTOMIZATION, "apps", "DependencyNotReady")
        assert f"'{other_namespace}/infra'" in condition(waiting, "Ready")["message"]

        source = {"kind": "GitRepository", "name": "source", "namespace": namespace}
        await create_labelled(
            infra, KUSTOMIZATION, "infra", kustomization("infra", sourceRef=source)
        )
        await infra.wait_ready(KUSTOMIZATION, "infra")
        # retryInterval is 1h: the dependency's wake-up crosses namespaces.
        await apps.wait_ready(KUSTOMIZATION, "apps")
        assert await client.get(api_client, CONFIGMAPS, namespace, "app")


async def test_a_dependency_outside_the_watched_namespace_is_read_from_the_api(
    fluxd: Fluxd, other_namespace: str, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    # The ``fluxd`` fixture watches its own namespace only; ``infra`` lives elsewhere and
    # is reconciled by someone else (here: its Ready status is written by the test).
    kustomizations = resource_of(KUSTOMIZATION)
    await client.create(
        fluxd.api,
        kustomizations,
        {
            "apiVersion": KUSTOMIZATION.api_version,
            "kind": KUSTOMIZATION.kind,
            "metadata": {"name": "infra", "namespace": other_namespace},
            "spec": kustomization("infra"),
        },
    )
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "ReconciliationSucceeded",
        "message": "Applied revision: elsewhere",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 1,
    }
    await client.patch_status(
        fluxd.api,
        kustomizations,
        other_namespace,
        "infra",
        {"observedGeneration": 1, "conditions": [ready]},
    )
    sha = git_remote.commit({"apps/b.yaml": configmap(fluxd.namespace, "app")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        kustomization(
            "apps", retryInterval="1h", dependsOn=[{"name": "infra", "namespace": other_namespace}]
        ),
    )
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    assert await live(fluxd, CONFIGMAPS, "app") is not None
