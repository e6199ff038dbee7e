"""OCIRepository end to end: real registries on loopback (Debian's docker-registry), fluxd,
the API server.

What a user sees: a pushed Flux artifact becomes a source artifact with Flux's revision
(``<tag>@sha256:<manifest digest>``), path, URL and metadata; a Kustomization applies it
and follows new pushes; semver, digest and tag refs pick what Flux picks; basic auth over
TLS and bearer tokens work from a dockerconfigjson Secret; every bad ref, artifact,
credential or registry ends in ``Ready=False`` with Flux's reason, naming the problem,
and the last good artifact stays served.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fluxd.api import KUSTOMIZATION, OCI_REPOSITORY
from fluxd.kube import client
from fluxd.kube.resources import SERVICE_ACCOUNTS
from fluxd.runtime import conditions
from fluxd.sources import oci
from tests.gitservers import free_port
from tests.integration.conftest import Fluxd, is_ready_now
from tests.integration.kustomizations import CONFIGMAPS, configmap, live
from tests.ociregistry import OCIRegistry, TokenRegistry, docker_config

pytestmark = pytest.mark.integration


def message(obj: dict[str, Any], type_: str = "Ready") -> str:
    found = conditions.get(obj.get("status") or {}, type_)
    assert found is not None, f"no {type_} condition in {obj.get('status')}"
    return str(found["message"])


async def reconcile_now(fluxd: Fluxd, name: str) -> str:
    stamp = datetime.now(UTC).isoformat()
    await fluxd.patch(
        OCI_REPOSITORY,
        name,
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}},
    )
    return stamp


async def push(
    registry: OCIRegistry, url: str, tag: str, files: dict[str, str], revision: str = "main@sha1:1"
) -> oci.Pushed:
    reference = oci.parse_reference(f"{url}:{tag}", insecure=registry.insecure)
    return await oci.push_files(
        reference,
        {path: text.encode() for path, text in files.items()},
        source="https://github.com/example/app",
        revision=revision,
        auth=registry.auth,
    )


async def push_layer(registry: OCIRegistry, url: str, tag: str, layer: oci.PushLayer) -> str:
    reference = oci.parse_reference(f"{url}:{tag}", insecure=registry.insecure)
    pushed = await oci.push_artifact(reference, [layer], annotations={}, auth=registry.auth)
    return pushed.digest


def tarball(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue())


def untar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: (tar.extractfile(m) or io.BytesIO()).read() for m in tar if m.isfile()}


def spec(registry: OCIRegistry, url: str, **fields: Any) -> dict[str, Any]:
    return {"interval": "1h", "url": url, "insecure": registry.insecure, **fields}


async def test_pushed_artifact_is_applied_and_a_new_push_reaches_the_kustomization(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    url = oci_registry.fresh_url("app")
    ns = fluxd.namespace
    pushed = await push(
        oci_registry,
        url,
        "latest",
        {"deploy/app.yaml": configmap(ns, "app", "1"), "deploy/notes.md": "x", "logo.png": "x"},
    )
    await fluxd.create(OCI_REPOSITORY, "app", spec(oci_registry, url, ignore="*.md\n"))
    obj = await fluxd.wait_ready(OCI_REPOSITORY, "app")

    status = obj["status"]
    artifact = status["artifact"]
    hex_digest = pushed.digest.partition(":")[2]
    assert artifact["revision"] == f"latest@{pushed.digest}"
    assert artifact["path"] == f"ocirepository/{ns}/app/{hex_digest}.tar.gz"
    assert status["url"].endswith(f"/ocirepository/{ns}/app/latest.tar.gz")
    assert artifact["metadata"][oci.SOURCE_ANNOTATION] == "https://github.com/example/app"
    assert artifact["metadata"][oci.REVISION_ANNOTATION] == "main@sha1:1"
    assert status["observedIgnore"] == "*.md\n"
    assert message(obj) == f"stored artifact for digest 'latest@{pushed.digest}'"
    served = await fluxd.fetch_artifact(artifact["url"])
    assert artifact["digest"] == f"sha256:{hashlib.sha256(served).hexdigest()}"
    assert set(untar(served)) == {"deploy/app.yaml", "logo.png"}, "spec.ignore applied"
    assert await fluxd.fetch_artifact(status["url"]) == served
    await fluxd.wait_event(
        "app",
        lambda e: (
            e["reason"] == "NewArtifact"
            and "origin source 'https://github.com/example/app'" in e["message"]
            and "origin revision 'main@sha1:1'" in e["message"]
        ),
        "NewArtifact naming the origin",
    )

    await fluxd.create(
        KUSTOMIZATION,
        "app",
        {
            "interval": "1h",
            "sourceRef": {"kind": "OCIRepository", "name": "app"},
            "path": "./deploy",
            "prune": True,
        },
    )
    applied = await fluxd.wait_ready(KUSTOMIZATION, "app")
    assert applied["status"]["lastAppliedRevision"] == f"latest@{pushed.digest}"
    live_map = await live(fluxd, CONFIGMAPS, "app")
    assert live_map is not None
    assert live_map["data"]["value"] == "1"

    second = await push(
        oci_registry, url, "latest", {"deploy/app.yaml": configmap(ns, "app", "2")}, "main@sha1:2"
    )
    await reconcile_now(fluxd, "app")
    await fluxd.wait_for(
        KUSTOMIZATION,
        "app",
        lambda o: (o.get("status") or {}).get("lastAppliedRevision") == f"latest@{second.digest}",
        "the Kustomization applying the new push",
    )
    updated = await live(fluxd, CONFIGMAPS, "app")
    assert updated is not None
    assert updated["data"]["value"] == "2"


async def test_an_unchanged_digest_is_not_pulled_again(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    url = oci_registry.fresh_url("steady")
    pushed = await push(oci_registry, url, "latest", {"a.yaml": "a: 1\n"})
    await fluxd.create(OCI_REPOSITORY, "steady", spec(oci_registry, url))
    first = (await fluxd.wait_ready(OCI_REPOSITORY, "steady"))["status"]["artifact"]

    repository = oci.parse_url(url, insecure=True)
    async with oci.RegistryClient(repository) as client:
        layer = oci.select_layer((await client.manifest(pushed.digest)).json(), None)
    blob_url = f"{repository.base_url}/{repository.name}/blobs/{layer.digest}"
    async with aiohttp.ClientSession() as session, session.delete(blob_url) as response:
        assert response.status == 202, "the registry lets the test delete the layer"

    stamp = await reconcile_now(fluxd, "steady")
    again = await fluxd.wait_for(
        OCI_REPOSITORY,
        "steady",
        lambda o: o["status"].get("lastHandledReconcileAt") == stamp,
        "the requested reconcile handled",
    )
    assert is_ready_now(again), "same digest: only the manifest was asked for"
    assert again["status"]["artifact"] == first

    await fluxd.patch(OCI_REPOSITORY, "steady", {"spec": {"ignore": "*.md"}})
    gone = await fluxd.wait_not_ready(OCI_REPOSITORY, "steady", oci.PULL_FAILED)
    assert f"blob '{layer.digest}'" in message(gone), "a new ignore rule pulls the layer again"
    assert gone["status"]["artifact"] == first


async def test_semver_filter_digest_and_tag_refs(fluxd: Fluxd, oci_registry: OCIRegistry) -> None:
    url = oci_registry.fresh_url("versions")
    pushed = {
        tag: await push(oci_registry, url, tag, {"version.txt": tag})
        for tag in ("1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0", "v1.5.0-beta")
    }
    await fluxd.create(OCI_REPOSITORY, "range", spec(oci_registry, url, ref={"semver": "1.x"}))
    await fluxd.create(
        OCI_REPOSITORY,
        "filtered",
        spec(oci_registry, url, ref={"semver": ">=1.0.0-0", "semverFilter": ".*-rc.*"}),
    )
    await fluxd.create(
        OCI_REPOSITORY,
        "digest",
        spec(oci_registry, url, ref={"digest": pushed["1.0.0"].digest, "tag": "2.0.0"}),
    )
    await fluxd.create(
        OCI_REPOSITORY, "tag", spec(oci_registry, url, ref={"tag": "2.0.0", "semver": "<1.1"})
    )
    revisions = {
        name: (await fluxd.wait_ready(OCI_REPOSITORY, name))["status"]["artifact"]["revision"]
        for name in ("range", "filtered", "digest", "tag")
    }
    assert revisions == {
        "range": f"1.1.0@{pushed['1.1.0'].digest}",
        "filtered": f"1.2.0-rc.1@{pushed['1.2.0-rc.1'].digest}",
        "digest": pushed["1.0.0"].digest,
        "tag": f"1.0.0@{pushed['1.0.0'].digest}",
    }, "digest over semver over tag, as Flux ranks them"

    await fluxd.create(OCI_REPOSITORY, "none", spec(oci_registry, url, ref={"semver": ">=3.0.0"}))
    refused = await fluxd.wait_not_ready(OCI_REPOSITORY, "none", "ReadOperationFailed")
    assert "no match found for semver: >=3.0.0" in message(refused)
    assert url in message(refused)


async def test_bad_artifacts_and_refs_fail_with_flux_reasons_and_keep_the_last_good(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    url = oci_registry.fresh_url("bad")
    await push(oci_registry, url, "v1", {"app.yaml": configmap(fluxd.namespace, "a")})
    selector = {"mediaType": oci.CONTENT_MEDIA_TYPE, "operation": "extract"}
    await fluxd.create(
        OCI_REPOSITORY, "bad", spec(oci_registry, url, ref={"tag": "v1"}, layerSelector=selector)
    )
    good = (await fluxd.wait_ready(OCI_REPOSITORY, "bad"))["status"]
    assert good["observedLayerSelector"] == selector

    async def still_served() -> None:
        now = (await fluxd.get(OCI_REPOSITORY, "bad"))["status"]
        assert now["artifact"] == good["artifact"], "the last good artifact is kept"
        assert await fluxd.fetch_artifact(good["url"])

    await push_layer(oci_registry, url, "v1", oci.PushLayer(b"other", "application/x-other"))
    await reconcile_now(fluxd, "bad")
    wrong = await fluxd.wait_not_ready(OCI_REPOSITORY, "bad", oci.LAYER_OPERATION_FAILED)
    assert f"failed to find layer with media type '{oci.CONTENT_MEDIA_TYPE}'" in message(wrong)
    assert conditions.get(wrong["status"], "FetchFailed") is not None
    await still_served()

    await push_layer(
        oci_registry, url, "v1", oci.PushLayer(tarball({"ok.yaml": b"a: 1", "../evil": b"x"}))
    )
    await reconcile_now(fluxd, "bad")
    await fluxd.wait_for(
        OCI_REPOSITORY,
        "bad",
        lambda o: "'../evil' points outside the artifact's root" in message(o),
        "the escaping tar entry named",
    )
    await still_served()

    await fluxd.patch(OCI_REPOSITORY, "bad", {"spec": {"ref": {"tag": "no-such-tag"}}})
    unknown = await fluxd.wait_for(
        OCI_REPOSITORY,
        "bad",
        lambda o: "no-such-tag" in message(o),
        "the unknown tag named",
    )
    assert conditions.get(unknown["status"], "Ready")["reason"] == oci.PULL_FAILED  # type: ignore[index]
    assert "404" in message(unknown)
    await still_served()

    dead = f"oci://127.0.0.1:{free_port()}/nothing/here"
    await fluxd.create(OCI_REPOSITORY, "unreachable", spec(oci_registry, dead))
    down = await fluxd.wait_not_ready(OCI_REPOSITORY, "unreachable", oci.PULL_FAILED)
    assert "127.0.0.1" in message(down)

    await fluxd.patch(OCI_REPOSITORY, "bad", {"spec": {"ref": {"tag": "v2"}}})
    await push(oci_registry, url, "v2", {"app.yaml": configmap(fluxd.namespace, "b")})
    await fluxd.wait_for(OCI_REPOSITORY, "bad", is_ready_now, "recovered on a good tag")


def oras_push(registry: OCIRegistry, url: str, tag: str, directory: Path, layer: bytes) -> str:
    """Push ``layer`` as a Flux content layer with ORAS, a client that is not fluxd's."""
    import oras.client  # type: ignore[import-untyped]  # ships no type information

    (directory / "layer.tar.gz").write_bytes(layer)
    (directory / "config.json").write_text("{}")
    client = oras.client.OrasClient(insecure=registry.insecure)
    target = f"{url.removeprefix('oci://')}:{tag}"
    response = client.push(
        target,
        files=[f"{directory / 'layer.tar.gz'}:{oci.CONTENT_MEDIA_TYPE}"],
        manifest_config=f"{directory / 'config.json'}:{oci.CONFIG_MEDIA_TYPE}",
        manifest_annotations={oci.REVISION_ANNOTATION: "main@sha1:0ras"},
        disable_path_validation=True,
        quiet=True,
    )
    assert response.status_code == 201, response.text
    return str(response.headers["Docker-Content-Digest"])


async def test_an_artifact_pushed_with_oras_is_read(
    fluxd: Fluxd, oci_registry: OCIRegistry, tmp_path: Path
) -> None:
    url = oci_registry.fresh_url("oras")
    layer = tarball({"deploy/app.yaml": b"kind: ConfigMap\n"})
    digest = await asyncio.to_thread(oras_push, oci_registry, url, "v1", tmp_path, layer)
    await fluxd.create(OCI_REPOSITORY, "oras", spec(oci_registry, url, ref={"tag": "v1"}))
    obj = await fluxd.wait_ready(OCI_REPOSITORY, "oras")
    artifact = obj["status"]["artifact"]
    assert artifact["revision"] == f"v1@{digest}"
    assert artifact["metadata"] == {oci.REVISION_ANNOTATION: "main@sha1:0ras"}
    assert untar(await fluxd.fetch_artifact(artifact["url"])) == {
        "deploy/app.yaml": b"kind: ConfigMap\n"
    }


async def test_copy_operation_keeps_the_layer_as_is(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    url = oci_registry.fresh_url("chart")
    chart = tarball({"podinfo/Chart.yaml": b"name: podinfo\nversion: 1.0.0\n"})
    digest = await push_layer(
        oci_registry, url, "1.0.0", oci.PushLayer(chart, oci.HELM_CHART_LAYER)
    )
    await fluxd.create(
        OCI_REPOSITORY,
        "chart",
        spec(
            oci_registry,
            url,
            ref={"tag": "1.0.0"},
            layerSelector={"mediaType": oci.HELM_CHART_LAYER, "operation": "copy"},
        ),
    )
    artifact = (await fluxd.wait_ready(OCI_REPOSITORY, "chart"))["status"]["artifact"]
    assert artifact["revision"] == f"1.0.0@{digest}"
    assert await fluxd.fetch_artifact(artifact["url"]) == chart
    assert artifact["digest"] == f"sha256:{hashlib.sha256(chart).hexdigest()}"


async def test_basic_auth_over_tls_from_docker_config_and_ca_secrets(
    fluxd: Fluxd, oci_registry_tls: OCIRegistry
) -> None:
    registry = oci_registry_tls
    url = registry.fresh_url("private")
    pushed = await push(registry, url, "latest", {"a.yaml": "a: 1\n"})
    assert registry.username
    assert registry.password
    assert registry.ca_pem
    config = docker_config(registry.host, registry.username, registry.password)
    await fluxd.secret("pull", {".dockerconfigjson": config})
    await fluxd.secret("wrong", {".dockerconfigjson": docker_config(registry.host, "x", "y")})
    await fluxd.secret("tls", {"ca.crt": registry.ca_pem})
    tls = {"certSecretRef": {"name": "tls"}}
    await fluxd.create(
        OCI_REPOSITORY, "private", spec(registry, url, secretRef={"name": "pull"}, **tls)
    )
    obj = await fluxd.wait_ready(OCI_REPOSITORY, "private")
    assert obj["status"]["artifact"]["revision"] == f"latest@{pushed.digest}"

    await fluxd.create(OCI_REPOSITORY, "anonymous", spec(registry, url, **tls))
    anonymous = await fluxd.wait_not_ready(OCI_REPOSITORY, "anonymous", oci.PULL_FAILED)
    assert "401" in message(anonymous)
    assert "spec.secretRef" in message(anonymous)

    await fluxd.create(
        OCI_REPOSITORY, "wrong", spec(registry, url, secretRef={"name": "wrong"}, **tls)
    )
    wrong = await fluxd.wait_not_ready(OCI_REPOSITORY, "wrong", oci.PULL_FAILED)
    assert "401" in message(wrong)

    await fluxd.create(
        OCI_REPOSITORY, "no-secret", spec(registry, url, secretRef={"name": "absent"}, **tls)
    )
    missing = await fluxd.wait_not_ready(OCI_REPOSITORY, "no-secret", oci.AUTHENTICATION_FAILED)
    assert "absent" in message(missing)

    await fluxd.create(OCI_REPOSITORY, "no-ca", spec(registry, url, secretRef={"name": "pull"}))
    untrusted = await fluxd.wait_not_ready(OCI_REPOSITORY, "no-ca", oci.PULL_FAILED)
    assert "certificate" in message(untrusted).lower()


async def test_bearer_token_flow(fluxd: Fluxd, oci_registry_token: TokenRegistry) -> None:
    registry = oci_registry_token
    url = registry.fresh_url("tokens")
    pushed = await push(registry, url, "v1", {"a.yaml": "a: 1\n"})
    assert registry.username
    assert registry.password
    assert registry.token_requests is not None
    config = docker_config(registry.host, registry.username, registry.password)
    await fluxd.secret("pull", {".dockerconfigjson": config})
    await fluxd.create(
        OCI_REPOSITORY, "tokens", spec(registry, url, ref={"tag": "v1"}, secretRef={"name": "pull"})
    )
    obj = await fluxd.wait_ready(OCI_REPOSITORY, "tokens")
    assert obj["status"]["artifact"]["revision"] == f"v1@{pushed.digest}"
    name = url.rpartition(f"{registry.host}/")[2]
    assert (f"repository:{name}:pull", registry.auth.basic) in registry.token_requests

    await fluxd.create(OCI_REPOSITORY, "anonymous", spec(registry, url, ref={"tag": "v1"}))
    refused = await fluxd.wait_not_ready(OCI_REPOSITORY, "anonymous", oci.PULL_FAILED)
    assert "token request" in message(refused)
    assert "401" in message(refused)


async def test_service_account_image_pull_secrets_authenticate(
    fluxd: Fluxd, oci_registry_tls: OCIRegistry
) -> None:
    registry = oci_registry_tls
    url = registry.fresh_url("by-account")
    pushed = await push(registry, url, "latest", {"a.yaml": "a: 1\n"})
    assert registry.username
    assert registry.password
    assert registry.ca_pem
    config = docker_config(registry.host, registry.username, registry.password)
    await fluxd.secret("pull", {".dockerconfigjson": config})
    await fluxd.secret("tls", {"ca.crt": registry.ca_pem})
    await client.create(
        fluxd.api,
        SERVICE_ACCOUNTS,
        {
            "metadata": {"name": "puller", "namespace": fluxd.namespace},
            "imagePullSecrets": [{"name": "pull"}],
        },
    )
    tls = {"certSecretRef": {"name": "tls"}}
    await fluxd.create(
        OCI_REPOSITORY, "by-account", spec(registry, url, serviceAccountName="puller", **tls)
    )
    await fluxd.create(
        OCI_REPOSITORY, "no-account", spec(registry, url, serviceAccountName="ghost", **tls)
    )
    ready = await fluxd.wait_ready(OCI_REPOSITORY, "by-account")
    assert ready["status"]["artifact"]["revision"] == f"latest@{pushed.digest}"
    missing = await fluxd.wait_not_ready(OCI_REPOSITORY, "no-account", oci.AUTHENTICATION_FAILED)
    assert "serviceaccount" in message(missing)
    assert "ghost" in message(missing)


async def test_unserved_fields_and_tagged_urls_stall(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    url = oci_registry.fresh_url("refused")
    await fluxd.create(
        OCI_REPOSITORY,
        "verify",
        spec(oci_registry, url, verify={"provider": "cosign"}),
    )
    refused = await fluxd.wait_not_ready(OCI_REPOSITORY, "verify", "UnsupportedField")
    assert "spec.verify" in message(refused)
    assert conditions.get(refused["status"], "Stalled") is not None

    await fluxd.create(
        OCI_REPOSITORY,
        "proxied",
        spec(oci_registry, url, provider="aws"),
    )
    proxied = await fluxd.wait_not_ready(OCI_REPOSITORY, "proxied", "UnsupportedField")
    assert "spec.provider 'aws'" in message(proxied)

    await fluxd.create(OCI_REPOSITORY, "tagged", spec(oci_registry, f"{url}:v1"))
    tagged = await fluxd.wait_not_ready(OCI_REPOSITORY, "tagged", oci.URL_INVALID)
    assert "URL must not contain a tag; remove ':v1'" in message(tagged)
    assert conditions.get(tagged["status"], "Stalled") is not None
