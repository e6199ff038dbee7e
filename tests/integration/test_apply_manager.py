"""The apply manager against a real API server: staged apply, drift, ssa annotations,
immutable fields, validation stops, prune safety, and discovery of new CRDs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.apply import ApplyError, ApplyManager, ObjectRef, RESTMapper
from fluxd.apply.mapper import NoKindMatchError
from fluxd.kube import client
from fluxd.kube.resources import CONFIGMAPS, NAMESPACES, Resource

pytestmark = pytest.mark.integration

DEPLOYMENTS = Resource("apps", "v1", "deployments")
SERVICES = Resource("", "v1", "services")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
CLUSTER_ROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False)
PRIORITY_CLASSES = Resource("scheduling.k8s.io", "v1", "priorityclasses", namespaced=False)
OWNER = {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "ns"}


@pytest.fixture
async def manager(api_client: ApiClient) -> ApplyManager:
    return ApplyManager(api_client, RESTMapper(api_client), field_manager="fluxd-test")


@pytest.fixture
async def crd_group(api_client: ApiClient) -> AsyncIterator[str]:
    """A fresh API group for a test's CRD; the CRD is deleted afterwards."""
    group = f"t{uuid.uuid4().hex[:8]}.fluxd.test"
    yield group
    await client.delete(api_client, CRDS, None, f"widgets.{group}")


def configmap(namespace: str, name: str, data: dict[str, str], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "data": data,
    }


def deployment(namespace: str, name: str, *, replicas: int = 1, app: str = "") -> dict[str, Any]:
    labels = {"app": app or name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }


def crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer"}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def actions(changes: Any) -> dict[str, str]:
    return {str(change.ref): change.action for change in changes}


async def test_create_unchanged_configure(manager: ApplyManager, namespace: str) -> None:
    ns = namespace
    objects = [deployment(ns, "web"), configmap(ns, "settings", {"a": "1"})]

    created = await manager.apply_all(objects)
    assert actions(created) == {
        f"ConfigMap/{ns}/settings": "created",
        f"Deployment/{ns}/web": "created",
    }
    assert [str(ref) for ref in created.refs] == [
        f"ConfigMap/{ns}/settings",
        f"Deployment/{ns}/web",
    ]
    assert created.summary() == f"ConfigMap/{ns}/settings created\nDeployment/{ns}/web created"
    live = await client.get(manager.api, CONFIGMAPS, ns, "settings")
    assert live["metadata"]["managedFields"][0]["manager"] == "fluxd-test"
    before = live["metadata"]["resourceVersion"]
    web_before = (await client.get(manager.api, DEPLOYMENTS, ns, "web"))["metadata"]

    again = await manager.apply_all(objects)
    assert set(actions(again).values()) == {"unchanged"}
    assert not again.has_changes
    assert again.summary() == ""
    assert (await client.get(manager.api, CONFIGMAPS, ns, "settings"))["metadata"][
        "resourceVersion"
    ] == before, "a no-op apply wrote the object"
    web_after = (await client.get(manager.api, DEPLOYMENTS, ns, "web"))["metadata"]
    assert web_after["generation"] == web_before["generation"]

    changed = await manager.apply_all(
        [deployment(ns, "web"), configmap(ns, "settings", {"a": "2"})]
    )
    assert actions(changed) == {
        f"ConfigMap/{ns}/settings": "configured",
        f"Deployment/{ns}/web": "unchanged",
    }
    assert changed.summary() == f"ConfigMap/{ns}/settings configured"
    live = await client.get(manager.api, CONFIGMAPS, ns, "settings")
    assert live["data"] == {"a": "2"}


async def test_server_filled_fields_are_not_drift(manager: ApplyManager, namespace: str) -> None:
    """Defaults, allocated cluster IPs and stringData folded into data: the live object
    differs from the manifest, yet re-applying it writes nothing."""
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": namespace},
            "stringData": {"password": "hunter2"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "web"}},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "view", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "view",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
        },
    ]
    first = await manager.apply_all(objects)
    assert set(actions(first).values()) == {"created"}
    again = await manager.apply_all(objects)
    assert not again.has_changes, again.summary()


async def test_removed_field_and_label_change_are_drift(
    manager: ApplyManager, namespace: str
) -> None:
    await manager.apply_all([configmap(namespace, "c", {"a": "1", "b": "2"})])
    dropped = await manager.apply_all([configmap(namespace, "c", {"a": "1"})])
    assert actions(dropped) == {f"ConfigMap/{namespace}/c": "configured"}
    live = await client.get(manager.api, CONFIGMAPS, namespace, "c")
    assert live["data"] == {"a": "1"}, "a field this manager no longer sets was kept"

    labelled = await manager.apply_all([configmap(namespace, "c", {"a": "1"}, labels={"x": "y"})])
    assert actions(labelled) == {f"ConfigMap/{namespace}/c": "configured"}


async def test_drift_by_another_manager_is_reverted(manager: ApplyManager, namespace: str) -> None:
    await manager.apply_all([deployment(namespace, "web", replicas=2)])
    # kubectl scale deployment web --replicas=5
    await client.patch(
        manager.api,
        DEPLOYMENTS,
        namespace,
        "web",
        {"spec": {"replicas": 5}},
        field_manager="kubectl-scale",
    )
    reverted = await manager.apply_all([deployment(namespace, "web", replicas=2)])
    assert actions(reverted) == {f"Deployment/{namespace}/web": "configured"}
    live = await client.get(manager.api, DEPLOYMENTS, namespace, "web")
    assert live["spec"]["replicas"] == 2
    settled = await manager.apply_all([deployment(namespace, "web", replicas=2)])
    assert actions(settled) == {f"Deployment/{namespace}/web": "unchanged"}


async def test_fields_kubectl_added_are_removed_unless_ssa_merge(
    manager: ApplyManager, namespace: str
) -> None:
    merge = {"kustomize.toolkit.fluxcd.io/ssa": "Merge"}
    desired = [
        configmap(namespace, "edited", {"a": "1"}),
        configmap(namespace, "kept", {"a": "1"}, annotations=merge),
    ]
    await manager.apply_all(desired)
    for name in ("edited", "kept"):  # kubectl edit: a new key and a new label
        await client.patch(
            manager.api,
            CONFIGMAPS,
            namespace,
            name,
            {"metadata": {"labels": {"team": "x"}}, "data": {"b": "2"}},
            field_manager="kubectl-edit",
        )
    changes = await manager.apply_all(desired)
    assert actions(changes) == {
        f"ConfigMap/{namespace}/edited": "configured",
        f"ConfigMap/{namespace}/kept": "unchanged",
    }
    edited = await client.get(manager.api, CONFIGMAPS, namespace, "edited")
    assert edited["data"] == {"a": "1"}
    assert "team" not in (edited["metadata"].get("labels") or {})
    assert {entry["manager"] for entry in edited["metadata"]["managedFields"]} == {"fluxd-test"}
    kept = await client.get(manager.api, CONFIGMAPS, namespace, "kept")
    assert kept["data"] == {"a": "1", "b": "2"}
    assert kept["metadata"]["labels"]["team"] == "x"
    assert actions(await manager.apply_all(desired)) == {
        f"ConfigMap/{namespace}/edited": "unchanged",
        f"ConfigMap/{namespace}/kept": "unchanged",
    }


async def test_an_object_kubectl_applied_is_adopted_without_its_leftovers(
    manager: ApplyManager, namespace: str
) -> None:
    last_applied = "kubectl.kubernetes.io/last-applied-configuration"
    await client.request(
        manager.api,
        "POST",
        CONFIGMAPS.path(namespace),
        query={"fieldManager": "kubectl-client-side-apply"},
        body=configmap(
            namespace, "adopted", {"a": "1", "old": "x"}, annotations={last_applied: "{}"}
        ),
    )
    changes = await manager.apply_all([configmap(namespace, "adopted", {"a": "1"})])
    assert actions(changes) == {f"ConfigMap/{namespace}/adopted": "configured"}
    adopted = await client.get(manager.api, CONFIGMAPS, namespace, "adopted")
    assert adopted["data"] == {"a": "1"}
    assert last_applied not in (adopted["metadata"].get("annotations") or {})


async def test_objects_flux_applied_are_adopted_and_keep_being_pruned(
    manager: ApplyManager, namespace: str
) -> None:
    flux = ApplyManager(manager.api, manager.mapper, field_manager="kustomize-controller")
    await flux.apply_all([configmap(namespace, "swapped", {"a": "1", "gone": "x"})])
    changes = await manager.apply_all([configmap(namespace, "swapped", {"a": "1"})])
    assert actions(changes) == {f"ConfigMap/{namespace}/swapped": "configured"}
    swapped = await client.get(manager.api, CONFIGMAPS, namespace, "swapped")
    assert swapped["data"] == {"a": "1"}, "a field Flux applied outlived its removal from git"
    assert {entry["manager"] for entry in swapped["metadata"]["managedFields"]} == {"fluxd-test"}


async def test_crd_namespace_and_custom_resource_in_one_call(
    manager: ApplyManager, crd_group: str, api_client: ApiClient
) -> None:
    new_ns = f"t-{uuid.uuid4().hex[:10]}"
    widget = {
        "apiVersion": f"{crd_group}/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": new_ns},
        "spec": {"size": 3},
    }
    namespace_obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": new_ns}}
    try:
        # Input order is the worst case: the custom resource before its CRD and namespace.
        changes = await manager.apply_all([widget, namespace_obj, crd(crd_group)])
        assert [str(change) for change in changes] == [
            f"CustomResourceDefinition/widgets.{crd_group} created",
            f"Namespace/{new_ns} created",
            f"Widget/{new_ns}/w created",
        ]
        widgets = Resource(crd_group, "v1", "widgets")
        live = await client.get(api_client, widgets, new_ns, "w")
        assert live["spec"] == {"size": 3}

        again = await manager.apply_all([widget, namespace_obj, crd(crd_group)])
        assert not again.has_changes, again.summary()
    finally:
        await client.delete(api_client, NAMESPACES, None, new_ns)


async def test_ssa_if_not_present_and_ignore(manager: ApplyManager, namespace: str) -> None:
    keep = {"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}
    first = await manager.apply_all([configmap(namespace, "seed", {"v": "1"}, annotations=keep)])
    assert actions(first) == {f"ConfigMap/{namespace}/seed": "created"}
    later = await manager.apply_all([configmap(namespace, "seed", {"v": "2"}, annotations=keep)])
    assert actions(later) == {f"ConfigMap/{namespace}/seed": "skipped"}
    assert not later.has_changes
    live = await client.get(manager.api, CONFIGMAPS, namespace, "seed")
    assert live["data"] == {"v": "1"}, "IfNotPresent overwrote an existing object"

    ignore = {"kustomize.toolkit.fluxcd.io/ssa": "ignore"}  # values match in any case
    skipped = await manager.apply_all([configmap(namespace, "off", {"v": "1"}, annotations=ignore)])
    assert actions(skipped) == {f"ConfigMap/{namespace}/off": "skipped"}
    with pytest.raises(client.ApiError) as missing:
        await client.get(manager.api, CONFIGMAPS, namespace, "off")
    assert missing.value.not_found

    # An object someone marked Ignore in the cluster is left alone too.
    await manager.apply_all([configmap(namespace, "live-ignored", {"v": "1"})])
    await client.patch_metadata(
        manager.api,
        CONFIGMAPS,
        namespace,
        "live-ignored",
        annotations={"kustomize.toolkit.fluxcd.io/ssa": "Ignore"},
    )
    hands_off = await manager.apply_all([configmap(namespace, "live-ignored", {"v": "2"})])
    assert actions(hands_off) == {f"ConfigMap/{namespace}/live-ignored": "skipped"}


async def test_immutable_change_needs_force(manager: ApplyManager, namespace: str) -> None:
    await manager.apply_all([deployment(namespace, "web", app="one")])
    old_uid = (await client.get(manager.api, DEPLOYMENTS, namespace, "web"))["metadata"]["uid"]
    changed = deployment(namespace, "web", app="two")  # spec.selector is immutable

    with pytest.raises(ApplyError) as refused:
        await manager.apply_all([changed, configmap(namespace, "side", {"a": "1"})])
    message = str(refused.value)
    assert f"Deployment/{namespace}/web" in message
    assert "immutable" in message
    assert "spec.force: true" in message
    live = await client.get(manager.api, DEPLOYMENTS, namespace, "web")
    assert live["metadata"]["uid"] == old_uid
    with pytest.raises(client.ApiError):
        await client.get(manager.api, CONFIGMAPS, namespace, "side")

    forced = await manager.apply_all([changed], force=True)
    assert actions(forced) == {f"Deployment/{namespace}/web": "created"}
    live = await client.get(manager.api, DEPLOYMENTS, namespace, "web")
    assert live["metadata"]["uid"] != old_uid
    assert live["spec"]["selector"] == {"matchLabels": {"app": "two"}}


async def test_force_annotation_recreates_one_object(manager: ApplyManager, namespace: str) -> None:
    await manager.apply_all([deployment(namespace, "web", app="one")])
    changed = deployment(namespace, "web", app="two")
    changed["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/force": "enabled"}
    forced = await manager.apply_all([changed])
    assert actions(forced) == {f"Deployment/{namespace}/web": "created"}


async def test_invalid_object_stops_the_stage(manager: ApplyManager, namespace: str) -> None:
    bad_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bad", "namespace": namespace},
        "spec": {"ports": [{"port": 99999}]},
    }
    await manager.apply_all([configmap(namespace, "kept", {"v": "1"})])
    with pytest.raises(ApplyError) as failed:
        await manager.apply_all(
            [
                configmap(namespace, "kept", {"v": "2"}),
                configmap(namespace, "new", {"v": "1"}),
                bad_service,
                deployment(namespace, "web"),
            ]
        )
    message = str(failed.value)
    assert message.startswith(f"Service/{namespace}/bad dry-run failed (Invalid): ")
    assert "99999" in message
    assert failed.value.changes is not None
    assert len(failed.value.changes) == 0
    kept = await client.get(manager.api, CONFIGMAPS, namespace, "kept")
    assert kept["data"] == {"v": "1"}, "an object of a failed stage was applied"
    for resource, name in ((CONFIGMAPS, "new"), (SERVICES, "bad"), (DEPLOYMENTS, "web")):
        with pytest.raises(client.ApiError):
            await client.get(manager.api, resource, namespace, name)


async def test_earlier_stages_land_when_a_later_one_fails(
    manager: ApplyManager, namespace: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": f"reader-{suffix}"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
    }
    priority = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": f"high-{suffix}"},
        "value": 1000,
    }
    bad = configmap(namespace, "bad", {"v": "1"})
    bad["data"] = {"not a key!": "x"}
    try:
        with pytest.raises(ApplyError) as failed:
            await manager.apply_all([bad, configmap(namespace, "ok", {"v": "1"}), priority, role])
        assert failed.value.changes is not None
        assert actions(failed.value.changes) == {
            f"ClusterRole/reader-{suffix}": "created",
            f"PriorityClass/high-{suffix}": "created",
        }
        with pytest.raises(client.ApiError):
            await client.get(manager.api, CONFIGMAPS, namespace, "ok")
    finally:
        await client.delete(manager.api, CLUSTER_ROLES, None, f"reader-{suffix}")
        await client.delete(manager.api, PRIORITY_CLASSES, None, f"high-{suffix}")


async def test_unknown_kind_and_missing_namespace_are_named(
    manager: ApplyManager, namespace: str
) -> None:
    gadget = {
        "apiVersion": "nowhere.fluxd.test/v1",
        "kind": "Gadget",
        "metadata": {"name": "g", "namespace": namespace},
    }
    with pytest.raises(ApplyError) as unknown:
        await manager.apply_all([gadget])
    assert str(unknown.value) == (
        f'Gadget/{namespace}/g dry-run failed: no matches for kind "Gadget" in version '
        '"nowhere.fluxd.test/v1": is its CustomResourceDefinition installed?'
    )
    homeless = configmap(namespace, "c", {})
    del homeless["metadata"]["namespace"]
    with pytest.raises(ApplyError, match=r"^ConfigMap/c namespace not specified"):
        await manager.apply_all([homeless])


async def test_delete_all_honours_prune_disabled_and_ownership(
    manager: ApplyManager, namespace: str
) -> None:
    mine = dict(OWNER)
    theirs = {**OWNER, "kustomize.toolkit.fluxcd.io/name": "other"}
    await manager.apply_all(
        [
            configmap(namespace, "owned", {}, labels=mine),
            configmap(
                namespace,
                "pinned",
                {},
                labels=mine,
                annotations={"kustomize.toolkit.fluxcd.io/prune": "disabled"},
            ),
            configmap(namespace, "taken", {}, labels=theirs),
            configmap(namespace, "vetoed", {}, labels=mine),
        ]
    )
    refs = [
        ObjectRef("", "ConfigMap", namespace, name, "v1")
        for name in ("owned", "pinned", "taken", "vetoed", "gone")
    ]
    refs.append(ObjectRef("nowhere.fluxd.test", "Gadget", namespace, "g", "v1"))
    changes = await manager.delete_all(
        refs, owner_labels=OWNER, skip=lambda obj: obj["metadata"]["name"] == "vetoed"
    )
    assert actions(changes) == {
        f"ConfigMap/{namespace}/owned": "deleted",
        f"ConfigMap/{namespace}/pinned": "skipped",
        f"ConfigMap/{namespace}/taken": "skipped",
        f"ConfigMap/{namespace}/vetoed": "skipped",
        f"ConfigMap/{namespace}/gone": "deleted",
        f"Gadget/{namespace}/g": "deleted",
    }
    listed = await client.list_page(manager.api, CONFIGMAPS, namespace)
    names = {item["metadata"]["name"] for item in listed["items"]}
    assert {"pinned", "taken", "vetoed"} <= names
    assert "owned" not in names


async def test_delete_all_runs_in_reverse_apply_order(
    manager: ApplyManager, namespace: str
) -> None:
    await manager.apply_all([deployment(namespace, "web"), configmap(namespace, "c", {})])
    changes = await manager.delete_all(
        [
            ObjectRef("", "ConfigMap", namespace, "c", "v1"),
            ObjectRef("apps", "Deployment", namespace, "web", "v1"),
        ]
    )
    assert [str(change) for change in changes] == [
        f"Deployment/{namespace}/web deleted",
        f"ConfigMap/{namespace}/c deleted",
    ]


async def test_mapper_finds_a_kind_once_its_crd_exists(
    api_client: ApiClient, crd_group: str
) -> None:
    mapper = RESTMapper(api_client)
    with pytest.raises(NoKindMatchError, match="is its CustomResourceDefinition installed"):
        await mapper.resource_for(f"{crd_group}/v1", "Widget")
    await client.create(api_client, CRDS, crd(crd_group))
    async with asyncio.timeout(30):
        while True:
            try:
                found = await mapper.resource_for(f"{crd_group}/v1", "Widget")
                break
            except NoKindMatchError:
                await asyncio.sleep(0.1)
    assert found == Resource(crd_group, "v1", "widgets", namespaced=True)
    assert await mapper.resource_for("v1", "Namespace") == Resource(
        "", "v1", "namespaces", namespaced=False
    )
    assert await mapper.resource_for("apps/v1", "Deployment") == DEPLOYMENTS


async def free_cluster_ip(api: ApiClient, taken: str) -> str:
    """Another address of the service network than any Service uses."""
    listed = await client.list_page(api, SERVICES, None)
    used = {item["spec"].get("clusterIP") for item in listed["items"]}
    prefix = taken.rpartition(".")[0]
    return next(f"{prefix}.{n}" for n in range(200, 250) if f"{prefix}.{n}" not in used)


async def test_immutable_service_cluster_ip_and_job_template(
    manager: ApplyManager, namespace: str
) -> None:
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc", "namespace": namespace},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}},
    }
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once", "namespace": namespace},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "run", "image": "busybox:1", "args": ["true"]}],
                }
            }
        },
    }
    await manager.apply_all([service, job])
    live_service = await client.get(manager.api, SERVICES, namespace, "svc")
    service["spec"]["clusterIP"] = await free_cluster_ip(
        manager.api, live_service["spec"]["clusterIP"]
    )
    job["spec"]["template"]["spec"]["containers"][0]["args"] = ["false"]

    # Services come before Jobs in the apply order: the first refusal is the Service's.
    with pytest.raises(ApplyError) as refused:
        await manager.apply_all([service, job])
    assert str(refused.value).startswith(f"Service/{namespace}/svc dry-run failed (Invalid): ")
    assert "may not change once set" in str(refused.value)
    assert "spec.force: true" in str(refused.value)
    with pytest.raises(ApplyError) as refused:
        await manager.apply_all([job])
    assert str(refused.value).startswith(f"Job/{namespace}/once dry-run failed (Invalid): ")
    assert "field is immutable" in str(refused.value)

    forced = await manager.apply_all([service, job], force=True)
    assert actions(forced) == {
        f"Service/{namespace}/svc": "created",
        f"Job/{namespace}/once": "created",
    }
    recreated = await client.get(manager.api, SERVICES, namespace, "svc")
    assert recreated["spec"]["clusterIP"] == service["spec"]["clusterIP"]
    assert recreated["metadata"]["uid"] != live_service["metadata"]["uid"]


async def test_dry_run_answers_with_the_live_resource_version(
    manager: ApplyManager, namespace: str
) -> None:
    """What drift detection relies on to tell a concurrent write from drift."""
    await manager.apply_all([configmap(namespace, "c", {"a": "1"})])
    live = await client.get(manager.api, CONFIGMAPS, namespace, "c")
    merged = await client.request(
        manager.api,
        "PATCH",
        CONFIGMAPS.path(namespace, "c"),
        query={"fieldManager": "fluxd-test", "force": "true", "dryRun": "All"},
        body=configmap(namespace, "c", {"a": "2"}),
        content_type="application/apply-patch+yaml",
    )
    assert merged["data"] == {"a": "2"}
    assert merged["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]


async def test_cluster_scoped_object_drops_a_namespace(
    manager: ApplyManager, namespace: str
) -> None:
    """kustomize may leave a namespace on a custom cluster-scoped kind; like kubectl,
    the apply ignores it and the object is named (and inventoried) without one."""
    name = f"fluxd-test-{uuid.uuid4().hex[:8]}"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "namespace": namespace},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
    }
    cluster_roles = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False)
    try:
        changes = await manager.apply_all([role])
        assert [str(change) for change in changes] == [f"ClusterRole/{name} created"]
        assert changes.refs[0].id == f"_{name}_rbac.authorization.k8s.io_ClusterRole"
        assert not (await manager.apply_all([role])).has_changes
    finally:
        await client.delete(manager.api, cluster_roles, None, name)


async def test_crd_that_never_establishes_times_out_before_stage_two(
    manager: ApplyManager, crd_group: str, namespace: str
) -> None:
    clash = crd(crd_group)
    clash["metadata"]["name"] = f"gizmos.{crd_group}"
    clash["spec"]["names"] = {"kind": "Widget", "plural": "gizmos", "singular": "gizmo"}
    try:
        await manager.apply_all([crd(crd_group)])
        with pytest.raises(ApplyError) as stuck:
            await manager.apply_all([clash, configmap(namespace, "after", {})], wait_timeout=2)
        message = str(stuck.value)
        assert message.startswith(
            f"timeout after 2s waiting for CustomResourceDefinition/gizmos.{crd_group} "
            "to be Established"
        ), message
        assert "NamesAccepted=False" in message
        assert stuck.value.changes is not None
        assert [str(c) for c in stuck.value.changes] == [
            f"CustomResourceDefinition/gizmos.{crd_group} created"
        ]
        with pytest.raises(client.ApiError):
            await client.get(manager.api, CONFIGMAPS, namespace, "after")
    finally:
        await client.delete(manager.api, CRDS, None, f"gizmos.{crd_group}")
