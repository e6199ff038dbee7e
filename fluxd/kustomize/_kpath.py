"""Kyaml field paths: how ``replacements`` and ``vars`` address a value inside an object.

A path is dot separated (``spec.template.spec.containers.[name=app].image``); a dot inside
brackets or escaped as ``\\.`` does not split, and ``[a.b]`` without ``=`` is a plain map
key. Segments, as kustomize's kyaml reads them:

- ``name`` -- a map field;
- ``3`` -- the fourth list element;
- ``[field=regex]`` -- the list elements whose ``field`` matches ``regex`` (unanchored, as
  kyaml's ``PathMatcher`` does for targets; the source lookup compares exactly);
- ``[=regex]`` -- the scalar list elements matching ``regex``;
- ``*`` -- every list element (targets only).

Two walkers mirror kyaml's two: :func:`lookup` (``PathGetter``, one value, for sources and
var field refs) and :func:`match` (``PathMatcher``, every matching slot, optionally
creating what is missing, for replacement targets). Values are the plain Python objects
YAML decodes to; a :class:`Slot` is a (container, key) pair so a match can be rewritten.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CREATED",
    "PathError",
    "Slot",
    "kind_name",
    "lookup",
    "match",
    "resolve_plain",
    "scalar_text",
    "split",
]


class PathError(Exception):
    """A path could not be walked (wrong node kind, bad segment, index out of range)."""


class _Created:
    """Placeholder for a scalar a create-walk made: it has no YAML type yet."""

    def __repr__(self) -> str:
        return "CREATED"


#: Value of a scalar slot freshly created by :func:`match`; the setter decides its type.
CREATED: Any = _Created()


@dataclass(frozen=True)
class Slot:
    """Where a matched value lives: ``container[key]``."""

    container: Any
    key: Any

    @property
    def value(self) -> Any:
        return self.container[self.key]

    def set(self, value: Any) -> None:
        self.container[self.key] = value


def split(path: str) -> list[str]:
    """Split a dotted path, keeping ``[k=v.w]`` whole and honouring ``\\.`` escapes."""
    raw = path.split(".")
    parts: list[str] = [raw[0]]
    for piece in raw[1:]:
        if parts[-1].endswith("\\"):
            parts[-1] = parts[-1][:-1] + "." + piece
        else:
            parts.append(piece)
    if len(parts) > 1 and parts[0] == "":
        parts = parts[1:]
    result: list[str] = []
    i = 0
    while i < len(parts):
        part = parts[i]
        if part.startswith("[") and not part.endswith("]"):
            bracketed = [part]
            while i < len(parts) - 1:
                i += 1
                bracketed.append(parts[i])
                if parts[i].endswith("]"):
                    break
            joined = ".".join(bracketed)
            result.append(joined if "=" in joined else joined.strip("[]"))
        else:
            result.append(part)
        i += 1
    return result


def _clean(parts: list[str]) -> list[str]:
    return [part.strip() for part in parts if part.strip()]


def kind_name(value: Any) -> str:
    """The kyaml node kind of a value, as kyaml's error messages name it."""
    if isinstance(value, dict):
        return "MappingNode"
    if isinstance(value, list):
        return "SequenceNode"
    return "ScalarNode"


def _wrong_kind(expected: str, value: Any) -> PathError:
    return PathError(f"wrong node kind: expected {expected} but got {kind_name(value)}")


def _is_list_index(part: str) -> bool:
    return part.startswith("[") and part.endswith("]")


def _split_index(part: str) -> tuple[str, str]:
    name, eq, value = part[1:-1].partition("=")
    if not eq:
        raise PathError("list path element must contain fieldName=fieldValue for element to match")
    return name, value


def _is_index(part: str) -> bool:
    return part.isascii() and part.isdigit()


def scalar_text(value: Any) -> str:
    """The text kyaml holds for a scalar (what a replacement copies, what vars print)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _float_text(value)
    return str(value)


def _float_text(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")


def resolve_plain(text: str) -> Any:
    """What an untagged plain YAML scalar with this text decodes to."""
    if text in ("~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.fullmatch(text) and not re.fullmatch(r"[-+]?0[0-9]+", text):
        return int(text)
    if _FLOAT.fullmatch(text) and any(c.isdigit() for c in text):
        return float(text)
    if text in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"):
        return math.inf
    if text in ("-.inf", "-.Inf", "-.INF"):
        return -math.inf
    if text in (".nan", ".NaN", ".NAN"):
        return math.nan
    return text


# -- PathGetter: one value, exact element matches, no wildcards --------------------------


def lookup(obj: Any, path: str | list[str]) -> Any:
    """The value at ``path`` in ``obj``, or None when any part is missing.

    Raises :class:`PathError` when the path runs through a value of the wrong kind.
    """
    parts = _clean(split(path) if isinstance(path, str) else path)
    node = obj
    for part in parts:
        if node is None:
            return None
        if part == "-" or _is_index(part) or part.lstrip("-").isdigit():
            if part != "-" and int(part) < 0:
                raise PathError(f"array index {int(part)} cannot be negative")
            if not isinstance(node, list):
                raise _wrong_kind("SequenceNode", node)
            if not node:
                return None
            index = -1 if part == "-" else int(part)
            if index >= len(node):
                return None
            node = node[index]
        elif _is_list_index(part):
            name, wanted = _split_index(part)
            if not isinstance(node, list):
                raise _wrong_kind("SequenceNode", node)
            node = _find_element(node, name, wanted)
        else:
            if not isinstance(node, dict):
                raise _wrong_kind("MappingNode", node)
            node = node.get(part)
    return node


def _find_element(items: list[Any], name: str, wanted: str) -> Any:
    for item in items:
        if not name:
            if not isinstance(item, dict | list) and scalar_text(item) == wanted:
                return item
        elif isinstance(item, dict) and name in item:
            field = item[name]
            if not isinstance(field, dict | list) and scalar_text(field) == wanted:
                return item
    return None


# -- PathMatcher: every match, regex element matches, wildcards, optional create ---------


def match(obj: dict[str, Any], path: str, *, create: str | None = None) -> list[Slot]:
    """Every slot ``path`` reaches in ``obj``.

    ``create`` (``"scalar"``, ``"map"`` or ``"seq"``: the kind of the value to be written)
    makes missing map fields, ``[k=v]`` elements and the element one past a list's end;
    a created scalar leaf holds :data:`CREATED`.
    """
    parts = _clean(split(path))
    if not parts:
        raise PathError("a field path must not be empty")
    holder = {"": obj}
    return _match(holder, "", parts, create)


def _new_node(next_part: str | None, create: str) -> Any:
    if next_part is not None and (_is_list_index(next_part) or _is_index(next_part)):
        return []
    if next_part is None:
        return {"scalar": CREATED, "map": {}, "seq": []}[create]
    return {}


def _match(container: Any, key: Any, parts: list[str], create: str | None) -> list[Slot]:
    if not parts:
        return [Slot(container, key)]
    node = container[key]
    part, rest = parts[0], parts[1:]
    following = rest[0] if rest else None
    if _is_index(part):
        return _match_index(container, key, int(part), rest, create)
    if _is_list_index(part):
        return _match_elements(container, key, part, rest, create)
    if part == "*":
        if node is None:
            return []
        if not isinstance(node, list):
            raise _wrong_kind("SequenceNode", node)
        return [slot for i in range(len(node)) for slot in _match(node, i, rest, create)]
    if node is None:
        if not create:
            return []
        node = container[key] = {}
    if not isinstance(node, dict):
        raise _wrong_kind("MappingNode", node)
    if part not in node:
        if not create:
            return []
        node[part] = _new_node(following, create)
    return _match(node, part, rest, create)


def _match_index(
    container: Any, key: Any, index: int, rest: list[str], create: str | None
) -> list[Slot]:
    node = container[key]
    if node is None:
        node = []
        if create:
            container[key] = node
    if not isinstance(node, list):
        raise _wrong_kind("SequenceNode", node)
    if create and len(node) == index:
        node.append(_new_node(rest[0] if rest else None, create))
    if len(node) < index + 1:
        raise PathError(f"index {index} specified but only {len(node)} elements found")
    return _match(node, index, rest, create)


def _match_elements(
    container: Any, key: Any, part: str, rest: list[str], create: str | None
) -> list[Slot]:
    name, pattern = _split_index(part)
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise PathError(f"invalid element pattern {pattern!r}: {exc}") from exc
    node = container[key]
    if node is None:
        if not create:
            return []
        node = container[key] = []
    if not isinstance(node, list):
        raise _wrong_kind("SequenceNode", node)
    found = _elements_matching(node, name, regex, rest, create)
    if found or not create:
        return found
    value = resolve_plain(pattern)
    node.append({name: value} if name else value)
    return _elements_matching(node, name, regex, rest, create)


def _elements_matching(
    items: list[Any], name: str, regex: re.Pattern[str], rest: list[str], create: str | None
) -> list[Slot]:
    found: list[Slot] = []
    for index, item in enumerate(items):
        if not name:
            # kyaml returns a matching scalar element itself, ignoring any further parts.
            if not isinstance(item, dict | list) and regex.search(scalar_text(item).strip()):
                found.append(Slot(items, index))
            continue
        if not isinstance(item, dict) or item.get(name) is None:
            continue
        field = item[name]
        if isinstance(field, dict | list) or not regex.search(scalar_text(field).strip()):
            continue
        found.extend(_match(items, index, rest, create))
    return found
