"""The product's own HelmRelease examples (``tests/fixtures/seeds``), applied as written.

Seed 000 releases ``nginx`` 1.0.0 with ``helm.toolkit.fluxcd.io/v2``; seed 002 releases
``redis`` '17.3.x' with inline values through ``helm.toolkit.fluxcd.io/v2beta1``. Only
the repository each names is pointed at a chart repository on loopback, holding charts
of those names; the HelmReleases are created byte for byte from the seed files, in the
``default`` namespace they name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client import ApiClient

from fluxd.api import HELM_RELEASE, HELM_REPOSITORY
from fluxd.kube import client
from fluxd.kube.resources import CONFIGMAPS, Resource
from tests.chartservers import ChartRepository, package_chart
from tests.integration.conftest import Fluxd, namespaced_fluxd, ready_reason

pytestmark = pytest.mark.integration

SEEDS = Path(__file__).parent.parent / "fixtures" / "seeds"
TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}
data:
  version: {{ .Chart.Version | quote }}
  architecture: {{ .Values.architecture | default "replication" | quote }}
  auth: {{ .Values.auth.enabled | default false | quote }}
"""


def seed_release(seed: str) -> dict[str, Any]:
    (release,) = [
        doc
        for doc in yaml.safe_load_all((SEEDS / seed).read_text())
        if doc and doc.get("kind") == "HelmRelease"
    ]
    return dict(release)


@pytest.fixture
async def default_fluxd(api_client: ApiClient) -> AsyncIterator[Fluxd]:
    async with namespaced_fluxd(api_client, "default") as running:
        yield running


def publish(repo: ChartRepository, name: str, *versions: str) -> None:
    for version in versions:
        files = {"templates/cm.yaml": TEMPLATE, "values.yaml": "auth:\n  enabled: true\n"}
        repo.publish(package_chart(name, version, files), name, version)


@pytest.mark.parametrize(
    ("seed", "chart", "versions", "expected"),
    [
        ("000_intro.yaml", "nginx", ("1.0.0", "1.1.0"), "1.0.0"),
        ("002_guide.yaml", "redis", ("17.2.9", "17.3.1", "17.3.11", "17.4.0"), "17.3.11"),
    ],
)
async def test_seed_helm_releases_install_as_written(
    default_fluxd: Fluxd,
    chart_repo: ChartRepository,
    seed: str,
    chart: str,
    versions: tuple[str, ...],
    expected: str,
) -> None:
    release = seed_release(seed)
    source = release["spec"]["chart"]["spec"]["sourceRef"]["name"]
    publish(chart_repo, chart, *versions)
    await default_fluxd.create(HELM_REPOSITORY, source, {"interval": "1h", "url": chart_repo.url})
    version = release["apiVersion"].rpartition("/")[2]  # v2, or v2beta1 as the seed writes
    served = Resource(HELM_RELEASE.group, version, HELM_RELEASE.plural)
    await client.create(default_fluxd.api, served, release)
    name = release["metadata"]["name"]
    ready = await default_fluxd.wait_ready(HELM_RELEASE, name)
    assert ready_reason(ready) == ("True", "InstallSucceeded")
    assert ready["status"]["history"][0]["chartVersion"] == expected

    made = await client.get(default_fluxd.api, CONFIGMAPS, "default", f"{name}-{chart}")
    assert made["data"]["version"] == expected
    values = release["spec"].get("values") or {}
    if values:
        assert made["data"]["architecture"] == values["architecture"]
        assert made["data"]["auth"] == "false", "the seed's values override the chart's"
