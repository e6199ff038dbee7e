"""JSON 6902 patches with evanphx/json-patch v4's behaviour (what kustomize 5.7 runs)."""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.kustomize._json6902 import apply_json_patch, parse_operations
from fluxd.kustomize._model import KustomizeError


def _doc() -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "annotations": {"a/b": "1", "t~x": "2"}},
        "spec": {"replicas": 1, "args": ["a", "b", "c"]},
    }


def test_add_replace_remove() -> None:
    result = apply_json_patch(
        _doc(),
        [
            {"op": "add", "path": "/spec/paused", "value": True},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "remove", "path": "/metadata/annotations/a~1b"},
            {"op": "replace", "path": "/metadata/annotations/t~0x", "value": "3"},
        ],
    )
    assert result == {
        "metadata": {"name": "web", "annotations": {"t~x": "3"}},
        "spec": {"replicas": 3, "args": ["a", "b", "c"], "paused": True},
    }


def test_list_indexes() -> None:
    result = apply_json_patch(
        _doc(),
        [
            {"op": "add", "path": "/spec/args/-", "value": "end"},
            {"op": "add", "path": "/spec/args/0", "value": "start"},
            {"op": "add", "path": "/spec/args/-1", "value": "appended"},
            {"op": "remove", "path": "/spec/args/-2"},
            {"op": "replace", "path": "/spec/args/1", "value": "A"},
        ],
    )
    assert result["spec"]["args"] == ["start", "A", "b", "c", "appended"]


def test_move_copy_test() -> None:
    result = apply_json_patch(
        _doc(),
        [
            {"op": "test", "path": "/spec/replicas", "value": 1.0},
            {"op": "test", "path": "/spec/missing", "value": None},
            {"op": "copy", "from": "/spec/args", "path": "/spec/copied"},
            {"op": "move", "from": "/spec/replicas", "path": "/metadata/replicas"},
        ],
    )
    assert result["spec"] == {"args": ["a", "b", "c"], "copied": ["a", "b", "c"]}
    assert result["metadata"]["replicas"] == 1


def test_replace_of_a_missing_map_key_adds_it() -> None:
    result = apply_json_patch(_doc(), [{"op": "replace", "path": "/spec/new", "value": 1}])
    assert result["spec"]["new"] == 1


def test_copy_of_a_missing_map_key_copies_null() -> None:
    result = apply_json_patch(
        _doc(),
        [
            {"op": "copy", "from": "/spec/nothing", "path": "/spec/args/0"},
            {"op": "copy", "from": "/spec/nothing", "path": "/spec/copied"},
        ],
    )
    assert result["spec"]["args"] == [None, "a", "b", "c"]
    assert result["spec"]["copied"] is None


def test_input_is_not_modified() -> None:
    doc = _doc()
    apply_json_patch(doc, [{"op": "remove", "path": "/spec"}])
    assert doc == _doc()


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ({"op": "remove", "path": "/spec/nothing"}, r"operation 0 \(remove /spec/nothing\)"),
        ({"op": "add", "path": "/nope/x", "value": 1}, r"add /nope/x\) failed: .*'nope'"),
        ({"op": "add", "path": "/spec/args/9", "value": 1}, "index 9 is out of range"),
        ({"op": "replace", "path": "/spec/args/3", "value": 1}, "index 3 is out of range"),
        ({"op": "test", "path": "/spec/replicas", "value": 2}, "the value is 1, not 2"),
        ({"op": "test", "path": "/spec/replicas", "value": True}, "not True"),
        ({"op": "add", "path": "spec", "value": 1}, "does not start with '/'"),
        ({"op": "move", "from": "/spec", "path": "/spec/x"}, "into itself"),
    ],
)
def test_failures_name_the_operation(op: dict[str, Any], message: str) -> None:
    with pytest.raises(KustomizeError, match=message):
        apply_json_patch(_doc(), [op])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"op": "add"}, "must be a list"),
        ([["x"]], "operation 0 of the JSON patch is not a map"),
        ([{"op": "frobnicate", "path": "/a"}], "unknown op 'frobnicate'"),
        (
            [{"op": "add", "path": "/a"}],
            r"operation 0 \(add /a\) of the JSON patch needs a 'value'",
        ),
        ([{"op": "move", "path": "/a"}], "needs a string 'from'"),
        ([{"op": "remove"}], "needs a string 'path'"),
    ],
)
def test_malformed_patches(document: Any, message: str) -> None:
    with pytest.raises(KustomizeError, match=message):
        parse_operations(document, source="ops.yaml")
