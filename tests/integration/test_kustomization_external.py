"""Kustomizations built from an ExternalArtifact, end to end on the real API server.

The test plays the third-party producer: it serves tarballs over HTTP on loopback and
publishes them in the ExternalArtifact's ``status.artifact``, as a controller of its own
would. What a user sees: the manifests applied as soon as an artifact is published (no
reconcile request needed), the origin revision recorded, and a tarball whose bytes do
not match the published digest refused with nothing applied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from fluxd.api import EXTERNAL_ARTIFACT, KUSTOMIZATION
from fluxd.runtime import conditions
from fluxd.sources.artifact import build_tarball
from tests.artifactproducer import ORIGIN, ArtifactServer, serve_artifacts
from tests.integration.conftest import Fluxd
from tests.integration.kustomizations import CONFIGMAPS, applied, configmap, live

pytestmark = pytest.mark.integration


@pytest.fixture
async def artifact_server() -> AsyncIterator[ArtifactServer]:
    async with serve_artifacts() as server:
        yield server


async def publish(
    fluxd: Fluxd, server: ArtifactServer, name: str, files: dict[str, str], *, digest: str = ""
) -> str:
    """Serve ``files`` as the tarball ``name`` and publish it in the ExternalArtifact
    ``producer``; the revision published."""
    tarball = build_tarball({path: text.encode() for path, text in files.items()})
    return await server.publish(fluxd.api, fluxd.namespace, name, tarball, digest=digest)


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
