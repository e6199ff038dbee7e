"""Patch targets: which resources a kustomize ``target`` selector picks.

A selector has ``group``, ``version``, ``kind``, ``name`` and ``namespace`` (regular
expressions, anchored at both ends as kustomize anchors them, so ``name: web`` does not
pick ``web2``; empty matches all), and ``labelSelector`` / ``annotationSelector`` in
Kubernetes label selector syntax: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``,
``a notin (x,y)``, ``a``, ``!a``, ``a>1``, ``a<1``, joined by commas. Empty parts match
everything.

Like kustomize, a resource is picked when its *original* name (before prefixes,
suffixes and hashes) or its current name matches, and likewise for the namespace; an
object without a namespace is in ``default`` for this purpose, a cluster-scoped one in
none (kustomize's ``_non_namespaceable_``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fluxd.kustomize._builtins import is_cluster_scoped
from fluxd.kustomize._model import KustomizeError, Resource
from fluxd.labels import parse_label_selector

__all__ = ["Selector"]

_FIELDS = frozenset(
    {"group", "version", "kind", "name", "namespace", "labelSelector", "annotationSelector"}
)
_DEFAULT_NAMESPACE = "default"
_NOT_A_NAMESPACE = "_non_namespaceable_"


@dataclass(frozen=True)
class Selector:
    """A parsed ``target``."""

    group: str = ""
    version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""
    label_selector: str = ""
    annotation_selector: str = ""

    @classmethod
    def from_config(cls, target: Any, *, file: str | None, field: str) -> Selector:
        """A selector from a kustomization's ``target`` map; errors name file and field."""
        if not isinstance(target, Mapping):
            raise KustomizeError("a patch target must be a map", file=file, field=field)
        unknown = sorted(str(key) for key in target if key not in _FIELDS)
        if unknown:
            raise KustomizeError(
                f"unknown field(s) {', '.join(unknown)} in a patch target; known are "
                f"{', '.join(sorted(_FIELDS))}",
                file=file,
                field=field,
            )
        values = {key: "" if value is None else str(value) for key, value in target.items()}
        selector = cls(
            group=values.get("group", ""),
            version=values.get("version", ""),
            kind=values.get("kind", ""),
            name=values.get("name", ""),
            namespace=values.get("namespace", ""),
            label_selector=values.get("labelSelector", ""),
            annotation_selector=values.get("annotationSelector", ""),
        )
        try:
            selector.compile()
        except ValueError as exc:
            raise KustomizeError(f"invalid patch target: {exc}", file=file, field=field) from exc
        return selector

    def compile(self) -> Callable[[Resource], bool]:
        """A predicate over resources; ValueError for a bad regex or label selector."""
        group = _anchored(self.group, "group")
        version = _anchored(self.version, "version")
        kind = _anchored(self.kind, "kind")
        name = _anchored(self.name, "name")
        namespace = _anchored(self.namespace, "namespace")
        labels = parse_label_selector(self.label_selector)
        annotations = parse_label_selector(self.annotation_selector)

        def matches(resource: Resource) -> bool:
            obj = resource.obj
            api_group, _, api_version = str(obj.get("apiVersion") or "").rpartition("/")
            for pattern, value in (
                (group, api_group),
                (version, api_version),
                (kind, str(obj.get("kind") or "")),
            ):
                if pattern is not None and not pattern.fullmatch(value):
                    return False
            metadata = obj.get("metadata") or {}
            cluster_scoped = is_cluster_scoped(obj)
            if namespace is not None and not any(
                namespace.fullmatch(_effective_namespace(candidate, cluster_scoped))
                for candidate in (
                    resource.original_namespace,
                    str(metadata.get("namespace") or ""),
                )
            ):
                return False
            if name is not None and not any(
                name.fullmatch(candidate) for candidate in (resource.original_name, resource.name)
            ):
                return False
            return labels(metadata.get("labels") or {}) and annotations(
                metadata.get("annotations") or {}
            )

        return matches

    def select(self, resources: list[Resource]) -> list[Resource]:
        """The resources this selector picks, in order."""
        matches = self.compile()
        return [resource for resource in resources if matches(resource)]


def _effective_namespace(namespace: str, cluster_scoped: bool) -> str:
    if cluster_scoped:
        return _NOT_A_NAMESPACE
    return namespace or _DEFAULT_NAMESPACE


def _anchored(pattern: str, what: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(f"(?:{pattern})")
    except re.error as exc:
        raise ValueError(f"{what} {pattern!r} is not a valid regular expression: {exc}") from exc


# --- label selectors ---------------------------------------------------------------------
