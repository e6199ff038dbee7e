"""The JSON client helpers against the real API server: CRUD, errors, optimistic
concurrency on metadata patches, the status subresource, server-side apply."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.kube.client import (
    ApiError,
    KubeconfigError,
    connect,
    create,
    delete,
    get,
    patch,
    patch_metadata,
    patch_status,
    replace,
)
from fluxd.kube.resources import CONFIGMAPS, NAMESPACES, Resource

pytestmark = pytest.mark.integration

GITREPOSITORIES = Resource("source.toolkit.fluxcd.io", "v1", "gitrepositories")


async def test_crud_and_errors(api_client: ApiClient, namespace: str) -> None:
    created = await create(
        api_client,
        CONFIGMAPS,
        {"metadata": {"name": "cm", "namespace": namespace}, "data": {"a": "1"}},
    )
    assert created["metadata"]["uid"]
    with pytest.raises(ApiError) as exists:
        await create(api_client, CONFIGMAPS, {"metadata": {"name": "cm", "namespace": namespace}})
    assert exists.value.already_exists
    assert "already exists" in str(exists.value)

    fetched = await get(api_client, CONFIGMAPS, namespace, "cm")
    assert fetched["data"] == {"a": "1"}
    fetched["data"] = {"a": "2"}
    replaced = await replace(api_client, CONFIGMAPS, fetched)
    # The resourceVersion read with it makes a PUT conditional.
    with pytest.raises(ApiError) as stale:
        await replace(api_client, CONFIGMAPS, fetched)
    assert stale.value.conflict

    patched = await patch(api_client, CONFIGMAPS, namespace, "cm", {"data": {"b": "3", "a": None}})
    assert patched["data"] == {"b": "3"}
    json_patched = await patch(
        api_client,
        CONFIGMAPS,
        namespace,
        "cm",
        [{"op": "add", "path": "/data/c", "value": "4"}],
        patch_type="json",
    )
    assert json_patched["data"] == {"b": "3", "c": "4"}

    with pytest.raises(ApiError) as conflict:
        await delete(
            api_client,
            CONFIGMAPS,
            namespace,
            "cm",
            resource_version=replaced["metadata"]["resourceVersion"],
        )
    assert conflict.value.conflict
    assert await delete(api_client, CONFIGMAPS, namespace, "cm") is not None
    assert await delete(api_client, CONFIGMAPS, namespace, "cm") is None
    with pytest.raises(ApiError) as missing:
        await get(api_client, CONFIGMAPS, namespace, "cm")
    assert missing.value.not_found
    assert missing.value.reason == "NotFound"


async def test_metadata_patch_is_conditional_on_resource_version(
    api_client: ApiClient, namespace: str
) -> None:
    obj = await create(
        api_client,
        CONFIGMAPS,
        {"metadata": {"name": "cm", "namespace": namespace, "annotations": {"keep": "x"}}},
    )
    rv = obj["metadata"]["resourceVersion"]
    updated = await patch_metadata(
        api_client,
        CONFIGMAPS,
        namespace,
        "cm",
        finalizers=["fluxd.test/finalizer"],
        annotations={"added": "y"},
        labels={"app": "fluxd"},
        resource_version=rv,
    )
    assert updated["metadata"]["finalizers"] == ["fluxd.test/finalizer"]
    assert updated["metadata"]["annotations"] == {"keep": "x", "added": "y"}
    assert updated["metadata"]["labels"] == {"app": "fluxd"}

    # Someone computed finalizers from the old object: refused, not overwritten.
    with pytest.raises(ApiError) as stale:
        await patch_metadata(
            api_client, CONFIGMAPS, namespace, "cm", finalizers=[], resource_version=rv
        )
    assert stale.value.conflict

    cleared = await patch_metadata(
        api_client,
        CONFIGMAPS,
        namespace,
        "cm",
        finalizers=[],
        annotations={"keep": None},
        resource_version=updated["metadata"]["resourceVersion"],
    )
    assert "finalizers" not in cleared["metadata"]
    assert cleared["metadata"]["annotations"] == {"added": "y"}


async def test_status_subresource_merge_patch(api_client: ApiClient, namespace: str) -> None:
    repo = await create(
        api_client,
        GITREPOSITORIES,
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "podinfo", "namespace": namespace},
            "spec": {"url": "https://example.invalid/podinfo", "interval": "1m"},
        },
    )
    condition = {
        "type": "Ready",
        "status": "False",
        "reason": "GitOperationFailed",
        "message": "failed to checkout",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 1,
    }
    patched = await patch_status(
        api_client,
        GITREPOSITORIES,
        namespace,
        "podinfo",
        {"observedGeneration": 1, "conditions": [condition]},
    )
    assert patched["status"]["conditions"] == [condition]
    assert patched["spec"] == repo["spec"]
    assert patched["metadata"]["generation"] == repo["metadata"]["generation"]

    # None deletes a field; a stale resourceVersion is refused.
    cleared = await patch_status(
        api_client,
        GITREPOSITORIES,
        namespace,
        "podinfo",
        {"conditions": None},
        resource_version=patched["metadata"]["resourceVersion"],
    )
    assert cleared["status"] == {"observedGeneration": 1}
    with pytest.raises(ApiError) as stale:
        await patch_status(
            api_client,
            GITREPOSITORIES,
            namespace,
            "podinfo",
            {"observedGeneration": 2},
            resource_version=patched["metadata"]["resourceVersion"],
        )
    assert stale.value.conflict

    # A status field the CRD does not declare is refused by name, not pruned.
    with pytest.raises(ApiError) as undeclared:
        await patch_status(
            api_client, GITREPOSITORIES, namespace, "podinfo", {"observedIgnor": "*.md"}
        )
    assert undeclared.value.status == 422
    assert 'unknown field "status.observedIgnor"' in undeclared.value.message
    kept = await patch_status(
        api_client, GITREPOSITORIES, namespace, "podinfo", {"observedIgnore": "*.md"}
    )
    assert kept["status"]["observedIgnore"] == "*.md"


async def test_server_side_apply(api_client: ApiClient, namespace: str) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "applied", "namespace": namespace},
        "data": {"k": "v"},
    }
    applied = await patch(
        api_client,
        CONFIGMAPS,
        namespace,
        "applied",
        manifest,
        patch_type="apply",
        field_manager="fluxd",
    )
    assert applied["data"] == {"k": "v"}
    managers = {m["manager"] for m in applied["metadata"]["managedFields"]}
    assert managers == {"fluxd"}


async def test_connect_finds_kubeconfig_in_the_environment(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{kubeconfig}")
    async with await connect() as api_client:
        ns = await get(api_client, NAMESPACES, None, "default")
    assert ns["metadata"]["name"] == "default"
    assert api_client.user_agent.startswith("fluxd/")
    with pytest.raises(KubeconfigError, match="does not exist"):
        await connect(str(tmp_path / "absent"))
