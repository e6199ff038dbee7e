"""A chart repository index, read and searched as Flux's source-controller does."""

from __future__ import annotations

import json

import pytest

from fluxd.reconcilers.helmrepository import human_size
from fluxd.sources.helm import InvalidIndex, parse_index
from fluxd.sources.helm.repository import chart_url

INDEX = b"""\
apiVersion: v1
entries:
  redis:
  - name: redis
    version: 17.3.1
    created: 2022-10-01T00:00:00Z
    urls: [charts/redis-17.3.1.tgz]
    digest: aaa
  - name: redis
    version: 17.3.14
    created: 2022-11-01T00:00:00Z
    urls: [https://charts.example.com/redis-17.3.14.tgz]
  - name: redis
    version: 17.4.0-rc.1
  - name: redis
    version: not-a-version
  - version: 1.0.0
  - name: redis
    version: 17.3.2+build.1
    created: 2022-10-02T00:00:00Z
  - name: redis
    version: 17.3.2+build.2
    created: 2022-10-03T00:00:00Z
generated: 2022-11-01T00:00:00Z
"""


def test_a_range_picks_the_newest_matching_version() -> None:
    index = parse_index(INDEX)
    assert index.find("redis", "17.3.x").version == "17.3.14"
    assert index.find("redis", ">=17.3.0 <17.3.5").version == "17.3.2+build.2", (
        "equal versions but for build metadata: the one created last"
    )
    assert index.find("redis", "*").version == "17.3.14", "no prerelease unless asked"
    assert index.find("redis", "").version == "17.3.14"
    assert index.find("redis", ">=17.4.0-0").version == "17.4.0-rc.1"
    assert index.find("redis", "17.3.1").version == "17.3.1", "an exact version first"


def test_missing_charts_and_versions_say_what_is_missing() -> None:
    index = parse_index(INDEX)
    with pytest.raises(LookupError, match="'nginx' is not in the repository index"):
        index.find("nginx", "*")
    with pytest.raises(LookupError, match=r"no 'redis' chart with version matching '18\.x'"):
        index.find("redis", "18.x")
    with pytest.raises(ValueError, match="invalid"):
        index.find("redis", ">>1")


def test_the_stored_index_drops_invalid_versions_and_lists_newest_first() -> None:
    stored = json.loads(parse_index(INDEX).to_json())
    versions = [entry["version"] for entry in stored["entries"]["redis"]]
    assert versions == [
        "17.4.0-rc.1",
        "17.3.14",
        "17.3.2+build.2",
        "17.3.2+build.1",
        "17.3.1",
    ]
    assert stored["entries"]["redis"][-1]["created"] == "2022-10-01T00:00:00Z", (
        "timestamps kept as the index wrote them"
    )
    assert stored["generated"] == "2022-11-01T00:00:00Z"


def test_json_indexes_are_read_too() -> None:
    document = {"apiVersion": "v1", "entries": {"a": [{"name": "a", "version": "1.0.0"}]}}
    assert parse_index(json.dumps(document).encode()).find("a", "*").version == "1.0.0"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"entries: {}\n", "no API version"),
        (b"- a list\n", "not a YAML mapping"),
        (b"apiVersion: v1\nentries: [a]\n", "not a mapping of chart names"),
        (b"apiVersion: v1\nentries: {a: [\n", "not valid YAML"),
    ],
)
def test_what_is_no_index_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(InvalidIndex, match=message):
        parse_index(data)


@pytest.mark.parametrize(
    ("repository", "reference", "expected"),
    [
        ("https://h/charts", "redis-1.tgz", "https://h/charts/redis-1.tgz"),
        ("https://h/charts/", "sub/redis-1.tgz", "https://h/charts/sub/redis-1.tgz"),
        ("https://h/charts", "https://cdn/redis-1.tgz", "https://cdn/redis-1.tgz"),
        ("https://h/charts?token=t", "redis-1.tgz", "https://h/charts/redis-1.tgz?token=t"),
    ],
)
def test_chart_urls_resolve_against_the_repository(
    repository: str, reference: str, expected: str
) -> None:
    assert chart_url(repository, reference) == expected


def test_sizes_print_as_flux_prints_them() -> None:
    assert human_size(512) == "512B"
    assert human_size(1234) == "1.234kB"
    assert human_size(12_500_000) == "12.5MB"
