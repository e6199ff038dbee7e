"""Which chart version a HelmChart's ``spec.version`` selects among an OCI repository's
tags: Helm's ``_`` for ``+``, exact versions without listing, ranges newest first."""

from __future__ import annotations

import pytest

from fluxd.sources import oci
from fluxd.sources.helm.oci import chart_image, chart_tag, select_chart_version


class Tags:
    """A registry client's tag listing, counting how often it is asked."""

    def __init__(self, tags: list[str]) -> None:
        self.repository = oci.Repository(host="registry.test", name="charts/demo")
        self._tags = tags
        self.listed = 0

    async def tags(self) -> list[str]:
        self.listed += 1
        return self._tags


async def test_a_range_selects_the_newest_match_reading_underscores_as_plus() -> None:
    tags = Tags(["1.0.0", "1.2.0_build.1", "1.1.0", "2.0.0-rc.1", "latest"])
    assert await select_chart_version(tags, "1.x") == "1.2.0+build.1"
    assert chart_tag("1.2.0+build.1") == "1.2.0_build.1"


async def test_nothing_or_a_star_means_the_newest_release() -> None:
    tags = Tags(["1.0.0", "2.0.0-rc.1"])
    assert await select_chart_version(tags, "") == "1.0.0"
    assert await select_chart_version(tags, "*") == "1.0.0"
    assert await select_chart_version(tags, ">=2.0.0-0") == "2.0.0-rc.1"


async def test_an_exact_version_lists_no_tags() -> None:
    tags = Tags([])
    assert await select_chart_version(tags, "3.1.4") == "3.1.4"
    assert await select_chart_version(tags, "v3.1.4") == "v3.1.4"
    assert tags.listed == 0


async def test_no_tags_or_no_match_names_the_request() -> None:
    with pytest.raises(oci.RegistryError, match="unable to locate any tags"):
        await select_chart_version(Tags([]), "1.x")
    with pytest.raises(oci.RegistryError, match=r"version string 5\.x"):
        await select_chart_version(Tags(["1.0.0"]), "5.x")


def test_the_chart_image_is_under_the_repository_url() -> None:
    image = chart_image("oci://registry.test/charts/", "demo", insecure=True)
    assert (image.host, image.name, image.base_url) == (
        "registry.test",
        "charts/demo",
        "http://registry.test/v2",
    )
