"""``fluxd install`` and ``fluxd uninstall`` against real control planes.

Uninstalling deletes fluxd's CRDs, which every other test shares, so the whole
install -> use -> uninstall story runs in a control plane of its own, started for this
module. The shorter stories (export, a timeout, no cluster) use the session's cluster.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from fluxd.api import GIT_REPOSITORY, KINDS
from fluxd.dev.controlplane import LocalControlPlane
from fluxd.kube import client
from fluxd.kube.client import ApiClient, connect
from fluxd.kube.objects import resource_of
from fluxd.kube.resources import Resource
from tests.integration.cli import REPO, run_fluxd

pytestmark = pytest.mark.integration

CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
CONFIG_MAPS = Resource("", "v1", "configmaps")
DEPLOYMENTS = Resource("apps", "v1", "deployments")
CLUSTER_ROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False)
QUOTAS = Resource("", "v1", "resourcequotas")
BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False)


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[Path]:
    """A control plane of this module's own, without fluxd's CRDs."""
    with LocalControlPlane() as plane:
        yield plane.kubeconfig


@pytest.fixture
async def own_api(own_cluster: Path) -> AsyncIterator[ApiClient]:
    api = await connect(str(own_cluster))
    try:
        yield api
    finally:
        await api.close()


async def _gone(check: Any, what: str, seconds: float = 60) -> None:
    async with asyncio.timeout(seconds):
        while await check() is not None:
            await asyncio.sleep(0.2)


async def test_install_then_uninstall_keeps_the_workloads(
    own_cluster: Path, own_api: ApiClient
) -> None:
    code, out, err = await run_fluxd(own_cluster, "install", "--timeout", "2m")
    assert (code, out) == (0, ""), err
    lines = err.splitlines()
    assert lines[0] == "► installing components in flux-system namespace"
    assert "CustomResourceDefinition/gitrepositories.source.toolkit.fluxcd.io created" in lines
    assert "Deployment/flux-system/fluxd created" in lines
    assert lines[-3:] == [
        "◎ verifying installation",
        "✔ fluxd: deployment ready",
        "✔ install finished",
    ]
    crd = await client.get(own_api, CRDS, None, GIT_REPOSITORY.crd_name)
    assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "flux"
    # Least privilege unless asked: no cluster-admin binding.
    assert (
        await client.get(
            own_api, BINDINGS, None, "fluxd-cluster-admin-flux-system", missing_ok=True
        )
        is None
    )

    code, _, err = await run_fluxd(own_cluster, "check")
    assert code == 0, err
    assert err.splitlines()[-1] == "✔ all checks passed"

    # Installing again changes nothing and still ends ready.
    code, _, err = await run_fluxd(own_cluster, "install")
    assert code == 0, err
    assert "Deployment/flux-system/fluxd unchanged" in err.splitlines()

    # A workload fluxd applied, and a Flux object holding fluxd's finalizer (no daemon
    # runs here to remove it: uninstall must, or the CRD deletion would hang).
    await client.create(own_api, NAMESPACES, {"metadata": {"name": "apps"}})
    workload = {
        "metadata": {
            "name": "web",
            "namespace": "apps",
            "labels": {"kustomize.toolkit.fluxcd.io/name": "apps"},
        }
    }
    await client.create(own_api, CONFIG_MAPS, workload)
    repository = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "apps", "namespace": "apps", "finalizers": ["finalizers.fluxcd.io"]},
        "spec": {"url": "https://example.invalid/apps.git", "interval": "1m"},
    }
    await client.create(own_api, resource_of(GIT_REPOSITORY), repository)

    # Without -s it asks; "n" aborts and deletes nothing.
    code, _, err = await run_fluxd(own_cluster, "uninstall", answer="n\n")
    assert code == 1
    assert "Are you sure you want to delete fluxd and its custom resource definitions? [y/N]" in err
    assert await client.get(own_api, DEPLOYMENTS, "flux-system", "fluxd", missing_ok=True)

    code, out, err = await run_fluxd(own_cluster, "uninstall", "--dry-run")
    assert code == 0, err
    assert "✔ GitRepository/apps/apps finalizers deleted (dry run)" in err.splitlines()
    assert await client.get(own_api, DEPLOYMENTS, "flux-system", "fluxd", missing_ok=True)

    code, out, err = await run_fluxd(own_cluster, "uninstall", "--silent")
    assert code == 0, err
    lines = err.splitlines()
    assert lines.index("✔ Deployment/flux-system/fluxd deleted") < lines.index(
        "✔ GitRepository/apps/apps finalizers deleted"
    )
    assert lines[-1] == "✔ uninstall finished"
    for kind in KINDS:
        await _gone(
            lambda k=kind: client.get(own_api, CRDS, None, k.crd_name, missing_ok=True),
            kind.crd_name,
        )
    await _gone(
        lambda: client.get(own_api, NAMESPACES, None, "flux-system", missing_ok=True), "namespace"
    )
    assert (
        await client.get(own_api, CLUSTER_ROLES, None, "fluxd-flux-system", missing_ok=True) is None
    )
    # The workload stays.
    assert await client.get(own_api, CONFIG_MAPS, "apps", "web")


async def test_export_prints_install_yaml_and_applies_nothing(kubeconfig: Path) -> None:
    code, out, err = await run_fluxd(kubeconfig, "install", "--export")
    assert (code, err) == (0, "")
    assert out == (REPO / "manifests" / "install.yaml").read_text(encoding="utf-8")

    code, out, _ = await run_fluxd(
        kubeconfig,
        "install",
        "--export",
        "-n",
        "tenant",
        "--cluster-admin",
        "--image",
        "local/fluxd:dev",
    )
    documents = list(YAML(typ="safe").load_all(out))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    assert deployment["metadata"]["namespace"] == "tenant"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "local/fluxd:dev"
    admin = next(d for d in documents if d["metadata"]["name"] == "fluxd-cluster-admin-tenant")
    assert admin["roleRef"]["name"] == "cluster-admin"


async def test_install_that_does_not_get_ready_in_time_says_so(
    kubeconfig: Path, api_client: ApiClient
) -> None:
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    await client.create(api_client, NAMESPACES, {"metadata": {"name": namespace}})
    # A quota of no pods: the Deployment is applied but can never become ready.
    quota = {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    await client.create(api_client, QUOTAS, quota, namespace=namespace)
    try:
        code, out, err = await run_fluxd(kubeconfig, "install", "-n", namespace, "--timeout", "3s")
        assert (code, out) == (1, "")
        assert err.splitlines()[-1].startswith(
            f"✗ timeout waiting for Deployment {namespace}/fluxd to be ready: 0/1 replicas ready"
        ), err
        assert f"Deployment/{namespace}/fluxd created" in err.splitlines()
    finally:
        await client.delete(api_client, NAMESPACES, None, namespace)
        await client.delete(api_client, BINDINGS, None, f"fluxd-{namespace}")
        await client.delete(api_client, CLUSTER_ROLES, None, f"fluxd-{namespace}")


async def test_install_without_a_cluster_says_so(tmp_path: Path) -> None:
    unreachable = tmp_path / "kubeconfig"
    unreachable.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
        "users: [{name: u, user: {token: t}}]\n",
        encoding="utf-8",
    )
    code, out, err = await run_fluxd(unreachable, "install", "--timeout", "5s")
    assert (code, out) == (1, "")
    started, failed = err.splitlines()
    assert started == "► installing components in flux-system namespace"
    assert failed.startswith("✗ cannot reach the Kubernetes API server: "), err
