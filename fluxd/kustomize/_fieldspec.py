"""Kustomize's field specs: "this field, in objects of these kinds".

Kustomize's built-in transformers are table driven: ``commonLabels`` writes every path
listed for labels (``metadata/labels`` everywhere, ``spec/selector/matchLabels`` of
Deployments with ``create: true``...), ``namespace`` the namespace paths, name references
the paths that hold names of other objects. A :class:`FieldSpec` is one row of such a
table; :func:`visit` walks its path through an object and calls a function on every value
found there.

Path syntax, as in kustomize's configs: segments separated by ``/`` (``\\/`` escapes a
slash inside a key, e.g. an annotation name); a segment ending in ``[]`` iterates a list;
a plain segment whose value is a list iterates it too (kustomize's legacy behaviour), so
``spec/containers/image`` reaches every container's image.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["FieldSpec", "split_path", "visit"]

_SEGMENT = re.compile(r"(?:\\/|[^/])+")


@dataclass(frozen=True)
class FieldSpec:
    """A path in objects matching group/version/kind (empty matches any)."""

    path: str
    kind: str = ""
    group: str = ""
    version: str = ""
    create: bool = False

    def matches(self, obj: dict[str, Any]) -> bool:
        """Whether ``obj``'s group/version/kind is one this spec applies to."""
        if self.kind and self.kind != obj.get("kind"):
            return False  # the common rejection, decided before any string splitting
        if not (self.group or self.version):
            return True
        api_version = str(obj.get("apiVersion") or "")
        group, _, version = api_version.rpartition("/")
        return (
            (not self.kind or self.kind == obj.get("kind"))
            and (not self.group or self.group == group)
            and (not self.version or self.version == version)
        )

    @classmethod
    def from_config(cls, entry: dict[str, Any]) -> FieldSpec:
        """A spec from kustomize's YAML form (``{path, kind, group, version, create}``)."""
        return cls(
            path=str(entry["path"]),
            kind=str(entry.get("kind") or ""),
            group=str(entry.get("group") or ""),
            version=str(entry.get("version") or ""),
            create=bool(entry.get("create", False)),
        )


def split_path(path: str) -> list[str]:
    """Path segments, with ``\\/`` unescaped."""
    return [segment.replace("\\/", "/") for segment in _SEGMENT.findall(path)]


def visit(
    obj: dict[str, Any],
    spec: FieldSpec,
    fn: Callable[[Any], Any],
    *,
    create_value: Callable[[], Any] | None = None,
) -> int:
    """Replace every value at ``spec.path`` in ``obj`` with ``fn(value)``; returns the count.

    When ``spec.create`` and the path is missing, intermediate maps are created and the
    leaf is set to ``fn(create_value())`` (``create_value`` defaults to an empty dict).
    Objects whose kind does not match are left alone.
    """
    if not spec.matches(obj):
        return 0
    factory = create_value or dict
    return _walk(obj, split_path(spec.path), fn, spec.create, factory)


def _walk(
    node: Any,
    segments: list[str],
    fn: Callable[[Any], Any],
    create: bool,
    factory: Callable[[], Any],
) -> int:
    if isinstance(node, list):
        return sum(_walk(item, segments, fn, create, factory) for item in node)
    if not isinstance(node, dict) or not segments:
        return 0
    head, rest = segments[0], segments[1:]
    iterate = head.endswith("[]")
    key = head[:-2] if iterate else head
    if key not in node or node[key] is None:
        if not create or iterate:
            return 0
        node[key] = factory() if not rest else {}
        if not rest:
            node[key] = fn(node[key])
            return 1
    value = node[key]
    if not rest:
        if isinstance(value, list) and not iterate and _is_scalar_list(value):
            node[key] = fn(value)
            return 1
        if iterate and isinstance(value, list):
            node[key] = [fn(item) for item in value]
            return len(value)
        node[key] = fn(value)
        return 1
    return _walk(value, rest, fn, create, factory)


def _is_scalar_list(values: Iterable[Any]) -> bool:
    return all(not isinstance(value, dict | list) for value in values)
