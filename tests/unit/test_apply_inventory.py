"""Flux's inventory ids, the apply order, and what a new build leaves to prune."""

from __future__ import annotations

import random
from typing import Any

import pytest

from fluxd.apply.inventory import (
    ObjectRef,
    apply_order,
    apply_stage,
    entries,
    is_cluster_definition,
    parse,
    stale,
)


def obj(api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


@pytest.mark.parametrize(
    ("manifest", "entry_id"),
    [
        (obj("apps/v1", "Deployment", "my-app", "default"), "default_my-app_apps_Deployment"),
        (obj("v1", "ConfigMap", "c", "ns"), "ns_c__ConfigMap"),
        (obj("v1", "Namespace", "team"), "_team__Namespace"),
        (
            obj("rbac.authorization.k8s.io/v1", "ClusterRole", "system:aggregate"),
            "_system__aggregate_rbac.authorization.k8s.io_ClusterRole",
        ),
        (
            obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"),
            "_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition",
        ),
    ],
)
def test_ids_are_fluxs(manifest: dict[str, Any], entry_id: str) -> None:
    ref = ObjectRef.of(manifest)
    assert ref.id == entry_id
    [entry] = entries([manifest])
    assert entry == {"id": entry_id, "v": "v1"}
    assert parse([entry]) == [ref]


def test_ref_names_objects_like_flux() -> None:
    assert str(ObjectRef("apps", "Deployment", "default", "my-app", "v1")) == (
        "Deployment/default/my-app"
    )
    assert str(ObjectRef("", "Namespace", "", "team", "v1")) == "Namespace/team"
    assert ObjectRef("apps", "Deployment", "d", "x", "v1").api_version == "apps/v1"
    assert ObjectRef("", "ConfigMap", "d", "x", "v1").api_version == "v1"


def test_parse_reads_entries_flux_wrote() -> None:
    written = [
        {"id": "flux-system_podinfo_apps_Deployment", "v": "v1"},
        {"id": "_podinfo__Namespace", "v": "v1"},
        {"id": "_system__controller_rbac.authorization.k8s.io_ClusterRoleBinding", "v": "v1"},
        {"id": "apps_web_helm.toolkit.fluxcd.io_HelmRelease", "v": "v2"},
    ]
    assert parse(written) == [
        ObjectRef("apps", "Deployment", "flux-system", "podinfo", "v1"),
        ObjectRef("", "Namespace", "", "podinfo", "v1"),
        ObjectRef("rbac.authorization.k8s.io", "ClusterRoleBinding", "", "system:controller", "v1"),
        ObjectRef("helm.toolkit.fluxcd.io", "HelmRelease", "apps", "web", "v2"),
    ]


@pytest.mark.parametrize("bad", ["", "no-separators", "ns_name_Kind", "ns_a_b_c_group_Kind"])
def test_parse_rejects_malformed_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="<namespace>_<name>_<group>_<kind>"):
        parse([{"id": bad, "v": "v1"}])


def test_apply_order_is_fluxs_kind_order_whatever_the_input() -> None:
    manifests = [
        obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "hook"),
        obj("example.com/v1", "Widget", "w", "apps"),
        obj("apps/v1", "Deployment", "b", "apps"),
        obj("apps/v1", "Deployment", "a", "apps"),
        obj("v1", "Service", "svc", "apps"),
        obj("v1", "Secret", "s", "apps"),
        obj("v1", "ConfigMap", "c", "apps"),
        obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "crb"),
        obj("rbac.authorization.k8s.io/v1", "RoleBinding", "rb", "apps"),
        obj("rbac.authorization.k8s.io/v1", "ClusterRole", "cr"),
        obj("rbac.authorization.k8s.io/v1", "Role", "r", "apps"),
        obj("v1", "ServiceAccount", "sa", "apps"),
        obj("v1", "ResourceQuota", "q", "apps"),
        obj("storage.k8s.io/v1", "StorageClass", "fast"),
        obj("scheduling.k8s.io/v1", "PriorityClass", "high"),
        obj("v1", "Namespace", "apps"),
        obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"),
        obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutate"),
        obj("batch/v1", "Job", "j", "apps"),
        obj("policy/v1", "PodDisruptionBudget", "pdb", "apps"),
        obj("apps/v1", "StatefulSet", "db", "apps"),
    ]
    expected = [
        # stage 0: cluster definitions
        "CustomResourceDefinition/widgets.example.com",
        "Namespace/apps",
        "ClusterRole/cr",
        # stage 1: class definitions
        "PriorityClass/high",
        "StorageClass/fast",
        # stage 2: the rest
        "ResourceQuota/apps/q",
        "ServiceAccount/apps/sa",
        "Role/apps/r",
        "RoleBinding/apps/rb",
        "ClusterRoleBinding/crb",
        "ConfigMap/apps/c",
        "Secret/apps/s",
        "Service/apps/svc",
        "Deployment/apps/a",
        "Deployment/apps/b",
        "StatefulSet/apps/db",
        "PodDisruptionBudget/apps/pdb",
        # kinds Flux has no rank for, by group then kind
        "Job/apps/j",
        "Widget/apps/w",
        "MutatingWebhookConfiguration/mutate",
        "ValidatingWebhookConfiguration/hook",
    ]
    for seed in range(5):
        shuffled = list(manifests)
        random.Random(seed).shuffle(shuffled)
        assert [str(ObjectRef.of(m)) for m in apply_order(shuffled)] == expected


def test_stages_are_cluster_definitions_then_classes_then_the_rest() -> None:
    assert is_cluster_definition(
        obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "a.b.c")
    )
    assert is_cluster_definition(obj("v1", "Namespace", "n"))
    assert is_cluster_definition(obj("rbac.authorization.k8s.io/v1", "ClusterRole", "r"))
    assert not is_cluster_definition(obj("example.com/v1", "Namespace", "n"))
    assert not is_cluster_definition(obj("example.com/v1", "ClusterRole", "r"))
    assert apply_stage(obj("rbac.authorization.k8s.io/v1", "ClusterRole", "r")) == 0
    assert apply_stage(obj("networking.k8s.io/v1", "IngressClass", "nginx")) == 1
    assert apply_stage(obj("gateway.networking.k8s.io/v1", "GatewayClass", "gw")) == 1
    assert apply_stage(obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "b")) == 2


def test_entries_are_in_apply_order_and_unique() -> None:
    manifests = [
        obj("apps/v1", "Deployment", "web", "apps"),
        obj("v1", "Namespace", "apps"),
        obj("apps/v1", "Deployment", "web", "apps"),
    ]
    assert entries(manifests) == [
        {"id": "_apps__Namespace", "v": "v1"},
        {"id": "apps_web_apps_Deployment", "v": "v1"},
    ]


def test_stale_is_old_minus_new_in_deletion_order() -> None:
    old = parse(
        [
            {"id": "_apps__Namespace", "v": "v1"},
            {"id": "apps_c__ConfigMap", "v": "v1"},
            {"id": "apps_web_apps_Deployment", "v": "v1"},
            {"id": "apps_gone_apps_Deployment", "v": "v1"},
        ]
    )
    # The version is not part of an object's identity: a move to v2 is not a removal.
    new = [
        ObjectRef("apps", "Deployment", "apps", "web", "v2"),
        ObjectRef("", "Namespace", "", "apps", "v1"),
    ]
    assert [str(ref) for ref in stale(old, new)] == [
        "Deployment/apps/gone",
        "ConfigMap/apps/c",
    ]
    assert stale(old, old) == []
    assert [str(ref) for ref in stale(old, [])] == [
        "Deployment/apps/web",
        "Deployment/apps/gone",
        "ConfigMap/apps/c",
        "Namespace/apps",
    ]
