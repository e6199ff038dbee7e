"""Kustomizations built from an ExternalArtifact, end to end on the real API server.

The test plays the third-party producer: it serves tarballs over HTTP on loopback and
publishes them in the ExternalArtifact's ``status.artifact``, as a controller of its own
would. What a user sees: the manifests applied as soon as an artifact is published (no
reconcile request needed), the origin revision recorded, and a tarball whose bytes do
not match the published digest refused with nothing applied.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from fluxd.api import EXTERNAL_ARTIFACT, KUSTOMIZATION
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.runtime import conditions
from fluxd.sources.artifact import build_tarball
from tests.integration.conftest import Fluxd
from tests.integration.kustomizations import CONFIGMAPS, applied, configmap, live

pytestmark = pytest.mark.integration

ORIGIN = "main@sha1:0123456789abcdef0123456789abcdef01234567"


class ArtifactServer:
    """Tarballs by file name over HTTP on 127.0.0.1."""

    def __init__(self) -> None:
        self.tarballs: dict[str, bytes] = {}
        self.base = ""

    async def serve(self, request: web.Request) -> web.Response:
        body = self.tarballs.get(request.match_info["name"])
        return web.Response(status=404) if body is None else web.Response(body=body)


@pytest.fixture
async def artifact_server() -> AsyncIterator[ArtifactServer]:
    server = ArtifactServer()
    app = web.Application()
    app.router.add_get("/{name}", server.serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.base = f"http://{host}:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


async def publish(
    fluxd: Fluxd, server: ArtifactServer, name: str, files: dict[str, str], *, digest: str = ""
) -> str:
    """Serve ``files`` as ``name`` and publish it in the ExternalArtifact ``producer``;
    the revision published (``digest`` overrides the true digest)."""
    tarball = build_tarball({path: text.encode() for path, text in files.items()})
    server.tarballs[name] = tarball
    true_digest = "sha256:" + hashlib.sha256(tarball).hexdigest()
    revision = f"latest@{true_digest}"
    artifact = {
        "path": f"producer/{name}",
        "url": f"{server.base}/{name}",
        "revision": revision,
        "digest": digest or true_digest,
        "size": len(tarball),
        "lastUpdateTime": "2026-01-01T00:00:00Z",
        "metadata": {"org.opencontainers.image.revision": ORIGIN},
    }
    await client.patch_status(
        fluxd.api,
        resource_of(EXTERNAL_ARTIFACT),
        fluxd.namespace,
        "producer",
        {"artifact": artifact},
    )
    return revision


async def value_of_a(fluxd: Fluxd) -> str | None:
    found = await live(fluxd, CONFIGMAPS, "a")
    return None if found is None else str(found["data"]["value"])


def ready_false(reason: str, *words: str) -> Any:
    def check(obj: dict[str, Any]) -> bool:
        ready = conditions.get(obj.get("status") or {}, "Ready")
        return (
            ready is not None
            and ready["status"] == "False"
            and ready["reason"] == reason
            and all(word in ready["message"] for word in words)
        )

    return check


async def test_external_artifact_is_fetched_verified_and_followed(
    fluxd: Fluxd, artifact_server: ArtifactServer
) -> None:
    ns = fluxd.namespace
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        {
            "interval": "1h",
            "sourceRef": {"kind": "ExternalArtifact", "name": "producer"},
            "path": "./deploy",
            "prune": True,
        },
    )
    await fluxd.wait_for(
        KUSTOMIZATION, "apps", ready_false("ArtifactFailed", "not found"), "source missing"
    )
    await fluxd.create(EXTERNAL_ARTIFACT, "producer", {})
    # Without status.artifact yet: waiting for the producer, as Flux does.
    await fluxd.patch(
        KUSTOMIZATION,
        "apps",
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "1"}}},
    )
    await fluxd.wait_for(
        KUSTOMIZATION,
        "apps",
        ready_false("ArtifactFailed", "status.artifact"),
        "no artifact published yet",
    )

    first = await publish(
        fluxd, artifact_server, "v1.tar.gz", {"deploy/a.yaml": configmap(ns, "a", "1")}
    )
    obj = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, first), "applied")
    assert obj["status"]["lastAppliedRevision"] == first
    assert obj["status"]["lastAppliedOriginRevision"] == ORIGIN
    assert obj["status"]["history"][0]["metadata"] == {"revision": first, "originRevision": ORIGIN}

    wrong = "sha256:" + "0" * 64
    await publish(
        fluxd,
        artifact_server,
        "v2.tar.gz",
        {"deploy/a.yaml": configmap(ns, "a", "2")},
        digest=wrong,
    )
    await fluxd.wait_for(
        KUSTOMIZATION, "apps", ready_false("ArtifactFailed", wrong), "the digest mismatch"
    )
    assert await value_of_a(fluxd) == "1"

    second = await publish(
        fluxd, artifact_server, "v3.tar.gz", {"deploy/a.yaml": configmap(ns, "a", "3")}
    )
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, second), "applied")
    assert await value_of_a(fluxd) == "3"


async def test_external_artifact_missing_at_its_url_says_so(
    fluxd: Fluxd, artifact_server: ArtifactServer
) -> None:
    await fluxd.create(EXTERNAL_ARTIFACT, "producer", {})
    await publish(fluxd, artifact_server, "gone.tar.gz", {"deploy/a.yaml": "{}\n"})
    del artifact_server.tarballs["gone.tar.gz"]
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        {
            "interval": "1h",
            "sourceRef": {"kind": "ExternalArtifact", "name": "producer"},
            "path": "./deploy",
            "prune": True,
        },
    )
    await fluxd.wait_for(
        KUSTOMIZATION, "apps", ready_false("ArtifactFailed", "HTTP 404", "gone.tar.gz"), "404"
    )
