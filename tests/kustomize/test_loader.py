"""The files map, kustomization files and resource files, read as kustomize reads them."""

from __future__ import annotations

import re

import pytest

from fluxd.kustomize._loader import (
    Files,
    generate_kustomization,
    load_resources,
    looks_remote,
    read_kustomization,
    resolve,
)
from fluxd.kustomize._model import KustomizeError

CONFIGMAP = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n"


def test_files_normalizes_paths_and_knows_directories() -> None:
    files = Files({"./a/b/c.yaml": b"x", "a//d.yaml": b"y", "top.yaml": b"z"})
    assert files.is_file("a/b/c.yaml")
    assert files.is_file("a/d.yaml")
    assert files.is_dir("a")
    assert files.is_dir("a/b")
    assert files.is_dir(".")
    assert not files.is_dir("a/b/c.yaml")
    assert files.children(".") == ["a", "top.yaml"]
    assert files.children("a") == ["b", "d.yaml"]


def test_files_takes_directory_entries_as_directories() -> None:
    files = Files({"empty/": b"", "app/": b"", "app/cm.yaml": b"x"})
    assert files.is_dir("empty")
    assert not files.is_file("app")
    assert files.children(".") == ["app", "empty"]


def test_files_refuses_paths_above_the_root() -> None:
    with pytest.raises(KustomizeError, match="invalid path"):
        Files({"../secret.yaml": b""})


def test_resolve_stays_inside_the_artifact() -> None:
    assert resolve("apps/prod", "../base", kustomization_file="f", field="resources") == (
        "apps/base"
    )
    with pytest.raises(KustomizeError) as caught:
        resolve(
            "apps",
            "../../etc/passwd",
            kustomization_file="apps/kustomization.yaml",
            field="resources",
        )
    message = str(caught.value)
    assert "'../../etc/passwd' points outside the source artifact root" in message
    assert "apps/kustomization.yaml" in message
    with pytest.raises(KustomizeError, match="absolute path"):
        resolve(".", "/etc/passwd", kustomization_file="k", field="resources")


@pytest.mark.parametrize(
    "reference",
    [
        "https://github.com/org/repo//base?ref=v1",
        "github.com/org/repo/base?ref=main",
        "git::https://example.com/repo.git",
        "git@github.com:org/repo.git",
        "ssh://git@example.com/repo",
    ],
)
def test_remote_references_are_recognized(reference: str) -> None:
    assert looks_remote(reference)


@pytest.mark.parametrize("reference", ["base", "../base", "deploy.yaml", "github/base"])
def test_local_references_are_not_remote(reference: str) -> None:
    assert not looks_remote(reference)


@pytest.mark.parametrize("name", ["kustomization.yaml", "kustomization.yml", "Kustomization"])
def test_each_recognized_kustomization_file_name(name: str) -> None:
    files = Files({f"app/{name}": b"namePrefix: x-\n"})
    kustomization = read_kustomization(files, "app")
    assert kustomization is not None
    assert kustomization.file == f"app/{name}"
    assert kustomization.data["namePrefix"] == "x-"


def test_missing_kustomization_is_none_and_two_are_an_error() -> None:
    assert read_kustomization(Files({"a/x.yaml": b""}), "a") is None
    files = Files({"kustomization.yaml": b"{}", "Kustomization": b"{}"})
    with pytest.raises(
        KustomizeError, match=re.escape("Found multiple kustomization files under: .")
    ):
        read_kustomization(files, ".")


def test_unknown_fields_and_wrong_kinds_are_refused() -> None:
    with pytest.raises(KustomizeError, match='json: unknown field "resource"'):
        read_kustomization(Files({"kustomization.yaml": b"resource: []\n"}), ".")
    with pytest.raises(KustomizeError, match="kind should be Kustomization or Component"):
        read_kustomization(Files({"kustomization.yaml": b"kind: Deployment\nnamePrefix: x\n"}), ".")
    wrong_version = b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Component\nnamePrefix: x\n"
    with pytest.raises(KustomizeError, match="apiVersion for Component should be"):
        read_kustomization(Files({"kustomization.yaml": wrong_version}), ".")
    not_a_list = (
        "cannot unmarshal string into Go struct field Kustomization.resources of type []string"
    )
    with pytest.raises(KustomizeError, match=re.escape(not_a_list)):
        read_kustomization(Files({"kustomization.yaml": b"resources: a.yaml\n"}), ".")
    not_a_string = (
        "cannot unmarshal object into Go struct field Kustomization.resources of type string"
    )
    with pytest.raises(KustomizeError, match=re.escape(not_a_string)):
        read_kustomization(Files({"kustomization.yaml": b"resources:\n- {a: 1}\n"}), ".")


def test_deprecated_fields_fold_into_their_successors() -> None:
    text = b"resources: [a.yaml]\nbases: [../base]\nimageTags:\n- name: nginx\n  newTag: '1'\n"
    kustomization = read_kustomization(Files({"k/kustomization.yaml": text}), "k")
    assert kustomization is not None
    assert kustomization.data["resources"] == ["a.yaml", "../base"]
    assert "bases" not in kustomization.data
    assert kustomization.data["images"] == [{"name": "nginx", "newTag": "1"}]


@pytest.mark.parametrize("field", ["helmCharts", "helmChartInflationGenerator"])
def test_helm_fields_are_not_supported_yet(field: str) -> None:
    text = f"{field}:\n- name: podinfo\n".encode()
    with pytest.raises(KustomizeError, match=f"{field} is not supported yet"):
        read_kustomization(Files({"kustomization.yaml": text}), ".")


def test_generated_kustomization_lists_manifests_in_walk_order() -> None:
    files = Files(
        {
            "app/z.yaml": CONFIGMAP % b"z",
            "app/a.yml": CONFIGMAP % b"a",
            "app/notes.txt": b"not yaml",
            "app/nested/deep/b.yaml": CONFIGMAP % b"b",
            "app/nested/c.yaml": CONFIGMAP % b"c",
            "app/overlay/kustomization.yaml": b"resources: [x.yaml]\n",
            "app/overlay/x.yaml": CONFIGMAP % b"x",
            "app/overlay/ignored.yaml": b"this: is not listed\n",
        }
    )
    kustomization = generate_kustomization(files, "app")
    assert kustomization.file == "app/kustomization.yaml"
    # Go's filepath.Walk order: names sorted within each directory, depth first.
    assert kustomization.data["resources"] == [
        "a.yml",
        "nested/c.yaml",
        "nested/deep/b.yaml",
        "overlay",
        "z.yaml",
    ]


def test_generated_kustomization_refuses_yaml_that_is_not_kubernetes() -> None:
    files = Files({"values.yaml": b"replicaCount: 1\n"})
    with pytest.raises(
        KustomizeError, match=re.escape("failed to decode Kubernetes YAML from values.yaml")
    ):
        generate_kustomization(files, ".")


def test_resource_files_unpack_lists_and_check_identity() -> None:
    text = (
        b"apiVersion: v1\nkind: List\nitems:\n"
        b"- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
        b"- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n"
        b"---\n" + CONFIGMAP % b"c"
    )
    resources = load_resources(Files({"r.yaml": text}), "r.yaml")
    assert [(r.obj["kind"], r.name, r.origin) for r in resources] == [
        ("ConfigMap", "a", "r.yaml"),
        ("Secret", "b", "r.yaml"),
        ("ConfigMap", "c", "r.yaml"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "missing metadata.name"),
        (b"apiVersion: v1\nmetadata: {name: x}\n", "missing kind"),
        (b"foo: bar\n", "missing Resource metadata"),
    ],
)
def test_resource_files_refuse_objects_without_identity(text: bytes, message: str) -> None:
    with pytest.raises(KustomizeError, match=message):
        load_resources(Files({"r.yaml": text}), "r.yaml")


@pytest.mark.parametrize(
    "text",
    [b"kind: Kustomization\n", b"apiVersion: kustomize.config.k8s.io/v1beta1\nnamespace: ''\n"],
)
def test_a_kustomization_that_sets_nothing_is_empty(text: bytes) -> None:
    with pytest.raises(KustomizeError, match=re.escape("kustomization.yaml is empty")):
        read_kustomization(Files({"kustomization.yaml": text}), ".")


@pytest.mark.parametrize("text", [b"resources: []\n", b"metadata: {name: x}\n", b"labels: []\n"])
def test_an_empty_list_or_map_is_something(text: bytes) -> None:
    assert read_kustomization(Files({"kustomization.yaml": text}), ".") is not None
