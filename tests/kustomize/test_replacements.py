"""``replacements:`` and the kyaml path syntax: expectations checked against kubectl
kustomize v5.7.1 on the same objects."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fluxd.kustomize._kpath import split
from fluxd.kustomize._model import KustomizeError, Resource
from fluxd.kustomize._replacements import apply_replacements

SOURCE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "src", "namespace": "ns1", "labels": {"app": "a"}},
    "data": {
        "img": "reg.io/app:v1.2",
        "host": "a.b.c",
        "port": "8080",
        "num": 42,
        "map": {"a": "b"},
    },
}


def _deployment(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": app}, "annotations": {"skip": "no"}},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "x"},
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.0",
                            "args": ["a", "b", "c"],
                            "ports": [{"containerPort": 80}],
                            "env": [{"name": "PORT", "value": "1"}],
                        },
                        {"name": "myapp", "image": "foo", "args": ["x", "y"]},
                    ]
                }
            },
        },
    }


def _resources() -> list[Resource]:
    return [
        Resource(obj=copy.deepcopy(SOURCE), origin="test"),
        Resource(obj=_deployment("d", "a"), origin="test"),
        Resource(obj=_deployment("e", "b"), origin="test"),
    ]


def _apply(
    resources: list[Resource], *replacements: dict[str, Any], files: dict[str, bytes] | None = None
) -> None:
    apply_replacements(
        resources,
        list(replacements),
        read_file=lambda path: (files or {})[path],
        kustomization_file="kustomization.yaml",
    )


def _containers(resource: Resource) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = resource.obj["spec"]["template"]["spec"]["containers"]
    return containers


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        (
            "spec.template.spec.containers.[name=app].image",
            ["spec", "template", "spec", "containers", "[name=app]", "image"],
        ),
        (
            "spec.containers.[name=com.foo.app].image",
            ["spec", "containers", "[name=com.foo.app]", "image"],
        ),
        ("metadata.annotations.[a.b/c]", ["metadata", "annotations", "a.b/c"]),
        ("data.a\\.b", ["data", "a.b"]),
        ("/a/b", ["/a/b"]),
        ("spec.ports.0.port", ["spec", "ports", "0", "port"]),
    ],
)
def test_split(path: str, parts: list[str]) -> None:
    assert split(path) == parts


def test_scalar_targets_keep_their_type_and_regex_elements_are_unanchored() -> None:
    resources = _resources()
    _apply(
        resources,
        {
            "source": {"kind": "ConfigMap", "name": "src", "fieldPath": "data.port"},
            "targets": [
                {
                    "select": {"kind": "Deployment", "name": "d"},
                    "fieldPaths": [
                        "spec.template.spec.containers.[name=app].ports.0.containerPort",
                        "spec.template.spec.containers.[name=app].env.[name=PORT].value",
                        "spec.template.spec.containers.[name=ap].image",
                        "spec.replicas",
                        "spec.template.spec.containers.*.args.1",
                    ],
                }
            ],
        },
        {
            "source": {"kind": "ConfigMap", "name": "src", "fieldPath": "data.num"},
            "targets": [{"select": {"name": "d"}, "fieldPaths": ["metadata.labels.app"]}],
        },
        {
            "source": {"kind": "ConfigMap", "name": "src", "fieldPath": "data.map"},
            "targets": [
                {
                    "select": {"name": "d"},
                    "fieldPaths": ["metadata.annotations.skip", "spec.strategy"],
                }
            ],
        },
    )
    d = resources[1].obj
    app, myapp = _containers(resources[1])
    assert app["ports"] == [{"containerPort": 8080}]
    assert app["env"] == [{"name": "PORT", "value": "8080"}]
    assert (app["image"], myapp["image"]) == ("8080", "8080")
    assert (app["args"], myapp["args"]) == (["a", "8080", "c"], ["x", "8080"])
    assert d["spec"]["replicas"] == 8080
    assert d["metadata"]["labels"]["app"] == "42"
    # a map into a scalar leaves an empty string; into a map it replaces the map
    assert d["metadata"]["annotations"]["skip"] == ""
    assert d["spec"]["strategy"] == {"a": "b"}
    assert resources[2].obj == _deployment("e", "b")


def test_delimiters_selectors_rejects_and_create() -> None:
    resources = _resources()
    _apply(
        resources,
        {
            "source": {
                "kind": "ConfigMap",
                "name": "src",
                "fieldPath": "data.img",
                "options": {"delimiter": ":", "index": 1},
            },
            "targets": [
                {
                    "select": {"kind": "Deployment"},
                    "reject": [{"name": "e"}],
                    "fieldPaths": ["spec.template.spec.containers.[name=app].image"],
                    "options": {"delimiter": ":", "index": 1},
                },
                {
                    "select": {"kind": "Deployment", "labelSelector": "app=b"},
                    "fieldPaths": ["spec.template.spec.containers.[name=app].image"],
                    "options": {"delimiter": ":", "index": 5},
                },
                {
                    "select": {"kind": "Deployment"},
                    "reject": [{"labelSelector": "app=b"}],
                    "fieldPaths": ["metadata.annotations.pre"],
                    "options": {"create": True, "delimiter": "-", "index": -1},
                },
                {
                    "select": {"name": "d"},
                    "fieldPaths": [
                        "spec.template.spec.containers.[name=side].image",
                        "spec.l.[name=z].v",
                        "spec.m.[=q]",
                    ],
                    "options": {"create": True},
                },
            ],
        },
    )
    d, e = resources[1].obj, resources[2].obj
    assert _containers(resources[1])[0]["image"] == "nginx:v1.2"
    assert _containers(resources[2])[0]["image"] == "nginx:1.0:v1.2"
    assert d["metadata"]["annotations"]["pre"] == "v1.2-"
    assert "pre" not in e["metadata"]["annotations"]
    assert _containers(resources[1])[2] == {"name": "side", "image": "v1.2"}
    assert d["spec"]["l"] == [{"name": "z", "v": "v1.2"}]
    assert d["spec"]["m"] == ["v1.2"]


def test_created_scalars_take_the_type_their_text_reads_as() -> None:
    resources = _resources()
    _apply(
        resources,
        {
            "source": {"name": "src", "fieldPath": "data.port"},
            "targets": [
                {"select": {"name": "d"}, "fieldPaths": ["data.c1"], "options": {"create": True}}
            ],
        },
        {
            "sourceValue": "true",
            "targets": [
                {"select": {"name": "d"}, "fieldPaths": ["data.c2"], "options": {"create": True}}
            ],
        },
        {
            "source": {"name": "src", "fieldPath": "data.map"},
            "targets": [
                {"select": {"name": "d"}, "fieldPaths": ["data.c3"], "options": {"create": True}}
            ],
        },
    )
    assert resources[1].obj["data"] == {"c1": 8080, "c2": True, "c3": {"a": "b"}}


def test_selection_uses_earlier_names_and_rejects_any_identity() -> None:
    resources = [
        Resource(
            obj={
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "a"},
                "data": {"x": "1"},
            },
            origin="t",
        )
    ]
    resources[0].rename("p-a")
    _apply(
        resources,
        {
            "sourceValue": "v1",
            "targets": [
                {
                    "select": {"name": "p-a"},
                    "reject": [{"name": "a"}],
                    "fieldPaths": ["data.r1"],
                    "options": {"create": True},
                }
            ],
        },
        {
            "sourceValue": "v2",
            "targets": [
                {
                    "select": {"name": "a", "namespace": "default"},
                    "fieldPaths": ["data.r2"],
                    "options": {"create": True},
                }
            ],
        },
        {
            "source": {"name": "a"},
            "targets": [
                {"select": {"name": "a"}, "fieldPaths": ["data.r3"], "options": {"create": True}}
            ],
        },
    )
    assert resources[0].obj["data"] == {"x": "1", "r2": "v2", "r3": "p-a"}


def test_selectors_are_not_regular_expressions() -> None:
    resources = _resources()
    _apply(
        resources,
        {
            "sourceValue": "v",
            "targets": [
                {"select": {"name": "d.*"}, "fieldPaths": ["spec.x"], "options": {"create": True}}
            ],
        },
    )
    assert "x" not in resources[1].obj["spec"]


def test_label_selector_set_operators() -> None:
    resources = _resources()
    _apply(
        resources,
        {
            "sourceValue": "v",
            "targets": [
                {
                    "select": {"labelSelector": "app in (a, b)"},
                    "fieldPaths": ["metadata.annotations.h"],
                    "options": {"create": True},
                },
                {
                    "select": {"labelSelector": "app notin (a)", "kind": "Deployment"},
                    "fieldPaths": ["metadata.annotations.n"],
                    "options": {"create": True},
                },
                {
                    "select": {"labelSelector": "!app"},
                    "fieldPaths": ["metadata.annotations.t"],
                    "options": {"create": True},
                },
            ],
        },
    )
    src, d, e = (r.obj["metadata"].get("annotations", {}) for r in resources)
    assert src == {"h": "v"}
    assert d == {"skip": "no", "h": "v"}
    assert e == {"skip": "no", "h": "v", "n": "v"}


def test_replacements_from_a_file_list_or_single() -> None:
    files = {
        "list.yaml": b"- sourceValue: x\n  targets:\n  - select: {name: d}\n"
        b"    fieldPaths: [metadata.annotations.l]\n    options: {create: true}\n",
        "one.yaml": b"sourceValue: y\ntargets:\n- select: {name: d}\n"
        b"  fieldPaths: [metadata.annotations.o]\n  options: {create: true}\n",
    }
    resources = _resources()
    _apply(resources, {"path": "list.yaml"}, {"path": "one.yaml"}, files=files)
    assert resources[1].obj["metadata"]["annotations"] == {"skip": "no", "l": "x", "o": "y"}


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        (
            {
                "source": {"kind": "ConfigMap", "name": "nope"},
                "targets": [{"select": {"kind": "Deployment"}}],
            },
            "nothing selected by ConfigMap.[noVer].[noGrp]/nope.[noNs]",
        ),
        (
            {
                "source": {
                    "kind": "Service",
                    "name": "api",
                    "namespace": "shop",
                    "fieldPath": "spec.ports",
                },
                "targets": [{"select": {"kind": "Deployment"}}],
            },
            "nothing selected by Service.[noVer].[noGrp]/api.shop:spec.ports",
        ),
        (
            {"source": {"kind": "Deployment"}, "targets": [{"select": {"kind": "Deployment"}}]},
            "multiple matches for selector Deployment.[noVer].[noGrp]/[noName].[noNs]",
        ),
        (
            {
                "source": {"kind": "ConfigMap", "fieldPath": "data.nope"},
                "targets": [{"select": {"kind": "Deployment"}}],
            },
            "fieldPath `data.nope` is missing for replacement source "
            "ConfigMap.[noVer].[noGrp]/[noName].[noNs]",
        ),
        (
            {
                "source": {
                    "kind": "ConfigMap",
                    "fieldPath": "data.host",
                    "options": {"delimiter": ".", "index": 3},
                },
                "targets": [{"select": {"kind": "Deployment"}}],
            },
            "options.index 3 is out of bounds for value a.b.c",
        ),
        (
            {
                "source": {
                    "kind": "ConfigMap",
                    "fieldPath": "metadata.labels",
                    "options": {"delimiter": "."},
                },
                "targets": [{"select": {"kind": "Deployment"}}],
            },
            "delimiter option can only be used with scalar nodes",
        ),
        (
            {
                "source": {"kind": "ConfigMap", "fieldPath": "data.host"},
                "targets": [{"select": {"kind": "Deployment"}, "fieldPaths": ["spec.nothere.x"]}],
            },
            'unable to find field "spec.nothere.x" in replacement target',
        ),
        (
            {
                "source": {"kind": "ConfigMap", "fieldPath": "data.host"},
                "targets": [
                    {
                        "select": {"kind": "Deployment"},
                        "fieldPaths": ["spec.*.x"],
                        "options": {"create": True},
                    }
                ],
            },
            'unable to find or create field "spec.*.x" in replacement target: wrong node kind: '
            "expected SequenceNode but got MappingNode",
        ),
        (
            {
                "source": {"kind": "ConfigMap", "fieldPath": "data.host"},
                "targets": [
                    {
                        "select": {"kind": "Deployment"},
                        "fieldPaths": ["spec.tls.5.hosts"],
                        "options": {"create": True},
                    }
                ],
            },
            "index 5 specified but only 0 elements found",
        ),
        (
            {
                "source": {"kind": "ConfigMap", "fieldPath": "data.host"},
                "targets": [{"select": {"name": "d"}, "fieldPaths": ["spec.replicas"]}],
            },
            "cannot decode !!str `a.b.c` as a !!int",
        ),
        (
            {"source": {"kind": "ConfigMap"}},
            "replacements must specify a source and at least one target",
        ),
        ({"targets": []}, "replacements must specify a source and at least one target"),
        (
            {"source": {"kind": "ConfigMap"}, "sourceValue": "x", "targets": []},
            "value and resource selectors are mutually exclusive",
        ),
        (
            {"source": {"kind": "ConfigMap"}, "targets": [{"fieldPaths": ["a"]}]},
            "target must specify resources to select",
        ),
        (
            {"path": "list.yaml", "source": {"kind": "ConfigMap"}},
            "cannot specify both path and inline replacement",
        ),
    ],
)
def test_errors(replacement: dict[str, Any], message: str) -> None:
    with pytest.raises(KustomizeError) as caught:
        _apply(_resources(), replacement)
    assert message in str(caught.value)


def test_source_lookup_compares_elements_exactly_and_supports_last_index() -> None:
    from fluxd.kustomize._kpath import PathError, lookup

    obj = {"spec": {"containers": [{"name": "app", "image": "a"}, {"name": "myapp", "image": "b"}]}}
    assert lookup(obj, "spec.containers.[name=myapp].image") == "b"
    assert lookup(obj, "spec.containers.[name=app].image") == "a"
    assert lookup(obj, "spec.containers.-.image") == "b"
    assert lookup(obj, "spec.containers.5.image") is None
    with pytest.raises(PathError, match="array index -1 cannot be negative"):
        lookup(obj, "spec.containers.-1.image")
    with pytest.raises(PathError, match="expected MappingNode but got SequenceNode"):
        lookup(obj, "spec.containers.image")
