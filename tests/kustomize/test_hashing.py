"""The content-hash name suffix: every expectation is a suffix kubectl kustomize v5.7.1 printed."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from fluxd.kustomize._hashing import content_hash
from tests.kustomize.oracle import kustomize_oracle


def _cm(data: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    if data is not None:
        obj["data"] = data
    return {**obj, **extra}


def _secret(data: dict[str, str] | None, type_: str = "Opaque", **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}
    if data is not None:
        obj["data"] = data
    return {**obj, "type": type_, **extra}


@pytest.mark.parametrize(
    ("obj", "suffix"),
    [
        pytest.param(_cm({"a": "1", "b": "2"}), "7gdc49gk6d", id="literals"),
        pytest.param(_cm(), "6ct58987ht", id="configmap-without-data"),
        pytest.param(_cm(binaryData={"b.bin": "//4="}), "9ghc4tgkt6", id="binary-only"),
        pytest.param(
            _cm(
                {
                    "A": "1",
                    "B ": " 2 ",
                    "C": "",
                    "D": '"q"',
                    "f.txt": "hello\nworld\n",
                    "k2": "hello\nworld\n",
                    "x": "1",
                    "y": "two",
                    "z": "",
                },
                binaryData={"bin.dat": "AAH//g=="},
                immutable=True,
            ),
            "cfmt5mc2tt",
            id="text-binary-and-immutable",
        ),
        pytest.param(
            _cm({"A": "1", "B C": "2", "a.b-c": "3", "foo bar": ""}), "6465h5ftgk", id="odd-keys"
        ),
        pytest.param(
            _cm(
                {
                    "ctl.txt": "a\bb\fc\x01d\x7fe\u2028f",
                    "h": "<a href='x'>&</a>",
                    "q": 'say "hi" \\ back',
                    "u": "grüße ✓ 🚀",
                }
            ),
            "92ct4g84tm",
            id="go-json-escapes",
        ),
        pytest.param(
            _secret(
                {"bin.dat": "AAH//g==", "tls.crt": "YWJj", "tls.key": "ZGVm"}, "kubernetes.io/tls"
            ),
            "99g288t7t5",
            id="secret-typed",
        ),
        pytest.param(_secret({"a": "MQ=="}), "25khgmg44c", id="secret-opaque"),
        pytest.param(_secret({"k": "dg=="}), "ftgtgc4t9f", id="secret-type-counts-opaque"),
        pytest.param(
            _secret({"k": "dg=="}, "kubernetes.io/tls"), "8d9db26b4d", id="secret-type-counts-tls"
        ),
        pytest.param(_secret({}), "46f8b28mk5", id="secret-empty-data"),
        pytest.param(_secret(None), "8226t8dd99", id="secret-without-data"),
    ],
)
def test_suffix_matches_kustomize(obj: dict[str, Any], suffix: str) -> None:
    assert content_hash(obj) == suffix


def test_name_namespace_labels_and_annotations_do_not_count() -> None:
    plain = _cm({"a": "1", "b": "2"})
    decorated = _cm({"a": "1", "b": "2"})
    decorated["metadata"] = {
        "name": "prefix-other-suffix",
        "namespace": "ns",
        "labels": {"l": "v"},
        "annotations": {"a": "v"},
    }
    assert content_hash(plain) == content_hash(decorated) == "7gdc49gk6d"


def test_suffix_never_looks_like_a_number() -> None:
    suffix = content_hash(_cm({"k": "v"}))
    assert len(suffix) == 10
    assert not set(suffix) & set("013ae")


def test_every_suffix_the_oracle_prints_is_the_hash_of_what_it_prints(tmp_path: Path) -> None:
    """A live cross-check: rebuild the hash from kubectl's own output objects."""
    (tmp_path / "data.bin").write_bytes(bytes(range(256)) * 3)
    (tmp_path / "notes.txt").write_text("héllo <world> & more\r\n" * 8, encoding="utf-8")
    (tmp_path / "kustomization.yaml").write_text(
        "configMapGenerator:\n"
        "- name: text\n"
        "  literals: ['a=1', 'b=<&>', 'c=\"quoted\"']\n"
        "  files: [notes.txt]\n"
        "- name: binary\n"
        "  files: [data.bin, notes.txt]\n"
        "secretGenerator:\n"
        "- name: wrapped\n"
        "  type: example.com/custom\n"
        "  files: [data.bin, notes.txt]\n"
        "  literals: [short=1]\n",
        encoding="utf-8",
    )
    code, stdout, stderr = kustomize_oracle(tmp_path)
    assert code == 0, stderr
    objects = list(YAML(typ="safe").load_all(stdout))
    assert len(objects) == 3
    for obj in objects:
        name = obj["metadata"]["name"]
        assert name.endswith("-" + content_hash(obj)), name
    wrapped = next(obj for obj in objects if obj["kind"] == "Secret")
    # Long base64 is what kustomize hashes: 70-character lines, newline-terminated.
    assert base64.b64decode(wrapped["data"]["data.bin"]) == bytes(range(256)) * 3
    assert wrapped["data"]["data.bin"].endswith("\n")


def test_other_kinds_have_no_content_hash() -> None:
    with pytest.raises(ValueError, match="not a Deployment"):
        content_hash({"apiVersion": "apps/v1", "kind": "Deployment"})
