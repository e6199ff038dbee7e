"""A full disk where fluxd writes temporary files: nothing lost, status honest, daemon up.

Each test mounts a real, small tmpfs (the tests run as root) and fills it with a filler
file until only a few KiB are free, then points fluxd at it:

- as the artifact spill directory (``artifact_spill_dir`` under a 1 MiB memory budget),
  a source whose artifact must spill says ``Ready=False``/``StorageOperationFailed``
  naming the directory and ``No space left on device``, leaves no partial file taking
  the little space that was left, and the daemon keeps answering ``/healthz``;
- a source already serving revision R1 whose R2 cannot be stored keeps serving R1, and
  the Kustomization built from it keeps its objects;
- once the filler is removed, the next requested reconcile stores the artifact, without
  restarting fluxd.

And as the general temporary directory (``TMPDIR``): a HelmRepository, an
OCIRepository and a Bucket whose client certificate fluxd must hand to the TLS library
as a file say ``StorageOperationFailed`` naming that directory (a notification Provider
says ``InvalidConfig`` with the same words), leave no file there, and recover once there
is space; a GitRepository and the Kustomization applying it, which
need no temporary files, go on working meanwhile. A Kustomization whose SOPS file needs
a PGP key (imported by gpg in a private GNUPGHOME there) fails its build naming the
directory, applies nothing, and applies everything once there is space.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.api import (
    BUCKET,
    GIT_REPOSITORY,
    HELM_REPOSITORY,
    KUSTOMIZATION,
    OCI_REPOSITORY,
    PROVIDER,
    KindInfo,
)
from fluxd.kube.resources import SECRETS
from fluxd.runtime import conditions
from tests.chartservers import REPO_PASSWORD, REPO_USERNAME, ChartRepository
from tests.gitservers import GitHTTPServer, GitRemote, make_ca
from tests.integration.conftest import Fluxd, is_ready_now, namespaced_fluxd
from tests.integration.kustomizations import (
    CONFIGMAPS,
    configmap,
    kustomization,
    live,
    push_and_refresh,
    reconcile_now,
    setup_source,
)
from tests.integration.test_kustomization_fields import SOPS_FIXTURES, pgp_secret_manifest
from tests.integration.test_ocirepository import push
from tests.ociregistry import OCIRegistry, docker_config
from tests.s3servers import S3Front, S3Store

pytestmark = pytest.mark.integration

KIB = 1024
DISK_SIZE = 2048 * KIB
#: What the filler leaves free: less than one spilled content, more than a partial write
#: would leave if fluxd did not remove it.
LEFT_FREE = 64 * KIB
NO_SPACE = "No space left on device"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


@dataclass(frozen=True)
class SmallDisk:
    """A mounted tmpfs of :data:`DISK_SIZE` bytes and the filler file that fills it."""

    path: Path

    @property
    def filler(self) -> Path:
        return self.path / "filler"

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def fill(self, leave: int = LEFT_FREE) -> None:
        """Leave only ``leave`` bytes free."""
        with self.filler.open("ab") as out:
            out.write(b"\0" * (self.free_bytes() - leave))
        assert self.free_bytes() <= leave, self.free_bytes()

    def free(self) -> None:
        self.filler.unlink()

    def files(self) -> list[Path]:
        """Every regular file on the disk but the filler."""
        return [path for path in self.path.rglob("*") if path.is_file() and path != self.filler]

    def partial_contents(self) -> list[Path]:
        """Spilled contents that are not whole: the store names each by its sha256."""
        return [
            path
            for path in self.files()
            if hashlib.sha256(path.read_bytes()).hexdigest() != path.name
        ]


@pytest.fixture
def small_disk() -> Iterator[SmallDisk]:
    # A short path: gpg-agent puts its socket in the GNUPGHOME fluxd makes there, and a
    # socket path is limited to 107 bytes.
    mount_point = Path(tempfile.mkdtemp(prefix="fluxd-disk-"))
    mount = ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount_point)]
    try:
        mounted = subprocess.run(mount, capture_output=True, text=True, check=False)
        if mounted.returncode != 0:
            pytest.fail(
                f"cannot mount a {DISK_SIZE // KIB} KiB tmpfs on {mount_point} (these tests "
                f"need root and the right to mount): {mounted.stderr.strip() or mounted.returncode}"
            )
        try:
            yield SmallDisk(mount_point)
        finally:
            subprocess.run(["umount", str(mount_point)], check=True)
    finally:
        mount_point.rmdir()


def big_files() -> dict[str, str]:
    """Two files of 700 KiB: over a 1 MiB budget together, so one must spill."""
    return {f"files/blob-{n}.txt": os.urandom(350 * KIB).hex() for n in (1, 2)}


def ready_condition(obj: dict[str, Any]) -> dict[str, Any]:
    ready = conditions.get(obj.get("status") or {}, conditions.READY)
    assert ready is not None, obj.get("status")
    return ready


async def healthz(fluxd: Fluxd) -> int:
    host, port = fluxd.daemon.addresses["probes"]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{host}:{port}/healthz") as response,
    ):
        return response.status


async def request_reconcile(fluxd: Fluxd, token: str) -> dict[str, Any]:
    await fluxd.patch(
        GIT_REPOSITORY, "source", {"metadata": {"annotations": {REQUESTED_AT: token}}}
    )
    return await fluxd.wait_for(
        GIT_REPOSITORY,
        "source",
        lambda o: (o.get("status") or {}).get("lastHandledReconcileAt") == token,
        f"the reconcile requested as {token!r}",
    )


async def test_an_artifact_that_cannot_spill_fails_by_directory_and_recovers_when_space_frees(
    api_client: ApiClient,
    namespace: str,
    small_disk: SmallDisk,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
) -> None:
    files = big_files()
    sha = git_remote.commit(files)
    small_disk.fill()
    async with namespaced_fluxd(
        api_client, namespace, artifact_memory_mib=1, artifact_spill_dir=str(small_disk.path)
    ) as fluxd:
        await fluxd.create(
            GIT_REPOSITORY, "source", {"interval": "1h", "url": git_http.url(git_remote)}
        )
        failed = await fluxd.wait_not_ready(GIT_REPOSITORY, "source", "StorageOperationFailed")
        ready = ready_condition(failed)
        print("status:", ready["reason"], ready["message"])
        assert str(small_disk.path) in ready["message"], ready
        assert NO_SPACE in ready["message"], ready
        assert "artifact" not in failed["status"], failed["status"]
        assert small_disk.files() == [], "a partial write was left behind"
        assert small_disk.free_bytes() >= LEFT_FREE - 4 * KIB, "the space left was taken"
        assert await healthz(fluxd) == 200

        small_disk.free()
        await request_reconcile(fluxd, "space-freed")
        stored = await fluxd.wait_ready(GIT_REPOSITORY, "source")
        assert stored["status"]["artifact"]["revision"] == f"master@sha1:{sha}"
        assert small_disk.files(), "the contents beyond the budget are on the disk now"
        assert small_disk.partial_contents() == []
        tarball = await fluxd.fetch_artifact(stored["status"]["artifact"]["url"])
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            served = {
                m.name: (tar.extractfile(m) or io.BytesIO()).read() for m in tar if m.isfile()
            }
        assert served == {path: text.encode() for path, text in files.items()}


async def test_a_revision_that_cannot_be_stored_leaves_the_last_one_served_and_applied(
    api_client: ApiClient,
    namespace: str,
    small_disk: SmallDisk,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
) -> None:
    first = git_remote.commit({"deploy/cm.yaml": configmap(namespace, "app", "1")})
    async with namespaced_fluxd(
        api_client, namespace, artifact_memory_mib=1, artifact_spill_dir=str(small_disk.path)
    ) as fluxd:
        await setup_source(fluxd, git_remote, git_http)
        await fluxd.create(KUSTOMIZATION, "app", kustomization("./deploy"))
        await fluxd.wait_ready(KUSTOMIZATION, "app")
        served = (await fluxd.get(GIT_REPOSITORY, "source"))["status"]["artifact"]
        assert served["revision"] == f"master@sha1:{first}"

        small_disk.fill()
        second = await push_and_refresh(
            fluxd, git_remote, {"deploy/cm.yaml": configmap(namespace, "app", "2"), **big_files()}
        )
        failed = await fluxd.wait_not_ready(GIT_REPOSITORY, "source", "StorageOperationFailed")
        assert NO_SPACE in ready_condition(failed)["message"], failed["status"]
        assert failed["status"]["artifact"] == served, "the stored revision was lost"
        assert await fluxd.fetch_artifact(served["url"])

        kept = await reconcile_now(fluxd, "app", "disk-full")
        assert is_ready_now(kept), kept["status"]
        assert kept["status"]["lastAppliedRevision"] == f"master@sha1:{first}"
        app = await live(fluxd, CONFIGMAPS, "app")
        assert app is not None, "the Kustomization's objects were removed"
        assert app["data"] == {"value": "1"}
        assert small_disk.partial_contents() == [], "a partial write was left behind"
        assert await healthz(fluxd) == 200

        small_disk.free()
        await request_reconcile(fluxd, "space-freed")
        stored = await fluxd.wait_ready(GIT_REPOSITORY, "source")
        assert stored["status"]["artifact"]["revision"] == f"master@sha1:{second}"
        await fluxd.wait_for(
            KUSTOMIZATION,
            "app",
            lambda o: o["status"].get("lastAppliedRevision") == f"master@sha1:{second}",
            "the new revision applied",
        )
        app = await live(fluxd, CONFIGMAPS, "app")
        assert app is not None
        assert app["data"] == {"value": "2"}


async def test_a_full_temporary_directory_fails_client_certificates_by_name_until_space_frees(
    fluxd: Fluxd,
    small_disk: SmallDisk,
    chart_repo_https: ChartRepository,
    oci_registry_tls: OCIRegistry,
    s3_store: S3Store,
    s3_front_tls: S3Front,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A client certificate of its own per test: fluxd keeps the TLS contexts it built, and
    # one built before would need no temporary files.
    client = make_ca()
    client_tls = {"tls.crt": client.server_cert_pem, "tls.key": client.server_key_pem}

    chart_repo_https.publish(b"archive", "podinfo", "6.0.0")
    assert chart_repo_https.ca_pem is not None
    await fluxd.secret("charts-auth", {"username": REPO_USERNAME, "password": REPO_PASSWORD})
    await fluxd.secret("charts-tls", {"ca.crt": chart_repo_https.ca_pem, **client_tls})
    charts = {
        "interval": "1h",
        "url": chart_repo_https.url,
        "secretRef": {"name": "charts-auth"},
        "certSecretRef": {"name": "charts-tls"},
    }

    registry = oci_registry_tls
    assert registry.username
    assert registry.password
    assert registry.ca_pem
    url = registry.fresh_url("full-disk")
    await push(registry, url, "latest", {"a.yaml": "a: 1\n"})
    pull = docker_config(registry.host, registry.username, registry.password)
    await fluxd.secret("oci-pull", {".dockerconfigjson": pull})
    await fluxd.secret("oci-tls", {"ca.crt": registry.ca_pem, **client_tls})
    artifact = {
        "interval": "1h",
        "url": url,
        "ref": {"tag": "latest"},
        "insecure": registry.insecure,
        "secretRef": {"name": "oci-pull"},
        "certSecretRef": {"name": "oci-tls"},
    }

    bucket_name = s3_store.new_bucket()
    s3_store.put(bucket_name, "a.yaml", "a: 1\n")
    assert s3_front_tls.ca_pem is not None
    keys: dict[str, str | bytes] = {
        "accesskey": s3_store.access_key,
        "secretkey": s3_store.secret_key,
    }
    await fluxd.secret("s3-keys", keys)
    await fluxd.secret("s3-tls", {"ca.crt": s3_front_tls.ca_pem, **client_tls})
    bucket = {
        "interval": "1h",
        "provider": "generic",
        "bucketName": bucket_name,
        "endpoint": s3_front_tls.endpoint,
        "secretRef": {"name": "s3-keys"},
        "certSecretRef": {"name": "s3-tls"},
    }

    await fluxd.secret("hook-tls", {"ca.crt": chart_repo_https.ca_pem, **client_tls})
    provider = {
        "type": "generic",
        "address": "https://127.0.0.1:9/hook",
        "certSecretRef": {"name": "hook-tls"},
    }

    git_remote.commit({"deploy/cm.yaml": configmap(fluxd.namespace, "app")})

    small_disk.fill(leave=0)  # a certificate is smaller than the space a spill test leaves
    monkeypatch.setattr(tempfile, "tempdir", str(small_disk.path))
    monkeypatch.setenv("TMPDIR", str(small_disk.path))
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "app", kustomization("./deploy"))
    await fluxd.wait_ready(KUSTOMIZATION, "app")
    assert await live(fluxd, CONFIGMAPS, "app") is not None
    sources: list[tuple[KindInfo[Any], str, dict[str, Any]]] = [
        (HELM_REPOSITORY, "charts", charts),
        (OCI_REPOSITORY, "oci", artifact),
        (BUCKET, "bucket", bucket),
    ]
    for kind, name, spec in [*sources, (PROVIDER, "hook", provider)]:
        await fluxd.create(kind, name, spec)
    failures = [(kind, name, "StorageOperationFailed") for kind, name, _ in sources]
    for kind, name, reason in [*failures, (PROVIDER, "hook", "InvalidConfig")]:
        failed = await fluxd.wait_not_ready(kind, name, reason)
        message = ready_condition(failed)["message"]
        print(f"{kind.kind}:", message)
        assert "client certificate" in message, message
        assert str(small_disk.path) in message, message
        assert NO_SPACE in message, message
        assert "artifact" not in failed["status"], failed["status"]
    assert small_disk.files() == [], "a partial certificate file was left behind"
    assert await healthz(fluxd) == 200

    small_disk.free()
    for kind, name, _ in [*sources, (PROVIDER, "hook", provider)]:
        annotations = {"metadata": {"annotations": {REQUESTED_AT: "space-freed"}}}
        await fluxd.patch(kind, name, annotations)
    assert (await fluxd.wait_ready(PROVIDER, "hook"))["status"]["observedGeneration"] == 1
    for kind, name, _ in sources:
        stored = await fluxd.wait_ready(kind, name)
        assert stored["status"]["artifact"]["revision"], stored["status"]
    assert small_disk.files() == [], "the certificate files were not removed"


async def test_a_full_temporary_directory_fails_pgp_decryption_by_name_and_applies_nothing(
    fluxd: Fluxd,
    small_disk: SmallDisk,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit(
        {
            "deploy/secret.yaml": pgp_secret_manifest(),
            "deploy/settings.yaml": configmap(ns, "settings"),
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.secret("sops-gpg", {"identity.asc": (SOPS_FIXTURES / "pgp.asc").read_text()})
    small_disk.fill(leave=0)  # a key is smaller than the space a spill test leaves
    monkeypatch.setattr(tempfile, "tempdir", str(small_disk.path))
    monkeypatch.setenv("TMPDIR", str(small_disk.path))
    decryption = {"provider": "sops", "secretRef": {"name": "sops-gpg"}}
    await fluxd.create(
        KUSTOMIZATION, "apps", kustomization("deploy", targetNamespace=ns, decryption=decryption)
    )

    failed = await fluxd.wait_not_ready(KUSTOMIZATION, "apps", "BuildFailed")
    message = ready_condition(failed)["message"]
    print("status:", message)
    assert f"Secret/{ns}/db-credentials" in message
    assert "cannot write the PGP keys" in message
    assert str(small_disk.path) in message
    assert NO_SPACE in message
    assert "add the private key" not in message, "the key is there: the disk is the problem"
    assert await live(fluxd, SECRETS, "db-credentials") is None
    assert await live(fluxd, CONFIGMAPS, "settings") is None, "a failed build applied objects"
    assert small_disk.files() == [], "a key file was left behind"
    assert await healthz(fluxd) == 200

    small_disk.free()
    done = await reconcile_now(fluxd, "apps", "space-freed")
    assert is_ready_now(done), done["status"]
    assert done["status"]["lastAppliedRevision"] == f"master@sha1:{sha}"
    secret = await live(fluxd, SECRETS, "db-credentials")
    assert secret is not None
    assert secret["data"]["username"] == "YWRtaW4="  # "admin"
    assert small_disk.files() == [], "the private keys were left on the disk"
