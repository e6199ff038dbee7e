"""The test control plane is a real cluster, not an API that merely stores objects.

A Deployment only reaches ``readyReplicas`` if the controller-manager creates the
ReplicaSet and pods, the scheduler binds them to the simulated node, and the node
simulator reports them Running and Ready; a CRD round-trip proves the apiextensions
server is wired in.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

pytestmark = pytest.mark.integration

WAIT_TIMEOUT = 60.0


async def wait_for(
    what: str, check: Callable[[], Awaitable[bool]], within: float = WAIT_TIMEOUT
) -> None:
    """Poll ``check`` until it is true; fail the test naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.fixture
async def namespace(api_client: client.ApiClient) -> AsyncIterator[str]:
    name = f"controlplane-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api_client)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    await core.delete_namespace(name)


def _deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="web", image="nginx:1.27")]
                ),
            ),
        ),
    )


async def test_deployment_rolls_out_and_scales(
    api_client: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    await apps.create_namespaced_deployment(namespace, _deployment("web", replicas=2))

    async def ready(count: int) -> bool:
        dep = await apps.read_namespaced_deployment("web", namespace)
        status = dep.status
        return bool(
            status.observed_generation == dep.metadata.generation
            and status.ready_replicas == count
            and status.updated_replicas == count
            and (status.replicas or 0) == count
        )

    await wait_for("deployment web to have 2 ready replicas", lambda: ready(2))

    pods = (await core.list_namespaced_pod(namespace, label_selector="app=web")).items
    assert len(pods) == 2
    for pod in pods:
        assert pod.spec.node_name, f"pod {pod.metadata.name} was never scheduled"
        assert pod.status.phase == "Running"
        assert pod.status.pod_ip
        assert all(cs.ready for cs in pod.status.container_statuses)
    assert len({pod.status.pod_ip for pod in pods}) == 2, "pod IPs must be unique"

    await apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 3}})
    await wait_for("deployment web to scale to 3 ready replicas", lambda: ready(3))

    # A new pod template means a real rolling update: new ReplicaSet up, old one down,
    # and the old pods actually deleted (the simulator finishes their termination).
    await apps.patch_namespaced_deployment(
        "web",
        namespace,
        {"spec": {"template": {"metadata": {"annotations": {"rollout": "2"}}}}},
    )

    async def rolled_out() -> bool:
        pods = (await core.list_namespaced_pod(namespace, label_selector="app=web")).items
        return await ready(3) and len(pods) == 3

    await wait_for("deployment web to roll out its new template", rolled_out)


async def test_reports_a_real_kubernetes_version(api_client: client.ApiClient) -> None:
    # Clients gate features on this (Helm's kubeVersion); v0.0.0-master would fail them.
    info = await client.VersionApi(api_client).get_code()
    assert info.git_version.startswith(f"v{info.major}.{info.minor}.")
    assert int(info.major) == 1
    assert int(info.minor) >= 30


async def test_crd_round_trip(api_client: client.ApiClient, namespace: str) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    group = f"t{uuid.uuid4().hex[:8]}.fluxd.test"
    # Any, not dict: kubernetes_asyncio accepts plain dict bodies, its annotations don't say so.
    crd: Any = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                },
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                        }
                    },
                }
            ],
        },
    }
    await ext.create_custom_resource_definition(body=crd)
    try:

        async def established() -> bool:
            live = await ext.read_custom_resource_definition(crd["metadata"]["name"])
            conditions = (live.status.conditions if live.status else None) or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        await wait_for(f"CRD widgets.{group} to be Established", established)

        custom = client.CustomObjectsApi(api_client)
        widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}}
        created = await custom.create_namespaced_custom_object(
            group, "v1", namespace, "widgets", {**widget, "spec": {"size": 2}}
        )
        assert created["metadata"]["generation"] == 1

        # A list body goes out as a JSON patch, the client's default for custom objects.
        status_patch = [{"op": "add", "path": "/status", "value": {"phase": "Done"}}]
        await custom.patch_namespaced_custom_object_status(
            group, "v1", namespace, "widgets", "w", status_patch
        )
        fetched = await custom.get_namespaced_custom_object(group, "v1", namespace, "widgets", "w")
        assert fetched["spec"] == {"size": 2}
        assert fetched["status"] == {"phase": "Done"}

        # The schema is enforced by the real apiserver.
        with pytest.raises(ApiException) as rejected:
            await custom.create_namespaced_custom_object(
                group,
                "v1",
                namespace,
                "widgets",
                {**widget, "metadata": {"name": "bad"}, "spec": {"size": 0}},
            )
        assert rejected.value.status == 422
        assert "spec.size" in str(rejected.value.body)
    finally:
        await ext.delete_custom_resource_definition(crd["metadata"]["name"])
