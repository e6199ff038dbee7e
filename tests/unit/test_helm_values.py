"""HelmRelease values: merge order, targetPath, digest, and the SDK loaded lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fluxd.helm.values import ValuesError, merge_document, set_path, values_digest


def test_later_documents_merge_deeply_over_earlier_ones() -> None:
    base = merge_document({}, "image: {repo: a, tag: '1'}\nlist: [1, 2]\n", "ConfigMap/a")
    merged = merge_document(base, "image: {tag: '2'}\nlist: [3]\n", "Secret/b")
    assert merged == {"image": {"repo": "a", "tag": "2"}, "list": [3]}


def test_a_document_that_is_no_mapping_names_its_source() -> None:
    with pytest.raises(ValuesError, match="ConfigMap/a"):
        merge_document({}, "- 1\n- 2\n", "ConfigMap/a")
    with pytest.raises(ValuesError, match="Secret/b"):
        merge_document({}, "a: [", "Secret/b")


def test_target_path_sets_a_value_at_a_set_style_path() -> None:
    values = set_path({"a": {"keep": 1}}, "a.b\\.c", "42")
    assert values == {"a": {"keep": 1, "b.c": 42}}
    assert set_path({}, "list[1].name", "x") == {"list": [None, {"name": "x"}]}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-7", -7),
        ("0", 0),
        ("007", "007"),
        ("TRUE", True),
        ("false", False),
        ("null", None),
        ("1.5", "1.5"),
        ("1_000", "1_000"),
        ("'3'", "3"),
        ('"true"', "true"),
        ("{a,2,true}", ["a", 2, True]),
        ("'{a,2}'", ["a", "2"]),
        ("a\\,b", "a,b"),
        ("", ""),
    ],
)
def test_target_path_values_are_typed_as_helm_set_types_them(text: str, value: object) -> None:
    assert set_path({}, "v", text) == {"v": value}


def test_literal_values_are_kept_verbatim() -> None:
    text = "a,b={c}\\d\n"
    assert set_path({}, "config\\.json", text, literal=True) == {"config.json": text}
    assert set_path({}, "n", "3", literal=True) == {"n": "3"}


def test_values_helm_would_split_or_cannot_read_are_refused() -> None:
    with pytest.raises(ValuesError, match="unescaped ','"):
        set_path({}, "v", "a,b")
    with pytest.raises(ValuesError, match="not closed"):
        set_path({}, "v", "{a,b")
    with pytest.raises(ValuesError, match="ends with"):
        set_path({}, "v", "a\\")


def test_invalid_target_path_is_refused() -> None:
    with pytest.raises(ValuesError, match="targetPath"):
        set_path({}, "a..b", "1")


def test_digest_is_sha256_of_canonical_json_and_ignores_key_order() -> None:
    assert values_digest({"b": 1, "a": 2}) == values_digest({"a": 2, "b": 1})
    assert values_digest({"a": 1}) != values_digest({"a": 2})
    assert values_digest({}) == (
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )


def test_importing_the_engine_does_not_load_the_sdk() -> None:
    code = "import sys, fluxd.helm; print('helm_python' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
