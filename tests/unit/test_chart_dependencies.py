"""A chart directory's dependencies completed from the source tree and a remote seam:
which are missing, where each comes from, how it lands in the packaged chart."""

from __future__ import annotations

import re

import pytest
import yaml

from fluxd.sources.helm.dependencies import DependencyError, build_dependencies, normalize_url
from fluxd.sources.helm.package import ChartFiles, read_directory
from tests.chartservers import package_chart


class Remote:
    """A RemoteCharts serving fixed archives by (repository, name), recording requests."""

    def __init__(self, archives: dict[tuple[str, str], bytes]) -> None:
        self.archives = archives
        self.asked: list[tuple[str, str, str]] = []

    async def fetch(self, repository: str, name: str, version: str) -> bytes:
        self.asked.append((repository, name, version))
        found = self.archives.get((repository, name))
        if found is None:
            raise DependencyError(f"no '{name}' in {repository}")
        return found


def chart_tree(dependencies: list[dict[str, str]], **extra: bytes) -> dict[str, bytes]:
    document = {"apiVersion": "v2", "name": "app", "version": "1.0.0"}
    chart = yaml.safe_dump({**document, "dependencies": dependencies}).encode()
    return {"app/Chart.yaml": chart, **extra}


def load(tree: dict[str, bytes]) -> ChartFiles:
    return read_directory(tree, "app")


async def test_a_remote_dependency_lands_under_its_alias() -> None:
    remote = Remote({("https://charts.test/", "web"): package_chart("web", "1.2.0")})
    tree = chart_tree(
        [{"name": "web", "alias": "front", "version": "1.x", "repository": "https://charts.test"}]
    )
    chart, resolved = await build_dependencies(load(tree), tree, "./app", remote)
    assert resolved == 1
    assert remote.asked == [("https://charts.test/", "web", "1.x")], "the URL normalised"
    assert yaml.safe_load(chart.files["charts/front/Chart.yaml"])["name"] == "front"
    assert "charts/front/values.yaml" in chart.files


async def test_chart_lock_wins_over_chart_yaml() -> None:
    lock = yaml.safe_dump(
        {"dependencies": [{"name": "web", "version": "1.0.1", "repository": "oci://r.test/c"}]}
    ).encode()
    remote = Remote({("oci://r.test/c", "web"): package_chart("web", "1.0.1")})
    tree = chart_tree(
        [{"name": "web", "version": "1.x", "repository": "oci://r.test/c/"}],
        **{"app/Chart.lock": lock},
    )
    _, resolved = await build_dependencies(load(tree), tree, "app", remote)
    assert resolved == 1
    assert remote.asked == [("oci://r.test/c", "web", "1.0.1")]


async def test_vendored_subcharts_are_kept_and_nothing_is_fetched() -> None:
    remote = Remote({})
    tree = chart_tree(
        [{"name": "web", "version": "1.x", "repository": "https://charts.test"}],
        **{"app/charts/web-1.0.0.tgz": package_chart("web", "1.0.0")},
    )
    chart, resolved = await build_dependencies(load(tree), tree, "app", remote)
    assert resolved == 0
    assert remote.asked == []
    assert set(chart.files) == {"Chart.yaml", "charts/web-1.0.0.tgz"}


async def test_a_file_dependency_must_satisfy_its_range_and_stay_in_the_source() -> None:
    other = {"other/Chart.yaml": b"apiVersion: v2\nname: other\nversion: 2.0.0\n"}
    wrong = chart_tree([{"name": "other", "version": "1.x", "repository": "file://../other"}])
    with pytest.raises(
        DependencyError, match=re.escape("can't get a valid version for constraint '1.x'")
    ):
        await build_dependencies(load(wrong), {**wrong, **other}, "app", Remote({}))
    outside = chart_tree([{"name": "x", "version": "*", "repository": "file://../../x"}])
    with pytest.raises(DependencyError, match=r"failed to add local dependency 'x'.*leaves"):
        await build_dependencies(load(outside), outside, "app", Remote({}))


async def test_unsupported_repositories_are_refused_by_name() -> None:
    for repository, text in (
        ("@stable", "aliased repository dependency is not supported: @stable"),
        ("alias:stable", "invalid dependency repository URL: alias:stable"),
    ):
        tree = chart_tree([{"name": "web", "version": "*", "repository": repository}])
        with pytest.raises(DependencyError, match=re.escape(f"remote dependency 'web': {text}")):
            await build_dependencies(load(tree), tree, "app", Remote({}))


def test_urls_are_normalised_as_flux_compares_them() -> None:
    assert normalize_url("https://charts.test/path") == "https://charts.test/path/"
    assert normalize_url("https://charts.test/path//") == "https://charts.test/path/"
    assert normalize_url("oci://r.test/charts/") == "oci://r.test/charts"
