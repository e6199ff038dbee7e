"""Health checks against the real control plane: kstatus verdicts on live objects.

The controller-manager, the scheduler and the node simulator drive the objects, so a
Deployment is only Current once its pods were really scheduled and reported Ready, and a
Job only once the Job controller saw its pod exit.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.api import CustomHealthCheck
from fluxd.apply.health import (
    HealthCheckError,
    HealthRef,
    compute_status,
    custom_rules,
    wait_for_health,
)
from fluxd.kube import client
from fluxd.kube.resources import Resource
from tests.integration.widgets import widget_crd

pytestmark = pytest.mark.integration

DEPLOYMENTS = Resource("apps", "v1", "deployments")
JOBS = Resource("batch", "v1", "jobs")
PODS = Resource("", "v1", "pods")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
ROLLOUT_TIMEOUT = 60.0


def deployment(name: str, *, replicas: int = 2, cpu: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "nginx:1.27"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}}
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def job(name: str, *, fail: bool = False) -> dict[str, Any]:
    annotations = {"fluxd.test/fail": "true"} if fail else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "migrate", "image": "busybox:1.36"}],
                },
            },
        },
    }


async def test_deployment_becomes_current_after_rollout(
    api_client: ApiClient, namespace: str
) -> None:
    await client.create(api_client, DEPLOYMENTS, deployment("web"), namespace=namespace)
    target = HealthRef(DEPLOYMENTS, namespace, "web", "Deployment")
    await wait_for_health(api_client, [target], timeout=ROLLOUT_TIMEOUT, poll=0.2)

    live = await client.get(api_client, DEPLOYMENTS, namespace, "web")
    assert live["status"]["readyReplicas"] == 2
    found = compute_status(live)
    assert (found.status, found.message) == ("Current", "Deployment is available. Replicas: 2")


async def test_unschedulable_deployment_times_out_naming_it(
    api_client: ApiClient, namespace: str
) -> None:
    await client.create(api_client, DEPLOYMENTS, deployment("web"), namespace=namespace)
    hungry = deployment("hungry", replicas=1, cpu="1000")
    await client.create(api_client, DEPLOYMENTS, hungry, namespace=namespace)
    targets = [
        HealthRef(DEPLOYMENTS, namespace, "web", "Deployment"),
        HealthRef(DEPLOYMENTS, namespace, "hungry", "Deployment"),
    ]
    with pytest.raises(HealthCheckError) as caught:
        await wait_for_health(api_client, targets, timeout=8, poll=0.2)

    message = str(caught.value)
    assert message.startswith(
        f"timeout waiting for: [Deployment/{namespace}/hungry status: 'InProgress': "
    ), message
    assert "/web" not in message, "the healthy Deployment must not be listed"
    assert not caught.value.failed


async def job_pod_exits(api: ApiClient, namespace: str, job_name: str) -> list[tuple[str, int]]:
    """Phase and container exit code of each pod of a Job, as the node simulator reported."""
    pods = await client.list_page(api, PODS, namespace, label_selector=f"job-name={job_name}")
    return [
        (pod["status"]["phase"], cs["state"]["terminated"]["exitCode"])
        for pod in pods["items"]
        for cs in pod["status"]["containerStatuses"]
    ]


async def test_job_is_current_once_complete(api_client: ApiClient, namespace: str) -> None:
    await client.create(api_client, JOBS, job("migrate"), namespace=namespace)
    target = HealthRef(JOBS, namespace, "migrate", "Job")
    await wait_for_health(api_client, [target], timeout=ROLLOUT_TIMEOUT, poll=0.2)

    live = await client.get(api_client, JOBS, namespace, "migrate")
    assert live["status"]["succeeded"] == 1
    assert compute_status(live).message == "Job Completed. succeeded: 1/1"
    assert await job_pod_exits(api_client, namespace, "migrate") == [("Succeeded", 0)]


async def test_failing_job_fails_the_wait_early(api_client: ApiClient, namespace: str) -> None:
    await client.create(api_client, JOBS, job("broken", fail=True), namespace=namespace)
    target = HealthRef(JOBS, namespace, "broken", "Job")
    started = time.monotonic()
    with pytest.raises(HealthCheckError) as caught:
        await wait_for_health(api_client, [target], timeout=ROLLOUT_TIMEOUT, poll=0.2)

    assert caught.value.failed
    assert time.monotonic() - started < ROLLOUT_TIMEOUT / 2, "must not wait for the timeout"
    assert str(caught.value) == (
        "failed early due to stalled resources: "
        f"[Job/{namespace}/broken status: 'Failed': Job Failed. failed: 1/1]"
    )
    assert await job_pod_exits(api_client, namespace, "broken") == [("Failed", 1)]


@pytest.fixture
async def widgets_kind(api_client: ApiClient) -> AsyncIterator[tuple[Resource, str]]:
    """A fresh namespaced ``Widget`` kind with a status subresource; yields its collection
    and the CRD's name."""
    group = f"t{uuid.uuid4().hex[:8]}.fluxd.test"
    name = f"widgets.{group}"
    await client.create(api_client, CRDS, widget_crd(group))
    try:
        yield Resource(group, "v1", "widgets"), name
    finally:
        await client.delete(api_client, CRDS, None, name)


async def test_crd_becomes_established(
    api_client: ApiClient, widgets_kind: tuple[Resource, str]
) -> None:
    _, name = widgets_kind
    target = HealthRef(CRDS, None, name, "CustomResourceDefinition")
    await wait_for_health(api_client, [target], timeout=ROLLOUT_TIMEOUT, poll=0.1)
    live = await client.get(api_client, CRDS, None, name)
    assert compute_status(live).message == "CRD is established"


async def test_custom_resource_conditions(
    api_client: ApiClient, namespace: str, widgets_kind: tuple[Resource, str]
) -> None:
    widgets, crd_name = widgets_kind
    await wait_for_health(
        api_client, [HealthRef(CRDS, None, crd_name, "CustomResourceDefinition")], timeout=30
    )
    widget = {
        "apiVersion": widgets.api_version,
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1},
    }
    await client.create(api_client, widgets, widget, namespace=namespace)
    target = HealthRef(widgets, namespace, "w", "Widget")

    def ready(status: str, message: str) -> dict[str, Any]:
        return {"type": "Ready", "status": status, "reason": "Testing", "message": message}

    not_ready = {"observedGeneration": 1, "conditions": [ready("False", "database not up")]}
    await client.patch_status(api_client, widgets, namespace, "w", not_ready)
    with pytest.raises(HealthCheckError) as caught:
        await wait_for_health(api_client, [target], timeout=1, poll=0.2)
    assert str(caught.value) == (
        f"timeout waiting for: [Widget/{namespace}/w status: 'InProgress': database not up]"
    )

    stalled = {
        "type": "Stalled",
        "status": "True",
        "reason": "Testing",
        "message": "size 1 is not supported",
    }
    await client.patch_status(
        api_client,
        widgets,
        namespace,
        "w",
        {"conditions": [ready("False", "size 1 is not supported"), stalled]},
    )
    with pytest.raises(HealthCheckError) as caught:
        await wait_for_health(api_client, [target], timeout=30, poll=0.2)
    assert caught.value.failed
    assert "status: 'Failed': size 1 is not supported" in str(caught.value)

    await client.patch_status(
        api_client, widgets, namespace, "w", {"conditions": [ready("True", "up")]}
    )
    await wait_for_health(api_client, [target], timeout=30, poll=0.2)

    # healthCheckExprs-style rules take the kind over: here health is a status field.
    rules = custom_rules(
        [CustomHealthCheck(api_version=widgets.api_version, kind="Widget", current="phase")],
        compile_expression=lambda _: lambda obj: obj["status"].get("phase") == "Running",
    )
    with pytest.raises(HealthCheckError) as caught:
        await wait_for_health(api_client, [target], timeout=1, poll=0.2, rules=rules)
    assert "status: 'InProgress': no health check expression is true yet" in str(caught.value)
    await client.patch_status(api_client, widgets, namespace, "w", {"phase": "Running"})
    await wait_for_health(api_client, [target], timeout=30, poll=0.2, rules=rules)


async def test_waiting_is_cancellable(api_client: ApiClient, namespace: str) -> None:
    hungry = deployment("hungry", replicas=1, cpu="1000")
    await client.create(api_client, DEPLOYMENTS, hungry, namespace=namespace)
    target = HealthRef(DEPLOYMENTS, namespace, "hungry", "Deployment")
    task = asyncio.create_task(wait_for_health(api_client, [target], timeout=300, poll=0.2))
    await asyncio.sleep(1.0)
    assert not task.done()

    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - cancelled_at < 1.0
