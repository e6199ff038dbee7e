"""ExternalArtifact downloads: verified by digest, unpacked safely (or kept packed), kept
by digest while a consumer uses them.

A real HTTP server on loopback serves the tarballs; nothing is faked.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from fluxd.runtime.keys import ObjectKey
from fluxd.sources.artifact import build_tarball
from fluxd.sources.external import ExternalArtifactError, ExternalArtifacts

SOURCE = ObjectKey("ExternalArtifact", "apps", "producer")
CONSUMER = ObjectKey("Kustomization", "apps", "app")
OTHER = ObjectKey("Kustomization", "apps", "other")


@pytest.fixture
async def served() -> AsyncIterator[tuple[dict[str, bytes], list[str], str]]:
    """(tarballs by name, names requested, base URL) of a loopback server."""
    tarballs: dict[str, bytes] = {}
    requested: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        requested.append(name)
        return web.Response(body=tarballs[name])

    app = web.Application()
    app.router.add_get("/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield tarballs, requested, f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def published(base: str, name: str, tarball: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(tarball).hexdigest()
    return {"url": f"{base}/{name}", "digest": digest, "revision": f"latest@{digest}"}


def tarball_with(member: tarfile.TarInfo) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        tar.addfile(member, io.BytesIO(b"x" * member.size))
    return gzip.compress(raw.getvalue())


async def test_files_are_unpacked_and_a_known_digest_is_not_downloaded_again(
    served: tuple[dict[str, bytes], list[str], str],
) -> None:
    tarballs, requested, base = served
    tarballs["a.tgz"] = build_tarball({"deploy/a.yaml": b"a: 1\n", ".hidden": b"h"})
    external = ExternalArtifacts()
    first = await external.fetch(CONSUMER, SOURCE, published(base, "a.tgz", tarballs["a.tgz"]))
    again = await external.fetch(CONSUMER, SOURCE, published(base, "a.tgz", tarballs["a.tgz"]))
    assert dict(first.artifact.files) == {".hidden": b"h", "deploy/a.yaml": b"a: 1\n"}
    assert again.artifact is first.artifact
    assert requested == ["a.tgz"]


@pytest.mark.parametrize(
    ("name", "kind", "complaint"),
    [
        ("../escape.yaml", tarfile.REGTYPE, "points outside the artifact"),
        ("/etc/passwd", tarfile.REGTYPE, "points outside the artifact"),
        ("link.yaml", tarfile.SYMTYPE, "not a regular file"),
    ],
)
async def test_unsafe_entries_fail_the_artifact(
    served: tuple[dict[str, bytes], list[str], str], name: str, kind: bytes, complaint: str
) -> None:
    tarballs, _, base = served
    member = tarfile.TarInfo(name)
    member.type = kind
    member.size = 0 if kind == tarfile.SYMTYPE else 1
    member.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
    tarballs["bad.tgz"] = tarball_with(member)
    with pytest.raises(ExternalArtifactError, match=complaint):
        await ExternalArtifacts().fetch(
            CONSUMER, SOURCE, published(base, "bad.tgz", tarballs["bad.tgz"])
        )


async def test_not_a_tarball_fails_with_the_source_named(
    served: tuple[dict[str, bytes], list[str], str],
) -> None:
    tarballs, _, base = served
    tarballs["junk.tgz"] = b"not gzip"
    with pytest.raises(ExternalArtifactError, match=r"'apps/producer'.*not a valid \.tar\.gz"):
        await ExternalArtifacts().fetch(CONSUMER, SOURCE, published(base, "junk.tgz", b"not gzip"))


async def test_a_status_without_digest_is_refused() -> None:
    with pytest.raises(ExternalArtifactError, match="digest 'sha256:<hex>'"):
        await ExternalArtifacts().fetch(CONSUMER, SOURCE, {"url": "http://127.0.0.1:1/a.tgz"})


async def test_a_packed_artifact_is_the_tarball_as_published(
    served: tuple[dict[str, bytes], list[str], str],
) -> None:
    tarballs, _, base = served
    tarballs["chart.tgz"] = build_tarball({"podinfo/Chart.yaml": b"name: podinfo\n"})
    status = {**published(base, "chart.tgz", tarballs["chart.tgz"]), "path": "x/chart.tgz"}
    fetched = await ExternalArtifacts(packed=True).fetch(CONSUMER, SOURCE, status)
    assert fetched.artifact.content() == tarballs["chart.tgz"]
    assert list(fetched.artifact.files) == ["chart.tgz"]


async def test_an_artifact_is_downloaded_again_once_no_consumer_holds_it(
    served: tuple[dict[str, bytes], list[str], str],
) -> None:
    tarballs, requested, base = served
    tarballs["a.tgz"] = build_tarball({"a.yaml": b"a: 1\n"})
    status = published(base, "a.tgz", tarballs["a.tgz"])
    external = ExternalArtifacts()
    await external.fetch(CONSUMER, SOURCE, status)
    await external.fetch(OTHER, SOURCE, status)
    external.forget(CONSUMER)
    await external.fetch(OTHER, SOURCE, status)
    assert requested == ["a.tgz"]
    external.forget(OTHER)
    await external.fetch(OTHER, SOURCE, status)
    assert requested == ["a.tgz", "a.tgz"]
