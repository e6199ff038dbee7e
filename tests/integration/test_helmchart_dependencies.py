"""HelmChart from a chart directory in git whose dependencies are not all vendored: fetched
as ``helm dependency build`` fetches them, from real chart repositories on loopback.

What a user sees: an umbrella chart's dependencies from an HTTPS repository (with the
credentials of the HelmRepository serving that URL), from an OCI registry, from another
directory of the same repository (``file://``), under an ``alias``, and vendored in
``charts/``, all packaged into the chart artifact, and a HelmRelease of it creates every
subchart's objects. A dependency that is missing, matches no version, sits on an
unreachable repository or names a repository alias is ``DependencyBuildError`` naming
it, the daemon carrying on, and the chart recovers once the source is fixed.
"""

from __future__ import annotations

import io
import tarfile
from typing import Any

import pytest
import yaml

from fluxd.api import GIT_REPOSITORY, HELM_CHART, HELM_RELEASE, HELM_REPOSITORY
from fluxd.kube import client
from fluxd.kube.resources import CONFIGMAPS
from tests.chartservers import ChartRepository, package_chart
from tests.gitservers import GitHTTPServer, GitRemote, free_port
from tests.integration.conftest import Fluxd, ready_reason
from tests.integration.test_helmchart import condition, message, reconcile_now
from tests.integration.test_helmchart_oci import push_chart
from tests.ociregistry import OCIRegistry

pytestmark = pytest.mark.integration

#: Each chart, subchart or not, makes one ConfigMap named after the release and itself.
NAMED_BY_CHART = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}
data:
  version: {{ .Chart.Version | quote }}
"""


def chart_yaml(name: str, version: str, dependencies: list[dict[str, str]]) -> str:
    document: dict[str, Any] = {"apiVersion": "v2", "name": name, "version": version}
    if dependencies:
        document["dependencies"] = dependencies
    return str(yaml.safe_dump(document, sort_keys=False))


def archive_files(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: (tar.extractfile(m) or io.BytesIO()).read() for m in tar if m.isfile()}


def git_chart(path: str) -> dict[str, Any]:
    return {"interval": "1h", "chart": path, "sourceRef": {"kind": "GitRepository", "name": "repo"}}


async def test_dependencies_are_fetched_packaged_and_released(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    chart_repo_https: ChartRepository,
    oci_registry: OCIRegistry,
) -> None:
    https = chart_repo_https
    assert https.ca_pem is not None
    for version in ("1.0.0", "1.1.0"):
        web = package_chart("web", version, {"templates/cm.yaml": NAMED_BY_CHART})
        https.publish(web, "web", version)
    await fluxd.secret("https-auth", {"username": "chart-user", "password": "chart-pa55word"})
    await fluxd.secret("https-ca", {"ca.crt": https.ca_pem})
    await fluxd.create(
        HELM_REPOSITORY,
        "web-charts",
        {
            "interval": "1h",
            "url": https.url,
            "secretRef": {"name": "https-auth"},
            "certSecretRef": {"name": "https-ca"},
        },
    )
    await fluxd.wait_ready(HELM_REPOSITORY, "web-charts")
    registry_url = oci_registry.fresh_url("deps")
    await push_chart(oci_registry, registry_url, "cache", "0.4.0", template=NAMED_BY_CHART)
    await fluxd.create(
        HELM_REPOSITORY, "registry", {"type": "oci", "url": f"{registry_url}/", "insecure": True}
    )
    vendored = package_chart("vendored", "1.0.0", {"templates/cm.yaml": NAMED_BY_CHART})
    dependencies = [
        {"name": "web", "version": "1.x", "repository": https.url},
        {"name": "web", "alias": "frontend", "version": "1.0.0", "repository": f"{https.url}/"},
        {"name": "cache", "version": ">=0.1.0", "repository": registry_url},
        {"name": "local", "version": "0.2.x", "repository": "file://../local"},
        {"name": "vendored", "version": "1.0.0"},
    ]
    git_remote.commit(
        {
            "charts/umbrella/Chart.yaml": chart_yaml("umbrella", "0.1.0", dependencies),
            "charts/umbrella/templates/cm.yaml": NAMED_BY_CHART,
            "charts/umbrella/charts/vendored-1.0.0.tgz": vendored,
            "charts/local/Chart.yaml": chart_yaml("local", "0.2.1", []),
            "charts/local/templates/cm.yaml": NAMED_BY_CHART,
        }
    )
    await fluxd.create(GIT_REPOSITORY, "repo", {"interval": "1h", "url": git_http.url(git_remote)})
    await fluxd.create(HELM_CHART, "umbrella", git_chart("./charts/umbrella"))
    obj = await fluxd.wait_ready(HELM_CHART, "umbrella")

    assert ready_reason(obj) == ("True", "ChartPackageSucceeded")
    assert obj["status"]["artifact"]["revision"] == "0.1.0"
    files = archive_files(await fluxd.fetch_artifact(obj["status"]["artifact"]["url"]))
    subcharts = {
        path.split("/")[2]: yaml.safe_load(files[path])
        for path in files
        if path.startswith("umbrella/charts/") and path.endswith("/Chart.yaml")
    }
    assert {name: (c["name"], c["version"]) for name, c in subcharts.items()} == {
        "web": ("web", "1.1.0"),
        "frontend": ("frontend", "1.0.0"),
        "cache": ("cache", "0.4.0"),
        "local": ("local", "0.2.1"),
    }
    assert files["umbrella/charts/vendored-1.0.0.tgz"] == vendored, "vendored kept as it is"
    assert https.fetched("index.yaml") == 1, "the HelmRepository's stored index is used"
    downloads = [auth for path, auth in https.requests if path.startswith("charts/web-")]
    assert len(downloads) == 2
    assert all(auth and auth.startswith("Basic ") for auth in downloads)
    await fluxd.wait_event(
        "umbrella",
        lambda e: (
            e["reason"] == "ResolvedDependencies"
            and e["message"] == ("resolved 4 chart dependencies")
        ),
        "ResolvedDependencies",
    )

    await fluxd.create(
        HELM_RELEASE,
        "rel",
        {"interval": "1h", "chart": {"spec": git_chart("./charts/umbrella")}},
    )
    await fluxd.wait_ready(HELM_RELEASE, "rel")
    made = {}
    for chart in ("umbrella", "web", "frontend", "cache", "local", "vendored"):
        config_map = await client.get(
            fluxd.api, CONFIGMAPS, fluxd.namespace, f"rel-{chart}", missing_ok=True
        )
        assert config_map is not None, f"the {chart} chart's ConfigMap was created"
        made[chart] = config_map["data"]["version"]
    assert made == {
        "umbrella": "0.1.0",
        "web": "1.1.0",
        "frontend": "1.0.0",
        "cache": "0.4.0",
        "local": "0.2.1",
        "vendored": "1.0.0",
    }


async def test_unresolvable_dependencies_are_dependency_build_errors(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    chart_repo: ChartRepository,
) -> None:
    chart_repo.publish(package_chart("web", "1.0.0"), "web", "1.0.0")
    unreachable = f"http://127.0.0.1:{free_port()}/charts"
    charts = {
        "missing-local": {"name": "helper", "version": "*", "repository": "file://../helper"},
        "no-match": {"name": "web", "version": "7.x", "repository": chart_repo.url},
        "unreachable": {"name": "web", "version": "1.x", "repository": unreachable},
        "aliased": {"name": "web", "version": "1.x", "repository": "@stable"},
    }
    git_remote.commit(
        {
            f"charts/{name}/Chart.yaml": chart_yaml(name, "0.1.0", [dependency])
            for name, dependency in charts.items()
        }
    )
    await fluxd.create(GIT_REPOSITORY, "repo", {"interval": "1h", "url": git_http.url(git_remote)})
    for name in charts:
        await fluxd.create(HELM_CHART, name, git_chart(f"charts/{name}"))

    expected = {
        "missing-local": "dependency build error: failed to add local dependency 'helper': "
        "no chart found at 'charts/helper' (reference 'file://../helper')",
        "no-match": "dependency build error: failed to add remote dependency 'web': failed "
        f"to get chart 'web' version '7.x' from '{chart_repo.url}/': no 'web' chart with "
        "version matching '7.x' found",
        "unreachable": "dependency build error: failed to add remote dependency 'web': "
        f"failed to get chart repository for URL '{unreachable}/'",
        "aliased": "dependency build error: failed to add remote dependency 'web': aliased "
        "repository dependency is not supported: @stable",
    }
    for name, text in expected.items():
        failed = await fluxd.wait_not_ready(HELM_CHART, name, "DependencyBuildError")
        assert message(failed).startswith(text), message(failed)
        assert (condition(failed, "BuildFailed") or {}).get("status") == "True"
        assert "artifact" not in failed["status"], "nothing half-built is stored"

    git_remote.commit(
        {
            "charts/helper/Chart.yaml": chart_yaml("helper", "0.0.1", []),
            "charts/helper/templates/cm.yaml": NAMED_BY_CHART,
        }
    )
    await reconcile_now(fluxd, GIT_REPOSITORY, "repo")
    fixed = await fluxd.wait_for(
        HELM_CHART,
        "missing-local",
        lambda o: ready_reason(o) == ("True", "ChartPackageSucceeded"),
        "packaged once the dependency is in the source",
    )
    files = archive_files(await fluxd.fetch_artifact(fixed["status"]["artifact"]["url"]))
    assert "missing-local/charts/helper/Chart.yaml" in files
