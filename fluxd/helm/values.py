"""A HelmRelease's values: ``valuesFrom`` in order, then ``values``, and their digest.

Flux's rules: each ``valuesFrom`` entry is a ConfigMap or Secret key (``values.yaml`` by
default) holding a YAML document merged over what came before, or, with ``targetPath``,
one value set at that path (Helm ``--set`` syntax, the value kept a string); an
``optional`` reference that is missing is skipped; ``values`` is merged last. Merging is
deep for mappings, anything else replaces. The digest (``sha256:`` of the values as
canonical JSON) is what the release history records, so a change of values is seen
without reading the release.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import yaml

from fluxd.sources.helm.package import merge_maps

__all__ = ["ValuesError", "merge_document", "set_path", "values_digest"]


class ValuesError(ValueError):
    """A values source is not usable; the message names it."""


def merge_document(base: Mapping[str, Any], text: str, where: str) -> dict[str, Any]:
    """``base`` with the YAML mapping ``text`` (from ``where``) merged over it."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ValuesError(f"unable to read values from {where}: {error}") from error
    if not isinstance(document, dict):
        raise ValuesError(f"unable to read values from {where}: not a YAML mapping")
    return merge_maps(base, document)


def set_path(base: Mapping[str, Any], path: str, value: str) -> dict[str, Any]:
    """``base`` with ``value`` (a string) at the dotted ``path`` (``\\.`` escapes a dot;
    ``name[0]`` indexes a list), creating what is missing."""
    parts = _split(path)
    if not parts:
        raise ValuesError(f"invalid targetPath '{path}'")
    result: dict[str, Any] = json.loads(json.dumps(dict(base), default=str))
    node: Any = result
    for index, (key, position) in enumerate(parts):
        last = index == len(parts) - 1
        if position is None:
            if last:
                node[key] = value
            else:
                child = node.get(key)
                node = node.setdefault(key, {}) if not isinstance(child, dict) else child
                if not isinstance(node, dict):
                    node = node[key] = {}
            continue
        items = node.get(key)
        if not isinstance(items, list):
            items = node[key] = []
        while len(items) <= position:
            items.append(None)
        if last:
            items[position] = value
        else:
            if not isinstance(items[position], dict):
                items[position] = {}
            node = items[position]
    return result


def values_digest(values: Mapping[str, Any]) -> str:
    encoded = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str).encode()
    return f"sha256:{hashlib.sha256(encoded).hexdigest()}"


def _split(path: str) -> list[tuple[str, int | None]]:
    keys: list[str] = []
    current = ""
    escaped = False
    for char in path:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            keys.append(current)
            current = ""
        else:
            current += char
    keys.append(current)
    parts: list[tuple[str, int | None]] = []
    for key in keys:
        if not key:
            return []
        if key.endswith("]") and "[" in key:
            name, _, index = key[:-1].partition("[")
            if not index.isdigit() or not name:
                return []
            parts.append((name, int(index)))
        else:
            parts.append((key, None))
    return parts
