"""Kustomize fieldSpec paths: kind filters, list traversal, create, escaped slashes."""

from __future__ import annotations

from typing import Any

from fluxd.kustomize._fieldspec import FieldSpec, split_path, visit


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "redis"}]
                }
            }
        },
    }


def test_lists_are_traversed_and_every_leaf_is_visited() -> None:
    obj = deployment()
    count = visit(obj, FieldSpec("spec/template/spec/containers/image"), str.upper)
    assert count == 2
    images = [c["image"] for c in obj["spec"]["template"]["spec"]["containers"]]
    assert images == ["NGINX", "REDIS"]


def test_kind_and_group_filters() -> None:
    obj = deployment()
    assert visit(obj, FieldSpec("metadata/name", kind="Service"), str.upper) == 0
    assert visit(obj, FieldSpec("metadata/name", group="batch"), str.upper) == 0
    assert visit(obj, FieldSpec("metadata/name", kind="Deployment", group="apps"), str.upper) == 1
    assert obj["metadata"]["name"] == "WEB"


def test_create_builds_missing_maps_only_when_asked() -> None:
    obj = deployment()
    spec = FieldSpec("spec/selector/matchLabels", create=False)
    assert visit(obj, spec, lambda labels: {**labels, "app": "web"}) == 0
    assert "selector" not in obj["spec"]
    created = FieldSpec("spec/selector/matchLabels", create=True)
    assert visit(obj, created, lambda labels: {**labels, "app": "web"}) == 1
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "web"}}


def test_escaped_slash_stays_in_the_key() -> None:
    assert split_path(r"metadata/annotations/config.kubernetes.io\/index") == [
        "metadata",
        "annotations",
        "config.kubernetes.io/index",
    ]
