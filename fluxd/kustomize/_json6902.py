"""RFC 6902 JSON patches, with the behaviour of the library kustomize uses.

Operations ``add``, ``remove``, ``replace``, ``move``, ``copy`` and ``test`` address
values by RFC 6901 JSON pointers (``/spec/containers/0/image``; ``~1`` is ``/`` and
``~0`` is ``~`` inside a segment). As in evanphx/json-patch v4, which kustomize 5.7
runs: ``-`` appends to a list, a negative index counts from the end, ``add`` to a list
index inserts, ``remove`` needs the value to exist, ``replace`` of a missing map key
adds it, a ``test`` of a missing key passes for ``null``, a ``copy`` of one copies
``null``, and an operation whose parent is missing fails. Every error names the
operation's index and path.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from fluxd.kustomize._model import KustomizeError

__all__ = ["apply_json_patch", "parse_operations"]

_OPS = ("add", "remove", "replace", "move", "copy", "test")


def parse_operations(document: Any, *, source: str) -> list[dict[str, Any]]:
    """Check a decoded patch (a list of operation maps) and return it."""
    if not isinstance(document, list):
        raise KustomizeError("a JSON 6902 patch must be a list of operations", file=source)
    for index, op in enumerate(document):
        if not isinstance(op, dict):
            raise KustomizeError(f"operation {index} of the JSON patch is not a map", file=source)
        kind = op.get("op")
        if kind not in _OPS:
            raise KustomizeError(
                f"operation {index} of the JSON patch has unknown op {kind!r} "
                f"(expected one of {', '.join(_OPS)})",
                file=source,
            )
        for needed in ("path", *(("from",) if kind in ("move", "copy") else ())):
            if not isinstance(op.get(needed), str):
                raise KustomizeError(
                    f"operation {index} ({kind}) of the JSON patch needs a string {needed!r}",
                    file=source,
                )
        if kind in ("add", "replace", "test") and "value" not in op:
            raise KustomizeError(
                f"operation {index} ({kind} {op['path']}) of the JSON patch needs a 'value'",
                file=source,
            )
    return document


def apply_json_patch(document: Any, operations: Sequence[dict[str, Any]]) -> Any:
    """``document`` with the operations applied in order; the input is not modified.

    Raises :class:`KustomizeError` naming the failed operation's index and path.
    """
    doc = copy.deepcopy(document)
    for index, op in enumerate(operations):
        kind, path = op.get("op"), str(op.get("path"))
        try:
            doc = _apply_one(doc, op)
        except _PatchFailure as failure:
            raise KustomizeError(
                f"JSON patch operation {index} ({kind} {path}) failed: {failure}"
            ) from None
    return doc


class _PatchFailure(Exception):
    pass


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _PatchFailure(f"the JSON pointer {path!r} does not start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _apply_one(doc: Any, op: dict[str, Any]) -> Any:
    kind = op["op"]
    parts = _pointer(str(op["path"]))
    if kind == "add":
        return _add(doc, parts, copy.deepcopy(op["value"]))
    if kind == "remove":
        _remove(doc, parts)
        return doc
    if kind == "replace":
        return _replace(doc, parts, copy.deepcopy(op["value"]))
    if kind == "test":
        _test(doc, parts, op["value"])
        return doc
    source = _pointer(str(op["from"]))
    if kind == "copy" and _missing_key(doc, source):
        # evanphx/json-patch copies a missing map key as null.
        return _add(doc, parts, None)
    value = _get(doc, source)
    if kind == "move":
        if parts[: len(source)] == source and len(parts) > len(source):
            raise _PatchFailure("cannot move a value into itself")
        _remove(doc, source)
    else:
        value = copy.deepcopy(value)
    return _add(doc, parts, value)


def _missing_key(doc: Any, parts: list[str]) -> bool:
    """Whether ``parts`` names an absent key of a map that exists."""
    if not parts:
        return False
    parent = _parent(doc, parts)
    return isinstance(parent, dict) and parts[-1] not in parent


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict):
            if part not in node:
                raise _PatchFailure(f"the document has no {part!r} on the way")
            node = node[part]
        elif isinstance(node, list):
            node = node[_index(node, part, allow_end=False)]
        else:
            raise _PatchFailure(f"cannot descend into a {_type(node)} at {part!r}")
    if not isinstance(node, dict | list):
        raise _PatchFailure(f"the parent is a {_type(node)}, not a map or list")
    return node


def _index(node: list[Any], part: str, *, allow_end: bool) -> int:
    if part == "-" and allow_end:
        return len(node)
    try:
        index = int(part)
    except ValueError:
        raise _PatchFailure(f"{part!r} is not a list index") from None
    # For add, the list is one longer: -1 appends, as in evanphx/json-patch.
    limit = len(node) + (1 if allow_end else 0)
    if index < 0:
        if index < -limit:
            raise _PatchFailure(f"index {index} is out of range for a list of {len(node)}")
        index += limit
    if index >= limit:
        raise _PatchFailure(f"index {index} is out of range for a list of {len(node)}")
    return index


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _PatchFailure(f"the document has no value at {last!r}")
        return parent[last]
    return parent[_index(parent, last, allow_end=False)]


def _test(doc: Any, parts: list[str], expected: Any) -> None:
    if parts:
        parent = _parent(doc, parts)
        if isinstance(parent, dict) and parts[-1] not in parent:
            # A missing map key tests equal to null, as in evanphx/json-patch.
            if expected is None:
                return
            raise _PatchFailure(f"there is no {parts[-1]!r}, not {expected!r}")
    actual = _get(doc, parts)
    if not _equal(actual, expected):
        raise _PatchFailure(f"the value is {actual!r}, not {expected!r}")


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        raise _PatchFailure("the document itself cannot be added to")
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    else:
        parent.insert(_index(parent, last, allow_end=True), value)
    return doc


def _remove(doc: Any, parts: list[str]) -> None:
    if not parts:
        raise _PatchFailure("cannot remove the whole document")
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _PatchFailure(f"there is no {last!r} to remove")
        del parent[last]
    else:
        del parent[_index(parent, last, allow_end=False)]


def _replace(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        if not isinstance(value, dict | list):
            raise _PatchFailure("the document can only be replaced by a map or a list")
        return value
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, dict):
        # evanphx/json-patch v4 replaces a missing map key like add does.
        parent[last] = value
    else:
        parent[_index(parent, last, allow_end=False)] = value
    return doc


def _equal(left: Any, right: Any) -> bool:
    """JSON equality: 1 == 1.0, but True is not 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            _equal(a, b) for a, b in zip(left, right, strict=True)
        )
    return bool(left == right)


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return "string" if isinstance(value, str) else type(value).__name__
