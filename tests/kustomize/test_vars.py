"""Legacy ``vars``: expectations checked against kubectl kustomize v5.7.1."""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.kustomize._model import KustomizeError, Resource
from fluxd.kustomize._vars import apply_vars, expand


def _service() -> Resource:
    return Resource(
        obj={
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "svc", "namespace": "ns1"},
            "spec": {"ports": [{"port": 8080, "name": "http"}]},
        },
        origin="test",
    )


def _deployment() -> Resource:
    return Resource(
        obj={
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"a": "$(SVC)", "n": "x"}},
            "spec": {
                "replicas": 1,
                "template": {
                    "metadata": {"annotations": {"a": "$(PORT)"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "c",
                                "image": "nginx",
                                "command": [
                                    "run",
                                    "$(SVC)-$(PORT)",
                                    "$(UNKNOWN)",
                                    "$$(SVC)",
                                    "$(PORT)",
                                ],
                                "args": ["$(PORT)", "$(B)x", "$(B)"],
                                "env": [
                                    {"name": "A", "value": "$(SVC).$(NS)"},
                                    {"name": "P", "value": "$(PORT)"},
                                ],
                            }
                        ]
                    },
                },
            },
        },
        origin="test",
    )


VARS: list[dict[str, Any]] = [
    {"name": "SVC", "objref": {"kind": "Service", "name": "svc", "apiVersion": "v1"}},
    {
        "name": "PORT",
        "objref": {"kind": "Service", "name": "svc", "apiVersion": "v1"},
        "fieldref": {"fieldpath": "spec.ports[0].port"},
    },
    {
        "name": "NS",
        "objref": {"kind": "Service", "name": "svc", "apiVersion": "v1"},
        "fieldref": {"fieldpath": "metadata.namespace"},
    },
    {
        "name": "B",
        "objref": {"kind": "Deployment", "name": "d", "apiVersion": "apps/v1"},
        "fieldref": {"fieldpath": "spec.template.spec.containers.0.image"},
    },
]


def test_expands_in_var_reference_fields_with_final_names_and_types() -> None:
    service, deployment = _service(), _deployment()
    service.rename("p-svc")
    deployment.rename("p-d")
    apply_vars([service, deployment], VARS, kustomization_file="k")
    obj = deployment.obj
    assert obj["metadata"]["labels"] == {"a": "p-svc", "n": "x"}
    assert obj["spec"]["template"]["metadata"]["annotations"] == {"a": 8080}
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["run", "p-svc-8080", "$(UNKNOWN)", "$(SVC)", 8080]
    assert container["args"] == [8080, "nginxx", "nginx"]
    assert container["env"] == [
        {"name": "A", "value": "p-svc.ns1"},
        {"name": "P", "value": 8080},
    ]
    assert container["image"] == "nginx"


def test_non_string_list_items_in_a_reference_field_fail() -> None:
    deployment = _deployment()
    deployment.obj["spec"]["template"]["spec"]["containers"][0]["args"].append(5)
    with pytest.raises(KustomizeError, match="invalid value type expect a string"):
        apply_vars([_service(), deployment], VARS, kustomization_file="k")


@pytest.mark.parametrize(
    ("objref", "fieldref", "message"),
    [
        (
            {"kind": "Service", "name": "nope", "apiVersion": "v1"},
            None,
            "var '{SVC Service.v1.[noGrp] {metadata.name}}' cannot be mapped to a field in "
            "the set of known resources",
        ),
        (
            {"kind": "Service", "name": "svc"},
            None,
            "var '{SVC Service.[noVer].[noGrp] {metadata.name}}' cannot be mapped",
        ),
        (
            {"kind": "Service", "name": "svc", "apiVersion": "v1", "namespace": "other"},
            None,
            "cannot be mapped to a field",
        ),
        (
            {"kind": "Service", "name": "svc", "apiVersion": "v1"},
            {"fieldpath": "spec.nope"},
            "field specified in var '{SVC Service.v1.[noGrp] {spec.nope}}' not found in "
            "corresponding resource",
        ),
    ],
)
def test_resolution_errors(
    objref: dict[str, str], fieldref: dict[str, str] | None, message: str
) -> None:
    var: dict[str, Any] = {"name": "SVC", "objref": objref}
    if fieldref:
        var["fieldref"] = fieldref
    with pytest.raises(KustomizeError) as caught:
        apply_vars([_service(), _deployment()], [var], kustomization_file="k")
    assert message in str(caught.value)


def test_duplicate_var_names_fail() -> None:
    with pytest.raises(KustomizeError, match="var 'SVC' already encountered"):
        apply_vars([_service()], [VARS[0], VARS[0]], kustomization_file="k")


def test_namespace_in_objref_must_match() -> None:
    deployment = _deployment()
    var = {
        "name": "SVC",
        "objref": {"kind": "Service", "name": "svc", "apiVersion": "v1", "namespace": "ns1"},
    }
    apply_vars([_service(), deployment], [var], kustomization_file="k")
    assert deployment.obj["metadata"]["labels"]["a"] == "svc"


def test_map_valued_var_stays_unexpanded() -> None:
    deployment = _deployment()
    var = {
        "name": "SVC",
        "objref": {"kind": "Service", "name": "svc", "apiVersion": "v1"},
        "fieldref": {"fieldpath": "spec.ports"},
    }
    apply_vars([_service(), deployment], [var], kustomization_file="k")
    assert deployment.obj["metadata"]["labels"]["a"] == "$(SVC)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)", 1),
        ("x$(A)y", "x1y"),
        ("$$(A)", "$(A)"),
        ("$(A", "$(A"),
        ("$A", "$A"),
        ("$", "$"),
        ("$(B)-$(A)", "true-1"),
        ("$(C)", "$(C)"),
    ],
)
def test_expand(text: str, expected: Any) -> None:
    values: dict[str, Any] = {"A": 1, "B": True}
    assert expand(text, lambda name: values.get(name, f"$({name})")) == expected
