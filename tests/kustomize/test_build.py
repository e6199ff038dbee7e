"""The build engine end to end: the public API, the order of stages, the refusals.

Byte-for-byte agreement with ``kubectl kustomize`` is proven by the conformance cases
(``cases/build-*``); these tests pin what the cases cannot show: the files-map API,
the generated kustomization, overlays, errors that name where they happened, and the
transformer details one case at a time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from fluxd.kustomize import (
    KustomizeError,
    Overlay,
    build,
    build_directory,
    is_directory,
    read_directory,
    render,
)
from fluxd.kustomize._builtins import apply_namespace, apply_prefix, is_cluster_scoped
from fluxd.kustomize._model import Resource
from fluxd.kustomize._order import sort_resources


def _cm(name: str, namespace: str = "") -> bytes:
    meta = f"  name: {name}\n" + (f"  namespace: {namespace}\n" if namespace else "")
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n{meta}".encode()


def _names(objects: list[dict[str, Any]]) -> list[str]:
    return [obj["metadata"]["name"] for obj in objects]


def test_build_reads_only_the_files_map_and_returns_plain_objects() -> None:
    files = {
        "apps/web/kustomization.yaml": b"resources: [cm.yaml]\nnamePrefix: web-\n",
        "apps/web/cm.yaml": _cm("settings"),
    }
    objects = build(files, "apps/web")
    assert objects == [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-settings"}}
    ]
    assert render(objects) == "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-settings\n"


def test_overlay_may_climb_to_a_base_anywhere_inside_the_artifact() -> None:
    files = {
        "base/kustomization.yaml": b"resources: [cm.yaml]\n",
        "base/cm.yaml": _cm("shared"),
        "clusters/prod/kustomization.yaml": b"resources: [../../base]\nnamespace: prod\n",
    }
    assert build(files, "clusters/prod")[0]["metadata"] == {"name": "shared", "namespace": "prod"}


def test_escaping_the_artifact_names_the_kustomization_and_the_path() -> None:
    files = {"app/kustomization.yaml": b"resources:\n- ../../outside\n"}
    with pytest.raises(KustomizeError) as caught:
        build(files, "app")
    assert "'../../outside' points outside the source artifact root" in str(caught.value)
    assert "app/kustomization.yaml" in str(caught.value)


def test_missing_kustomization_fails_like_kubectl_unless_generating() -> None:
    files = {"manifests/cm.yaml": _cm("a"), "manifests/sub/more.yml": _cm("b")}
    with pytest.raises(
        KustomizeError, match=re.escape("unable to find one of 'kustomization.yaml'")
    ):
        build(files, "manifests")
    assert _names(build(files, "manifests", generate_missing=True)) == ["a", "b"]


def test_generated_kustomization_uses_nested_kustomizations_as_is() -> None:
    files = {
        "cm.yaml": _cm("top"),
        "base/kustomization.yaml": b"resources: [cm.yaml]\nnamePrefix: base-\n",
        "base/cm.yaml": _cm("inner"),
        "base/unlisted.yaml": _cm("never"),
    }
    assert _names(build(files, generate_missing=True)) == ["base-inner", "top"]


def test_cycles_are_reported_with_their_path() -> None:
    files = {
        "a/kustomization.yaml": b"resources: [../b]\n",
        "b/kustomization.yaml": b"resources: [../c]\n",
        "c/kustomization.yaml": b"resources: [../a]\n",
    }
    with pytest.raises(
        KustomizeError, match=re.escape("cycle in kustomizations: a -> b -> c -> a")
    ):
        build(files, "a")


def test_the_same_base_twice_is_a_duplicate_not_a_cycle() -> None:
    files = {
        "base/kustomization.yaml": b"resources: [cm.yaml]\n",
        "base/cm.yaml": _cm("x"),
        "kustomization.yaml": b"resources: [base, base]\n",
    }
    with pytest.raises(
        KustomizeError, match=re.escape("already registered id: ConfigMap.v1.[noGrp]/x")
    ):
        build(files)


def test_default_namespace_and_no_namespace_are_the_same_id() -> None:
    files = {
        "kustomization.yaml": b"resources: [a.yaml, b.yaml]\n",
        "a.yaml": _cm("x"),
        "b.yaml": _cm("x", "default"),
    }
    with pytest.raises(KustomizeError, match="may not add resource with an already registered id"):
        build(files)


def test_components_transform_what_the_parent_gathered_so_far() -> None:
    files = {
        "kustomization.yaml": b"resources: [cm.yaml]\ncomponents: [comp]\n",
        "cm.yaml": _cm("app"),
        "comp/kustomization.yaml": (
            b"apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
            b"resources: [extra.yaml]\nnameSuffix: -c\n"
        ),
        "comp/extra.yaml": _cm("extra"),
    }
    assert _names(build(files)) == ["app-c", "extra-c"]


def test_local_config_objects_are_dropped_and_internal_annotations_stripped() -> None:
    files = {
        "kustomization.yaml": b"resources: [r.yaml]\n",
        "r.yaml": (
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n"
            b"    config.kubernetes.io/local-config: 'true'\n---\n"
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  annotations:\n"
            b"    config.kubernetes.io/index: '0'\n    keep: me\n"
        ),
    }
    assert build(files) == [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "b", "annotations": {"keep": "me"}},
        }
    ]


def test_transformers_field_runs_builtin_configs_after_the_keywords() -> None:
    files = {
        "kustomization.yaml": (
            b"resources: [cm.yaml]\nnamePrefix: kw-\ntransformers:\n- |\n"
            b"  apiVersion: builtin\n  kind: PrefixTransformer\n  metadata: {name: p}\n"
            b"  prefix: cfg-\n  fieldSpecs: [{path: metadata/name}]\n"
        ),
        "cm.yaml": _cm("x"),
    }
    assert _names(build(files)) == ["cfg-kw-x"]


def test_exec_plugins_and_validators_are_refused() -> None:
    plugin = b"apiVersion: example.com/v1\nkind: Sops\nmetadata: {name: s}\n"
    files = {"kustomization.yaml": b"generators: [gen.yaml]\n", "gen.yaml": plugin}
    with pytest.raises(KustomizeError, match="not a kustomize built-in"):
        build(files)
    files = {"kustomization.yaml": b"validators: [v.yaml]\n", "v.yaml": plugin}
    with pytest.raises(KustomizeError, match="validators are exec or Go plugins"):
        build(files)


def test_builtin_generator_configs_generate() -> None:
    files = {
        "kustomization.yaml": b"generators: [gen.yaml]\n",
        "gen.yaml": (
            b"apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: settings}\n"
            b"literals: [A=1]\noptions: {disableNameSuffixHash: true}\n"
        ),
    }
    assert build(files) == [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"A": "1"},
        }
    ]


def test_configurations_extend_the_name_reference_table() -> None:
    files = {
        "kustomization.yaml": b"resources: [r.yaml]\nnamePrefix: p-\nconfigurations: [refs.yaml]\n",
        "refs.yaml": (
            b"nameReference:\n- kind: ConfigMap\n  fieldSpecs:\n"
            b"  - {path: spec/configName, kind: Widget}\n"
        ),
        "r.yaml": _cm("conf")
        + b"---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
        + b"spec: {configName: conf}\n",
    }
    widget = next(obj for obj in build(files) if obj["kind"] == "Widget")
    assert widget["spec"]["configName"] == "p-conf"


def test_sort_options_are_validated() -> None:
    files = {"kustomization.yaml": b"sortOptions: {order: random}\n"}
    with pytest.raises(KustomizeError, match=r"must be one of \[fifo, legacy\]"):
        build(files)


def test_legacy_order_compares_namespace_and_name_as_one_string() -> None:
    def resource(namespace: str, name: str) -> Resource:
        return Resource(obj=_obj("ConfigMap", name, namespace), origin="t")

    ordered = sort_resources([resource("a", "x"), resource("a-b", "x"), resource("", "a")])
    assert [(r.obj["metadata"].get("namespace", ""), r.name) for r in ordered] == [
        ("a-b", "x"),
        ("a", "x"),
        ("", "a"),
    ]


def _obj(kind: str, name: str, namespace: str = "", api_version: str = "v1") -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


def test_namespace_transformer_details() -> None:
    resources = [
        Resource(obj=_obj("Namespace", "old"), origin="t"),
        Resource(
            obj=_obj("ClusterRole", "cr", api_version="rbac.authorization.k8s.io/v1"), origin="t"
        ),
        Resource(obj=_obj("ConfigMap", "kept", "mine"), origin="t"),
        Resource(obj=_obj("Widget", "w", api_version="example.com/v1"), origin="t"),
    ]
    apply_namespace(resources, "target", unset_only=True)
    assert resources[0].obj["metadata"] == {"name": "old"}
    assert "namespace" not in resources[1].obj["metadata"]
    assert resources[2].obj["metadata"]["namespace"] == "mine"
    assert resources[3].obj["metadata"]["namespace"] == "target"
    apply_namespace(resources, "moved")
    assert resources[0].obj["metadata"] == {"name": "moved"}
    assert resources[2].obj["metadata"]["namespace"] == "moved"


def test_namespace_transformer_rejects_unknown_subject_modes() -> None:
    with pytest.raises(KustomizeError, match="invalid value 'some' for setRoleBindingSubjects"):
        apply_namespace([], "ns", role_binding_subjects="some")


def test_prefix_skips_kinds_kustomize_never_renames_and_remembers_old_names() -> None:
    crd = Resource(
        obj=_obj(
            "CustomResourceDefinition", "w.example.com", api_version="apiextensions.k8s.io/v1"
        ),
        origin="t",
    )
    cm = Resource(obj=_obj("ConfigMap", "c"), origin="t")
    apply_prefix([crd, cm], "p-")
    assert crd.name == "w.example.com"
    assert cm.name == "p-c"
    assert cm.previous_names == ["c"]


def test_cluster_scope_follows_kustomizes_table() -> None:
    assert is_cluster_scoped({"apiVersion": "v1", "kind": "Namespace"})
    assert is_cluster_scoped({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole"})
    assert not is_cluster_scoped({"apiVersion": "example.com/v1", "kind": "ClusterThing"})
    # Newer than kustomize's Kubernetes 1.21 table: treated as namespaced, as kustomize does.
    assert not is_cluster_scoped(
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy"}
    )


def test_build_directory_reads_a_tree_and_follows_inner_symlinks(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "cm.yaml").write_bytes(_cm("linked"))
    (tmp_path / "kustomization.yaml").write_bytes(b"resources: [cm.yaml]\n")
    os.symlink(tmp_path / "base" / "cm.yaml", tmp_path / "cm.yaml")
    assert _names(build_directory(tmp_path)) == ["linked"]


def test_build_directory_refuses_symlinks_leaving_the_tree(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_bytes(_cm("secret"))
    root = tmp_path / "repo"
    root.mkdir()
    (root / "kustomization.yaml").write_bytes(b"resources: [cm.yaml]\n")
    os.symlink(outside, root / "cm.yaml")
    with pytest.raises(KustomizeError, match=re.escape("symlink 'cm.yaml' points outside")):
        read_directory(root)


def test_build_directory_survives_symlink_loops(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_bytes(b"resources: [cm.yaml]\n")
    (tmp_path / "cm.yaml").write_bytes(_cm("x"))
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path, tmp_path / "sub" / "loop")
    assert _names(build_directory(tmp_path)) == ["x"]


def test_an_overlay_edits_the_top_kustomization() -> None:
    files = {
        "app/kustomization.yaml": (
            b"resources: [deploy.yaml]\nnamespace: from-file\n"
            b"images:\n- {name: nginx, newTag: '1.0'}\n- {name: redis, newTag: '6'}\n"
        ),
        "app/deploy.yaml": (
            b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
            b"  template:\n    spec:\n      containers:\n"
            b"      - {name: web, image: nginx}\n      - {name: cache, image: redis}\n"
        ),
        "comp/kustomization.yaml": (
            b"apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
            b"commonAnnotations: {component: 'yes'}\n"
        ),
    }
    overlay = Overlay(
        namespace="overlay-target",
        name_prefix="f-",
        images=[{"name": "nginx", "newTag": "2.0"}],
        components=["../comp"],
    )
    (deployment,) = build(files, "app", overlay=overlay)
    assert deployment["metadata"] == {
        "name": "f-web",
        "namespace": "overlay-target",
        "annotations": {"component": "yes"},
    }
    images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert images == ["nginx:2.0", "redis:6"]


def test_overlay_components_must_exist() -> None:
    files = {"kustomization.yaml": b"resources: []\n"}
    with pytest.raises(KustomizeError, match="component 'gone' not found"):
        build(files, overlay=Overlay(components=["gone"]))


def test_overlay_patch_errors_name_the_overlay_entry_without_a_file() -> None:
    files = {"kustomization.yaml": b"resources: [cm.yaml]\n", "cm.yaml": _cm("c")}
    broken = {"patch": "kind: ConfigMap\nmetadata: [oops\n"}
    with pytest.raises(KustomizeError) as caught:
        build(files, overlay=Overlay(patches=[broken], name="spec"))
    assert "(field spec.patches[0])" in str(caught.value)
    assert "kustomization.yaml" not in str(caught.value)


def test_empty_kustomization_and_wrong_types_fail_like_kustomize() -> None:
    with pytest.raises(KustomizeError, match=re.escape("kustomization.yaml is empty")):
        build({"kustomization.yaml": b"# nothing\n"})
    with pytest.raises(
        KustomizeError,
        match=re.escape("cannot unmarshal number into Go struct field Kustomization.commonLabels"),
    ):
        build({"kustomization.yaml": b"commonLabels: {a: 1}\n"})


def test_build_path_is_relative_to_the_artifact_root() -> None:
    files = {
        "deploy/kustomization.yaml": b"resources: [../shared/cm.yaml]\n",
        "shared/cm.yaml": _cm("s"),
    }
    # Files above the kustomization (but inside the artifact) load, as in Flux.
    assert _names(build(files, "/deploy")) == ["s"]
    assert _names(build(files, "./deploy/")) == ["s"]
    with pytest.raises(KustomizeError, match="path 'nowhere' is not a directory"):
        build(files, "nowhere")
    with pytest.raises(KustomizeError, match="points outside the source artifact root"):
        build(files, "../up")


def test_an_overlay_rewrites_the_top_file_dropping_unknown_fields() -> None:
    files = {
        "kustomization.yaml": b"resources: [cm.yaml]\nnamePrefx: typo-\nimageTags: []\n",
        "cm.yaml": _cm("c"),
        "base/kustomization.yaml": b"resourcez: []\n",
    }
    with pytest.raises(KustomizeError, match='unknown field "namePrefx"'):
        build(files)
    assert _names(build(files, overlay=Overlay())) == ["c"]
    # Only the top file is rewritten; kustomize still reads the others strictly.
    files["kustomization.yaml"] = b"resources: [base]\n"
    with pytest.raises(KustomizeError, match='unknown field "resourcez"'):
        build(files, overlay=Overlay())


def test_is_directory_reads_the_path_as_a_build_does() -> None:
    files = {"app/cm.yaml": _cm("c")}
    assert [is_directory(files, path) for path in ("app", "/app/", ".")] == [True] * 3
    assert not is_directory(files, "app/cm.yaml")
    with pytest.raises(KustomizeError, match="points outside the source artifact root"):
        is_directory(files, "../up")


def test_name_affixes_only_change_scalar_fields() -> None:
    files = {
        "kustomization.yaml": b"resources: [g.yaml]\nnameSuffix: -s\nconfigurations: [c.yaml]\n",
        "c.yaml": b"nameSuffix:\n- {path: spec/aliases, kind: Gadget}\n",
        "g.yaml": b"apiVersion: x/v1\nkind: Gadget\nmetadata: {name: g}\nspec: {aliases: [a, b]}\n",
    }
    with pytest.raises(KustomizeError, match="expected ScalarNode but got SequenceNode"):
        build(files)
