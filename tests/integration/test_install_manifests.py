"""``manifests/install.yaml`` and the Helm chart are one install, and the ``flux`` CLI
recognises it.

The chart rendered with its defaults, as ``helm template flux-system ./helm-chart
--namespace flux-system``, must be install.yaml without the Namespace and the CRDs
(Helm installs ``crds/`` itself and ``--create-namespace`` makes the namespace): same
names, labels, annotations and specs, and no Helm-only labels either (the chart leaves
``helm.sh/chart`` and ``app.kubernetes.io/managed-by`` out, so the two installs look
the same to ``flux``). Both pass the real API server's validation (server-side apply,
``dryRun=All``, strict field validation), and the installed objects carry what
``flux check`` and ``flux logs`` look for (fluxcd/flux2 ``cmd/flux/check.go``,
``logs.go``, ``cluster_info.go``): Deployments and CRDs labelled
``app.kubernetes.io/part-of=flux``, the version label on the GitRepository CRD, pods
found through the Deployment's pod template labels, a container named ``manager``.
"""

from __future__ import annotations

import asyncio
import difflib
import io
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from fluxd import __version__
from fluxd.api import GIT_REPOSITORY, KINDS
from fluxd.apply.mapper import RESTMapper
from fluxd.kube import client
from fluxd.kube.client import ApiClient
from fluxd.kube.resources import NAMESPACES, Resource
from tests.integration.cli import REPO, run_fluxd
from tests.kustomize.oracle import helm_binary

pytestmark = pytest.mark.integration

INSTALL_YAML = REPO / "manifests" / "install.yaml"
CHART = REPO / "helm-chart"
NAMESPACE = "flux-system"
#: The release name that makes the chart's instance label the namespace's name, as
#: install.yaml has it.
RELEASE = "flux-system"
EVERY_OPTION = (
    "rbac.clusterAdmin=true,podDisruptionBudget.enabled=true,serviceMonitor.enabled=true,replicas=2"
)
PART_OF_FLUX = "app.kubernetes.io/part-of=flux"
FIELD_MANAGER = "fluxd-install-test"
#: Objects Helm does not render from templates/: it installs crds/ and --create-namespace
#: makes the namespace.
NOT_RENDERED = ("Namespace", "CustomResourceDefinition")

DEPLOYMENTS = Resource("apps", "v1", "deployments")
PODS = Resource("", "v1", "pods")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
CLUSTER_ROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False)
BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False)


def parse(text: str) -> list[dict[str, Any]]:
    return [doc for doc in YAML(typ="safe").load_all(text) if doc]


def install_yaml() -> list[dict[str, Any]]:
    return parse(INSTALL_YAML.read_text(encoding="utf-8"))


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, timeout=120, check=False
    )


def render_chart(*values: str) -> list[dict[str, Any]]:
    """``helm template flux-system ./helm-chart --namespace flux-system``, each of
    ``values`` passed as ``--set``."""
    sets = [arg for value in values for arg in ("--set", value)]
    result = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *sets)
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


def identity(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj['kind']}/{where}{meta['name']}"


def dumped(obj: dict[str, Any]) -> list[str]:
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(obj, out)
    return out.getvalue().splitlines()


def differences(expected: Sequence[dict[str, Any]], actual: Sequence[dict[str, Any]]) -> str:
    """Object by object, what ``actual`` lacks, adds or has otherwise, as unified diffs."""
    wanted = {identity(obj): obj for obj in expected}
    found = {identity(obj): obj for obj in actual}
    report = [f"missing from the chart: {key}" for key in wanted if key not in found]
    report += [f"only in the chart: {key}" for key in found if key not in wanted]
    for key in wanted.keys() & found.keys():
        if wanted[key] != found[key]:
            diff = difflib.unified_diff(
                dumped(wanted[key]),
                dumped(found[key]),
                f"install.yaml {key}",
                f"chart {key}",
                lineterm="",
            )
            report.append("\n".join(diff))
    return "\n".join(report)


def test_chart_with_default_values_renders_install_yaml() -> None:
    expected = [obj for obj in install_yaml() if obj["kind"] not in NOT_RENDERED]
    rendered = render_chart()
    drift = differences(expected, rendered)
    assert not drift, drift
    # No Helm-only label either: Helm tracks its objects by annotations.
    labels = {key for obj in rendered for key in obj["metadata"].get("labels", {})}
    assert not {"helm.sh/chart", "app.kubernetes.io/managed-by"} & labels


@pytest.mark.parametrize("values", [(), ("--set", EVERY_OPTION)], ids=["defaults", "options"])
def test_helm_lint_is_clean(values: tuple[str, ...]) -> None:
    result = helm("lint", "--strict", str(CHART), *values)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout, result.stdout
    assert "[ERROR]" not in result.stdout, result.stdout


def test_chart_options_shape_the_install() -> None:
    objects = {identity(obj): obj for obj in render_chart(EVERY_OPTION)}
    deployment = objects[f"Deployment/{NAMESPACE}/fluxd"]["spec"]
    # Two replicas under one Lease: replaced one at a time, never two reconcilers.
    assert deployment["replicas"] == 2
    assert deployment["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
    }
    assert "--leader-elect" in deployment["template"]["spec"]["containers"][0]["args"]
    budget = objects[f"PodDisruptionBudget/{NAMESPACE}/fluxd"]["spec"]
    assert budget == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "fluxd"}},
    }
    admin = objects["ClusterRoleBinding/fluxd-cluster-admin-flux-system"]
    assert admin["roleRef"]["name"] == "cluster-admin"
    assert admin["subjects"] == [
        {"kind": "ServiceAccount", "name": "fluxd", "namespace": NAMESPACE}
    ]
    monitor = objects[f"ServiceMonitor/{NAMESPACE}/fluxd"]
    assert monitor["spec"]["endpoints"][0]["port"] == "http-metrics"

    [budget_only] = [
        obj["spec"]
        for obj in render_chart(
            "podDisruptionBudget.enabled=true,podDisruptionBudget.minAvailable=50%"
        )
        if obj["kind"] == "PodDisruptionBudget"
    ]
    assert (budget_only["minAvailable"], "maxUnavailable" in budget_only) == ("50%", False)

    [image_moved] = [
        obj["spec"]["template"]["spec"]["containers"][0]["image"]
        for obj in render_chart("image.repository=registry.local/fluxd,image.tag=dev")
        if obj["kind"] == "Deployment"
    ]
    assert image_moved == "registry.local/fluxd:dev"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            "replicas=2,leaderElection.enabled=false",
            "replicas > 1 needs leaderElection.enabled: without the Lease every replica "
            "would reconcile every object",
        ),
        (
            "podDisruptionBudget.enabled=true,podDisruptionBudget.minAvailable=1,"
            "podDisruptionBudget.maxUnavailable=1",
            "podDisruptionBudget: set minAvailable or maxUnavailable, not both",
        ),
    ],
    ids=["replicas-without-leader-election", "budget-with-both-bounds"],
)
def test_chart_refuses_values_that_cannot_work(values: str, message: str) -> None:
    result = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--set", values)
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    assert result.stdout == ""


async def _apply(
    api: ApiClient, resource: Resource, obj: dict[str, Any], *, dry_run: bool
) -> dict[str, Any]:
    """Server-side apply of ``obj`` with strict field validation."""
    query = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict", "force": "true"}
    if dry_run:
        query["dryRun"] = "All"
    meta = obj["metadata"]
    return await client.request(
        api,
        "PATCH",
        resource.path(meta.get("namespace"), meta["name"]),
        query=query,
        body=obj,
        content_type="application/apply-patch+yaml",
    )


async def _gone(read: Callable[[], Awaitable[object]]) -> None:
    async with asyncio.timeout(90):
        while await read() is not None:
            await asyncio.sleep(0.2)


@pytest.fixture
async def flux_system(api_client: ApiClient) -> AsyncIterator[ApiClient]:
    """install.yaml's Namespace, applied for real (dry-run objects still need their
    namespace to exist); deleted, with what the test put in it, afterwards."""
    [namespace] = [obj for obj in install_yaml() if obj["kind"] == "Namespace"]
    await _apply(api_client, NAMESPACES, namespace, dry_run=False)
    try:
        yield api_client
    finally:
        for resource in (BINDINGS, CLUSTER_ROLES):
            page = await client.list_page(
                api_client, resource, label_selector="app.kubernetes.io/instance=flux-system"
            )
            for item in page.get("items") or []:
                await client.delete(api_client, resource, None, item["metadata"]["name"])
        await client.delete(api_client, NAMESPACES, None, NAMESPACE)
        await _gone(lambda: client.get(api_client, NAMESPACES, None, NAMESPACE, missing_ok=True))


@pytest.mark.parametrize("source", ["install.yaml", "chart with every option"])
async def test_every_object_passes_server_side_validation(
    flux_system: ApiClient, source: str
) -> None:
    api = flux_system
    objects = install_yaml() if source == "install.yaml" else render_chart(EVERY_OPTION)
    # The Prometheus Operator's CRD is not installed in the test cluster, so the API
    # server cannot validate a ServiceMonitor: that kind alone is left out.
    checked = [obj for obj in objects if obj["kind"] != "ServiceMonitor"]
    assert len(checked) == len(objects) - (source != "install.yaml")
    mapper = RESTMapper(api)
    for obj in checked:
        resource = await mapper.resource_for(obj["apiVersion"], obj["kind"])
        try:
            answer = await _apply(api, resource, obj, dry_run=True)
        except client.ApiError as error:
            raise AssertionError(f"{source}: {identity(obj)} rejected: {error}") from None
        # The server adds labels of its own (a Namespace's kubernetes.io/metadata.name).
        served = answer["metadata"]["labels"].items()
        assert obj["metadata"]["labels"].items() <= served, identity(obj)
    # A dry run writes nothing.
    deployment = await client.get(api, DEPLOYMENTS, NAMESPACE, "fluxd", missing_ok=True)
    assert deployment is None


async def test_installed_objects_are_what_the_flux_cli_looks_for(
    flux_system: ApiClient, kubeconfig: Path
) -> None:
    api = flux_system
    objects = install_yaml()
    mapper = RESTMapper(api)
    # The session's cluster already has fluxd's CRDs (from the same generated files);
    # the rest of install.yaml is applied for real.
    for obj in objects:
        resource = await mapper.resource_for(obj["apiVersion"], obj["kind"])
        await _apply(api, resource, obj, dry_run=obj["kind"] == "CustomResourceDefinition")

    # flux check: Deployments in the namespace with the part-of label, each rolled out.
    deployments = await client.list_page(api, DEPLOYMENTS, NAMESPACE, label_selector=PART_OF_FLUX)
    [deployment] = deployments["items"]
    assert deployment["metadata"]["name"] == "fluxd"

    async def rolled_out() -> bool:
        live = await client.get(api, DEPLOYMENTS, NAMESPACE, "fluxd")
        return (live.get("status") or {}).get("readyReplicas") == 1

    async with asyncio.timeout(60):
        while not await rolled_out():
            await asyncio.sleep(0.2)

    # flux check: CRDs with the part-of label, each with a stored version; flux's
    # cluster info: the version label of the GitRepository CRD.
    crds = await client.list_page(api, CRDS, label_selector=PART_OF_FLUX)
    installed = {crd["metadata"]["name"]: crd for crd in crds["items"]}
    assert set(installed) == {kind.crd_name for kind in KINDS}
    assert all(crd["status"]["storedVersions"] for crd in installed.values())
    labels = installed[GIT_REPOSITORY.crd_name]["metadata"]["labels"]
    assert labels["app.kubernetes.io/version"] == __version__

    # flux logs: pods selected by each Deployment's pod template labels, container manager.
    template = deployment["spec"]["template"]
    selector = ",".join(f"{key}={value}" for key, value in template["metadata"]["labels"].items())
    pods = await client.list_page(api, PODS, NAMESPACE, label_selector=selector)
    [pod] = pods["items"]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["manager"]
    assert pod["status"]["phase"] == "Running"

    # fluxd's own check and logs find the same objects.
    code, _, err = await run_fluxd(kubeconfig, "check", "-n", NAMESPACE)
    assert code == 0, err
    assert "✔ fluxd: deployment ready" in err.splitlines()
    assert f"► ghcr.io/fluxd/fluxd:{__version__}" in err.splitlines()
    code, _, err = await run_fluxd(kubeconfig, "logs", "--flux-namespace", NAMESPACE)
    # No kubelet serves the simulated pod's log: the command names the pod it found.
    assert code == 1
    assert err.startswith(
        f"✗ cannot read the logs of fluxd pod {NAMESPACE}/{pod['metadata']['name']}: "
    )
