"""Taking over kubectl's fields: whose entries are merged into the applier's, and how."""

from __future__ import annotations

from typing import Any

from fluxd.apply.ownership import takeover

MANAGER = "fluxd"


def entry(manager: str, operation: str, fields: dict[str, Any], **extra: str) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        **extra,
    }


def live(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"managedFields": list(entries)}}


def test_nothing_to_take_over() -> None:
    ours = entry(MANAGER, "Apply", {"f:data": {"f:a": {}}})
    controller = entry("kube-controller-manager", "Update", {"f:data": {"f:z": {}}})
    assert takeover(live(ours, controller), MANAGER) is None
    assert takeover(live(), MANAGER) is None


def test_kubectl_fields_merge_into_the_apply_entry() -> None:
    ours = entry(MANAGER, "Apply", {"f:data": {"f:a": {}}})
    edit = entry("kubectl-edit", "Update", {"f:data": {"f:b": {}}, "f:metadata": {"f:labels": {}}})
    other = entry("helm", "Update", {"f:data": {"f:h": {}}})
    managed = takeover(live(ours, edit, other), MANAGER)
    assert managed is not None
    assert [(e["manager"], e["operation"]) for e in managed] == [
        (MANAGER, "Apply"),
        ("helm", "Update"),
    ]
    assert managed[0]["fieldsV1"] == {
        "f:data": {"f:a": {}, "f:b": {}},
        "f:metadata": {"f:labels": {}},
    }
    assert ours["fieldsV1"] == {"f:data": {"f:a": {}}}, "the live object was changed"


def test_an_object_made_by_kubectl_gets_an_apply_entry() -> None:
    created = entry(
        "kubectl-client-side-apply",
        "Update",
        {
            "f:metadata": {
                "f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}
            }
        },
    )
    before = entry("before-first-apply", "Update", {"f:data": {"f:x": {}}})
    managed = takeover(live(created, before), MANAGER)
    assert managed == [
        entry(
            MANAGER,
            "Apply",
            {
                "f:metadata": {
                    "f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}
                },
                "f:data": {"f:x": {}},
            },
        )
    ]


def test_own_updates_and_kubectl_server_side_applies_are_taken_status_is_not() -> None:
    own_update = entry(MANAGER, "Update", {"f:data": {"f:u": {}}})
    kubectl_apply = entry("kubectl", "Apply", {"f:data": {"f:k": {}}})
    status = entry("kubectl-edit", "Update", {"f:status": {}}, subresource="status")
    managed = takeover(live(own_update, kubectl_apply, status), MANAGER)
    assert managed is not None
    assert [(e["manager"], e.get("subresource")) for e in managed] == [
        ("kubectl-edit", "status"),
        (MANAGER, None),
    ]
    assert managed[1]["fieldsV1"] == {"f:data": {"f:u": {}, "f:k": {}}}


def test_what_flux_applied_is_adopted_after_a_swap() -> None:
    flux = entry("kustomize-controller", "Apply", {"f:data": {"f:a": {}, "f:gone": {}}})
    managed = takeover(live(flux), MANAGER)
    assert managed == [entry(MANAGER, "Apply", {"f:data": {"f:a": {}, "f:gone": {}}})]
