"""Strategic merge patches, exactly as kustomize 5.7 applies them.

Kustomize does not use the API server's strategic merge (apimachinery's
``strategicpatch``); it walks the object and the patch side by side with kyaml's
``merge2``, asking the OpenAPI schema (:mod:`._patch_keys`) which lists to merge. That
walk has its own rules, and fluxd reproduces them, quirks included, because the goal is
byte-identical output:

- Maps merge key by key; a ``null`` in the patch deletes the key (nulls inside what the
  patch adds are dropped too); nulls in the object that the patch does not touch stay.
- ``$patch: delete`` on a map removes it (on the whole patch: the object is removed);
  ``$patch: replace`` makes the patch's map replace the object's; an unknown value is an
  error. In a merge list, when the first element carrying ``$patch`` holds nothing else,
  its ``replace`` or ``delete`` applies to the whole list.
- Only lists whose schema strategy says ``merge`` are merged; everything else, lists of
  custom resources included, is replaced by the patch's list. An object embedded in a
  custom resource with a known apiVersion and kind (a Pod template) gets that schema.
- Merge lists pair elements by their keys: ``x-kubernetes-list-map-keys`` when the
  schema has them, else the merge key. The result lists the patch's elements first,
  then the object's remaining ones; an element with ``$patch: delete`` is dropped.
  Lists of scalars with a merge strategy (``finalizers``) are merged as sets.
- ``$setElementOrder/...``, ``$deleteFromPrimitiveList/...`` and ``$retainKeys`` are not
  understood by kustomize and end up as ordinary fields.
- Every merge list of the object is re-normalised, also those the patch does not
  mention, and kyaml's bookkeeping shows through: of elements sharing a key the last
  one wins; an element without its key makes the keyed ones disappear; empty elements
  are dropped; ``$patch: replace`` on a list element is ignored. With two keys
  (``containerPort`` and ``protocol``), an element that leaves the second key out is
  the same element as one that sets it, and the object's version wins over the patch's.
"""

from __future__ import annotations

import copy
from enum import Enum
from typing import Any

from fluxd.kustomize._model import KustomizeError
from fluxd.kustomize._patch_keys import ListStrategy, SchemaNode, root_schema

__all__ = ["strategic_merge"]

DIRECTIVE = "$patch"
_DIRECTIVES = ("delete", "replace", "merge")


class _Absent(Enum):
    """A field that is not there (as opposed to one set to ``null``)."""

    ABSENT = "absent"
    CLEAR = "clear"


ABSENT = _Absent.ABSENT
#: What a walk returns when the field must be removed.
CLEAR = _Absent.CLEAR


def strategic_merge(
    base: dict[str, Any], patch: dict[str, Any], *, gvk: tuple[str, str, str]
) -> dict[str, Any] | None:
    """``base`` with ``patch`` merged in; None when the patch deletes the object.

    Neither argument is modified. ``gvk`` (group, version, kind) selects the schema that
    says which lists merge. Raises :class:`KustomizeError` for a patch that cannot be
    applied (an unknown ``$patch``, a map where the object has a list...).
    """
    walker = _Walker()
    result = walker.walk(
        copy.deepcopy(base), copy.deepcopy(patch), _Position(root_schema(gvk), None, ())
    )
    if result is CLEAR or result is ABSENT or result is None:
        return None
    if not isinstance(result, dict):
        raise KustomizeError("the strategic merge patch did not produce an object")
    return result


class _Position:
    """Where a walk is: the schema of the value there and of the list it is, if one."""

    __slots__ = ("path", "schema", "strategy")

    def __init__(
        self, schema: SchemaNode | None, strategy: ListStrategy | None, path: tuple[str, ...]
    ) -> None:
        self.schema = schema
        self.strategy = strategy
        self.path = path

    def field(self, name: str) -> _Position:
        field = self.schema.field(name) if self.schema is not None else None
        if field is None:
            return _Position(None, None, (*self.path, name))
        return _Position(field.value, field.strategy, (*self.path, name))

    def element(self) -> _Position:
        return _Position(self.schema, None, (*self.path, "[]"))

    @property
    def where(self) -> str:
        return ".".join(self.path).replace(".[]", "[]") or "(the object)"


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    if value is None or value is ABSENT:
        return ""
    return "scalar"


def _text(value: Any) -> str:
    """A scalar as YAML text, which is what kyaml compares keys by."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


class _Walker:
    def walk(self, dest: Any, patch: Any, at: _Position) -> Any:
        """The merged value of ``dest`` and ``patch``; CLEAR when the field goes away."""
        kind = _kind(dest) or _kind(patch)
        for value in (dest, patch):
            other = _kind(value)
            if other and other != kind:
                raise KustomizeError(
                    f"cannot merge a {_describe(patch)} from the patch into a "
                    f"{_describe(dest)} at {at.where}"
                )
        if kind == "list":
            if at.strategy is not None and at.strategy.merges:
                return self._merge_list(dest, patch, at)
            if patch is ABSENT:
                return dest
            return CLEAR if patch is None else patch
        if patch is ABSENT:
            # Whatever the patch does not mention stays, even a null.
            if kind == "scalar" or dest is None:
                return dest
        elif kind == "scalar":
            return CLEAR if patch is None else patch
        return self._walk_map(dest, patch, at)

    def _walk_map(self, dest: Any, patch: Any, at: _Position) -> Any:
        if dest is ABSENT or dest is None:
            if _map_directive(patch, at, strict=False) == "delete":
                return CLEAR
            node = patch
        elif patch is None:
            return CLEAR
        else:
            directive = _map_directive(patch, at, strict=True)
            if directive == "delete":
                return CLEAR
            node = patch if directive == "replace" else dest
        if not isinstance(node, dict):
            return CLEAR
        if at.schema is None:
            at = _Position(_embedded_schema(node, patch), None, at.path)
        names = set(node)
        if isinstance(patch, dict):
            names.update(patch)
        for name in sorted(names):
            value = self.walk(
                node.get(name, ABSENT),
                patch.get(name, ABSENT) if isinstance(patch, dict) else ABSENT,
                at.field(name),
            )
            if value is CLEAR or value is ABSENT:
                node.pop(name, None)
            else:
                node[name] = value
        return node

    def _merge_list(self, dest: Any, patch: Any, at: _Position) -> Any:
        assert at.strategy is not None
        if dest is ABSENT or dest is None:
            node = patch
        elif patch is None:
            return CLEAR
        else:
            directive = _list_directive(patch, at)
            if directive == "delete":
                return CLEAR
            node = patch if directive == "replace" else dest
        if not isinstance(node, list):
            return CLEAR
        # The patch's elements come first (kustomize merges with "prepend").
        sources = [source for source in (patch, node) if isinstance(source, list)]
        keys = at.strategy.keys
        values: list[tuple[str, ...]] = []
        if keys:
            for source in sources:
                for element in source:
                    found = tuple(_key_text(element, key) for key in keys)
                    if found not in values:
                        values.append(found)
        else:
            keys = ("",)
            for source in sources:
                for item in source:
                    if (_text(item),) not in values:
                        values.append((_text(item),))
        return self._set_elements(values, keys, node, patch, at)

    def _set_elements(
        self,
        values: list[tuple[str, ...]],
        keys: tuple[str, ...],
        node: list[Any],
        patch: Any,
        at: _Position,
    ) -> Any:
        """Walk every element value, collect the results, then fold the object's in."""
        if len(keys) > 1:
            values = _unify(values)
        merged: list[Any] = []
        valid_keys = keys
        element_at = at.element()
        for value in values:
            valid_keys, valid_values = _valid_keys(values, value, keys)
            lookup_keys, lookup_values = _valid_keys([value], value, keys)
            val = self.walk(
                _find_element(node, lookup_keys, lookup_values),
                _find_element(patch, lookup_keys, lookup_values),
                element_at,
            )
            if val is CLEAR or val is ABSENT or val is None or val == {}:
                _set_element(node, None, valid_keys, valid_values, at)
                continue
            if isinstance(val, dict):
                for key, key_value in zip(valid_keys, valid_values, strict=True):
                    if key not in val and key_value:
                        val[key] = key_value
            _set_element(merged, val, valid_keys, valid_values, at)
        if not values:
            return node
        _fold_in(merged, node, valid_keys, at)
        return merged


def _describe(value: Any) -> str:
    return {"map": "map", "list": "list", "scalar": f"value {value!r}"}.get(_kind(value), "null")


def _map_directive(patch: Any, at: _Position, *, strict: bool) -> str:
    """Take ``$patch`` out of a patch map; returns delete, replace or merge."""
    if not isinstance(patch, dict) or DIRECTIVE not in patch:
        return "merge"
    value = patch[DIRECTIVE]
    text = _text(value)
    if text in _DIRECTIVES:
        del patch[DIRECTIVE]
        return text
    if strict:
        raise KustomizeError(f"unknown patch strategy {text!r} at {at.where}")
    return "merge"


def _list_directive(patch: Any, at: _Position) -> str:
    """A merge list's directive, from its first element with ``$patch``.

    That element must hold nothing else. Every element carrying the same directive is
    then taken out of the patch (so is any null or empty element), as kyaml does.
    """
    if not isinstance(patch, list):
        return "merge"
    first = next((e for e in patch if isinstance(e, dict) and DIRECTIVE in e), None)
    if first is None or len(first) > 1:
        return "merge"
    text = _text(first[DIRECTIVE])
    if text not in _DIRECTIVES:
        raise KustomizeError(f"unknown patch strategy {text!r} at {at.where}")
    _set_element(patch, None, (DIRECTIVE,), (text,), at)
    return text


def _embedded_schema(node: dict[str, Any], patch: Any) -> SchemaNode | None:
    """kyaml finds a schema for any map carrying apiVersion and kind of a known type."""
    for source in (node, patch):
        if not isinstance(source, dict):
            continue
        api_version, kind = source.get("apiVersion"), source.get("kind")
        if isinstance(api_version, str) and isinstance(kind, str) and api_version and kind:
            group, _, version = api_version.rpartition("/")
            found = root_schema((group, version, kind))
            if found is not None:
                return found
    return None


def _key_text(element: Any, key: str) -> str:
    if not isinstance(element, dict):
        return ""
    value = element.get(key)
    if value is None or value == {} or value == [] or value == "":
        return ""
    return _text(value)


def _valid_keys(
    values_list: list[tuple[str, ...]], values: tuple[str, ...], keys: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The keys set (non-empty) in any of ``values_list``, with ``values``' values for them.

    When no key is set anywhere, all keys and values are kept.
    """
    used = {keys[i] for found in values_list for i, value in enumerate(found) if value}
    if not used:
        return keys, values
    positions = [i for i, key in enumerate(keys) if key in used]
    return tuple(keys[i] for i in positions), tuple(values[i] for i in positions)


def _unify(values_list: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Pair up multi-key values that agree where both are set (80/"" and 80/TCP).

    Both entries of a compatible pair take the combined value, so an element without a
    protocol and one with it count as the same element, as in kyaml.
    """
    result = list(values_list)
    for i in range(len(result)):
        first = result[i]
        for j in range(len(result)):
            combined = _combine(first, result[j])
            if combined is not None:
                result[i] = result[j] = combined
    return result


def _combine(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...] | None:
    if len(first) != len(second):
        return None
    shared = False
    combined: list[str] = []
    for left, right in zip(first, second, strict=True):
        if left == right:
            shared = True
            combined.append(left)
        elif left and right:
            return None
        else:
            combined.append(left or right)
    return tuple(combined) if shared else None


def _find_element(source: Any, keys: tuple[str, ...], values: tuple[str, ...]) -> Any:
    """The first element whose key fields hold exactly these values (scalars for "")."""
    if not isinstance(source, list):
        return ABSENT
    if keys == ("",):
        for item in source:
            if (_text(item) if not isinstance(item, dict | list) else "") == values[0]:
                return item
        return ABSENT
    for element in source:
        if isinstance(element, dict) and all(
            key in element and _text(element[key]) == value
            for key, value in zip(keys, values, strict=True)
        ):
            return element
    return ABSENT


def _field_matches(element: Any, key: str, value: str, at: _Position) -> bool:
    """kyaml's field matcher: an empty value matches any element having the field."""
    if element is None:
        return False
    if key == "":
        if isinstance(element, dict | list):
            raise KustomizeError(f"a list of scalars holds a {_describe(element)} at {at.where}")
        return _text(element) == value
    if not isinstance(element, dict):
        raise KustomizeError(f"a merge list holds a {_describe(element)} at {at.where}")
    if key not in element:
        return False
    return value == "" or _text(element[key]) == value


def _set_element(
    target: list[Any],
    element: Any,
    keys: tuple[str, ...],
    values: tuple[str, ...],
    at: _Position,
) -> None:
    """kyaml's ElementSetter: replace (or, for None, delete) every match, else append.

    Null and empty elements are dropped on the way, like kyaml does.
    """
    mapping_setter = bool(keys) and keys[0] != "" and bool(values) and values[0] != ""
    kept: list[Any] = []
    matched = False
    for item in target:
        if item is None or item == {}:
            continue
        if not isinstance(item, dict) and mapping_setter:
            kept.append(item)
            continue
        found = bool(values) and all(
            _field_matches(item, key, value, at) for key, value in zip(keys, values, strict=False)
        )
        if not found:
            if values:
                kept.append(item)
            continue
        matched = True
        if element is not None:
            kept.append(element)
    target[:] = kept
    if element is not None and not matched:
        target.append(element)


def _fold_in(target: list[Any], source: list[Any], keys: tuple[str, ...], at: _Position) -> None:
    """kyaml's appendListNode: set each of ``source``'s elements into ``target``.

    Single-key elements replace their match in place or are appended; multi-key ones
    replace their matches by one copy at the end; elements lacking a key are appended.
    """
    for element in list(source):
        if keys == ("",):
            text = _text(element) if not isinstance(element, dict | list) else ""
            _set_element(target, element, keys, (text,), at)
            continue
        if element is not None and not isinstance(element, dict):
            raise KustomizeError(f"a merge list holds a {_describe(element)} at {at.where}")
        values: list[str] = []
        for key in keys:
            if not isinstance(element, dict) or key not in element:
                target.append(element)
                continue
            values.append(_text(element[key]))
        if len(keys) > 1:
            _set_element(target, None, keys, tuple(values), at)
        _set_element(target, element, keys, tuple(values), at)
