"""Bucket end to end: a real S3 API (moto, signature checks on) on loopback, fluxd, the
API server.

What a user sees: the objects of a bucket become an artifact whose revision is Flux's
digest of the keys and ETags, a Kustomization with ``sourceRef.kind: Bucket`` applies
them, ``prefix``, ``ignore`` and a ``.sourceignore`` object choose what goes in, an
unchanged bucket is listed and nothing downloaded, a changed object moves the revision
and only it is downloaded again. Bad input (wrong keys, a missing Secret or bucket, an
unreachable endpoint, fields fluxd does not serve) ends in ``Ready=False`` with Flux's
reason and a message naming the problem, the last good artifact still served.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import uuid
from typing import Any

import pytest

from fluxd.api import BUCKET, KUSTOMIZATION
from fluxd.runtime import conditions
from tests.gitservers import free_port
from tests.integration.conftest import Fluxd, is_ready_now, ready_reason
from tests.integration.kustomizations import CONFIGMAPS, configmap, live, until
from tests.s3servers import S3Front, S3Store

pytestmark = pytest.mark.integration


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    found = conditions.get(obj.get("status") or {}, type_)
    assert found is not None, f"no {type_} condition in {obj.get('status')}"
    return found


def flux_revision(store: S3Store, bucket: str, keys: list[str]) -> str:
    """The revision Flux computes: sha256 of ``<key> <etag>\\n`` lines, keys sorted,
    ETags unquoted (as the store reports them, read here with boto3)."""
    lines = ""
    for key in sorted(keys):
        etag = store.client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        lines += f"{key} {etag}\n"
    return f"sha256:{hashlib.sha256(lines.encode()).hexdigest()}"


def tar_files(tarball: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(tarball))) as tar:
        return {
            member.name: tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile()
        }


async def credentials(fluxd: Fluxd, store: S3Store, name: str = "s3-keys") -> None:
    await fluxd.secret(name, {"accesskey": store.access_key, "secretkey": store.secret_key})


def bucket_spec(front: S3Front, bucket: str, **fields: object) -> dict[str, object]:
    return {
        "interval": "1h",
        "provider": "generic",
        "bucketName": bucket,
        "endpoint": front.endpoint,
        "insecure": True,
        "secretRef": {"name": "s3-keys"},
        "timeout": "10s",
        **fields,
    }


async def reconcile_now(fluxd: Fluxd, name: str) -> dict[str, Any]:
    """Ask for a reconcile now (``flux reconcile source bucket``) and return the object
    once it was handled."""
    token = uuid.uuid4().hex
    await fluxd.patch(
        BUCKET, name, {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}
    )
    return await fluxd.wait_for(
        BUCKET,
        name,
        lambda o: (o.get("status") or {}).get("lastHandledReconcileAt") == token,
        f"the reconcile requested as {token}",
    )


async def test_objects_become_an_artifact_a_kustomization_applies(
    fluxd: Fluxd, s3_store: S3Store, s3_front: S3Front
) -> None:
    bucket = s3_store.new_bucket()
    ns = fluxd.namespace
    s3_store.put(bucket, "deploy/one.yaml", configmap(ns, "one", "1"))
    s3_store.put(bucket, "deploy/two.yaml", configmap(ns, "two", "2"))
    await credentials(fluxd, s3_store)
    await fluxd.create(BUCKET, "objects", bucket_spec(s3_front, bucket))
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        {
            "interval": "1h",
            "sourceRef": {"kind": "Bucket", "name": "objects"},
            "path": "./deploy",
            "prune": True,
        },
    )
    obj = await fluxd.wait_ready(BUCKET, "objects")
    revision = flux_revision(s3_store, bucket, ["deploy/one.yaml", "deploy/two.yaml"])
    artifact = obj["status"]["artifact"]
    assert artifact["revision"] == revision
    assert artifact["path"] == f"bucket/{ns}/objects/{revision.partition(':')[2]}.tar.gz"
    assert condition(obj, "Ready")["message"] == f"stored artifact: revision '{revision}'"
    assert condition(obj, "ArtifactInStorage")["status"] == "True"
    served = await fluxd.fetch_artifact(artifact["url"])
    assert artifact["digest"] == f"sha256:{hashlib.sha256(served).hexdigest()}"
    assert set(tar_files(served)) == {"deploy/one.yaml", "deploy/two.yaml"}
    assert obj["status"]["url"].endswith(f"/bucket/{ns}/objects/latest.tar.gz")
    assert await fluxd.fetch_artifact(obj["status"]["url"]) == served
    await fluxd.wait_event(
        "objects",
        lambda e: (
            e["reason"] == "NewArtifact"
            and e["message"] == f"stored artifact with 2 fetched files from '{bucket}' bucket"
        ),
        "NewArtifact counting the fetched files",
    )
    applied = await fluxd.wait_for(
        KUSTOMIZATION,
        "apps",
        lambda o: is_ready_now(o) and o["status"].get("lastAppliedRevision") == revision,
        "the bucket's revision applied",
    )
    assert applied["status"]["lastAppliedRevision"] == revision
    assert (await live(fluxd, CONFIGMAPS, "one")) is not None
    assert (await live(fluxd, CONFIGMAPS, "two")) is not None

    downloads = len(s3_front.object_gets(bucket))
    listings = s3_front.listings(bucket)
    again = await reconcile_now(fluxd, "objects")
    assert again["status"]["artifact"] == artifact, "unchanged bucket, same artifact"
    assert s3_front.listings(bucket) == listings + 1, "one listing"
    assert len(s3_front.object_gets(bucket)) == downloads, "an unchanged bucket downloads nothing"

    s3_store.put(bucket, "deploy/two.yaml", configmap(ns, "two", "changed"))
    moved = await reconcile_now(fluxd, "objects")
    new_revision = flux_revision(s3_store, bucket, ["deploy/one.yaml", "deploy/two.yaml"])
    assert moved["status"]["artifact"]["revision"] == new_revision != revision
    assert s3_front.object_gets(bucket)[downloads:] == [f"/{bucket}/deploy/two.yaml"], (
        "only the changed object is downloaded again"
    )

    async def two_changed() -> bool:
        found = await live(fluxd, CONFIGMAPS, "two")
        return found is not None and found["data"]["value"] == "changed"

    await until("the changed object applied by the Kustomization", two_changed)


async def test_prefix_ignore_and_sourceignore_choose_the_files(
    fluxd: Fluxd, s3_store: S3Store, s3_front: S3Front
) -> None:
    bucket = s3_store.new_bucket()
    for key in (
        "apps/a.yaml",
        "apps/README.md",
        "apps/skip/b.yaml",
        "apps/keep/c.yaml",
        "other/d.yaml",
        "apps/folder/",
    ):
        s3_store.put(bucket, key, f"# {key}\n")
    s3_store.put(bucket, ".sourceignore", "*.md\n")
    await credentials(fluxd, s3_store)
    await fluxd.create(
        BUCKET,
        "filtered",
        bucket_spec(s3_front, bucket, prefix="apps/", ignore="/apps/skip/\n"),
    )
    obj = await fluxd.wait_ready(BUCKET, "filtered")
    kept = ["apps/a.yaml", "apps/keep/c.yaml"]
    assert obj["status"]["artifact"]["revision"] == flux_revision(s3_store, bucket, kept)
    assert obj["status"]["observedIgnore"] == "/apps/skip/\n"
    files = tar_files(await fluxd.fetch_artifact(obj["status"]["artifact"]["url"]))
    # Flux archives the root .sourceignore with the objects, whatever the prefix.
    assert set(files) == {*kept, ".sourceignore"}
    assert files["apps/a.yaml"] == b"# apps/a.yaml\n"

    downloads = len(s3_front.object_gets(bucket))
    await reconcile_now(fluxd, "filtered")
    assert len(s3_front.object_gets(bucket)) == downloads + 1, (
        "outside the prefix, .sourceignore is checked by a conditional GET"
    )
    s3_store.put(bucket, ".sourceignore", "*.md\nkeep/\n")
    narrowed = await reconcile_now(fluxd, "filtered")
    assert narrowed["status"]["artifact"]["revision"] == flux_revision(
        s3_store, bucket, ["apps/a.yaml"]
    )


async def test_wrong_keys_keep_the_last_artifact(
    fluxd: Fluxd, s3_store: S3Store, s3_front: S3Front
) -> None:
    bucket = s3_store.new_bucket()
    s3_store.put(bucket, "a.yaml", "a: 1\n")
    await credentials(fluxd, s3_store)
    await fluxd.secret("wrong", {"accesskey": s3_store.access_key, "secretkey": "not-it"})
    await fluxd.create(BUCKET, "objects", bucket_spec(s3_front, bucket))
    good = (await fluxd.wait_ready(BUCKET, "objects"))["status"]["artifact"]

    await fluxd.patch(BUCKET, "objects", {"spec": {"secretRef": {"name": "wrong"}}})
    failed = await fluxd.wait_not_ready(BUCKET, "objects", "BucketOperationFailed")
    message = condition(failed, "Ready")["message"]
    assert f"bucket '{bucket}'" in message
    assert "403" in message
    assert "signature" in message
    assert condition(failed, "FetchFailed")["reason"] == "BucketOperationFailed"
    assert failed["status"]["artifact"] == good, "the last good artifact stays in status"
    assert await fluxd.fetch_artifact(good["url"]), "and stays served"

    await fluxd.patch(BUCKET, "objects", {"spec": {"secretRef": {"name": "s3-keys"}}})
    healed = await fluxd.wait_ready(BUCKET, "objects")
    assert conditions.get(healed["status"], "FetchFailed") is None


async def test_bad_input_is_reported_by_name(
    fluxd: Fluxd, s3_store: S3Store, s3_front: S3Front
) -> None:
    bucket = s3_store.new_bucket()
    await credentials(fluxd, s3_store)
    await fluxd.secret("half", {"accesskey": s3_store.access_key})
    missing_bucket = f"missing-{uuid.uuid4().hex[:8]}"
    await fluxd.create(
        BUCKET, "no-secret", bucket_spec(s3_front, bucket, secretRef={"name": "absent"})
    )
    await fluxd.create(
        BUCKET, "half-secret", bucket_spec(s3_front, bucket, secretRef={"name": "half"})
    )
    await fluxd.create(BUCKET, "no-bucket", bucket_spec(s3_front, missing_bucket))
    unreachable = f"127.0.0.1:{free_port()}"
    await fluxd.create(
        BUCKET, "unreachable", {**bucket_spec(s3_front, bucket), "endpoint": unreachable}
    )

    obj = await fluxd.wait_not_ready(BUCKET, "no-secret", "AuthenticationFailed")
    assert f"secret '{fluxd.namespace}/absent' not found" in condition(obj, "Ready")["message"]
    assert condition(obj, "FetchFailed")["reason"] == "AuthenticationFailed"
    obj = await fluxd.wait_not_ready(BUCKET, "half-secret", "AuthenticationFailed")
    assert condition(obj, "Ready")["message"] == (
        "invalid 'half' secret data: required fields 'accesskey' and 'secretkey'"
    )
    obj = await fluxd.wait_not_ready(BUCKET, "no-bucket", "BucketOperationFailed")
    assert condition(obj, "Ready")["message"] == f"bucket '{missing_bucket}' not found"
    obj = await fluxd.wait_not_ready(BUCKET, "unreachable", "BucketOperationFailed")
    assert unreachable in condition(obj, "Ready")["message"]
    assert (await fluxd.get(BUCKET, "unreachable"))["status"].get("artifact") is None


async def test_fields_fluxd_does_not_serve_stall_by_name(
    fluxd: Fluxd, s3_store: S3Store, s3_front: S3Front
) -> None:
    bucket = s3_store.new_bucket()
    await credentials(fluxd, s3_store)
    refused: dict[str, tuple[dict[str, Any], str]] = {
        "gcp": ({"provider": "gcp", "secretRef": None}, "spec.provider 'gcp'"),
        "azure": ({"provider": "azure"}, "spec.provider 'azure'"),
        "sts": (
            {"sts": {"provider": "ldap", "endpoint": "https://sts.example"}},
            "spec.sts",
        ),
        "identity": (
            {"provider": "aws", "secretRef": None, "serviceAccountName": "s3-reader"},
            "spec.serviceAccountName",
        ),
    }
    for name, (fields, _) in refused.items():
        spec = {k: v for k, v in bucket_spec(s3_front, bucket, **fields).items() if v is not None}
        await fluxd.create(BUCKET, name, spec)
    await fluxd.create(
        BUCKET, "url", bucket_spec(s3_front, bucket, endpoint=f"http://{s3_front.endpoint}")
    )
    for name, (_, field) in refused.items():
        obj = await fluxd.wait_for(
            BUCKET, name, lambda o: ready_reason(o) == ("False", "UnsupportedField"), "refused"
        )
        stalled = condition(obj, "Stalled")
        assert stalled["status"] == "True"
        assert field in stalled["message"]
    obj = await fluxd.wait_not_ready(BUCKET, "url", "URLInvalid")
    assert f"http://{s3_front.endpoint}" in condition(obj, "Stalled")["message"]


async def test_tls_with_a_ca_from_cert_secret_ref(
    fluxd: Fluxd, s3_store: S3Store, s3_front_tls: S3Front
) -> None:
    bucket = s3_store.new_bucket()
    s3_store.put(bucket, "a.yaml", "a: 1\n")
    assert s3_front_tls.ca_pem is not None
    await credentials(fluxd, s3_store)
    await fluxd.secret("tls", {"ca.crt": s3_front_tls.ca_pem})
    await fluxd.create(BUCKET, "untrusted", bucket_spec(s3_front_tls, bucket, insecure=False))
    await fluxd.create(
        BUCKET,
        "trusted",
        bucket_spec(s3_front_tls, bucket, insecure=False, certSecretRef={"name": "tls"}),
    )
    obj = await fluxd.wait_ready(BUCKET, "trusted")
    assert obj["status"]["artifact"]["revision"] == flux_revision(s3_store, bucket, ["a.yaml"])
    failed = await fluxd.wait_not_ready(BUCKET, "untrusted", "BucketOperationFailed")
    assert "certificate" in condition(failed, "Ready")["message"].lower()


async def test_aws_provider_reads_the_environment(
    fluxd: Fluxd, s3_store: S3Store, s3_front: S3Front, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_store.new_bucket()
    s3_store.put(bucket, "a.yaml", "a: 1\n")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_store.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_store.secret_key)
    spec = bucket_spec(s3_front, bucket, provider="aws")
    del spec["secretRef"]
    await fluxd.create(BUCKET, "aws", spec)
    obj = await fluxd.wait_ready(BUCKET, "aws")
    assert obj["status"]["artifact"]["revision"] == flux_revision(s3_store, bucket, ["a.yaml"])
