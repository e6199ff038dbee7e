"""The patch stage: patchesStrategicMerge, patches and patchesJson6902, and target selectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fluxd.kustomize._model import KustomizeError, Resource
from fluxd.kustomize._patches import apply_patches
from fluxd.kustomize._selector import Selector
from fluxd.labels import parse_label_selector


def _deployment(name: str, namespace: str = "", **labels: str) -> Resource:
    metadata: dict[str, Any] = {"name": name, "labels": dict(labels)}
    if namespace:
        metadata["namespace"] = namespace
    return Resource(
        obj={
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata,
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "app"}]}}},
        },
        origin="resources.yaml",
    )


def _reader(files: dict[str, str]) -> Callable[[str], bytes]:
    def read(path: str) -> bytes:
        if path not in files:
            raise KustomizeError(f"file {path!r} not found", file="kustomization.yaml")
        return files[path].encode()

    return read


def _apply(
    resources: list[Resource], kustomization: dict[str, Any], **files: str
) -> list[Resource]:
    return apply_patches(
        resources,
        kustomization,
        read_file=_reader(files),
        kustomization_file="kustomization.yaml",
    )


SMP_WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
"""


def test_smp_without_target_finds_its_resource_by_id() -> None:
    web, api = _deployment("web"), _deployment("api")
    result = _apply([web, api], {"patches": [{"path": "p.yaml"}]}, **{"p.yaml": SMP_WEB})
    assert result == [web, api]
    assert web.obj["spec"]["replicas"] == 3
    assert api.obj["spec"]["replicas"] == 1


def test_smp_matches_default_namespace_and_original_name() -> None:
    web = _deployment("web", "default")
    web.rename("prefix-web")
    _apply([web], {"patchesStrategicMerge": [SMP_WEB]})
    assert web.obj["spec"]["replicas"] == 3
    assert web.name == "prefix-web"


def test_smp_without_a_matching_resource_is_an_error() -> None:
    with pytest.raises(KustomizeError) as failure:
        _apply(
            [_deployment("web", "other")], {"patches": [{"path": "p.yaml"}]}, **{"p.yaml": SMP_WEB}
        )
    message = str(failure.value)
    assert "no resource matches strategic merge patch 'Deployment.v1.apps/web.[noNs]'" in message
    assert "from p.yaml" in message
    assert "(in kustomization.yaml, field patches[0])" in message


def test_multi_document_patch_file_and_whole_object_delete() -> None:
    web, api = _deployment("web"), _deployment("api")
    patches = SMP_WEB + "---\n$patch: delete\napiVersion: apps/v1\nkind: Deployment\n"
    patches += "metadata:\n  name: api\n"
    result = _apply([web, api], {"patchesStrategicMerge": ["p.yaml"]}, **{"p.yaml": patches})
    assert result == [web]
    assert web.obj["spec"]["replicas"] == 3


def test_smp_with_target_keeps_name_namespace_and_kind() -> None:
    web, api = _deployment("web", "shop", tier="front"), _deployment("api", "shop", tier="back")
    patch = (
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: other\n  namespace: x\n"
        "spec:\n  paused: true\n"
    )
    _apply([web, api], {"patches": [{"target": {"labelSelector": "tier=front"}, "patch": patch}]})
    assert web.obj["metadata"] == {"name": "web", "namespace": "shop", "labels": {"tier": "front"}}
    assert web.obj["kind"] == "Deployment"
    assert web.obj["spec"]["paused"] is True
    assert "paused" not in api.obj["spec"]


def test_options_allow_name_and_kind_change() -> None:
    web = _deployment("web")
    patch = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: web2\n"
    _apply(
        [web],
        {
            "patches": [
                {
                    "target": {"name": "web"},
                    "patch": patch,
                    "options": {"allowNameChange": True, "allowKindChange": True},
                }
            ]
        },
    )
    assert (web.name, web.obj["kind"], web.previous_names) == ("web2", "StatefulSet", ["web"])


def test_json_patch_with_target_and_rename() -> None:
    web = _deployment("web")
    ops = (
        "- op: replace\n  path: /metadata/name\n  value: web2\n"
        "- op: add\n  path: /spec/x\n  value: 1\n"
    )
    target = {"kind": "Deployment", "name": "web"}
    _apply([web], {"patches": [{"target": target, "path": "ops.yaml"}]}, **{"ops.yaml": ops})
    assert web.name == "web2"
    assert web.previous_names == ["web"]
    assert web.obj["spec"]["x"] == 1
    # patchesJson6902 renames without remembering the old name, as kustomize does.
    api = _deployment("api")
    _apply([api], {"patchesJson6902": [{"target": {"name": "api"}, "patch": ops}]})
    assert (api.name, api.previous_names) == ("web2", [])


def test_inline_json_patch_in_patches_and_unmatched_target() -> None:
    web = _deployment("web")
    patch = '[{"op": "replace", "path": "/spec/replicas", "value": 5}]'
    _apply(
        [web],
        {
            "patches": [
                {"target": {"kind": "Deployment"}, "patch": patch},
                {"target": {"kind": "Nothing"}, "patch": patch},
            ]
        },
    )
    assert web.obj["spec"]["replicas"] == 5


@pytest.mark.parametrize(
    ("kustomization", "message"),
    [
        ({"patches": [{"patch": "- op: remove\n  path: /spec\n"}]}, "needs a target"),
        ({"patches": [{"path": "x", "patch": "a: b"}]}, "can't be set at the same time"),
        ({"patches": [{"target": {"kind": "Deployment"}}]}, "must specify one of patch and path"),
        ({"patches": [{"path": "missing.yaml"}]}, "cannot read the patch file 'missing.yaml'"),
        ({"patches": [{"patch": "a: [b"}]}, "invalid YAML"),
        ({"patches": [{"patch": "- 1\n---\na: b\n"}]}, "unable to parse"),
        ({"patches": [{"patch": "kind: Deployment\n", "target": {}}]}, "needs kind and metadata"),
        ({"patches": [{"patch": SMP_WEB, "target": {"nme": "x"}}]}, r"unknown field\(s\) nme"),
        ({"patches": [{"patch": SMP_WEB, "target": {"name": "("}}]}, "not a valid regular"),
        ({"patches": [{"patch": SMP_WEB, "extra": 1}]}, r"unknown field\(s\) extra"),
        (
            {"patchesJson6902": [{"target": {"kind": "Deployment"}, "patch": "[]"}]},
            "must name the resource",
        ),
        (
            {
                "patches": [
                    {"target": {"kind": "Deployment"}, "patch": '[{"op": "remove", "path": "/x"}]'}
                ]
            },
            r"JSON patch operation 0 \(remove /x\) failed",
        ),
    ],
)
def test_errors_name_the_kustomization_and_field(
    kustomization: dict[str, Any], message: str
) -> None:
    with pytest.raises(KustomizeError, match=message) as failure:
        _apply([_deployment("web")], kustomization)
    assert "in kustomization.yaml" in str(failure.value)


# --- selectors ----------------------------------------------------------------------------


def _select(target: dict[str, Any], resources: list[Resource]) -> list[str]:
    selector = Selector.from_config(target, file="k.yaml", field="target")
    return [resource.name for resource in selector.select(resources)]


def test_selector_regexes_are_anchored() -> None:
    resources = [_deployment("web"), _deployment("web2"), _deployment("api")]
    assert _select({"name": "web"}, resources) == ["web"]
    assert _select({"name": "web.*"}, resources) == ["web", "web2"]
    assert _select({"name": "eb"}, resources) == []
    assert _select({"name": "web|api"}, resources) == ["web", "api"]


def test_selector_gvk_namespace_and_original_name() -> None:
    web, api = _deployment("web"), _deployment("api", "prod")
    api.rename("x-api")
    resources = [web, api]
    assert _select({"namespace": "default"}, resources) == ["web"]
    assert _select({"namespace": "prod"}, resources) == ["x-api"]
    assert _select({"name": "api"}, resources) == ["x-api"]
    assert _select({"group": "apps", "version": "v1", "kind": "Deployment"}, resources) == [
        "web",
        "x-api",
    ]
    assert _select({"kind": "Deploy"}, resources) == []
    assert _select({"kind": "Deploy.*", "version": "v[0-9]+"}, resources) == ["web", "x-api"]
    namespace_obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}
    namespace = Resource(obj=namespace_obj, origin="x")
    assert _select({"namespace": "default"}, [namespace]) == []
    assert _select({"namespace": "_non_namespaceable_"}, [namespace]) == ["n"]


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("", {}, True),
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "c"}, False),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("a in (x, y),b", {"a": "y", "b": ""}, True),
        ("a notin (x,y)", {"a": "x"}, False),
        ("a notin (x,y)", {}, True),
        ("!a", {"a": "1"}, False),
        ("!a,b", {"b": "1"}, True),
        ("a>3", {"a": "4"}, True),
        ("a<3", {"a": "4"}, False),
        ("example.com/tier=front", {"example.com/tier": "front"}, True),
        ("a=", {"a": ""}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(selector)(labels) is expected


@pytest.mark.parametrize("selector", ["a in x", "a in (x", "=b", "a=b,,", "a b", "a>x", "-a=b"])
def test_bad_label_selectors(selector: str) -> None:
    with pytest.raises(ValueError, match="label selector"):
        parse_label_selector(selector)
