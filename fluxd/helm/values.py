"""A HelmRelease's values: ``valuesFrom`` in order, then ``values``, and their digest.

Flux's rules: each ``valuesFrom`` entry is a ConfigMap or Secret key (``values.yaml`` by
default) holding a YAML document merged over what came before, or, with ``targetPath``,
one value set at that path: read as Helm's ``--set`` reads it (``true``/``false``, ``null``
and integers typed, ``{a,b}`` a list, ``\\`` escapes; quoted, as ``--set-string``), or with
``literal``, as ``--set-literal``, the text verbatim; an
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

from fluxd.api import HelmReleaseSpec
from fluxd.kube.objects import ConfigMapNotFound, ObjectApi, SecretNotFound
from fluxd.sources.helm.package import merge_maps

__all__ = ["ValuesError", "merge_document", "release_values", "set_path", "values_digest"]


class ValuesError(ValueError):
    """A values source is not usable; the message names it."""


async def release_values(
    objects: ObjectApi, namespace: str, spec: HelmReleaseSpec
) -> dict[str, Any]:
    """The values of a HelmRelease in ``namespace``: ``spec.valuesFrom`` read from the
    cluster in order, then ``spec.values``. Raises :class:`ValuesError` naming the
    source that is missing or does not parse."""
    values: dict[str, Any] = {}
    for ref in spec.values_from:
        where = f"{ref.kind} '{namespace}/{ref.name}'"
        try:
            if ref.kind == "Secret":
                data = await objects.secret_data(namespace, ref.name)
                text = data[ref.key].decode() if ref.key in data else None
            else:
                text = (await objects.config_map_data(namespace, ref.name)).get(ref.key)
        except (SecretNotFound, ConfigMapNotFound) as error:
            if ref.optional:
                continue
            raise ValuesError(f"could not resolve {where}: {error}") from error
        if text is None:
            if ref.optional:
                continue
            raise ValuesError(f"missing key '{ref.key}' in {where}")
        if ref.target_path:
            values = set_path(values, ref.target_path, text, literal=ref.literal)
        else:
            values = merge_document(values, text, f"{where} key '{ref.key}'")
    if spec.values:
        values = merge_document(values, json.dumps(spec.values), "spec.values")
    return values


def merge_document(base: Mapping[str, Any], text: str, where: str) -> dict[str, Any]:
    """``base`` with the YAML mapping ``text`` (from ``where``) merged over it."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ValuesError(f"unable to read values from {where}: {error}") from error
    if not isinstance(document, dict):
        raise ValuesError(f"unable to read values from {where}: not a YAML mapping")
    return merge_maps(base, document)


def set_path(
    base: Mapping[str, Any], path: str, text: str, *, literal: bool = False
) -> dict[str, Any]:
    """``base`` with ``text`` at the dotted ``path`` (``\\.`` escapes a dot; ``name[0]``
    indexes a list), creating what is missing: read as Helm's ``--set`` value, or verbatim
    when ``literal``."""
    value = text if literal else _set_value(text, path)
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


def _set_value(text: str, path: str) -> Any:
    """``text`` as Helm's strvals reads the value of ``path=text``: quoted text (either
    quote, stripped) stays a string, ``{a,b}`` is a list, ``\\`` escapes the next
    character, and ``true``, ``false``, ``null`` and integers are typed."""
    quotes = "'\""
    as_string = any(text.startswith(q) and text.endswith(q) for q in quotes)
    if as_string:
        text = text.strip(quotes)
    if text.startswith("{"):
        items, rest = _until(text[1:], ",}", path, text)
        while rest.startswith(","):
            item, rest = _until(rest[1:], ",}", path, text)
            items += item
        if not rest.startswith("}") or rest[1:]:
            raise ValuesError(f"targetPath '{path}': list value '{text}' is not closed by '}}'")
        return [_typed(item, as_string) for item in items]
    (value,), rest = _until(text, ",", path, text)
    if rest:
        raise ValuesError(
            f"targetPath '{path}': value '{text}' holds an unescaped ',', which Helm reads as "
            "a second key=value; escape it as '\\,' or set literal: true"
        )
    return _typed(value, as_string)


def _until(text: str, stops: str, path: str, whole: str) -> tuple[list[str], str]:
    """The text up to the first unescaped character of ``stops`` (unescaped), and what
    follows from that character on."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char in stops:
            return ["".join(out)], text[index:]
        if char == "\\":
            index += 1
            if index == len(text):
                raise ValuesError(f"targetPath '{path}': value '{whole}' ends with '\\'")
        out.append(text[index])
        index += 1
    return ["".join(out)], ""


def _typed(value: str, as_string: bool) -> Any:
    if as_string:
        return value
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if value == "0":
        return 0
    if value and value[0] != "0":
        try:
            number = int(value, 10)
        except ValueError:
            return value
        digits = value.lstrip("+-")
        if -(2**63) <= number < 2**63 and digits.isascii() and digits.isdigit():
            return number
    return value


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
