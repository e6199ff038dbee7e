"""``images:``: each expectation below is what kubectl kustomize v5.7.1 printed for the same
objects (checked against the oracle while writing them)."""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.kustomize._images import apply_images, split_image
from fluxd.kustomize._model import KustomizeError, Resource


def _pod(*images: str, kind: str = "Pod") -> Resource:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return Resource(
        obj={
            "apiVersion": "v1",
            "kind": kind,
            "metadata": {"name": "p"},
            "spec": {"containers": containers},
        },
        origin="test",
    )


def _images(resource: Resource) -> list[Any]:
    return [c.get("image") for c in resource.obj["spec"]["containers"]]


def _apply(resource: Resource, *entries: dict[str, Any]) -> list[Any]:
    apply_images([resource], list(entries), kustomization_file="kustomization.yaml")
    return _images(resource)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx", ("nginx", "", "")),
        ("nginx:1.2", ("nginx", "1.2", "")),
        ("nginx@sha256:abc", ("nginx", "", "sha256:abc")),
        ("nginx:1.2@sha256:abc", ("nginx", "1.2", "sha256:abc")),
        ("localhost:5000/app", ("localhost:5000/app", "", "")),
        ("localhost:5000/app:v1", ("localhost:5000/app", "v1", "")),
        ("localhost:5000/app@sha256:x", ("localhost:5000/app", "", "sha256:x")),
    ],
)
def test_split_image(image: str, expected: tuple[str, str, str]) -> None:
    assert split_image(image) == expected


def test_tag_digest_and_name_precedence() -> None:
    pod = _pod(
        "nginx",
        "nginx-foo:1",
        "localhost:5000/nginx:2",
        "docker.io/library/nginx:3@sha256:bbb",
        "nginx:1.2.3@sha256:ccc",
    )
    assert _apply(pod, {"name": "nginx", "newTag": "9"}) == [
        "nginx:9",
        "nginx-foo:1",
        "localhost:5000/nginx:2",
        "docker.io/library/nginx:3@sha256:bbb",
        "nginx:9",
    ]
    assert _apply(pod, {"name": "docker.io/library/nginx", "digest": "sha256:fff"})[3] == (
        "docker.io/library/nginx@sha256:fff"
    )
    assert _apply(pod, {"name": "localhost:5000/nginx", "newName": "other", "newTag": "x"})[2] == (
        "other:x"
    )


def test_tag_and_digest_together_and_digest_alone() -> None:
    pod = _pod("busybox@sha256:old", "alpine:3.7@sha256:xyz", "postgres@sha256:111")
    assert _apply(
        pod,
        {"name": "busybox", "newTag": "1.2", "digest": "sha256:abc"},
        {"name": "alpine", "digest": "sha256:24a0"},
        {"name": "postgres", "newTag": "v2"},
    ) == ["busybox:1.2@sha256:abc", "alpine@sha256:24a0", "postgres:v2"]


def test_entries_apply_in_order_so_a_rename_can_be_retagged() -> None:
    pod = _pod("ghcr.io/org/app:v1")
    assert _apply(
        pod,
        {"name": "ghcr.io/org/app", "newName": "ghcr.io/org/app2"},
        {"name": "ghcr.io/org/app2", "newTag": "v2"},
    ) == ["ghcr.io/org/app2:v2"]


def test_name_is_a_regular_expression_as_in_kustomize() -> None:
    assert _apply(_pod("ngin:x", "nginx", "nginx-foo"), {"name": "ngin.", "newTag": "r"}) == [
        "ngin:x",
        "nginx:r",
        "nginx-foo",
    ]


def test_tag_suffix_lands_twice_on_containers_once_on_volumes() -> None:
    deployment = Resource(
        obj={
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "a", "image": "nginx:1.0"}],
                        "initContainers": [{"name": "i", "image": "nginx"}],
                        "ephemeralContainers": [{"name": "e", "image": "nginx"}],
                        "volumes": [{"name": "v", "image": {"reference": "nginx:1.0"}}],
                    }
                }
            },
        },
        origin="test",
    )
    apply_images([deployment], [{"name": "nginx", "tagSuffix": "-debug"}], kustomization_file="k")
    spec = deployment.obj["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == "nginx:1.0-debug-debug"
    assert spec["initContainers"][0]["image"] == "nginx:-debug-debug"
    assert spec["ephemeralContainers"][0]["image"] == "nginx"
    assert spec["volumes"][0]["image"]["reference"] == "nginx:1.0-debug"


def test_custom_resources_use_the_legacy_walk_and_crds_are_skipped() -> None:
    custom = Resource(
        obj={
            "apiVersion": "example.com/v1",
            "kind": "Foo",
            "metadata": {"name": "f"},
            "spec": {
                "deep": {"containers": [{"image": "nginx"}, {"name": "noimage"}]},
                "image": "nginx",
                "x": {"initContainers": {"image": "nginx"}},
            },
        },
        origin="test",
    )
    crd = _pod("nginx", kind="CustomResourceDefinition")
    crd.obj["apiVersion"] = "apiextensions.k8s.io/v1"
    apply_images([custom, crd], [{"name": "nginx", "newTag": "2"}], kustomization_file="k")
    assert custom.obj["spec"] == {
        "deep": {"containers": [{"image": "nginx:2"}, {"name": "noimage"}]},
        "image": "nginx",
        "x": {"initContainers": {"image": "nginx"}},
    }
    assert _images(crd) == ["nginx"]


def test_containers_without_image_are_left_alone() -> None:
    pod = _pod("nginx")
    pod.obj["spec"]["containers"].append({"name": "bare"})
    apply_images([pod], [{"name": "nginx", "newTag": "1"}], kustomization_file="k")
    assert pod.obj["spec"]["containers"][1] == {"name": "bare"}


def test_custom_field_specs_extend_the_table() -> None:
    from fluxd.kustomize._fieldspec import FieldSpec
    from fluxd.kustomize._images import IMAGES_SPECS

    job = Resource(
        obj={
            "apiVersion": "x/v1",
            "kind": "Job2",
            "metadata": {"name": "j"},
            "spec": {"runner": "nginx"},
        },
        origin="test",
    )
    apply_images(
        [job],
        [{"name": "nginx", "newTag": "3"}],
        kustomization_file="k",
        field_specs=(*IMAGES_SPECS, FieldSpec("spec/runner", kind="Job2")),
    )
    assert job.obj["spec"]["runner"] == "nginx:3"


def test_non_string_image_fields_fail() -> None:
    pod = _pod("nginx")
    pod.obj["spec"]["containers"][0]["image"] = {"a": "b"}
    with pytest.raises(KustomizeError, match="expected ScalarNode but got MappingNode"):
        apply_images([pod], [{"name": "nginx", "newTag": "1"}], kustomization_file="k")


def test_unquoted_numeric_tag_is_rejected_like_kustomize() -> None:
    with pytest.raises(KustomizeError, match="newTag must be a string"):
        apply_images([_pod("nginx")], [{"name": "nginx", "newTag": 1.5}], kustomization_file="k")
