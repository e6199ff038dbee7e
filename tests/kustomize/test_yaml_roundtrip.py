"""The YAML reader and printer alone against ``kubectl kustomize``.

The ``io-*`` and ``general-*`` cases are plain resource trees (no transformers), so
loading their files and printing the objects must give what kustomize prints, document
for document. Output order is the build's business (kustomize sorts by kind), so the
documents are compared as a multiset here; ``test_conformance`` checks the order.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from fluxd.yaml import (
    Timestamp,
    YamlError,
    dump_documents,
    load_documents,
    load_values,
    resolve_plain,
)
from tests.kustomize.oracle import kustomize_oracle, kustomize_oracle_cached

CASES = Path(__file__).parent / "cases"
PLAIN_CASES = sorted(path for path in CASES.iterdir() if path.name.startswith(("io-", "general-")))


def _load_case(case: Path) -> list[dict[str, Any]]:
    (kustomization,) = load_documents(
        (case / "kustomization.yaml").read_bytes(), source="kustomization.yaml"
    )
    objects: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        objects.extend(load_documents((case / resource).read_bytes(), source=resource))
    for obj in objects:
        # Not the printer's doing: a build drops an empty metadata.annotations (kustomize
        # removes its bookkeeping annotations and then the map if nothing is left).
        metadata = obj.get("metadata") or {}
        if "annotations" in metadata and not metadata["annotations"]:
            del metadata["annotations"]
    return objects


def _split_documents(stream: str) -> list[str]:
    return sorted(stream.split("---\n"))


@pytest.mark.parametrize("case", PLAIN_CASES, ids=[case.name for case in PLAIN_CASES])
def test_plain_case_prints_like_kustomize(case: Path) -> None:
    returncode, stdout, stderr = kustomize_oracle_cached(case)
    expect_error = case / "EXPECT_ERROR"
    if expect_error.exists():
        lines = expect_error.read_text().splitlines()
        substring = lines[1] if lines[0].strip() == "fluxd-only" else lines[0]
        with pytest.raises(YamlError) as failure:
            dump_documents(_load_case(case))
        assert substring in str(failure.value)
        if lines[0].strip() != "fluxd-only":
            assert returncode != 0, f"kustomize accepted what fluxd refuses:\n{stdout}"
        return
    assert returncode == 0, stderr
    assert _split_documents(dump_documents(_load_case(case))) == _split_documents(stdout)


def _load_one(text: str) -> dict[str, Any]:
    (obj,) = load_documents(text.encode(), source="test.yaml")
    return obj


def test_scalars_resolve_like_go_yaml_v3() -> None:
    obj = _load_one(
        "a: yes\nb: 0755\nc: 1_000\nd: 0x1F\ne: 1.5\nf: ~\ng: true\nh: '1'\ni: 2024-01-01\n"
        "j: 99999999999999999999999\nk: 1e400\n"
    )
    assert obj["a"] == "yes"
    assert obj["b"] == 493
    assert obj["c"] == 1000
    assert obj["d"] == 31
    assert obj["e"] == 1.5
    assert obj["f"] is None
    assert obj["g"] is True
    assert obj["h"] == "1"
    assert isinstance(obj["i"], Timestamp)
    assert obj["i"] == "2024-01-01"
    assert math.isclose(obj["j"], 1e23)
    assert obj["k"] == "1e400"


def test_load_values_keeps_any_shape() -> None:
    values = load_values(b"- op: add\n  path: /a\n  value: 1\n---\n---\nplain\n", source="p.yaml")
    assert values == [[{"op": "add", "path": "/a", "value": 1}], "plain"]
    assert resolve_plain("on") == "on"
    assert resolve_plain("0o17") == 15


def test_aliases_are_copies() -> None:
    obj = _load_one("a: &x {k: v}\nb: *x\n")
    obj["a"]["k"] = "changed"
    assert obj["b"] == {"k": "v"}


def test_merge_keys_prefer_explicit_and_first_source() -> None:
    obj = _load_one("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n  x: 3\n")
    assert obj["c"] == {"x": 3, "y": 1, "z": 2}


def test_invalid_yaml_names_file_and_line() -> None:
    with pytest.raises(YamlError, match=r"invalid YAML in deploy/app\.yaml line 3"):
        load_documents(b"a: 1\nb:\n\t- x\n", source="deploy/app.yaml")


def test_dump_separates_documents_and_sorts_keys() -> None:
    text = dump_documents([{"kind": "A", "apiVersion": "v1"}, {"b": [1, {"d": 2, "c": None}]}])
    assert text == "apiVersion: v1\nkind: A\n---\nb:\n- 1\n- c: null\n  d: 2\n"


def test_dump_numbers_as_json_round_trip() -> None:
    text = dump_documents([{"v": [1.0, 0.1, 1e-7, 1e21, 123456789.5, -0.0, 2**63]}])
    expected = ["1", "0.1", "1e-07", "1e+21", "1.234567895e+08", "0", "9223372036854775808"]
    assert text == "v:\n" + "".join(f"- {item}\n" for item in expected)


# -- randomized differential test ------------------------------------------------------------

_ALPHABET = [
    *"abcXYZ019 " * 6,
    *" :#-?,[]{}&*!|>'\"%@`.~+=/\\\t\n\r",
    *("\u00e9", "\u00a0", "\u2028", "\u0085", "\ufeff", "\U0001f680", "\x07", "\x00"),
    *("\x1b", "\u4e16", "  ", "\n\n", " \n", "\n "),
]
_TRICKY_WORDS = [
    *("true", "yes", "on", "null", "~", "1", "0755", "1.0", "1e5", ".5", "0x1F", "1:20"),
    *("2024-01-01", "<<", "-", "---", "...", "0b101", "+1", "1_0", "e5", "0.", "08", "Off"),
    *("2001-12-14 21:59:43.10", ".NaN", "0o7", "0o-2", "99999999999999999999999", "-0"),
]
_PLAIN_PIECES = [
    *"0123456789" * 3,
    *".eE-+_:xobXTtZ ",
    *("2001-12-14", "2024-1-2", "T10:20:30", ".5", "0x", "0o", "0b", "inf", "e+", "e-"),
]


def _random_text(rng: random.Random) -> str:
    length = rng.choice([0, 1, 2, 3, 5, 8, 20, 60, 90, 130])
    return "".join(rng.choice(_ALPHABET) for _ in range(length))


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 3 and roll < 0.12:
        return {
            f"k{index:03d}": _random_value(rng, depth + 1) for index in range(rng.randint(0, 3))
        }
    if depth < 3 and roll < 0.24:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.4:
        return rng.choice(_TRICKY_WORDS) + (
            rng.choice(["", " x", "x"]) if rng.random() < 0.3 else ""
        )
    return _random_text(rng)


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar holding ``text`` (escapes what YAML cannot hold raw)."""
    escaped = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            escaped.append("\\" + char)
        elif code < 0x20 or 0x7F <= code <= 0x9F or char in "\u2028\u2029\ufeff":
            escaped.append(f"\\u{code:04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _block_yaml(value: Any, indent: int) -> str:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return " {}\n"
        items = (
            f"{pad}{_quoted(key)}:{_block_yaml(item, indent + 2)}" for key, item in value.items()
        )
        return "\n" + "".join(items)
    if isinstance(value, list):
        if not value:
            return " []\n"
        return "\n" + "".join(f"{pad}-{_block_yaml(item, indent + 2)}" for item in value)
    if isinstance(value, int):
        return f" {value}\n"
    if value.startswith("PLAIN:"):
        return f" {value.removeprefix('PLAIN:') or 'x'}\n"
    return f" {_quoted(value)}\n"


def _random_manifest(seed: int) -> str:
    rng = random.Random(seed)
    spec: dict[str, Any] = {f"v{index:03d}": _random_value(rng) for index in range(60)}
    # Keys with odd characters each get a map of their own: go-yaml's key order is not a
    # total order for such keys, so kustomize's output would depend on Go's map iteration.
    spec["keys"] = [{_random_text(rng).replace("\x85", "") or "e": index} for index in range(10)]
    spec["words"] = [{rng.choice(_TRICKY_WORDS): 1}]
    pieces = (rng.choice(_PLAIN_PIECES) for _ in range(rng.randint(1, 6)))
    spec["plain"] = ["PLAIN:" + "".join(pieces).strip() for _ in range(40)]
    header = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fuzz\nspec:"
    return header + _block_yaml(spec, 2)


@pytest.mark.parametrize("seed", range(12))
def test_random_scalars_print_like_kustomize(seed: int, tmp_path: Path) -> None:
    manifest = _random_manifest(seed)
    (tmp_path / "kustomization.yaml").write_text("resources:\n- fuzz.yaml\n")
    (tmp_path / "fuzz.yaml").write_text(manifest)
    returncode, stdout, _ = kustomize_oracle(tmp_path)
    if returncode != 0:
        with pytest.raises(YamlError):
            dump_documents(load_documents(manifest.encode(), source="fuzz.yaml"))
        return
    assert dump_documents(load_documents(manifest.encode(), source="fuzz.yaml")) == stdout
