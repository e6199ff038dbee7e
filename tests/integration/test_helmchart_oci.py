"""HelmChart from a HelmRepository of ``type: oci``: charts in a real registry (Debian's
docker-registry on loopback), pushed as Helm pushes them (and once by ``helm push`` itself).

What a user sees: the newest tag in range becomes the artifact, stored byte for byte as
pushed, with the chart version (``+`` restored from Helm's ``_`` tag) as its revision; a
HelmRelease installs it; the registry's credentials come from the HelmRepository's
Secrets (basic keys or a dockerconfigjson, a CA), and a refused login, a missing tag or a
range nothing matches ends in Flux's reason with a message naming it, the OCI
HelmRepository itself staying the plain address holder Flux keeps.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from fluxd.api import HELM_CHART, HELM_RELEASE, HELM_REPOSITORY
from fluxd.sources import oci
from tests.chartservers import package_chart
from tests.integration.conftest import Fluxd, ready_reason
from tests.integration.test_helmchart import condition, message
from tests.integration.test_helmrelease import TEMPLATE, settings
from tests.kustomize.oracle import helm_binary
from tests.ociregistry import OCIRegistry, docker_config

pytestmark = pytest.mark.integration

HELM_CONFIG_MEDIA_TYPE = "application/vnd.cncf.helm.config.v1+json"


async def push_chart(
    registry: OCIRegistry,
    repository_url: str,
    name: str,
    version: str,
    greeting: str = "hi",
    template: str = TEMPLATE,
) -> bytes:
    """Push chart ``name`` in ``version`` under ``repository_url`` as ``helm push`` lays
    it out (config of Helm's media type, one chart layer, ``+`` as ``_`` in the tag)."""
    files = {"templates/cm.yaml": template, "values.yaml": f"greeting: {greeting}\n"}
    archive = package_chart(name, version, files)
    tag = version.replace("+", "_")
    reference = oci.parse_reference(f"{repository_url}/{name}:{tag}", insecure=registry.insecure)
    config = json.dumps({"apiVersion": "v2", "name": name, "version": version}).encode()
    await oci.push_artifact(
        reference,
        [oci.PushLayer(archive, oci.HELM_CHART_LAYER)],
        annotations={},
        config=config,
        config_media_type=HELM_CONFIG_MEDIA_TYPE,
        auth=registry.auth,
    )
    return archive


def helm_push(archive: Path, url: str, registry_config: Path) -> None:
    """``helm push`` of a packaged chart to a plain-HTTP registry."""
    subprocess.run(
        [str(helm_binary()), "push", str(archive), url, "--plain-http"],
        env={**os.environ, "HELM_REGISTRY_CONFIG": str(registry_config)},
        capture_output=True,
        timeout=60,
        check=True,
    )


def repository_spec(registry: OCIRegistry, url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "oci", "url": url, "insecure": registry.insecure, **extra}


def chart_spec(chart: str, version: str | None = None, repository: str = "oci") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "interval": "1h",
        "chart": chart,
        "sourceRef": {"kind": "HelmRepository", "name": repository},
    }
    if version is not None:
        spec["version"] = version
    return spec


async def test_the_newest_matching_tag_is_pulled_as_pushed(
    fluxd: Fluxd, oci_registry: OCIRegistry, tmp_path: Path
) -> None:
    url = oci_registry.fresh_url("charts")
    archives = {
        version: await push_chart(oci_registry, url, "demo", version)
        for version in ("1.0.0", "1.1.0", "1.2.0+build.1", "2.0.0-rc.1")
    }
    await fluxd.create(HELM_REPOSITORY, "oci", repository_spec(oci_registry, url))
    await fluxd.create(HELM_CHART, "ranged", chart_spec("demo", "1.x"))
    obj = await fluxd.wait_ready(HELM_CHART, "ranged")

    status = obj["status"]
    artifact = status["artifact"]
    assert artifact["revision"] == "1.2.0+build.1", "the '_' of the tag read back as '+'"
    assert artifact["path"] == f"helmchart/{fluxd.namespace}/ranged/demo-1.2.0+build.1.tgz"
    digest = hashlib.sha256(archives["1.2.0+build.1"]).hexdigest()
    assert artifact["digest"] == f"sha256:{digest}"
    assert await fluxd.fetch_artifact(artifact["url"]) == archives["1.2.0+build.1"]
    assert status["observedChartName"] == "demo"
    assert "observedSourceArtifactRevision" not in status, "an OCI repository has no artifact"
    assert ready_reason(obj) == ("True", "ChartPullSucceeded")
    assert message(obj) == "pulled 'demo' chart with version '1.2.0+build.1'"
    repository = await fluxd.get(HELM_REPOSITORY, "oci")
    assert "status" not in repository or not repository["status"], "kept as Flux keeps it"

    await fluxd.create(HELM_CHART, "latest", chart_spec("demo"))
    latest = await fluxd.wait_ready(HELM_CHART, "latest")
    assert latest["status"]["artifact"]["revision"] == "1.2.0+build.1", "no prerelease"

    await fluxd.create(HELM_CHART, "exact", chart_spec("demo", "1.0.0"))
    exact = await fluxd.wait_ready(HELM_CHART, "exact")
    assert exact["status"]["artifact"]["revision"] == "1.0.0"

    helm_pushed = package_chart("pushed", "0.3.0", {"templates/cm.yaml": TEMPLATE})
    archive_path = tmp_path / "pushed-0.3.0.tgz"
    archive_path.write_bytes(helm_pushed)
    await anyio.to_thread.run_sync(helm_push, archive_path, url, tmp_path / "registry.json")
    await fluxd.create(HELM_CHART, "by-helm", chart_spec("pushed", ">=0.1.0"))
    by_helm = await fluxd.wait_ready(HELM_CHART, "by-helm")
    assert by_helm["status"]["artifact"]["revision"] == "0.3.0"
    assert await fluxd.fetch_artifact(by_helm["status"]["artifact"]["url"]) == helm_pushed


async def test_a_helmrelease_installs_a_chart_from_an_oci_repository(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    url = oci_registry.fresh_url("release")
    await push_chart(oci_registry, url, "demo", "0.1.0", greeting="from-oci")
    await fluxd.create(HELM_REPOSITORY, "oci", repository_spec(oci_registry, url))
    await fluxd.create(
        HELM_RELEASE,
        "web",
        {"interval": "1h", "chart": {"spec": chart_spec("demo", "0.1.x")}},
    )
    release = await fluxd.wait_ready(HELM_RELEASE, "web")
    assert release["status"]["lastAttemptedRevision"] == "0.1.0"
    made = await settings(fluxd, "web-settings")
    assert made is not None
    assert made["data"]["greeting"] == "from-oci"


async def test_registry_credentials_come_from_the_repository_secrets(
    fluxd: Fluxd, oci_registry_tls: OCIRegistry
) -> None:
    registry = oci_registry_tls
    assert registry.ca_pem is not None
    assert registry.username
    assert registry.password
    url = registry.fresh_url("private")
    await push_chart(registry, url, "secret-app", "3.0.0")
    await fluxd.secret("ca", {"ca.crt": registry.ca_pem})
    await fluxd.secret("basic", {"username": registry.username, "password": registry.password})
    await fluxd.secret(
        "docker",
        {".dockerconfigjson": docker_config(registry.host, registry.username, registry.password)},
    )
    await fluxd.secret("wrong", {"username": registry.username, "password": "not-it"})
    ca = {"certSecretRef": {"name": "ca"}}
    for name, secret in (("basic", "basic"), ("docker", "docker"), ("wrong", "wrong")):
        spec = repository_spec(registry, url, secretRef={"name": secret}, **ca)
        await fluxd.create(HELM_REPOSITORY, name, spec)
    await fluxd.create(HELM_REPOSITORY, "anonymous", repository_spec(registry, url, **ca))

    for name in ("basic", "docker"):
        await fluxd.create(HELM_CHART, name, chart_spec("secret-app", repository=name))
        obj = await fluxd.wait_ready(HELM_CHART, name)
        assert obj["status"]["artifact"]["revision"] == "3.0.0"

    for name in ("wrong", "anonymous"):
        await fluxd.create(HELM_CHART, name, chart_spec("secret-app", repository=name))
        refused = await fluxd.wait_not_ready(HELM_CHART, name, "AuthenticationFailed")
        assert "failed to authenticate with the Helm repository" in message(refused)
        assert "401" in message(refused)
        assert (condition(refused, "FetchFailed") or {}).get("status") == "True"
        assert "artifact" not in refused["status"], "nothing pulled"

    await fluxd.create(
        HELM_REPOSITORY,
        "no-secret",
        repository_spec(registry, url, secretRef={"name": "absent"}, **ca),
    )
    await fluxd.create(HELM_CHART, "no-secret", chart_spec("secret-app", repository="no-secret"))
    missing = await fluxd.wait_not_ready(HELM_CHART, "no-secret", "AuthenticationFailed")
    assert "absent" in message(missing)
    assert "spec.secretRef" in message(missing)


async def test_missing_tags_and_unmatched_ranges_fail_with_flux_reasons(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    url = oci_registry.fresh_url("bad")
    await push_chart(oci_registry, url, "demo", "1.0.0")
    await fluxd.create(HELM_REPOSITORY, "oci", repository_spec(oci_registry, url))

    await fluxd.create(HELM_CHART, "no-tag", chart_spec("demo", "9.9.9"))
    no_tag = await fluxd.wait_not_ready(HELM_CHART, "no-tag", "ChartPullError")
    assert message(no_tag).startswith(
        "chart pull error: failed to download chart for remote reference:"
    )
    assert "manifest '9.9.9'" in message(no_tag)
    assert "404" in message(no_tag)

    await fluxd.create(HELM_CHART, "no-match", chart_spec("demo", "5.x"))
    no_match = await fluxd.wait_not_ready(HELM_CHART, "no-match", "ChartPullError")
    assert message(no_match) == (
        "chart pull error: failed to get chart version for remote reference: could not "
        "locate a version matching provided version string 5.x"
    )

    await fluxd.create(HELM_CHART, "no-chart", chart_spec("absent", "1.x"))
    no_chart = await fluxd.wait_not_ready(HELM_CHART, "no-chart", "ChartPullError")
    assert "the tag list" in message(no_chart)
    assert "absent" in message(no_chart)

    await fluxd.create(HELM_REPOSITORY, "cloud", repository_spec(oci_registry, url, provider="aws"))
    await fluxd.create(HELM_CHART, "cloud", chart_spec("demo", repository="cloud"))
    cloud = await fluxd.wait_for(
        HELM_CHART,
        "cloud",
        lambda o: (condition(o, "Stalled") or {}).get("reason") == "UnsupportedField",
        "Stalled/UnsupportedField",
    )
    assert "spec.provider 'aws'" in message(cloud)

    await fluxd.create(
        HELM_REPOSITORY, "not-oci", {"type": "oci", "url": f"https://{oci_registry.host}/x"}
    )
    await fluxd.create(HELM_CHART, "not-oci", chart_spec("demo", repository="not-oci"))
    not_oci = await fluxd.wait_for(
        HELM_CHART,
        "not-oci",
        lambda o: (condition(o, "Stalled") or {}).get("reason") == "URLInvalid",
        "Stalled/URLInvalid",
    )
    assert f"invalid Helm repository URL 'https://{oci_registry.host}/x'" in message(not_oci)

    await fluxd.create(HELM_CHART, "good", chart_spec("demo", "1.0.0"))
    good = await fluxd.wait_ready(HELM_CHART, "good")
    assert good["status"]["artifact"]["revision"] == "1.0.0", "the daemon carries on"
