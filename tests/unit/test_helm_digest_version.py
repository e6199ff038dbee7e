"""An OCI chart's version carries its artifact digest, as helm-controller releases it."""

from __future__ import annotations

import io
import tarfile

import pytest

from fluxd.helm.digest_version import (
    DigestVersionError,
    NotAChartError,
    digest_version,
    stamp_digest,
)
from tests.chartservers import package_chart

DIGEST = "sha256:0123456789abcdef" + "0" * 48


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: (tar.extractfile(m) or io.BytesIO()).read() for m in tar if m.isfile()}


def test_semver_tag_and_digest_becomes_build_metadata() -> None:
    assert digest_version("6.5.4", f"6.5.4@{DIGEST}") == ("6.5.4+0123456789ab", DIGEST)
    assert digest_version("1.0.0+old", f"1.0.0_old@{DIGEST}")[0] == "1.0.0+0123456789ab"


def test_other_tags_and_bare_digests_use_the_digest() -> None:
    assert digest_version("2.0.0-rc.1", f"latest@{DIGEST}") == (
        "2.0.0-rc.1+0123456789ab",
        f"latest@{DIGEST}",
    )
    assert digest_version("2.0.0", DIGEST) == ("2.0.0+0123456789ab", DIGEST)


def test_a_tag_naming_another_version_is_refused() -> None:
    with pytest.raises(DigestVersionError, match=r"does not match chart version 1\.0\.0"):
        digest_version("1.0.0", f"1.0.1@{DIGEST}")
    with pytest.raises(DigestVersionError, match="invalid artifact revision"):
        digest_version("1.0.0", "sha256:abc")
    with pytest.raises(DigestVersionError, match="invalid chart version"):
        digest_version("latest", DIGEST)


def test_archive_is_rewritten_with_only_the_version_changed() -> None:
    archive = package_chart("demo", "1.2.3", {"templates/cm.yaml": "kind: ConfigMap\n"})
    stamped, version, digest = stamp_digest(archive, f"1.2.3@{DIGEST}")
    assert (version, digest) == ("1.2.3+0123456789ab", DIGEST)
    before, after = members(archive), members(stamped)
    assert after["demo/Chart.yaml"] == before["demo/Chart.yaml"].replace(
        b"version: 1.2.3", b"version: 1.2.3+0123456789ab"
    )
    assert {k: v for k, v in after.items() if k != "demo/Chart.yaml"} == {
        k: v for k, v in before.items() if k != "demo/Chart.yaml"
    }


def test_an_archive_without_a_chart_is_refused() -> None:
    with pytest.raises(NotAChartError, match="cannot be read"):
        stamp_digest(b"not a tarball", DIGEST)
    with pytest.raises(NotAChartError, match=r"no Chart\.yaml"):
        stamp_digest(_without_chart_yaml(), DIGEST)


def _without_chart_yaml() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("demo/values.yaml")
        tar.addfile(info, io.BytesIO(b""))
    return out.getvalue()
