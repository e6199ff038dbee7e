"""configMapGenerator / secretGenerator: expectations checked against kubectl kustomize v5.7.1."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from fluxd.kustomize._envfile import parse_env_file
from fluxd.kustomize._generators import run_generators
from fluxd.kustomize._model import KustomizeError, Resource


def _reader(files: Mapping[str, bytes]) -> Callable[[str], bytes]:
    def read(path: str) -> bytes:
        if path not in files:
            raise KustomizeError(f"file {path!r} not found", file="kustomization.yaml")
        return files[path]

    return read


def _run(
    kustomization: Mapping[str, Any],
    files: Mapping[str, bytes] | None = None,
    resources: list[Resource] | None = None,
) -> list[Resource]:
    return run_generators(
        resources or [],
        kustomization,
        read_file=_reader(files or {}),
        kustomization_file="kustomization.yaml",
    )


def _one(kustomization: Mapping[str, Any], files: Mapping[str, bytes] | None = None) -> Resource:
    (resource,) = _run(kustomization, files)
    return resource


def _error(
    kustomization: Mapping[str, Any],
    files: Mapping[str, bytes] | None = None,
    resources: list[Resource] | None = None,
) -> str:
    with pytest.raises(KustomizeError) as caught:
        _run(kustomization, files, resources)
    return str(caught.value)


# --- what one generator makes ---------------------------------------------------------------


def test_configmap_with_every_source_and_option() -> None:
    """The object kubectl kustomize printed (before the hash suffix) for the same input."""
    files = {
        "f.txt": b"hello\nworld\n",
        "bin.dat": b"\x00\x01\xff\xfe",
        "e.env": b'# c\nA=1\n  B = 2 \nC\nD="q"\n',
    }
    resource = _one(
        {
            "namespace": "ignored-here",
            "generatorOptions": {"labels": {"z": "1", "a": "2"}},
            "configMapGenerator": [
                {
                    "name": "cm",
                    "namespace": "ns1",
                    "literals": ["x=1", 'y="two"', "z="],
                    "files": ["f.txt", "k2=f.txt", "bin.dat"],
                    "envs": ["e.env"],
                    "options": {"annotations": {"an": "v"}, "immutable": True},
                }
            ],
        },
        files,
    )
    assert resource.obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "cm",
            "namespace": "ns1",
            "labels": {"a": "2", "z": "1"},
            "annotations": {"an": "v"},
        },
        "data": {
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
        "binaryData": {"bin.dat": "AAH//g=="},
        "immutable": True,
    }
    assert resource.needs_hash_suffix
    assert resource.behavior == "create"
    assert resource.origin == "kustomization.yaml"


def test_empty_configmap_has_no_data_but_empty_secret_has_empty_data() -> None:
    made = _run({"configMapGenerator": [{"name": "c"}], "secretGenerator": [{"name": "s"}]})
    assert [r.obj for r in made] == [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "type": "Opaque",
            "data": {},
        },
    ]


def test_secret_type_labels_and_base64() -> None:
    secret = _one(
        {
            "secretGenerator": [
                {
                    "name": "s",
                    "type": "kubernetes.io/tls",
                    "literals": ["tls.crt=abc", "tls.key=def"],
                    "files": ["bin.dat"],
                    "options": {"immutable": True, "labels": {"app": "web"}},
                }
            ]
        },
        {"bin.dat": b"\x00\x01\xff\xfe"},
    )
    assert secret.obj == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "labels": {"app": "web"}},
        "type": "kubernetes.io/tls",
        "data": {"bin.dat": "AAH//g==", "tls.crt": "YWJj", "tls.key": "ZGVm"},
        "immutable": True,
    }


def test_empty_secret_type_means_opaque() -> None:
    secret = _one({"secretGenerator": [{"name": "s", "type": "", "literals": ["a=1"]}]})
    assert secret.obj["type"] == "Opaque"


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (51, "YWFh" * 17),
        (52, "YWFh" * 17 + "YQ\n==\n"),
        (57, "YWFh" * 17 + "YW\nFhYWFh\n"),
        (
            210,
            ("YWFh" * 70)[:70]
            + "\n"
            + ("YWFh" * 70)[70:140]
            + "\n"
            + ("YWFh" * 70)[140:210]
            + "\n"
            + ("YWFh" * 70)[210:]
            + "\n",
        ),
    ],
)
def test_long_base64_is_broken_into_lines_of_70(size: int, expected: str) -> None:
    files = {"f": b"a" * size}
    secret = _one({"secretGenerator": [{"name": "s", "files": ["f"]}]}, files)
    assert secret.obj["data"]["f"] == expected
    binary = _one({"configMapGenerator": [{"name": "c", "files": ["f"]}]}, {"f": b"\xff" * size})
    assert all(len(line) <= 70 for line in binary.obj["binaryData"]["f"].splitlines())


def test_literal_quotes_come_off_only_in_matching_pairs() -> None:
    cm = _one(
        {
            "configMapGenerator": [
                {
                    "name": "c",
                    "literals": ['a="x', "b='y'", 'c=""', 'd="', "e=  sp  ", "f=a=b", "g='mixed\""],
                }
            ]
        }
    )
    assert cm.obj["data"] == {
        "a": '"x',
        "b": "y",
        "c": "",
        "d": '"',
        "e": "  sp  ",
        "f": "a=b",
        "g": "'mixed\"",
    }


def test_keys_are_not_validated() -> None:
    cm = _one({"configMapGenerator": [{"name": "c", "literals": ["a b=1", "c/d=1"]}]})
    assert cm.obj["data"] == {"a b": "1", "c/d": "1"}


def test_file_key_is_the_base_name() -> None:
    cm = _one(
        {
            "configMapGenerator": [
                {"name": "c", "files": ["dir/sub/app.conf", "x=dir/sub/app.conf"]}
            ]
        },
        {"dir/sub/app.conf": b"k=v\n"},
    )
    assert cm.obj["data"] == {"app.conf": "k=v\n", "x": "k=v\n"}


def test_legacy_env_is_read_after_envs() -> None:
    cm = _one(
        {"configMapGenerator": [{"name": "c", "env": "one.env", "envs": ["two.env"]}]},
        {"one.env": b"hi", "two.env": b"x"},
    )
    assert cm.obj["data"] == {"hi": "", "x": ""}


def test_unknown_behavior_acts_as_create() -> None:
    cm = _one({"configMapGenerator": [{"name": "c", "behavior": "foo", "literals": ["a=1"]}]})
    assert cm.behavior == "create"


# --- options --------------------------------------------------------------------------------


def test_entry_options_win_key_by_key_but_cannot_undo_global_booleans() -> None:
    made = _run(
        {
            "generatorOptions": {
                "immutable": True,
                "disableNameSuffixHash": True,
                "labels": {"g": "1", "nn": "g"},
                "annotations": {"ga": "x"},
            },
            "secretGenerator": [
                {
                    "name": "s",
                    "literals": ["a=1"],
                    "options": {"labels": {"nn": "1"}, "annotations": {"la": "yy"}},
                }
            ],
            "configMapGenerator": [
                {"name": "c", "options": {"disableNameSuffixHash": False, "immutable": False}}
            ],
        }
    )
    config_map, secret = made
    assert config_map.obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"g": "1", "nn": "g"}, "annotations": {"ga": "x"}},
        "immutable": True,
    }
    assert secret.obj["metadata"] == {
        "name": "s",
        "labels": {"g": "1", "nn": "1"},
        "annotations": {"ga": "x", "la": "yy"},
    }
    assert secret.obj["immutable"] is True
    assert not config_map.needs_hash_suffix
    assert not secret.needs_hash_suffix


def test_inherited_options_sit_beneath_the_kustomizations_own() -> None:
    (cm,) = run_generators(
        [],
        {
            "generatorOptions": {"labels": {"a": "own"}},
            "configMapGenerator": [{"name": "c"}],
        },
        read_file=_reader({}),
        kustomization_file="k.yaml",
        inherited_options={"labels": {"a": "inherited", "b": "inherited"}, "immutable": True},
    )
    assert cm.obj["metadata"]["labels"] == {"a": "own", "b": "inherited"}
    assert cm.obj["immutable"] is True


def test_non_string_label_values_are_rejected() -> None:
    message = _error({"configMapGenerator": [{"name": "c", "options": {"labels": {"n": 1}}}]})
    assert "configMapGenerator[0].options.labels" in message
    assert "quote" in message


# --- behaviors --------------------------------------------------------------------------------


def _base_config_map(**extra: Any) -> Resource:
    resource = Resource(
        obj={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "cm",
                "labels": {"l1": "base", "l2": "base"},
                "annotations": {"an": "base"},
            },
            "data": {"a": "1", "b": "2"},
            **extra,
        },
        origin="base/kustomization.yaml",
        needs_hash_suffix=True,
    )
    resource.obj["metadata"]["namespace"] = "bns"
    resource.rename("b-cm")
    return resource


def test_merge_keeps_identity_and_merges_metadata_and_data() -> None:
    base = _base_config_map(binaryData={"blob": "AAA="}, immutable=True)
    other = Resource(
        obj={"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cm"}}, origin="x"
    )
    (merged_other, merged) = _run(
        {
            "configMapGenerator": [
                {
                    "name": "cm",
                    "behavior": "merge",
                    "literals": ["b=3", "c=4"],
                    "options": {"labels": {"l2": "ov"}},
                }
            ]
        },
        resources=[other, base],
    )
    assert merged_other is other
    assert merged.obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "b-cm",
            "namespace": "bns",
            "labels": {"l1": "base", "l2": "ov"},
            "annotations": {"an": "base"},
        },
        # the generator's object wins outside metadata/data/binaryData: immutable is gone
        "data": {"a": "1", "b": "3", "c": "4"},
        "binaryData": {"blob": "AAA="},
    }
    assert merged.previous_names == ["cm"]
    assert merged.original_name == "cm"
    assert merged.original_namespace == ""
    assert merged.needs_hash_suffix
    assert merged.behavior == "merge"


def test_replace_keeps_identity_and_metadata_but_not_data() -> None:
    (replaced,) = _run(
        {
            "configMapGenerator": [
                {"name": "b-cm", "namespace": "bns", "behavior": "replace", "literals": ["r=1"]}
            ]
        },
        resources=[_base_config_map()],
    )
    assert replaced.obj["data"] == {"r": "1"}
    assert replaced.obj["metadata"]["labels"] == {"l1": "base", "l2": "base"}
    assert replaced.obj["metadata"]["name"] == "b-cm"


def test_hash_suffix_only_when_both_sides_want_one() -> None:
    kustomization = {
        "configMapGenerator": [
            {
                "name": "cm",
                "behavior": "merge",
                "options": {"disableNameSuffixHash": True},
            }
        ]
    }
    (merged,) = _run(kustomization, resources=[_base_config_map()])
    assert not merged.needs_hash_suffix

    plain = _base_config_map()
    plain.needs_hash_suffix = False
    (merged,) = _run(
        {"configMapGenerator": [{"name": "cm", "behavior": "replace"}]}, resources=[plain]
    )
    assert not merged.needs_hash_suffix


def test_merge_dropping_to_nothing_removes_the_maps() -> None:
    empty = Resource(
        obj={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "type": "Opaque",
            "data": {},
        },
        origin="base",
        needs_hash_suffix=True,
    )
    (merged,) = _run({"secretGenerator": [{"name": "s", "behavior": "merge"}]}, resources=[empty])
    assert "data" not in merged.obj


@pytest.mark.parametrize(
    ("name", "namespace", "matches"),
    [
        ("cm", None, True),  # the original id
        ("cm", "bns", True),  # kustomize moved it to bns before renaming it
        ("b-cm", "bns", True),
        ("b-cm", None, False),
        ("b-cm", "default", False),
    ],
)
def test_merge_matches_current_or_earlier_name_and_namespace(
    name: str, namespace: str | None, matches: bool
) -> None:
    base = Resource(
        obj={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}, origin="base"
    )
    base.obj["metadata"]["namespace"] = "bns"
    base.rename("b-cm")
    entry: dict[str, Any] = {"name": name, "behavior": "merge", "literals": ["x=1"]}
    if namespace:
        entry["namespace"] = namespace
    if matches:
        (merged,) = _run({"configMapGenerator": [entry]}, resources=[base])
        assert merged.obj["metadata"] == {"name": "b-cm", "namespace": "bns"}
    else:
        assert "does not exist" in _error({"configMapGenerator": [entry]}, resources=[base])


def test_merge_matches_by_original_name_with_empty_namespace() -> None:
    base = Resource(
        obj={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}, origin="base"
    )
    base.rename("p-cm")
    (merged,) = _run(
        {"configMapGenerator": [{"name": "cm", "behavior": "merge", "literals": ["x=1"]}]},
        resources=[base],
    )
    assert merged.name == "p-cm"


def test_merge_or_replace_with_nothing_to_merge_is_an_error() -> None:
    for behavior in ("merge", "replace"):
        message = _error({"secretGenerator": [{"name": "zz", "behavior": behavior}]})
        assert f"Secret zz does not exist; cannot {behavior} it" in message
        assert "secretGenerator[0]" in message


def test_creating_an_existing_object_is_an_error() -> None:
    message = _error(
        {"configMapGenerator": [{"name": "cm", "namespace": "bns", "literals": ["b=3"]}]},
        resources=[_base_config_map()],
    )
    assert "ConfigMap bns/cm already exists" in message
    message = _error({"configMapGenerator": [{"name": "c"}, {"name": "c"}]})
    assert "already exists" in message


def test_only_v1_configmaps_are_merge_targets() -> None:
    lookalike = Resource(
        obj={"apiVersion": "example.com/v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
        origin="x",
    )
    made = _run({"configMapGenerator": [{"name": "c"}]}, resources=[lookalike])
    assert len(made) == 2


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("a=b=c", "contains '='"),
        ("=f.txt", "missing key name for file path 'f.txt'"),
        ("k=", "missing file path for key name 'k'"),
    ],
)
def test_bad_file_sources(source: str, fragment: str) -> None:
    message = _error({"configMapGenerator": [{"name": "c", "files": [source]}]})
    assert fragment in message
    assert "configMapGenerator[0].files[0]" in message


def test_missing_file_error_comes_from_the_reader() -> None:
    message = _error({"configMapGenerator": [{"name": "c", "files": ["nope.txt"]}]})
    assert "file 'nope.txt' not found" in message


@pytest.mark.parametrize("literal", ["=x", "novalue"])
def test_bad_literals(literal: str) -> None:
    message = _error({"configMapGenerator": [{"name": "c", "literals": ["a=1", literal]}]})
    assert f"invalid literal source {literal!r}, expected key=value" in message
    assert "configMapGenerator[0].literals[1]" in message


def test_repeated_key_across_sources() -> None:
    message = _error(
        {"configMapGenerator": [{"name": "c", "literals": ["a=1"], "envs": ["e.env"]}]},
        {"e.env": b"a=2\n"},
    )
    assert "repeats the key `a`" in message


def test_generator_needs_a_name() -> None:
    assert "needs a `name`" in _error({"secretGenerator": [{"literals": ["a=1"]}]})


# --- env files --------------------------------------------------------------------------------


def test_env_file_rules() -> None:
    content = (
        b"\xef\xbb\xbfFIRST=1\n# comment\n\n   INDENTED=yes\nSPACED KEY = spaced value \n"
        b'NOVALUE\n=ignored\nCRLF=windows\r\nQUOTES="kept"\nexport SHELL=no\n'
        b"\xc2\xa0NBSP=stripped\n\x1cFS=kept\nTRAILING=tail"
    )
    assert parse_env_file(content, path="e.env") == [
        ("FIRST", "1"),
        ("INDENTED", "yes"),
        ("SPACED KEY ", " spaced value "),
        ("NOVALUE", ""),
        ("CRLF", "windows"),
        ("QUOTES", '"kept"'),
        ("export SHELL", "no"),
        ("NBSP", "stripped"),
        ("\x1cFS", "kept"),
        ("TRAILING", "tail"),
    ]


def test_env_file_bom_only_on_the_first_line() -> None:
    assert parse_env_file(b"A=1\n\xef\xbb\xbfB=2\n", path="e") == [("A", "1"), ("\ufeffB", "2")]


def test_env_file_with_invalid_utf8_is_an_error() -> None:
    with pytest.raises(KustomizeError) as caught:
        parse_env_file(b"A=1\n\xff=2\n", path="conf/app.env")
    assert "env file conf/app.env line 2 is not valid UTF-8" in str(caught.value)


def test_env_file_line_over_64k_is_an_error() -> None:
    with pytest.raises(KustomizeError) as caught:
        parse_env_file(b"A=" + b"x" * 70000 + b"\n", path="big.env")
    assert "longer than 64 KiB" in str(caught.value)


@pytest.mark.parametrize(
    "key", ["0x10", "1.5", "08", "1_000", "+1", "null", "~", "True", "2001-12-14", ".inf", "<<"]
)
def test_keys_kustomize_cannot_print_are_refused(key: str) -> None:
    message = _error({"secretGenerator": [{"name": "s", "literals": [f"{key}=v"]}]})
    assert f"key {key!r} of Secret s reads as a non-string in YAML" in message


@pytest.mark.parametrize("key", ["yes", "on", "Y", "12:30", "-", "tRue", "1a"])
def test_keys_that_stay_strings_are_fine(key: str) -> None:
    cm = _one({"configMapGenerator": [{"name": "c", "literals": [f"{key}=v"]}]})
    assert cm.obj["data"] == {key: "v"}


def test_merged_keys_are_checked_too() -> None:
    plain = Resource(
        obj={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"1": "x"},
        },
        origin="cm.yaml",
    )
    message = _error(
        {"configMapGenerator": [{"name": "c", "behavior": "merge", "literals": ["a=x"]}]},
        resources=[plain],
    )
    assert "key '1' of ConfigMap c" in message


def test_merge_keeps_an_empty_original_namespace() -> None:
    base = Resource(
        obj={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}, origin="base"
    )
    base.obj["metadata"]["namespace"] = "n1"  # moved by the base's namespace transformer
    (merged,) = _run(
        {"configMapGenerator": [{"name": "b", "behavior": "merge", "literals": ["k=v"]}]},
        resources=[base],
    )
    assert merged.id.namespace == "n1"
    assert merged.original_namespace == ""
