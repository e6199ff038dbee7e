"""Strategic merge patches: kustomize's (kyaml merge2) semantics, as ``kubectl kustomize``
applies them. Every expectation here was checked against kubectl v1.35 / kustomize v5.7.
"""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.kustomize._model import KustomizeError
from fluxd.kustomize._patch_keys import build_table, list_strategy
from fluxd.kustomize._strategic_merge import strategic_merge

DEPLOYMENT = ("apps", "v1", "Deployment")
POD = ("", "v1", "Pod")


def _deployment(**pod_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": pod_spec}},
    }


def _pod_spec(obj: dict[str, Any] | None) -> dict[str, Any]:
    assert obj is not None
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


# --- the merge-key table -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "keys", "strategy"),
    [
        ("spec.template.spec.containers", ("name",), "merge"),
        ("spec.template.spec.initContainers", ("name",), "merge"),
        ("spec.template.spec.containers.ports", ("containerPort", "protocol"), "merge"),
        ("spec.template.spec.containers.env", ("name",), "merge"),
        ("spec.template.spec.containers.volumeMounts", ("mountPath",), "merge"),
        ("spec.template.spec.volumes", ("name",), "merge,retainKeys"),
        ("spec.template.spec.imagePullSecrets", ("name",), "merge"),
        ("metadata.finalizers", (), "merge"),
        ("metadata.ownerReferences", ("uid",), "merge"),
    ],
)
def test_table_has_deployment_merge_keys(path: str, keys: tuple[str, ...], strategy: str) -> None:
    found = list_strategy(DEPLOYMENT, path.split("."))
    assert found is not None
    assert found.keys == keys
    assert found.strategy == strategy
    assert found.merges


@pytest.mark.parametrize(
    "path",
    [
        "spec.template.spec.tolerations",
        "spec.template.spec.containers.args",
        "spec.template.spec.containers.command",
        "spec.template.spec.nothing",
    ],
)
def test_table_leaves_atomic_lists_out(path: str) -> None:
    assert list_strategy(DEPLOYMENT, path.split(".")) is None


def test_table_covers_other_kinds_and_not_custom_resources() -> None:
    service_ports = list_strategy(("", "v1", "Service"), ["spec", "ports"])
    assert service_ports is not None
    assert service_ports.merge_key == "port"
    assert service_ports.keys == ("port", "protocol")
    cron = list_strategy(
        ("batch", "v1", "CronJob"),
        ["spec", "jobTemplate", "spec", "template", "spec", "containers"],
    )
    assert cron is not None
    assert cron.keys == ("name",)
    assert list_strategy(("example.com", "v1", "Widget"), ["spec", "items"]) is None


def test_generator_keeps_only_paths_to_merge_lists() -> None:
    openapi = {
        "info": {"version": "test"},
        "definitions": {
            "a.Thing": {
                "x-kubernetes-group-version-kind": [{"group": "g", "version": "v1", "kind": "T"}],
                "properties": {
                    "spec": {"$ref": "#/definitions/a.Spec"},
                    "plain": {"type": "string"},
                    "atomic": {"type": "array", "x-kubernetes-list-type": "atomic"},
                },
            },
            "a.Spec": {
                "properties": {
                    "items": {
                        "type": "array",
                        "items": {"$ref": "#/definitions/a.Item"},
                        "x-kubernetes-patch-strategy": "merge",
                        "x-kubernetes-patch-merge-key": "id",
                    },
                    "byName": {
                        "type": "object",
                        "additionalProperties": {"$ref": "#/definitions/a.Spec"},
                    },
                },
            },
            "a.Item": {"properties": {"id": {"type": "string"}}},
            "a.Unrelated": {"properties": {"x": {"type": "string"}}},
        },
    }
    table = build_table(openapi)
    assert table["kinds"] == {"g/v1/T": "a.Thing"}
    assert table["types"] == {
        "a.Spec": {
            "byName": {"type": "a.Spec", "map": True},
            "items": {"strategy": "merge", "mergeKey": "id"},
        },
        "a.Thing": {"spec": {"type": "a.Spec"}},
    }


# --- maps ---------------------------------------------------------------------------------


def test_maps_merge_and_null_deletes() -> None:
    base = {"metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}}
    patch = {"metadata": {"labels": {"a": None, "c": "3"}}, "data": None, "extra": {"x": None}}
    result = strategic_merge(base, patch, gvk=("", "v1", "ConfigMap"))
    assert result == {"metadata": {"name": "c", "labels": {"b": "2", "c": "3"}}, "extra": {}}


def test_inputs_are_not_modified() -> None:
    base = _deployment(containers=[{"name": "a", "image": "a"}])
    patch = _deployment(containers=[{"name": "a", "$patch": "delete"}])
    strategic_merge(base, patch, gvk=DEPLOYMENT)
    assert base == _deployment(containers=[{"name": "a", "image": "a"}])
    assert patch == _deployment(containers=[{"name": "a", "$patch": "delete"}])


def test_nulls_the_patch_does_not_touch_stay() -> None:
    base = {"spec": {"keep": None, "other": 1}}
    assert strategic_merge(base, {"spec": {"other": 2}}, gvk=DEPLOYMENT) == {
        "spec": {"keep": None, "other": 2}
    }


def test_map_directives() -> None:
    base = {"spec": {"selector": {"a": "1"}, "strategy": {"type": "A"}, "keep": {"x": 1}}}
    patch = {
        "spec": {
            "selector": {"$patch": "replace", "b": "2"},
            "strategy": {"$patch": "delete"},
            "keep": {"$patch": "merge", "y": 2},
        }
    }
    assert strategic_merge(base, patch, gvk=DEPLOYMENT) == {
        "spec": {"selector": {"b": "2"}, "keep": {"x": 1, "y": 2}}
    }


def test_delete_whole_object() -> None:
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    patch = {"$patch": "delete", "apiVersion": "v1", "kind": "ConfigMap"}
    assert strategic_merge(base, patch, gvk=("", "v1", "ConfigMap")) is None


def test_unknown_directive_is_an_error() -> None:
    with pytest.raises(KustomizeError, match="unknown patch strategy 'sideways' at spec"):
        strategic_merge({"spec": {"a": 1}}, {"spec": {"$patch": "sideways"}}, gvk=DEPLOYMENT)


def test_kind_mismatch_is_an_error() -> None:
    with pytest.raises(KustomizeError, match=r"cannot merge a map .* at spec.replicas"):
        strategic_merge({"spec": {"replicas": 1}}, {"spec": {"replicas": {"a": 1}}}, gvk=POD)


def test_unsupported_apimachinery_directives_become_fields() -> None:
    base = _deployment(containers=[{"name": "a"}, {"name": "b"}])
    patch = _deployment(**{"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]})
    spec = _pod_spec(strategic_merge(base, patch, gvk=DEPLOYMENT))
    assert spec["$setElementOrder/containers"] == [{"name": "b"}, {"name": "a"}]
    assert spec["containers"] == [{"name": "a"}, {"name": "b"}]


# --- lists --------------------------------------------------------------------------------


def test_containers_merge_by_name_patch_elements_first() -> None:
    base = _deployment(
        containers=[
            {"name": "app", "image": "nginx", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "busybox"},
        ]
    )
    patch = _deployment(
        containers=[
            {"name": "new", "image": "new"},
            {"name": "app", "image": "nginx:2", "env": [{"name": "C", "value": "3"}]},
        ]
    )
    assert _pod_spec(strategic_merge(base, patch, gvk=DEPLOYMENT))["containers"] == [
        {"name": "new", "image": "new"},
        {
            "name": "app",
            "image": "nginx:2",
            "env": [{"name": "C", "value": "3"}, {"name": "A", "value": "1"}],
        },
        {"name": "side", "image": "busybox"},
    ]


def test_atomic_and_unknown_lists_are_replaced() -> None:
    base = _deployment(tolerations=[{"key": "a"}], containers=[{"name": "a", "args": ["x", "y"]}])
    patch = _deployment(tolerations=[{"key": "b"}], containers=[{"name": "a", "args": ["z"]}])
    spec = _pod_spec(strategic_merge(base, patch, gvk=DEPLOYMENT))
    assert spec["tolerations"] == [{"key": "b"}]
    assert spec["containers"] == [{"name": "a", "args": ["z"]}]


def test_custom_resources_replace_lists() -> None:
    base = {"spec": {"items": [{"name": "one", "v": 1}, {"name": "two"}]}}
    patch = {"spec": {"items": [{"name": "one", "v": 2}]}}
    result = strategic_merge(base, patch, gvk=("example.com", "v1", "Widget"))
    assert result == {"spec": {"items": [{"name": "one", "v": 2}]}}


def test_embedded_known_object_gets_its_schema() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "a", "image": "a"}]}}
    base = {"spec": {"template": pod}}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b"}]}}}}
    result = strategic_merge(base, patch, gvk=("example.com", "v1", "Widget"))
    assert result is not None
    assert result["spec"]["template"]["spec"]["containers"] == [
        {"name": "b", "image": "b"},
        {"name": "a", "image": "a"},
    ]


def test_element_delete_and_list_directives() -> None:
    base = _deployment(
        containers=[{"name": "a"}, {"name": "b"}],
        volumes=[{"name": "v1"}, {"name": "v2"}],
        initContainers=[{"name": "i"}],
    )
    patch = _deployment(
        containers=[{"name": "b", "$patch": "delete"}],
        volumes=[{"$patch": "replace"}, {"name": "v9"}],
        initContainers=[{"$patch": "delete"}],
    )
    spec = _pod_spec(strategic_merge(base, patch, gvk=DEPLOYMENT))
    assert spec == {"containers": [{"name": "a"}], "volumes": [{"name": "v9"}]}


def test_element_replace_directive_is_ignored_like_kyaml_does() -> None:
    base = _deployment(containers=[{"name": "a", "image": "a", "args": ["x"]}])
    patch = _deployment(containers=[{"name": "a", "$patch": "replace", "image": "z"}])
    assert _pod_spec(strategic_merge(base, patch, gvk=DEPLOYMENT))["containers"] == [
        {"name": "a", "image": "a", "args": ["x"]}
    ]


def test_duplicate_names_collapse_to_the_last() -> None:
    base = _deployment(containers=[{"name": "x", "image": "1"}, {"name": "x", "image": "2"}])
    patch = {"metadata": {"labels": {"a": "b"}}}
    assert _pod_spec(strategic_merge(base, patch, gvk=DEPLOYMENT))["containers"] == [
        {"name": "x", "image": "2"}
    ]


def test_finalizers_merge_as_a_set() -> None:
    base = {"metadata": {"finalizers": ["a", "b", "a"]}}
    patch = {"metadata": {"finalizers": ["b", "z", "z"]}}
    result = strategic_merge(base, patch, gvk=POD)
    assert result == {"metadata": {"finalizers": ["b", "z", "a"]}}


@pytest.mark.parametrize(
    ("base", "patch", "expected"),
    [
        # Matching containerPort and protocol: merged.
        (
            [{"containerPort": 80, "protocol": "TCP"}],
            [{"containerPort": 80, "protocol": "TCP", "hostPort": 1}],
            [{"containerPort": 80, "protocol": "TCP", "hostPort": 1}],
        ),
        # Different protocols: both kept, the patch's first.
        (
            [{"containerPort": 53, "protocol": "UDP"}],
            [{"containerPort": 53, "protocol": "TCP"}],
            [{"containerPort": 53, "protocol": "TCP"}, {"containerPort": 53, "protocol": "UDP"}],
        ),
        # One side without protocol: the object's element wins, the patch's is dropped.
        (
            [{"containerPort": 80, "protocol": "TCP", "name": "a"}],
            [{"containerPort": 80, "name": "b", "hostPort": 5}, {"containerPort": 81}],
            [{"containerPort": 81}, {"containerPort": 80, "protocol": "TCP", "name": "a"}],
        ),
        (
            [{"containerPort": 80, "name": "z"}, {"containerPort": 53, "protocol": "UDP"}],
            [{"containerPort": 8080}, {"containerPort": 53, "protocol": "TCP"}],
            [
                {"containerPort": 8080},
                {"containerPort": 53, "protocol": "TCP"},
                {"containerPort": 80, "name": "z"},
                {"containerPort": 53, "protocol": "UDP"},
            ],
        ),
    ],
)
def test_ports_pair_by_container_port_and_protocol(
    base: list[dict[str, Any]], patch: list[dict[str, Any]], expected: list[dict[str, Any]]
) -> None:
    result = strategic_merge(
        {"spec": {"containers": [{"name": "c", "ports": base}]}},
        {"spec": {"containers": [{"name": "c", "ports": patch}]}},
        gvk=POD,
    )
    assert result == {"spec": {"containers": [{"name": "c", "ports": expected}]}}
