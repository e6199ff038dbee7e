"""Source servers cut off mid-transfer: the last good artifact stays in use.

Each source kind reaches its real loopback server (git smart HTTP, docker-registry, a
chart repository, moto's S3) through a :mod:`tests.cutrelay` relay. A first revision
goes through whole and becomes the artifact; then a second revision is published and the
relay hangs up after a few KiB of every response body, so the large transfer (the pack,
the layer blob, the index, the chart archive, the object) arrives truncated while the
small listings before it arrive whole. What a user must see: ``Ready=False`` naming what
was cut off, the first artifact still in ``status.artifact`` and still served, a
Kustomization consuming it left alone, and the second revision taken as soon as the server
answers whole again.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from fluxd.api import (
    BUCKET,
    GIT_REPOSITORY,
    HELM_CHART,
    HELM_REPOSITORY,
    KUSTOMIZATION,
    OCI_REPOSITORY,
    KindInfo,
)
from fluxd.runtime import conditions
from fluxd.sources import oci
from tests.chartservers import ChartRepository, package_chart
from tests.cutrelay import CutRelay, cut_relay
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import Fluxd, is_ready_now
from tests.integration.kustomizations import CONFIGMAPS, configmap, live
from tests.integration.kustomizations import reconcile_now as reconcile_kustomization
from tests.ociregistry import OCIRegistry
from tests.s3servers import S3Store

pytestmark = pytest.mark.integration

#: Body bytes the relay lets through once cutting: more than any listing, manifest or
#: index these tests make, far less than the payloads they publish second.
CUT_AFTER = 4096
#: What every reader says when a response body ends early.
TRUNCATED = "the connection broke mid-transfer, the response was truncated"
#: Size of the incompressible payload that makes the second revision's transfer large.
PAYLOAD = 256 * 1024


def payload_text() -> str:
    """Random text that no compression shrinks below :data:`CUT_AFTER` (hex: half)."""
    return os.urandom(PAYLOAD // 2).hex()


def ready(obj: dict[str, Any]) -> dict[str, Any]:
    found = conditions.get(obj.get("status") or {}, conditions.READY)
    assert found is not None, f"no Ready condition in {obj.get('status')}"
    return found


async def request_reconcile(fluxd: Fluxd, kind: KindInfo[Any], name: str) -> dict[str, Any]:
    """Ask for a reconcile now (``flux reconcile source ...``) and return the object once
    fluxd has handled that very request."""
    token = uuid.uuid4().hex
    await fluxd.patch(
        kind, name, {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}
    )
    return await fluxd.wait_for(
        kind,
        name,
        lambda o: (o.get("status") or {}).get("lastHandledReconcileAt") == token,
        f"the reconcile requested as {token}",
    )


async def assert_last_good_kept(
    fluxd: Fluxd, obj: dict[str, Any], good: dict[str, Any], relay: CutRelay
) -> str:
    """The truncated fetch failed visibly and left the good artifact in place and served;
    returns the Ready message."""
    assert relay.cuts, "the relay cut a response off"
    condition = ready(obj)
    assert condition["status"] == "False", f"a truncated transfer was accepted: {condition}"
    assert obj["status"]["artifact"] == good, "the last good artifact stays in status"
    served = await fluxd.fetch_artifact(good["url"])
    assert f"sha256:{hashlib.sha256(served).hexdigest()}" == good["digest"], "and served whole"
    return str(condition["message"])


async def artifact_files(fluxd: Fluxd, obj: dict[str, Any]) -> dict[str, str]:
    """The files of the artifact ``obj`` serves, by path."""
    tarball = await fluxd.fetch_artifact(obj["status"]["artifact"]["url"])
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        return {
            member.name.removeprefix("./"): archive.extractfile(member).read().decode()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile()
        }


@pytest.fixture
def git_relay(git_http: GitHTTPServer) -> Iterator[CutRelay]:
    with cut_relay(git_http.port) as relay:
        yield relay


async def test_a_truncated_git_pack_keeps_the_applied_revision(
    fluxd: Fluxd, git_remote: GitRemote, git_relay: CutRelay
) -> None:
    ns = fluxd.namespace
    first = git_remote.commit({"deploy/app.yaml": configmap(ns, "app", "1")})
    url = f"http://{git_relay.address}/public/{git_remote.name}"
    await fluxd.create(GIT_REPOSITORY, "source", {"interval": "1h", "url": url, "timeout": "20s"})
    await fluxd.create(
        KUSTOMIZATION,
        "app",
        {
            "interval": "1h",
            "sourceRef": {"kind": "GitRepository", "name": "source"},
            "path": "./deploy",
            "prune": True,
        },
    )
    good = (await fluxd.wait_ready(GIT_REPOSITORY, "source"))["status"]["artifact"]
    assert good["revision"] == f"master@sha1:{first}"
    await fluxd.wait_for(
        KUSTOMIZATION,
        "app",
        lambda o: is_ready_now(o) and o["status"].get("lastAppliedRevision") == good["revision"],
        "the first commit applied",
    )

    blob = payload_text()
    second = git_remote.commit(
        {"deploy/app.yaml": configmap(ns, "app", "2"), "assets/blob.txt": blob}
    )
    git_relay.cut_after(CUT_AFTER)
    cut = await request_reconcile(fluxd, GIT_REPOSITORY, "source")
    message = await assert_last_good_kept(fluxd, cut, good, git_relay)
    assert any("git-upload-pack" in target for target in git_relay.cuts), git_relay.cuts
    assert ready(cut)["reason"] == "GitOperationFailed", ready(cut)
    assert url in message, message
    assert f"{TRUNCATED} (IncompleteRead({CUT_AFTER} bytes read" in message, message

    kept = await reconcile_kustomization(fluxd, "app", uuid.uuid4().hex)
    assert is_ready_now(kept), kept["status"]
    assert kept["status"]["lastAppliedRevision"] == good["revision"]
    applied = await live(fluxd, CONFIGMAPS, "app")
    assert applied is not None
    assert applied["data"]["value"] == "1", "applied objects untouched"

    git_relay.pass_through()
    await request_reconcile(fluxd, GIT_REPOSITORY, "source")
    healed = await fluxd.wait_ready(GIT_REPOSITORY, "source")
    assert healed["status"]["artifact"]["revision"] == f"master@sha1:{second}"
    assert (await artifact_files(fluxd, healed))["assets/blob.txt"] == blob, "nothing half-kept"
    await fluxd.wait_for(
        KUSTOMIZATION,
        "app",
        lambda o: str(o["status"].get("lastAppliedRevision", "")).endswith(second),
        "the second commit applied",
    )
    applied = await live(fluxd, CONFIGMAPS, "app")
    assert applied is not None
    assert applied["data"]["value"] == "2"


@pytest.fixture
def oci_relay(oci_registry: OCIRegistry) -> Iterator[CutRelay]:
    with cut_relay(int(oci_registry.host.rpartition(":")[2])) as relay:
        yield relay


async def test_a_truncated_layer_blob_keeps_the_last_oci_artifact(
    fluxd: Fluxd, oci_registry: OCIRegistry, oci_relay: CutRelay
) -> None:
    name = f"cut-{uuid.uuid4().hex[:8]}"

    async def push(files: dict[str, str]) -> oci.Pushed:
        reference = oci.parse_reference(f"{oci_registry.url(name)}:latest", insecure=True)
        return await oci.push_files(
            reference,
            {path: text.encode() for path, text in files.items()},
            source="https://github.com/example/app",
            revision="main@sha1:1",
            auth=oci_registry.auth,
        )

    first = await push({"app.yaml": "one"})
    url = f"oci://{oci_relay.address}/{name}"
    await fluxd.create(
        OCI_REPOSITORY,
        "app",
        {"interval": "1h", "url": url, "insecure": True, "ref": {"tag": "latest"}},
    )
    good = (await fluxd.wait_ready(OCI_REPOSITORY, "app"))["status"]["artifact"]
    assert good["revision"] == f"latest@{first.digest}"

    blob = payload_text()
    second = await push({"app.yaml": "two", "blob.txt": blob})
    oci_relay.cut_after(CUT_AFTER)
    cut = await request_reconcile(fluxd, OCI_REPOSITORY, "app")
    message = await assert_last_good_kept(fluxd, cut, good, oci_relay)
    assert any("/blobs/sha256:" in target for target in oci_relay.cuts), oci_relay.cuts
    assert ready(cut)["reason"] == "OCIArtifactPullFailed", ready(cut)
    assert oci_relay.cuts[0] in message, message
    assert f"{TRUNCATED} (Not enough data" in message, message
    assert f"received {CUT_AFTER} of" in message, message

    oci_relay.pass_through()
    await request_reconcile(fluxd, OCI_REPOSITORY, "app")
    healed = await fluxd.wait_ready(OCI_REPOSITORY, "app")
    assert healed["status"]["artifact"]["revision"] == f"latest@{second.digest}"
    assert await artifact_files(fluxd, healed) == {"app.yaml": "two", "blob.txt": blob}


@pytest.fixture
def chart_relay(chart_repo: ChartRepository) -> Iterator[CutRelay]:
    port = urlsplit(chart_repo.url).port
    assert port is not None
    with cut_relay(port) as relay:
        yield relay


def relayed(chart_repo: ChartRepository, relay: CutRelay) -> str:
    """The repository's URL with the relay's address in place of the server's."""
    return chart_repo.url.replace(urlsplit(chart_repo.url).netloc, relay.address)


async def test_a_truncated_index_keeps_the_last_helm_repository_artifact(
    fluxd: Fluxd, chart_repo: ChartRepository, chart_relay: CutRelay
) -> None:
    chart_repo.publish(package_chart("podinfo", "1.0.0"), "podinfo", "1.0.0")
    url = relayed(chart_repo, chart_relay)
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": url})
    good = (await fluxd.wait_ready(HELM_REPOSITORY, "charts"))["status"]["artifact"]

    chart_repo.publish(package_chart("podinfo", "1.1.0"), "podinfo", "1.1.0")
    index_size = len(chart_repo.files["index.yaml"])
    chart_relay.cut_after(index_size // 2)
    cut = await request_reconcile(fluxd, HELM_REPOSITORY, "charts")
    message = await assert_last_good_kept(fluxd, cut, good, chart_relay)
    assert any(target.endswith("/index.yaml") for target in chart_relay.cuts)
    assert ready(cut)["reason"] == "Failed", ready(cut)
    assert f"{url}/index.yaml" in message, message
    assert f"{TRUNCATED} (Not enough data" in message, message
    assert f"received {index_size // 2} of {index_size} bytes" in message, message

    chart_relay.pass_through()
    await request_reconcile(fluxd, HELM_REPOSITORY, "charts")
    healed = await fluxd.wait_ready(HELM_REPOSITORY, "charts")
    assert healed["status"]["artifact"]["revision"] != good["revision"]
    served = await fluxd.fetch_artifact(healed["status"]["artifact"]["url"])
    assert b"1.1.0" in served


async def test_a_truncated_chart_archive_keeps_the_last_helm_chart(
    fluxd: Fluxd, chart_repo: ChartRepository, chart_relay: CutRelay
) -> None:
    first = package_chart("podinfo", "1.0.0")
    chart_repo.publish(first, "podinfo", "1.0.0")
    await fluxd.create(
        HELM_REPOSITORY, "charts", {"interval": "1h", "url": relayed(chart_repo, chart_relay)}
    )
    await fluxd.create(
        HELM_CHART,
        "podinfo",
        {
            "interval": "1h",
            "chart": "podinfo",
            "version": "*",
            "sourceRef": {"kind": "HelmRepository", "name": "charts"},
        },
    )
    good = (await fluxd.wait_ready(HELM_CHART, "podinfo"))["status"]["artifact"]
    assert good["revision"] == "1.0.0"
    assert good["digest"] == f"sha256:{hashlib.sha256(first).hexdigest()}"

    second = package_chart("podinfo", "1.1.0", {"files/blob.txt": payload_text()})
    chart_repo.publish(second, "podinfo", "1.1.0")
    assert len(chart_repo.files["index.yaml"]) < CUT_AFTER
    chart_relay.cut_after(CUT_AFTER)
    await request_reconcile(fluxd, HELM_REPOSITORY, "charts")
    await fluxd.wait_ready(HELM_REPOSITORY, "charts")
    cut = await request_reconcile(fluxd, HELM_CHART, "podinfo")
    message = await assert_last_good_kept(fluxd, cut, good, chart_relay)
    assert any(target.endswith("/podinfo-1.1.0.tgz") for target in chart_relay.cuts)
    assert ready(cut)["reason"] == "ChartPullError", ready(cut)
    assert "podinfo-1.1.0.tgz" in message, message
    assert f"{TRUNCATED} (Not enough data" in message, message

    chart_relay.pass_through()
    await request_reconcile(fluxd, HELM_CHART, "podinfo")
    healed = await fluxd.wait_ready(HELM_CHART, "podinfo")
    assert healed["status"]["artifact"]["revision"] == "1.1.0"
    assert await fluxd.fetch_artifact(healed["status"]["artifact"]["url"]) == second


@pytest.fixture
def s3_relay(s3_store: S3Store) -> Iterator[CutRelay]:
    with cut_relay(int(s3_store.url.rpartition(":")[2])) as relay:
        yield relay


async def test_a_truncated_object_keeps_the_last_bucket_artifact(
    fluxd: Fluxd, s3_store: S3Store, s3_relay: CutRelay
) -> None:
    bucket = s3_store.new_bucket()
    s3_store.put(bucket, "deploy/app.yaml", "one")
    await fluxd.secret(
        "s3-keys", {"accesskey": s3_store.access_key, "secretkey": s3_store.secret_key}
    )
    await fluxd.create(
        BUCKET,
        "objects",
        {
            "interval": "1h",
            "provider": "generic",
            "bucketName": bucket,
            "endpoint": s3_relay.address,
            "insecure": True,
            "secretRef": {"name": "s3-keys"},
            "timeout": "10s",
        },
    )
    good = (await fluxd.wait_ready(BUCKET, "objects"))["status"]["artifact"]

    blob = payload_text()
    s3_store.put(bucket, "assets/blob.txt", blob)
    s3_relay.cut_after(CUT_AFTER)
    cut = await request_reconcile(fluxd, BUCKET, "objects")
    message = await assert_last_good_kept(fluxd, cut, good, s3_relay)
    assert any(target.endswith("/assets/blob.txt") for target in s3_relay.cuts)
    assert ready(cut)["reason"] == "BucketOperationFailed", ready(cut)
    assert f"/{bucket}/assets/blob.txt" in message, message
    assert f"{TRUNCATED} (Not enough data" in message, message
    assert f"received {CUT_AFTER} of {PAYLOAD} bytes" in message, message

    s3_relay.pass_through()
    await request_reconcile(fluxd, BUCKET, "objects")
    healed = await fluxd.wait_ready(BUCKET, "objects")
    assert healed["status"]["artifact"]["revision"] != good["revision"]
    assert await artifact_files(fluxd, healed) == {
        "deploy/app.yaml": "one",
        "assets/blob.txt": blob,
    }
