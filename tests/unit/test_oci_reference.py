"""``oci://`` URLs and refs as Flux reads them, and the semver choice among tags."""

from __future__ import annotations

import pytest

from fluxd.sources import oci


def test_url_names_registry_and_repository() -> None:
    repository = oci.parse_url("oci://127.0.0.1:5000/org/app")
    assert (repository.host, repository.name) == ("127.0.0.1:5000", "org/app")
    assert repository.base_url == "https://127.0.0.1:5000/v2"
    assert oci.parse_url("oci://r.io/app", insecure=True).base_url == "http://r.io/v2"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://r.io/app", "URL must be in format 'oci://<domain>/<org>/<repo>'"),
        ("oci://r.io", "URL must be in format"),
        ("oci://r.io/app:v1", "URL must not contain a tag; remove ':v1'"),
        ("oci://r.io/App", "is not a valid OCI repository name"),
    ],
)
def test_bad_urls_are_url_invalid(url: str, expected: str) -> None:
    with pytest.raises(oci.RegistryError) as raised:
        oci.parse_url(url)
    assert raised.value.reason == oci.URL_INVALID
    assert expected in str(raised.value)


def test_cli_references_carry_a_tag_or_a_digest() -> None:
    tagged = oci.parse_reference("oci://127.0.0.1:5000/org/app:v1.2.3")
    assert (tagged.repository.name, tagged.tag, tagged.digest) == ("org/app", "v1.2.3", None)
    assert str(tagged) == "127.0.0.1:5000/org/app:v1.2.3"
    digest = "sha256:" + "a" * 64
    pinned = oci.parse_reference(f"oci://r.io/app@{digest}")
    assert (pinned.tag, pinned.digest, pinned.name) == (None, digest, digest)
    assert oci.parse_reference("oci://r.io/app").name == "latest"
    with pytest.raises(oci.RegistryError, match="is not a sha256 digest"):
        oci.parse_reference("oci://r.io/app@sha256:nothex")


def test_semver_picks_the_highest_tag_in_range_after_the_filter() -> None:
    tags = ["latest", "1.0.0", "1.1.0", "v1.2.0", "1.3.0-rc.1", "2.0.0"]
    assert oci.select_semver_tag(tags, "1.x", None, None) == "v1.2.0"
    assert oci.select_semver_tag(tags, ">=1.0.0-0", r"-rc\.", None) == "1.3.0-rc.1"
    assert oci.select_semver_tag(tags, "*", r"^1\.0", None) == "1.0.0"


def test_helm_chart_tags_map_underscore_to_build_metadata() -> None:
    tags = ["1.0.0", "1.0.1_build.2"]
    assert oci.select_semver_tag(tags, ">=1.0.1", None, oci.HELM_CHART_LAYER) == "1.0.1_build.2"
    with pytest.raises(oci.RegistryError, match=r"no match found for semver: >=1\.0\.1"):
        oci.select_semver_tag(tags, ">=1.0.1", None, None)


@pytest.mark.parametrize(
    ("semver", "semver_filter", "expected"),
    [
        (">=3", None, "no match found for semver: >=3"),
        ("not a range", None, "semver 'not a range' parse error"),
        ("*", "([", "semverFilter '([' is not a valid regular expression"),
    ],
)
def test_semver_failures_are_read_operation_failed(
    semver: str, semver_filter: str | None, expected: str
) -> None:
    with pytest.raises(oci.RegistryError) as raised:
        oci.select_semver_tag(["1.0.0"], semver, semver_filter, None)
    assert raised.value.reason == oci.READ_OPERATION_FAILED
    assert expected in str(raised.value)
