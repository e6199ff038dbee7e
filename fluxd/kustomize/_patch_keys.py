"""Which lists a strategic merge patch merges, and by which keys, per built-in kind.

Kustomize merges a list element by element only where the OpenAPI schema of the
patched kind says so: the list's ``x-kubernetes-patch-strategy`` contains ``merge``.
The elements are then paired by ``x-kubernetes-list-map-keys`` when the schema has
them (container ``ports`` by ``containerPort`` *and* ``protocol``), else by the
``x-kubernetes-patch-merge-key``; a merge list without keys holds scalars merged as a
set (``metadata.finalizers``). Every other list -- atomic ones such as ``tolerations``,
fields the schema does not know, anything in a custom resource -- is replaced whole.

The table is generated from a real kube-apiserver's ``/openapi/v2`` document, never
written by hand, and kept small: only the types on a path from a kind to a list with a
patch strategy are stored. ``patch_keys.json`` holds

- ``kinds``: ``"group/version/Kind"`` (``"v1/Pod"`` for the core group) to a type name;
- ``types``: type name to ``{field: entry}``, where an entry has ``type`` (the type of
  the field's value, of its list elements or of its map values when ``map`` is true)
  and, for lists with a patch strategy, ``strategy``, ``mergeKey``, ``listMapKeys``
  and ``listType``.

Regenerate it (after a Kubernetes upgrade) with one of::

    python -m fluxd.dev.patch_keys --live            # starts LocalControlPlane
    python -m fluxd.dev.patch_keys --openapi FILE    # a saved /openapi/v2 JSON
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "TABLE_PATH",
    "ListStrategy",
    "SchemaNode",
    "build_table",
    "custom_schema",
    "list_strategy",
    "root_schema",
]

TABLE_PATH = Path(__file__).with_name("patch_keys.json")

_STRATEGY = "x-kubernetes-patch-strategy"
_MERGE_KEY = "x-kubernetes-patch-merge-key"
_LIST_MAP_KEYS = "x-kubernetes-list-map-keys"
_LIST_TYPE = "x-kubernetes-list-type"
_GVK = "x-kubernetes-group-version-kind"


@dataclass(frozen=True)
class ListStrategy:
    """How a strategic merge patch treats one list field."""

    strategy: str
    merge_key: str
    list_map_keys: tuple[str, ...]
    list_type: str

    @property
    def merges(self) -> bool:
        """Whether elements are merged (rather than the list replaced)."""
        return "merge" in self.strategy.split(",")

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys pairing elements, as kustomize picks them; empty for scalar sets."""
        if self.list_map_keys:
            return self.list_map_keys
        return (self.merge_key,) if self.merge_key else ()


@dataclass(frozen=True)
class SchemaNode:
    """A position in a kind's schema: an object type, or a map of such objects."""

    type_name: str
    is_map: bool = False

    def field(self, name: str) -> Field | None:
        """The schema of field ``name`` (any key, for maps); None when not in the table."""
        if self.is_map:
            return Field(value=SchemaNode(self.type_name), strategy=None)
        entry = _table()["types"].get(self.type_name, {}).get(name)
        if entry is None:
            return None
        strategy = None
        if "strategy" in entry:
            strategy = ListStrategy(
                strategy=entry["strategy"],
                merge_key=entry.get("mergeKey", ""),
                list_map_keys=tuple(entry.get("listMapKeys", ())),
                list_type=entry.get("listType", ""),
            )
        value = SchemaNode(entry["type"], bool(entry.get("map"))) if "type" in entry else None
        return Field(value=value, strategy=strategy)


@dataclass(frozen=True)
class Field:
    """A field of an object type: the schema of its value (or elements), its strategy."""

    value: SchemaNode | None
    strategy: ListStrategy | None


def root_schema(gvk: tuple[str, str, str]) -> SchemaNode | None:
    """The schema of kind ``(group, version, kind)``; None for kinds without merge lists."""
    group, version, kind = gvk
    type_name = _table()["kinds"].get(_kind_key(group, version, kind))
    return SchemaNode(type_name) if type_name else None


def list_strategy(gvk: tuple[str, str, str], path: Sequence[str]) -> ListStrategy | None:
    """The strategy of the list at ``path`` (field names; list levels are transparent)."""
    node = root_schema(gvk)
    found: ListStrategy | None = None
    for name in path:
        if node is None:
            return None
        field = node.field(name)
        if field is None:
            return None
        node, found = field.value, field.strategy
    return found


def _kind_key(group: str, version: str, kind: str) -> str:
    return f"{group}/{version}/{kind}" if group else f"{version}/{kind}"


#: The table of a kustomization's ``openapi: {path: ...}`` schema, while its build runs.
#: Kustomize, too, holds the schema in force process-wide for the length of a build.
_CUSTOM_TABLE: ContextVar[dict[str, Any] | None] = ContextVar("custom_patch_keys", default=None)


@contextmanager
def custom_schema(openapi: Mapping[str, Any]) -> Iterator[None]:
    """Use the OpenAPI v2 document ``openapi`` instead of the built-in table, within.

    As in kustomize, it replaces the built-in schema: a kind it does not define has
    every list replaced by a patch, built-in kinds included.
    """
    token = _CUSTOM_TABLE.set(build_table(openapi))
    try:
        yield
    finally:
        _CUSTOM_TABLE.reset(token)


def _table() -> dict[str, Any]:
    custom = _CUSTOM_TABLE.get()
    return custom if custom is not None else _builtin_table()


@cache
def _builtin_table() -> dict[str, Any]:
    with TABLE_PATH.open("rb") as stream:
        table: dict[str, Any] = json.load(stream)
    return table


# --- the generator ----------------------------------------------------------------------


def build_table(openapi: Mapping[str, Any]) -> dict[str, Any]:
    """The compact table from an OpenAPI v2 document."""
    definitions: Mapping[str, Any] = openapi["definitions"]
    fields = {name: dict(_fields(schema)) for name, schema in definitions.items()}
    relevant: set[str] = {
        name for name, entries in fields.items() if any("strategy" in e for e in entries.values())
    }
    changed = True
    while changed:
        changed = False
        for name, entries in fields.items():
            if name not in relevant and any(e.get("type") in relevant for e in entries.values()):
                relevant.add(name)
                changed = True
    types = {
        name: {
            field: _prune(entry, relevant)
            for field, entry in sorted(fields[name].items())
            if "strategy" in entry or entry.get("type") in relevant
        }
        for name in sorted(relevant)
    }
    kinds = {
        _kind_key(gvk.get("group", ""), gvk["version"], gvk["kind"]): name
        for name in sorted(relevant)
        for gvk in definitions[name].get(_GVK, ())
    }
    version = openapi.get("info", {}).get("version", "unknown")
    return {
        "source": f"kube-apiserver {version} /openapi/v2, by python -m fluxd.kustomize._patch_keys",
        "kinds": dict(sorted(kinds.items())),
        "types": types,
    }


def _fields(schema: Mapping[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    for field, prop in (schema.get("properties") or {}).items():
        entry: dict[str, Any] = {}
        ref = _ref(prop)
        if ref is None and isinstance(prop.get("items"), Mapping):
            ref = _ref(prop["items"])
        if ref is None and isinstance(prop.get("additionalProperties"), Mapping):
            ref = _ref(prop["additionalProperties"])
            if ref is not None:
                entry["map"] = True
        if ref is not None:
            entry["type"] = ref
        if _STRATEGY in prop:
            entry["strategy"] = prop[_STRATEGY]
            for key, name in ((_MERGE_KEY, "mergeKey"), (_LIST_TYPE, "listType")):
                if key in prop:
                    entry[name] = prop[key]
            if _LIST_MAP_KEYS in prop:
                entry["listMapKeys"] = list(prop[_LIST_MAP_KEYS])
        yield field, entry


def _ref(schema: Mapping[str, Any]) -> str | None:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/"):
        return ref.removeprefix("#/definitions/")
    # OpenAPI v2 wraps a $ref with siblings (a description) in allOf.
    for part in schema.get("allOf") or ():
        found = _ref(part)
        if found:
            return found
    return None


def _prune(entry: Mapping[str, Any], relevant: set[str]) -> dict[str, Any]:
    pruned = dict(entry)
    if pruned.get("type") not in relevant:
        pruned.pop("type", None)
        pruned.pop("map", None)
    return pruned
