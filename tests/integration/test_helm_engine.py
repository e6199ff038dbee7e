"""The Helm engine against a real control plane: release actions as ``helm`` sees them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.helm import ActionOptions, HelmActionError, Releases, load_chart
from fluxd.kube import client
from fluxd.kube.resources import CONFIGMAPS, Resource
from tests import helmcharts
from tests.kustomize.oracle import helm_binary

pytestmark = pytest.mark.integration

QUICK = ActionOptions(wait=False, timeout=60)
JOBS = Resource("batch", "v1", "jobs")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)


@pytest.fixture
def releases(kubeconfig: Path) -> Iterator[Releases]:
    engine = Releases(kubeconfig.read_text())
    yield engine
    engine.close()


def helm_cli(kubeconfig: Path, namespace: str, *args: str) -> object:
    out = subprocess.run(
        [str(helm_binary()), "--kubeconfig", str(kubeconfig), "-n", namespace, *args, "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


async def test_install_upgrade_rollback_uninstall_as_helm_sees_them(
    releases: Releases, kubeconfig: Path, namespace: str, api_client: ApiClient
) -> None:
    chart = load_chart(helmcharts.APP_CHART, helmcharts.digest(helmcharts.APP_CHART))
    assert (chart.name, chart.version, chart.app_version) == ("app", "0.1.0", "1.0")
    assert load_chart(helmcharts.APP_CHART, chart.digest) is chart

    common = {"namespace": namespace, "storage": namespace, "user": None, "options": QUICK}
    first = await releases.install(chart, "web", {"message": "one"}, **common)  # type: ignore[arg-type]
    assert (first.revision, first.status, first.chart_name) == (1, "deployed", "app")
    config = await client.get(api_client, CONFIGMAPS, namespace, "web-config")
    assert config["data"]["message"] == "one"
    managers = {entry["manager"] for entry in config["metadata"]["managedFields"]}
    assert managers == {"helm-controller"}

    second = await releases.upgrade(chart, "web", {"message": "two"}, **common)  # type: ignore[arg-type]
    assert (second.revision, dict(second.config)) == (2, {"message": "two"})
    config = await client.get(api_client, CONFIGMAPS, namespace, "web-config")
    assert config["data"]["message"] == "two"

    third = await releases.rollback("web", storage=namespace, user=None, time_limit=60, wait=False)
    assert third.revision == 3
    config = await client.get(api_client, CONFIGMAPS, namespace, "web-config")
    assert config["data"]["message"] == "one"

    listed = helm_cli(kubeconfig, namespace, "list")
    assert [(r["name"], r["revision"]) for r in listed] == [("web", "3")]  # type: ignore[attr-defined]
    revisions = await releases.history("web", storage=namespace, user=None)
    assert [(r.revision, r.status) for r in revisions] == [
        (1, "superseded"),
        (2, "superseded"),
        (3, "deployed"),
    ]
    history = helm_cli(kubeconfig, namespace, "history", "web")
    assert [r["revision"] for r in history] == [1, 2, 3]  # type: ignore[attr-defined]

    await releases.uninstall("web", storage=namespace, user=None, time_limit=60, wait=False)
    assert await releases.latest("web", storage=namespace, user=None) is None
    assert (
        await client.get(api_client, CONFIGMAPS, namespace, "web-config", missing_ok=True) is None
    )


async def test_template_error_raises_naming_the_action_and_installs_nothing(
    releases: Releases, namespace: str, api_client: ApiClient
) -> None:
    chart = load_chart(helmcharts.BROKEN_CHART, helmcharts.digest(helmcharts.BROKEN_CHART))
    with pytest.raises(HelmActionError) as raised:
        await releases.install(
            chart, "bad", {}, namespace=namespace, storage=namespace, user=None, options=QUICK
        )
    assert raised.value.action == "install"
    assert "configmap.yaml" in raised.value.message
    assert await releases.latest("bad", storage=namespace, user=None) is None
    assert await client.get(api_client, CONFIGMAPS, namespace, "ok", missing_ok=True) is None


async def test_skip_crds_and_disable_hooks_and_max_history_have_their_effect(
    releases: Releases, kubeconfig: Path, namespace: str, api_client: ApiClient
) -> None:
    crd_chart = load_chart(helmcharts.CRD_CHART, helmcharts.digest(helmcharts.CRD_CHART))
    skip = ActionOptions(wait=False, timeout=60, skip_crds=True)
    await releases.install(
        crd_chart, "nocrd", {}, namespace=namespace, storage=namespace, user=None, options=skip
    )
    crd = await client.get(api_client, CRDS, None, "widgets.charts.example.com", missing_ok=True)
    assert crd is None
    await releases.install(
        crd_chart, "crd", {}, namespace=namespace, storage=namespace, user=None, options=QUICK
    )
    try:
        assert await client.get(api_client, CRDS, None, "widgets.charts.example.com")
    finally:
        await client.delete(api_client, CRDS, None, "widgets.charts.example.com")
    assert await client.get(api_client, CONFIGMAPS, namespace, "nocrd-config")

    tested = load_chart(helmcharts.TEST_HOOK_CHART, helmcharts.digest(helmcharts.TEST_HOOK_CHART))
    no_hooks = ActionOptions(wait=False, timeout=60, disable_hooks=True, max_history=2)
    release = await releases.install(
        tested, "hooked", {}, namespace=namespace, storage=namespace, user=None, options=no_hooks
    )
    assert [hook.name for hook in release.test_hooks] == ["hooked-test"]
    for _ in range(3):
        release = await releases.upgrade(
            tested,
            "hooked",
            {},
            namespace=namespace,
            storage=namespace,
            user=None,
            options=no_hooks,
        )
    assert release.revision == 4
    history = helm_cli(kubeconfig, namespace, "history", "hooked")
    assert [r["revision"] for r in history] == [3, 4]  # type: ignore[attr-defined]


async def test_cancelled_install_is_cancelled_in_helm(
    releases: Releases, namespace: str, api_client: ApiClient
) -> None:
    chart = load_chart(helmcharts.HOOK_JOB_CHART, helmcharts.digest(helmcharts.HOOK_JOB_CHART))
    waiting = ActionOptions(wait=False, timeout=600)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:

            async def install() -> None:
                await releases.install(
                    chart,
                    "slow",
                    {},
                    namespace=namespace,
                    storage=namespace,
                    user=None,
                    options=waiting,
                )

            group.start_soon(install)
            while (
                await client.get(api_client, JOBS, namespace, "slow-setup", missing_ok=True) is None
            ):
                await anyio.sleep(0.2)
            scope.cancel()
    release = await releases.latest("slow", storage=namespace, user=None)
    while release is not None and release.pending:
        await anyio.sleep(0.2)
        release = await releases.latest("slow", storage=namespace, user=None)
    assert release is not None
    assert release.status == "failed"


async def test_offline_render_gives_manifests_and_template_errors_name_the_file() -> None:
    chart = load_chart(helmcharts.APP_CHART, helmcharts.digest(helmcharts.APP_CHART))
    assert chart.default_values == {"replicaCount": 1, "message": "hello"}
    rendered = await chart.render({"replicaCount": 3}, name="r", namespace="ns")
    assert "replicas: 3" in rendered["app/templates/deployment.yaml"]
    broken = load_chart(helmcharts.BROKEN_CHART, helmcharts.digest(helmcharts.BROKEN_CHART))
    with pytest.raises(HelmActionError, match=r"configmap\.yaml") as raised:
        await broken.render({}, name="r", namespace="ns")
    assert raised.value.action == "render"


async def test_client_side_apply_reuse_values_and_labels_have_their_effect(
    releases: Releases, kubeconfig: Path, namespace: str, api_client: ApiClient
) -> None:
    chart = load_chart(helmcharts.APP_CHART, helmcharts.digest(helmcharts.APP_CHART))
    csa = ActionOptions(wait=False, timeout=60, server_side_apply=False, labels={"team": "a"})
    common = {"namespace": namespace, "storage": namespace, "user": None}
    await releases.install(chart, "csa", {"message": "kept"}, options=csa, **common)  # type: ignore[arg-type]
    config = await client.get(api_client, CONFIGMAPS, namespace, "csa-config")
    assert {e["operation"] for e in config["metadata"]["managedFields"]} == {"Update"}
    listed = helm_cli(kubeconfig, namespace, "list", "--selector", "team=a")
    assert [r["name"] for r in listed] == ["csa"]  # type: ignore[attr-defined]

    reuse = ActionOptions(wait=False, timeout=60, reuse_values=True)
    upgraded = await releases.upgrade(chart, "csa", {"replicaCount": 2}, options=reuse, **common)  # type: ignore[arg-type]
    assert dict(upgraded.config) == {"message": "kept", "replicaCount": 2}
    config = await client.get(api_client, CONFIGMAPS, namespace, "csa-config")
    assert {e["operation"] for e in config["metadata"]["managedFields"]} == {"Apply"}
