"""``spec.proxySecretRef`` of OCIRepository and Bucket: every registry and S3 request through
an authenticated HTTP proxy on loopback (tests/proxyserver.py, counting what it carried),
and a wrong password, a Secret without an address or no Secret at all failing by name."""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.api import BUCKET, IMAGE_POLICY, IMAGE_REPOSITORY, OCI_REPOSITORY
from fluxd.runtime import conditions
from fluxd.sources import oci
from tests.integration.conftest import Fluxd
from tests.ociregistry import OCIRegistry, docker_config
from tests.proxyserver import HTTPProxy
from tests.s3servers import S3Front, S3Store

pytestmark = pytest.mark.integration


def ready(obj: dict[str, Any]) -> dict[str, Any]:
    found = conditions.get(obj.get("status") or {}, "Ready")
    assert found is not None, f"no Ready condition in {obj.get('status')}"
    return found


async def proxy_secret(fluxd: Fluxd, proxy: HTTPProxy, *, password: str | None = None) -> None:
    await fluxd.secret(
        f"proxy-{password or 'right'}",
        {
            "address": proxy.address,
            "username": proxy.username,
            "password": password or proxy.password,
        },
    )


async def push(registry: OCIRegistry, url: str) -> str:
    reference = oci.parse_reference(f"{url}:latest", insecure=registry.insecure)
    pushed = await oci.push_files(
        reference, {"a.yaml": b"a: 1\n"}, source="src", revision="main@sha1:1", auth=registry.auth
    )
    return pushed.digest


def oci_spec(registry: OCIRegistry, url: str, proxy: str) -> dict[str, Any]:
    return {
        "interval": "1h",
        "url": url,
        "insecure": registry.insecure,
        "proxySecretRef": {"name": proxy},
    }


def bucket_spec(front: S3Front, bucket: str, proxy: str) -> dict[str, Any]:
    return {
        "interval": "1h",
        "provider": "generic",
        "bucketName": bucket,
        "endpoint": front.endpoint,
        "insecure": True,
        "secretRef": {"name": "s3-keys"},
        "timeout": "10s",
        "proxySecretRef": {"name": proxy},
    }


async def test_oci_repository_pulls_through_the_proxy_and_a_wrong_password_fails(
    fluxd: Fluxd, oci_registry: OCIRegistry, http_proxy: HTTPProxy
) -> None:
    url = oci_registry.fresh_url("proxied")
    digest = await push(oci_registry, url)
    await proxy_secret(fluxd, http_proxy)
    await proxy_secret(fluxd, http_proxy, password="wrong")
    await fluxd.create(OCI_REPOSITORY, "proxied", oci_spec(oci_registry, url, "proxy-right"))
    obj = await fluxd.wait_ready(OCI_REPOSITORY, "proxied")
    assert obj["status"]["artifact"]["revision"] == f"latest@{digest}"
    base = f"http://{oci_registry.host}/v2/{url.rpartition('/')[2]}"
    carried = list(http_proxy.log.forwarded)
    assert f"{base}/manifests/latest" in carried, carried
    assert f"{base}/manifests/{digest}" in carried, "the manifest came through the proxy"
    assert any(target.startswith(f"{base}/blobs/") for target in carried), "and the layer"
    assert http_proxy.log.rejected == 0

    await fluxd.create(OCI_REPOSITORY, "refused", oci_spec(oci_registry, url, "proxy-wrong"))
    refused = await fluxd.wait_not_ready(OCI_REPOSITORY, "refused", oci.PULL_FAILED)
    message = ready(refused)["message"]
    assert f"the proxy '{http_proxy.address}' rejected the credentials (HTTP 407)" in message
    assert "spec.proxySecretRef" in message
    assert "artifact" not in refused["status"]
    assert http_proxy.log.rejected >= 1


async def test_oci_repository_over_https_tunnels_through_the_proxy(
    fluxd: Fluxd, oci_registry_tls: OCIRegistry, http_proxy: HTTPProxy
) -> None:
    registry = oci_registry_tls
    url = registry.fresh_url("tunnelled")
    digest = await push(registry, url)
    assert registry.username
    assert registry.password
    assert registry.ca_pem
    config = docker_config(registry.host, registry.username, registry.password)
    await fluxd.secret("pull", {".dockerconfigjson": config})
    await fluxd.secret("tls", {"ca.crt": registry.ca_pem})
    await proxy_secret(fluxd, http_proxy)
    await fluxd.create(
        OCI_REPOSITORY,
        "tunnelled",
        {
            **oci_spec(registry, url, "proxy-right"),
            "secretRef": {"name": "pull"},
            "certSecretRef": {"name": "tls"},
        },
    )
    obj = await fluxd.wait_ready(OCI_REPOSITORY, "tunnelled")
    assert obj["status"]["artifact"]["revision"] == f"latest@{digest}"
    assert http_proxy.log.tunnels, "https went through CONNECT tunnels"
    assert set(http_proxy.log.tunnels) == {registry.host}
    assert http_proxy.log.forwarded == []
    assert http_proxy.log.rejected == 0


async def test_unusable_proxy_secrets_are_named(
    fluxd: Fluxd, oci_registry: OCIRegistry, s3_front: S3Front
) -> None:
    """Nothing is fetched: no proxy is no reason to connect directly."""
    url = oci_registry.fresh_url("no-proxy")
    await fluxd.secret("s3-keys", {"accesskey": "a", "secretkey": "s"})
    await fluxd.secret("no-address", {"username": "u", "password": "p"})
    await fluxd.secret("bad-address", {"address": "ftp://127.0.0.1:21"})
    for name in ("no-address", "bad-address", "ghost"):
        await fluxd.create(OCI_REPOSITORY, name, oci_spec(oci_registry, url, name))
    await fluxd.create(BUCKET, "no-address", bucket_spec(s3_front, "bucket", "no-address"))
    ns = fluxd.namespace
    expected = {
        "no-address": f"secret '{ns}/no-address': key 'address' not found",
        "bad-address": f"secret '{ns}/bad-address': key 'address' must be an http://host:port",
        "ghost": "ghost",
    }
    for name, text in expected.items():
        obj = await fluxd.wait_not_ready(OCI_REPOSITORY, name, oci.AUTHENTICATION_FAILED)
        message = ready(obj)["message"]
        assert message.startswith("failed to get proxy address: "), message
        assert text in message
    obj = await fluxd.wait_not_ready(BUCKET, "no-address", "AuthenticationFailed")
    assert ready(obj)["message"] == (
        f"failed to get proxy URL: secret '{ns}/no-address': key 'address' not found"
    )


async def test_bucket_lists_and_downloads_through_the_proxy_and_a_wrong_password_fails(
    fluxd: Fluxd, s3_store: S3Store, s3_front: S3Front, http_proxy: HTTPProxy
) -> None:
    bucket = s3_store.new_bucket()
    s3_store.put(bucket, "a.yaml", "a: 1\n")
    await fluxd.secret(
        "s3-keys", {"accesskey": s3_store.access_key, "secretkey": s3_store.secret_key}
    )
    await proxy_secret(fluxd, http_proxy)
    await proxy_secret(fluxd, http_proxy, password="wrong")
    await fluxd.create(BUCKET, "proxied", bucket_spec(s3_front, bucket, "proxy-right"))
    obj = await fluxd.wait_ready(BUCKET, "proxied")
    assert obj["status"]["artifact"]["revision"].startswith("sha256:")
    carried = list(http_proxy.log.forwarded)
    base = f"http://{s3_front.endpoint}/{bucket}"
    assert any(target.startswith(f"{base}?") for target in carried), carried
    assert f"{base}/a.yaml" in carried, "the object came through the proxy"

    await fluxd.create(BUCKET, "refused", bucket_spec(s3_front, bucket, "proxy-wrong"))
    refused = await fluxd.wait_not_ready(BUCKET, "refused", "BucketOperationFailed")
    message = ready(refused)["message"]
    assert f"the proxy '{http_proxy.address}' rejected the credentials (HTTP 407)" in message
    assert "spec.proxySecretRef" in message
    assert "artifact" not in refused["status"]


async def test_image_repository_scans_and_its_policy_reads_digests_through_the_proxy(
    fluxd: Fluxd, oci_registry: OCIRegistry, http_proxy: HTTPProxy
) -> None:
    url = oci_registry.fresh_url("scanned")
    name = url.rpartition("/")[2]
    digest = await push(oci_registry, url)
    await proxy_secret(fluxd, http_proxy)
    await proxy_secret(fluxd, http_proxy, password="wrong")
    image = f"{oci_registry.host}/{name}"
    scan = {"image": image, "interval": "1h", "insecure": True}
    await fluxd.create(
        IMAGE_REPOSITORY, "scanned", {**scan, "proxySecretRef": {"name": "proxy-right"}}
    )
    await fluxd.wait_ready(IMAGE_REPOSITORY, "scanned")
    policy = {
        "imageRepositoryRef": {"name": "scanned"},
        "policy": {"alphabetical": {}},
        "digestReflectionPolicy": "Always",
        "interval": "1h",
    }
    await fluxd.create(IMAGE_POLICY, "newest", policy)
    chosen = await fluxd.wait_ready(IMAGE_POLICY, "newest")
    assert chosen["status"]["latestRef"]["digest"] == digest
    base = f"http://{oci_registry.host}/v2/{name}"
    carried = list(http_proxy.log.forwarded)
    assert any(target.startswith(f"{base}/tags/list") for target in carried), carried
    assert f"{base}/manifests/latest" in carried, "the policy's digest came through the proxy"

    await fluxd.create(
        IMAGE_REPOSITORY, "refused", {**scan, "proxySecretRef": {"name": "proxy-wrong"}}
    )
    refused = await fluxd.wait_not_ready(IMAGE_REPOSITORY, "refused", "ReadOperationFailed")
    assert "rejected the credentials (HTTP 407)" in ready(refused)["message"]
    await fluxd.create(IMAGE_REPOSITORY, "absent", {**scan, "proxySecretRef": {"name": "absent"}})
    absent = await fluxd.wait_not_ready(IMAGE_REPOSITORY, "absent", oci.AUTHENTICATION_FAILED)
    assert "failed to get proxy address" in ready(absent)["message"]
