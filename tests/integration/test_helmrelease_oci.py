"""HelmRelease ``chartRef`` to an OCIRepository: a chart pushed to a real registry (Debian's
docker-registry on loopback), pulled as the OCIRepository's artifact, released with the SDK.

What a user sees: the release's chart version carries the artifact digest as build
metadata (``1.0.0+<12 hex>``), as Flux releases OCI charts, so re-pushing the same tag
with other content upgrades the release; a tag that is not the chart's version is
refused with Flux's ``ChartMutateError`` and nothing is released.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fluxd.api import HELM_RELEASE, OCI_REPOSITORY
from fluxd.sources import oci
from tests.chartservers import package_chart
from tests.integration.conftest import Fluxd
from tests.integration.test_helmrelease import TEMPLATE, helm_cli, message, settings
from tests.integration.test_ocirepository import push_layer, reconcile_now
from tests.ociregistry import OCIRegistry

pytestmark = pytest.mark.integration


def chart(version: str, greeting: str) -> oci.PushLayer:
    files = {"templates/cm.yaml": TEMPLATE, "values.yaml": f"greeting: {greeting}\n"}
    return oci.PushLayer(package_chart("demo", version, files), oci.HELM_CHART_LAYER)


def source_spec(registry: OCIRegistry, url: str, tag: str) -> dict[str, Any]:
    return {
        "interval": "1h",
        "url": url,
        "insecure": registry.insecure,
        "ref": {"tag": tag},
        "layerSelector": {"mediaType": oci.HELM_CHART_LAYER, "operation": "copy"},
    }


def release_spec(source: str) -> dict[str, Any]:
    return {"interval": "1h", "chartRef": {"kind": "OCIRepository", "name": source}}


async def test_oci_chart_is_released_with_its_digest_and_a_repush_upgrades(
    fluxd: Fluxd, oci_registry: OCIRegistry, kubeconfig: Path
) -> None:
    url = oci_registry.fresh_url("demo")
    first = await push_layer(oci_registry, url, "1.0.0", chart("1.0.0", "hello"))
    await fluxd.create(OCI_REPOSITORY, "demo", source_spec(oci_registry, url, "1.0.0"))
    await fluxd.create(HELM_RELEASE, "web", release_spec("demo"))
    obj = await fluxd.wait_ready(HELM_RELEASE, "web")

    version = f"1.0.0+{first.removeprefix('sha256:')[:12]}"
    namespace = fluxd.namespace
    assert message(obj) == (
        f"Helm install succeeded for release {namespace}/web.v1 with chart demo@{version}"
    )
    status = obj["status"]
    assert status["lastAttemptedRevision"] == version
    assert status["lastAttemptedRevisionDigest"] == first
    assert status["history"][0]["ociDigest"] == first
    assert "helmChart" not in status, "no HelmChart is made for a chartRef"
    made = await settings(fluxd, "web-settings")
    assert made is not None
    assert made["data"]["greeting"] == "hello"
    listed = helm_cli(kubeconfig, "list", "-n", namespace)
    assert [(r["name"], r["chart"]) for r in listed] == [("web", f"demo-{version}")]

    second = await push_layer(oci_registry, url, "1.0.0", chart("1.0.0", "again"))
    assert second != first
    await reconcile_now(fluxd, "demo")
    upgraded = await fluxd.wait_for(
        HELM_RELEASE,
        "web",
        lambda o: (o.get("status") or {}).get("lastReleaseRevision") == 2,
        "the upgrade to the re-pushed tag",
    )
    assert upgraded["status"]["history"][0]["chartVersion"] == (
        f"1.0.0+{second.removeprefix('sha256:')[:12]}"
    )
    made = await settings(fluxd, "web-settings")
    assert made is not None
    assert made["data"]["greeting"] == "again"


async def test_a_tag_that_is_not_the_chart_version_is_refused(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    url = oci_registry.fresh_url("mislabelled")
    await push_layer(oci_registry, url, "2.0.0", chart("1.0.0", "hello"))
    await fluxd.create(OCI_REPOSITORY, "mislabelled", source_spec(oci_registry, url, "2.0.0"))
    await fluxd.create(HELM_RELEASE, "bad", release_spec("mislabelled"))
    obj = await fluxd.wait_not_ready(HELM_RELEASE, "bad", "ChartMutateError")
    assert message(obj) == "artifact revision 2.0.0 does not match chart version 1.0.0"
    assert await settings(fluxd, "bad-settings") is None, "nothing was released"


async def test_a_missing_oci_repository_is_waited_for(fluxd: Fluxd) -> None:
    await fluxd.create(HELM_RELEASE, "waiting", release_spec("absent"))
    obj = await fluxd.wait_not_ready(HELM_RELEASE, "waiting", "SourceNotReady")
    assert "OCIRepository" in message(obj)
    assert "absent" in message(obj)
