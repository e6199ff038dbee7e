"""HelmRelease ``chartRef`` to an ExternalArtifact, end to end on the real API server.

The test plays the third-party producer (:mod:`tests.artifactproducer`): it publishes
packaged charts in the ExternalArtifact's ``status.artifact`` and serves them on
loopback. What a user sees: the release waits for the producer, installs as soon as a
chart is published and upgrades on the next one; a digest revision is stamped into the
chart version (``1.1.0+<12 hex>``) as Flux stamps OCI charts; a tarball that is not a
chart, bytes that do not match the published digest, or a chart gone from its URL leave
the release as it was with Flux's ``ArtifactFailed``.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from fluxd.api import EXTERNAL_ARTIFACT, HELM_RELEASE
from fluxd.sources.artifact import build_tarball
from tests.artifactproducer import ArtifactServer, serve_artifacts
from tests.chartservers import package_chart
from tests.integration.conftest import Fluxd
from tests.integration.test_helmrelease import TEMPLATE, helm_cli, message, settings

pytestmark = pytest.mark.integration

SPEC = {"interval": "1h", "chartRef": {"kind": "ExternalArtifact", "name": "producer"}}


@pytest.fixture
async def producer(fluxd: Fluxd) -> AsyncIterator[ArtifactServer]:
    async with serve_artifacts() as server:
        yield server


def chart(version: str, greeting: str) -> bytes:
    files = {"templates/cm.yaml": TEMPLATE, "values.yaml": f"greeting: {greeting}\n"}
    return package_chart("demo", version, files)


async def greeting(fluxd: Fluxd) -> str | None:
    made = await settings(fluxd, "web-settings")
    return None if made is None else str(made["data"]["greeting"])


async def test_external_chart_is_waited_for_released_and_upgraded(
    fluxd: Fluxd, producer: ArtifactServer, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    await fluxd.create(HELM_RELEASE, "web", SPEC)
    obj = await fluxd.wait_not_ready(HELM_RELEASE, "web", "ArtifactFailed")
    assert message(obj) == (
        f"could not get Source object: ExternalArtifact '{ns}/producer' not found"
    )
    with structlog.testing.capture_logs() as daemon_log:
        await fluxd.create(EXTERNAL_ARTIFACT, "producer", {})
        obj = await fluxd.wait_not_ready(HELM_RELEASE, "web", "SourceNotReady")
    woken = [e for e in daemon_log if e["event"] == "external artifact changed: waking its readers"]
    assert [(e["change"], e["dependents"]) for e in woken][:1] == [
        ("ADDED", [f"HelmRelease/{ns}/web"])
    ], daemon_log
    assert (
        message(obj) == f"ExternalArtifact '{ns}/producer' is not ready: does not have an artifact"
    )

    await producer.publish(
        fluxd.api, ns, "demo-1.0.0.tgz", chart("1.0.0", "hello"), revision="1.0.0"
    )
    obj = await fluxd.wait_ready(HELM_RELEASE, "web")
    assert message(obj) == f"Helm install succeeded for release {ns}/web.v1 with chart demo@1.0.0"
    assert obj["status"]["lastAttemptedRevision"] == "1.0.0"
    assert "lastAttemptedRevisionDigest" not in obj["status"], "a version revision has no digest"
    assert await greeting(fluxd) == "hello"
    listed = helm_cli(kubeconfig, "list", "-n", ns)
    assert [(r["name"], r["chart"]) for r in listed] == [("web", "demo-1.0.0")]

    second = chart("1.1.0", "again")
    digest = "sha256:" + hashlib.sha256(second).hexdigest()
    revision = await producer.publish(fluxd.api, ns, "demo-1.1.0.tgz", second)
    assert revision == f"latest@{digest}"
    upgraded = await fluxd.wait_for(
        HELM_RELEASE,
        "web",
        lambda o: (o.get("status") or {}).get("lastReleaseRevision") == 2,
        "the upgrade to the next published chart",
    )
    version = f"1.1.0+{digest.removeprefix('sha256:')[:12]}"
    assert upgraded["status"]["history"][0]["chartVersion"] == version
    assert upgraded["status"]["lastAttemptedRevisionDigest"] == revision
    assert await greeting(fluxd) == "again"


async def test_bad_external_charts_leave_the_release_as_it_was(
    fluxd: Fluxd, producer: ArtifactServer
) -> None:
    ns = fluxd.namespace
    await fluxd.create(EXTERNAL_ARTIFACT, "producer", {})
    await producer.publish(fluxd.api, ns, "good.tgz", chart("1.0.0", "hello"), revision="1.0.0")
    await fluxd.create(HELM_RELEASE, "web", SPEC)
    await fluxd.wait_ready(HELM_RELEASE, "web")

    await producer.publish(fluxd.api, ns, "notes.tgz", build_tarball({"README.md": b"hi\n"}))
    obj = await fluxd.wait_not_ready(HELM_RELEASE, "web", "ArtifactFailed")
    assert message(obj).startswith("Could not load chart: ")

    wrong = "sha256:" + "0" * 64
    await producer.publish(fluxd.api, ns, "tampered.tgz", chart("2.0.0", "evil"), digest=wrong)
    obj = await fluxd.wait_for(
        HELM_RELEASE, "web", lambda o: wrong in message(o), "the digest mismatch"
    )
    assert message(obj).startswith(f"Could not load chart: ExternalArtifact '{ns}/producer'")
    assert "refusing to build from it" in message(obj)

    await producer.publish(fluxd.api, ns, "gone.tgz", chart("3.0.0", "gone"))
    del producer.tarballs["gone.tgz"]
    obj = await fluxd.wait_for(
        HELM_RELEASE, "web", lambda o: "artifact not found" in message(o), "the missing chart"
    )
    assert message(obj) == "Source not ready: artifact not found. Retrying in 30s"

    assert obj["status"]["history"][0]["chartVersion"] == "1.0.0"
    assert len(obj["status"]["history"]) == 1, "no other release was made"
    assert await greeting(fluxd) == "hello"
