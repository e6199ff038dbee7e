"""Health waits on shared watches (:class:`HealthWatches`) against the real control plane.

What a user sees (through every HelmRelease that waits): a Deployment is Current once its
pods really run, an unschedulable one times out and is named while its healthy neighbour
is not, a failing Job fails the wait early, an identity that may read but not list or
watch Deployments still gets an answer, and a Deployment just changed is not declared
healthy from the watch's older copy.
"""

from __future__ import annotations

import uuid

import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.apply.health import HealthCheckError, HealthRef
from fluxd.apply.health_watch import HealthWatches
from fluxd.kube import client
from fluxd.kube.resources import Resource
from tests.integration.test_health import DEPLOYMENTS, JOBS, ROLLOUT_TIMEOUT, deployment, job

pytestmark = pytest.mark.integration

ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")


async def test_waits_share_a_watch_and_name_only_what_is_not_ready(
    api_client: ApiClient, namespace: str
) -> None:
    watches = HealthWatches(linger=0.1)
    try:
        await client.create(api_client, DEPLOYMENTS, deployment("web"), namespace=namespace)
        hungry = deployment("hungry", replicas=1, cpu="1000")
        await client.create(api_client, DEPLOYMENTS, hungry, namespace=namespace)
        web = HealthRef(DEPLOYMENTS, namespace, "web", "Deployment")
        await watches.wait(api_client, [web], timeout=ROLLOUT_TIMEOUT)

        both = [web, HealthRef(DEPLOYMENTS, namespace, "hungry", "Deployment")]
        with pytest.raises(HealthCheckError) as caught:
            await watches.wait(api_client, both, timeout=4)
        message = str(caught.value)
        assert message.startswith(
            f"timeout waiting for: [Deployment/{namespace}/hungry status: 'InProgress': "
        ), message
        assert "/web " not in message
        assert not caught.value.failed

        await client.create(api_client, JOBS, job("migrate", fail=True), namespace=namespace)
        with pytest.raises(HealthCheckError) as failing:
            await watches.wait(
                api_client, [HealthRef(JOBS, namespace, "migrate", "Job")], timeout=60
            )
        assert failing.value.failed, "a failed Job ends the wait at once"
        assert f"Job/{namespace}/migrate" in str(failing.value)
    finally:
        await watches.close()


async def test_an_identity_that_may_only_read_deployments_still_gets_an_answer(
    api_client: ApiClient, namespace: str
) -> None:
    user = f"reader-{uuid.uuid4().hex[:8]}"
    role = {
        "metadata": {"name": user},
        "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}],
    }
    binding = {
        "metadata": {"name": user},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": user},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    await client.create(api_client, ROLES, role, namespace=namespace)
    await client.create(api_client, ROLE_BINDINGS, binding, namespace=namespace)
    await client.create(api_client, DEPLOYMENTS, deployment("web", replicas=1), namespace=namespace)
    watches = HealthWatches(linger=0.1)
    reader = client.impersonating(api_client, user)
    try:
        web = HealthRef(DEPLOYMENTS, namespace, "web", "Deployment")
        await watches.wait(reader, [web], timeout=ROLLOUT_TIMEOUT)
    finally:
        await watches.close()
        await reader.close()


async def test_a_deployment_just_changed_is_not_healthy_from_an_older_copy(
    api_client: ApiClient, namespace: str
) -> None:
    watches = HealthWatches()
    try:
        await client.create(
            api_client, DEPLOYMENTS, deployment("web", replicas=1), namespace=namespace
        )
        web = HealthRef(DEPLOYMENTS, namespace, "web", "Deployment")
        await watches.wait(api_client, [web], timeout=ROLLOUT_TIMEOUT)

        # The watch still runs and holds the healthy generation when the next wait starts.
        unschedulable = {"spec": {"template": {"spec": {"nodeSelector": {"nowhere": "x"}}}}}
        await client.patch(api_client, DEPLOYMENTS, namespace, "web", unschedulable)
        with pytest.raises(HealthCheckError) as caught:
            await watches.wait(api_client, [web], timeout=4)
        assert f"Deployment/{namespace}/web" in str(caught.value)
    finally:
        await watches.close()
