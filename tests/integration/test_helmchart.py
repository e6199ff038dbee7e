"""HelmChart end to end: charts from a real chart repository and from a git repository.

What a user sees: the newest version in range becomes the artifact (the archive itself,
digest and all), a newer chart in the repository moves it without anyone asking, values
files are merged into the chart, a chart directory in git is packaged, and every bad
reference, download or values file ends in Flux's reason with a message naming it.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from fluxd.api import GIT_REPOSITORY, HELM_CHART, HELM_REPOSITORY, KindInfo
from fluxd.runtime import conditions
from tests.chartservers import ChartRepository, package_chart
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import Fluxd, ready_reason

pytestmark = pytest.mark.integration

TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
data:
  greeting: {{ .Values.greeting | quote }}
"""


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return conditions.get(obj.get("status") or {}, type_)


def message(obj: dict[str, Any]) -> str:
    return str((condition(obj, "Ready") or {}).get("message"))


def chart_file(archive: bytes, path: str) -> str:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        extracted = tar.extractfile(path)
        assert extracted is not None
        return extracted.read().decode()


async def reconcile_now(fluxd: Fluxd, kind: KindInfo[Any], name: str) -> None:
    stamp = datetime.now(UTC).isoformat()
    await fluxd.patch(
        kind, name, {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}}
    )


async def repository(fluxd: Fluxd, repo: ChartRepository) -> None:
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": repo.url})
    await fluxd.wait_ready(HELM_REPOSITORY, "charts")


def chart_spec(chart: str, version: str = "*", **extra: Any) -> dict[str, Any]:
    return {
        "interval": "1h",
        "chart": chart,
        "version": version,
        "sourceRef": {"kind": "HelmRepository", "name": "charts"},
        **extra,
    }


async def test_the_newest_version_in_range_is_pulled_and_a_newer_one_follows(
    fluxd: Fluxd, chart_repo: ChartRepository
) -> None:
    archives = {
        version: package_chart("podinfo", version, {"templates/cm.yaml": TEMPLATE})
        for version in ("6.0.0", "6.1.0", "7.0.0-rc.1")
    }
    for version, archive in archives.items():
        chart_repo.publish(archive, "podinfo", version)
    await repository(fluxd, chart_repo)
    await fluxd.create(HELM_CHART, "podinfo", chart_spec("podinfo", "6.x"))
    obj = await fluxd.wait_ready(HELM_CHART, "podinfo")

    status = obj["status"]
    artifact = status["artifact"]
    assert artifact["revision"] == "6.1.0"
    assert artifact["path"] == f"helmchart/{fluxd.namespace}/podinfo/podinfo-6.1.0.tgz"
    assert artifact["digest"] == f"sha256:{hashlib.sha256(archives['6.1.0']).hexdigest()}"
    assert await fluxd.fetch_artifact(artifact["url"]) == archives["6.1.0"], "the archive as is"
    assert await fluxd.fetch_artifact(status["url"]) == archives["6.1.0"]
    assert status["url"].endswith("/latest.tar.gz")
    assert status["observedChartName"] == "podinfo"
    repo = await fluxd.get(HELM_REPOSITORY, "charts")
    assert status["observedSourceArtifactRevision"] == repo["status"]["artifact"]["revision"]
    assert ready_reason(obj) == ("True", "ChartPullSucceeded")
    assert message(obj) == "pulled 'podinfo' chart with version '6.1.0'"
    await fluxd.wait_event(
        "podinfo",
        lambda e: e["reason"] == "ChartPullSucceeded" and "6.1.0" in e["message"],
        "ChartPullSucceeded",
    )

    newer = package_chart("podinfo", "6.2.0", {"templates/cm.yaml": TEMPLATE})
    chart_repo.publish(newer, "podinfo", "6.2.0")
    await reconcile_now(fluxd, HELM_REPOSITORY, "charts")
    moved = await fluxd.wait_for(
        HELM_CHART,
        "podinfo",
        lambda o: o["status"]["artifact"]["revision"] == "6.2.0",
        "6.2.0, woken by the repository's new index",
    )
    assert await fluxd.fetch_artifact(moved["status"]["artifact"]["url"]) == newer

    downloads = chart_repo.fetched("charts/podinfo-6.2.0.tgz")
    chart_repo.publish(package_chart("other", "1.0.0"), "other", "1.0.0")
    await reconcile_now(fluxd, HELM_REPOSITORY, "charts")
    await fluxd.wait_for(
        HELM_CHART,
        "podinfo",
        lambda o: (
            o["status"]["observedSourceArtifactRevision"]
            != moved["status"]["observedSourceArtifactRevision"]
        ),
        "the new index observed",
    )
    assert chart_repo.fetched("charts/podinfo-6.2.0.tgz") == downloads, (
        "the index moved but the chart did not: no download"
    )


async def test_values_files_are_merged_into_the_chart(
    fluxd: Fluxd, chart_repo: ChartRepository
) -> None:
    files = {
        "values.yaml": "greeting: hello\nreplicas: 1\nnested:\n  a: 1\n",
        "values-prod.yaml": "replicas: 3\nnested:\n  b: 2\n",
        "templates/cm.yaml": TEMPLATE,
    }
    chart_repo.publish(package_chart("app", "1.2.3", files), "app", "1.2.3")
    await repository(fluxd, chart_repo)
    await fluxd.create(
        HELM_CHART,
        "app",
        chart_spec("app", valuesFiles=["values.yaml", "values-prod.yaml"]),
    )
    obj = await fluxd.wait_ready(HELM_CHART, "app")
    assert obj["status"]["artifact"]["revision"] == "1.2.3+1", "the generation as build metadata"
    assert ready_reason(obj) == ("True", "ChartPackageSucceeded")
    assert message(obj) == (
        "packaged 'app' chart with version '1.2.3+1' and merged values files "
        "[values.yaml values-prod.yaml]"
    )
    archive = await fluxd.fetch_artifact(obj["status"]["artifact"]["url"])
    assert yaml.safe_load(chart_file(archive, "app/values.yaml")) == {
        "greeting": "hello",
        "replicas": 3,
        "nested": {"a": 1, "b": 2},
    }
    assert yaml.safe_load(chart_file(archive, "app/Chart.yaml"))["version"] == "1.2.3+1"
    assert "observedValuesFiles" not in obj["status"]

    await fluxd.patch(
        HELM_CHART,
        "app",
        {"spec": {"valuesFiles": ["values-prod.yaml", "values-missing.yaml"]}},
    )
    stalled = await fluxd.wait_for(
        HELM_CHART,
        "app",
        lambda o: (condition(o, "Stalled") or {}).get("reason") == "ValuesFilesError",
        "Stalled/ValuesFilesError",
    )
    assert "no values file found at path 'values-missing.yaml'" in message(stalled)
    assert stalled["status"]["artifact"]["revision"] == "1.2.3+1", "the last artifact stays"

    await fluxd.patch(HELM_CHART, "app", {"spec": {"ignoreMissingValuesFiles": True}})
    ignored = await fluxd.wait_for(
        HELM_CHART,
        "app",
        lambda o: (
            o["status"]["artifact"]["revision"] == "1.2.3+3"
            and ready_reason(o) == ("True", "ChartPackageSucceeded")
        ),
        "packaged again without the missing file",
    )
    assert ignored["status"]["observedValuesFiles"] == ["values-prod.yaml"]


async def test_a_chart_directory_in_git_is_packaged(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    sha = git_remote.commit(
        {
            "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
            "charts/app/values.yaml": "greeting: from-git\n",
            "charts/app/templates/cm.yaml": TEMPLATE,
            "charts/needs-deps/Chart.yaml": (
                "apiVersion: v2\nname: needs-deps\nversion: 0.1.0\ndependencies:\n"
                "- name: redis\n  version: 17.x\n  repository: https://charts.example.com\n"
            ),
        }
    )
    await fluxd.create(GIT_REPOSITORY, "repo", {"interval": "1h", "url": git_http.url(git_remote)})
    git_source = {"kind": "GitRepository", "name": "repo"}
    await fluxd.create(
        HELM_CHART, "app", {"interval": "1h", "chart": "./charts/app", "sourceRef": git_source}
    )
    obj = await fluxd.wait_ready(HELM_CHART, "app")
    assert obj["status"]["artifact"]["revision"] == "0.1.0"
    assert message(obj) == "packaged 'app' chart with version '0.1.0'"
    archive = await fluxd.fetch_artifact(obj["status"]["artifact"]["url"])
    assert chart_file(archive, "app/values.yaml") == "greeting: from-git\n"
    assert chart_file(archive, "app/templates/cm.yaml") == TEMPLATE

    await fluxd.create(
        HELM_CHART,
        "by-revision",
        {
            "interval": "1h",
            "chart": "charts/app",
            "sourceRef": git_source,
            "reconcileStrategy": "Revision",
        },
    )
    by_revision = await fluxd.wait_ready(HELM_CHART, "by-revision")
    assert by_revision["status"]["artifact"]["revision"] == f"0.1.0+{sha[:12]}"

    await fluxd.create(
        HELM_CHART,
        "deps",
        {"interval": "1h", "chart": "charts/needs-deps", "sourceRef": git_source},
    )
    deps = await fluxd.wait_not_ready(HELM_CHART, "deps", "DependencyBuildError")
    assert "failed to add remote dependency 'redis'" in message(deps)
    assert "https://charts.example.com/" in message(deps)

    await fluxd.create(
        HELM_CHART, "nowhere", {"interval": "1h", "chart": "charts/none", "sourceRef": git_source}
    )
    nowhere = await fluxd.wait_not_ready(HELM_CHART, "nowhere", "InvalidChartReference")
    assert "charts/none" in message(nowhere)


async def test_bad_references_and_downloads_fail_with_flux_reasons(
    fluxd: Fluxd, chart_repo: ChartRepository
) -> None:
    chart_repo.publish(package_chart("podinfo", "6.0.0"), "podinfo", "6.0.0")
    chart_repo.publish(b"this is not a gzipped tar", "broken", "1.0.0")
    chart_repo.publish(package_chart("gone", "1.0.0"), "gone", "1.0.0")
    chart_repo.fail("charts/gone-1.0.0.tgz", 404)

    await fluxd.create(HELM_CHART, "early", chart_spec("podinfo"))
    early = await fluxd.wait_not_ready(HELM_CHART, "early", "SourceUnavailable")
    assert f"HelmRepository '{fluxd.namespace}/charts' not found" in message(early)
    await repository(fluxd, chart_repo)
    await fluxd.wait_ready(HELM_CHART, "early")  # woken by the repository's first index

    await fluxd.create(
        HELM_REPOSITORY, "no-index", {"interval": "1h", "url": f"{chart_repo.url}/missing"}
    )
    await fluxd.create(
        HELM_CHART,
        "no-artifact",
        {**chart_spec("podinfo"), "sourceRef": {"kind": "HelmRepository", "name": "no-index"}},
    )
    no_artifact = await fluxd.wait_not_ready(HELM_CHART, "no-artifact", "NoSourceArtifact")
    assert "no artifact available for HelmRepository source 'no-index'" in message(no_artifact)

    await fluxd.create(HELM_CHART, "unknown", chart_spec("nginx"))
    unknown = await fluxd.wait_not_ready(HELM_CHART, "unknown", "InvalidChartReference")
    assert "'nginx'" in message(unknown)
    assert condition(unknown, "Stalled") is not None

    await fluxd.create(HELM_CHART, "no-match", chart_spec("podinfo", "9.x"))
    no_match = await fluxd.wait_not_ready(HELM_CHART, "no-match", "InvalidChartReference")
    assert "no 'podinfo' chart with version matching '9.x' found" in message(no_match)

    await fluxd.create(HELM_CHART, "gone", chart_spec("gone"))
    gone = await fluxd.wait_not_ready(HELM_CHART, "gone", "ChartPullError")
    assert "404" in message(gone)
    fetch_failed = condition(gone, "FetchFailed")
    assert fetch_failed is not None
    assert fetch_failed["status"] == "True"

    await fluxd.create(HELM_CHART, "broken", chart_spec("broken"))
    broken = await fluxd.wait_not_ready(HELM_CHART, "broken", "ChartPackageError")
    assert "not a chart archive" in message(broken)

    await fluxd.create(
        HELM_CHART,
        "verify",
        chart_spec("podinfo", verify={"provider": "cosign"}),
    )
    verify = await fluxd.wait_for(
        HELM_CHART,
        "verify",
        lambda o: (condition(o, "Stalled") or {}).get("reason") == "UnsupportedField",
        "Stalled/UnsupportedField",
    )
    assert "spec.verify" in message(verify)
