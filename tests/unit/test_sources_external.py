"""ExternalArtifact downloads: verified by digest, unpacked safely (or kept packed), kept
by digest while a consumer uses them; what is wrong says how far the producer got.

A real HTTP server on loopback serves the tarballs (:mod:`tests.artifactproducer`);
nothing is faked.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fluxd.runtime.keys import ObjectKey
from fluxd.sources.artifact import build_tarball
from fluxd.sources.external import ExternalArtifactError, ExternalArtifacts
from tests.artifactproducer import ArtifactServer, serve_artifacts

SOURCE = ObjectKey("ExternalArtifact", "apps", "producer")
CONSUMER = ObjectKey("Kustomization", "apps", "app")
OTHER = ObjectKey("Kustomization", "apps", "other")


@pytest.fixture
async def served() -> AsyncIterator[ArtifactServer]:
    async with serve_artifacts() as server:
        yield server


def published(server: ArtifactServer, name: str, tarball: bytes, **fields: str) -> dict[str, Any]:
    """The ExternalArtifact as read, publishing ``tarball`` served as ``name``."""
    return {"status": {"artifact": server.status_artifact(name, tarball, **fields)}}


def tarball_with(member: tarfile.TarInfo) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        tar.addfile(member, io.BytesIO(b"x" * member.size))
    return gzip.compress(raw.getvalue())


async def test_files_are_unpacked_and_a_known_digest_is_not_downloaded_again(
    served: ArtifactServer,
) -> None:
    tarball = build_tarball({"deploy/a.yaml": b"a: 1\n", ".hidden": b"h"})
    external = ExternalArtifacts()
    first = await external.fetch(CONSUMER, SOURCE, published(served, "a.tgz", tarball))
    again = await external.fetch(CONSUMER, SOURCE, published(served, "a.tgz", tarball))
    assert dict(first.artifact.files) == {".hidden": b"h", "deploy/a.yaml": b"a: 1\n"}
    assert again.artifact is first.artifact
    assert served.requested == ["a.tgz"]


async def test_the_same_bytes_published_again_carry_the_new_revision(
    served: ArtifactServer,
) -> None:
    tarball = build_tarball({"a.yaml": b"a: 1\n"})
    external = ExternalArtifacts()
    await external.fetch(CONSUMER, SOURCE, published(served, "a.tgz", tarball, revision="1.0.0"))
    again = await external.fetch(
        CONSUMER, SOURCE, published(served, "b.tgz", tarball, revision="1.0.1")
    )
    assert (again.artifact.revision, again.artifact.url) == ("1.0.1", f"{served.base}/b.tgz")
    assert served.requested == ["a.tgz"]


@pytest.mark.parametrize(
    ("name", "kind", "complaint"),
    [
        ("../escape.yaml", tarfile.REGTYPE, "points outside the artifact"),
        ("/etc/passwd", tarfile.REGTYPE, "points outside the artifact"),
        ("link.yaml", tarfile.SYMTYPE, "not a regular file"),
    ],
)
async def test_unsafe_entries_fail_the_artifact(
    served: ArtifactServer, name: str, kind: bytes, complaint: str
) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.size = 0 if kind == tarfile.SYMTYPE else 1
    member.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
    with pytest.raises(ExternalArtifactError, match=complaint):
        await ExternalArtifacts().fetch(
            CONSUMER, SOURCE, published(served, "bad.tgz", tarball_with(member))
        )


async def test_not_a_tarball_fails_with_the_source_named(served: ArtifactServer) -> None:
    with pytest.raises(ExternalArtifactError, match=r"'apps/producer'.*not a valid \.tar\.gz"):
        await ExternalArtifacts().fetch(
            CONSUMER, SOURCE, published(served, "junk.tgz", b"not gzip")
        )


async def test_a_status_without_digest_is_refused() -> None:
    found = {"status": {"artifact": {"url": "http://127.0.0.1:1/a.tgz"}}}
    with pytest.raises(ExternalArtifactError, match="digest 'sha256:<hex>'"):
        await ExternalArtifacts().fetch(CONSUMER, SOURCE, found)


async def test_each_problem_says_how_far_the_producer_got(served: ArtifactServer) -> None:
    external = ExternalArtifacts()
    with pytest.raises(ExternalArtifactError, match="'apps/producer' not found") as absent:
        await external.fetch(CONSUMER, SOURCE, None)
    with pytest.raises(ExternalArtifactError, match=r"status\.artifact") as unpublished:
        await external.fetch(CONSUMER, SOURCE, {"status": {}})
    gone = published(served, "gone.tgz", b"")
    del served.tarballs["gone.tgz"]
    with pytest.raises(ExternalArtifactError, match="HTTP 404") as missing:
        await external.fetch(CONSUMER, SOURCE, gone)
    problems = [error.value.problem for error in (absent, unpublished, missing)]
    assert problems == ["absent", "unpublished", "missing"]


async def test_a_packed_artifact_is_the_tarball_as_published(served: ArtifactServer) -> None:
    tarball = build_tarball({"podinfo/Chart.yaml": b"name: podinfo\n"})
    found = published(served, "chart.tgz", tarball)
    fetched = await ExternalArtifacts(packed=True).fetch(CONSUMER, SOURCE, found)
    assert fetched.artifact.content() == tarball
    assert list(fetched.artifact.files) == ["chart.tgz"]


async def test_an_artifact_is_downloaded_again_once_no_consumer_holds_it(
    served: ArtifactServer,
) -> None:
    found = published(served, "a.tgz", build_tarball({"a.yaml": b"a: 1\n"}))
    external = ExternalArtifacts()
    await external.fetch(CONSUMER, SOURCE, found)
    await external.fetch(OTHER, SOURCE, found)
    external.forget(CONSUMER)
    await external.fetch(OTHER, SOURCE, found)
    assert served.requested == ["a.tgz"]
    external.forget(OTHER)
    await external.fetch(OTHER, SOURCE, found)
    assert served.requested == ["a.tgz", "a.tgz"]
    with pytest.raises(ExternalArtifactError):  # the source went away
        await external.fetch(OTHER, SOURCE, None)
    await external.fetch(OTHER, SOURCE, found)
    assert served.requested == ["a.tgz", "a.tgz", "a.tgz"]
