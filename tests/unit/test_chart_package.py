"""Chart archives read, packaged and given merged values without the Helm SDK."""

from __future__ import annotations

import pytest
import yaml

from fluxd.sources.helm.package import (
    InvalidChart,
    merge_values_files,
    read_archive,
    read_directory,
)
from tests.chartservers import package_chart


def test_an_archive_reads_back_and_packages_the_same_bytes_every_time() -> None:
    chart = read_archive(package_chart("app", "1.0.0", {"templates/a.yaml": "a: 1\n"}))
    assert (chart.name, chart.version) == ("app", "1.0.0")
    assert chart.files["templates/a.yaml"] == b"a: 1\n"
    assert chart.archive() == chart.archive(), "deterministic: same chart, same digest"
    assert read_archive(chart.archive()).files == chart.files


def test_a_directory_of_a_source_tree_is_a_chart() -> None:
    tree = {
        "charts/app/Chart.yaml": b"apiVersion: v2\nname: app\nversion: 0.2.0\n",
        "charts/app/values.yaml": b"a: 1\n",
        "charts/other/Chart.yaml": b"name: other\nversion: 1.0.0\n",
    }
    chart = read_directory(tree, "./charts/app/")
    assert chart.version == "0.2.0"
    assert set(chart.files) == {"Chart.yaml", "values.yaml"}
    with pytest.raises(InvalidChart, match="leaves the source"):
        read_directory(tree, "../etc")
    with pytest.raises(InvalidChart, match=r"no Chart\.yaml at 'charts/none'"):
        read_directory(tree, "charts/none")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"Chart.yaml": b"name: app\n"}, "has no version"),
        ({"Chart.yaml": b"version: 1.0.0\n"}, "has no name"),
        ({"Chart.yaml": b"[not a mapping]\n"}, "not a mapping"),
        ({"values.yaml": b""}, "no Chart.yaml"),
    ],
)
def test_what_is_no_chart_says_why(files: dict[str, bytes], message: str) -> None:
    with pytest.raises(InvalidChart, match=message):
        read_directory({f"c/{path}": content for path, content in files.items()}, "c")


def test_garbage_is_no_archive() -> None:
    with pytest.raises(InvalidChart, match="not a chart archive"):
        read_archive(b"not gzip")


def test_values_files_merge_deeply_in_order() -> None:
    chart = read_archive(
        package_chart(
            "app",
            "1.0.0",
            {
                "values.yaml": "a: 1\nnested: {x: 1, y: 1}\nlist: [1, 2]\n",
                "prod.yaml": "nested: {y: 2}\nlist: [3]\n",
            },
        )
    )
    merged, used = merge_values_files(chart, ["values.yaml", "./prod.yaml"], ignore_missing=False)
    assert yaml.safe_load(merged.files["values.yaml"]) == {
        "a": 1,
        "nested": {"x": 1, "y": 2},
        "list": [3],
    }
    assert used == ["values.yaml", "./prod.yaml"]
    with pytest.raises(InvalidChart, match=r"no values file found at path 'missing\.yaml'"):
        merge_values_files(chart, ["missing.yaml"], ignore_missing=False)
    _, used = merge_values_files(chart, ["missing.yaml", "prod.yaml"], ignore_missing=True)
    assert used == ["prod.yaml"]
