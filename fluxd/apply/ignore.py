"""Drift ignore rules: fields another actor owns, left as they are in the cluster.

A Kustomization's ``spec.ignore`` lists JSON pointers (RFC 6901), optionally for
the objects a ``target`` selects, that fluxd neither corrects nor applies once the object
exists: a HorizontalPodAutoscaler's ``/spec/replicas``, a cert-manager annotation, a
webhook's injected CA bundle. Flux's rule, kept here: the fields are excluded from drift
detection *and* from the apply.

fluxd does this by making the desired object agree with the live one at those paths
before the dry-run: where the live object has a value, the desired object takes it (so
the dry-run sees no drift and the apply writes nothing new there); where it has none, the
desired object drops the field too. A new object is created exactly as the source says.

Targets select like patch targets (``group``, ``version``, ``kind``, ``name`` and
``namespace`` are regular expressions matched against the whole value; label and
annotation selectors in Kubernetes syntax); a rule without a target applies everywhere.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fluxd.labels import parse_label_selector

__all__ = ["DriftIgnore", "parse_pointer"]

_MISSING = object()


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """The reference tokens of a JSON pointer; ValueError unless it is one (``/a/b~1c``)."""
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer {pointer!r} must start with '/'")
    tokens = pointer[1:].split("/")
    for token in tokens:
        if re.search(r"~(?![01])", token):
            raise ValueError(f"JSON pointer {pointer!r} has a '~' not followed by 0 or 1")
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in tokens)


@dataclasses.dataclass(frozen=True)
class _Rule:
    paths: tuple[tuple[str, ...], ...]
    selects: Callable[[Mapping[str, Any]], bool]


class DriftIgnore:
    """Compiled ``spec.ignore`` rules; ValueError (naming the rule) for a bad one."""

    def __init__(self, rules: Iterable[Any] = (), *, field: str = "spec.ignore") -> None:
        self._rules: list[_Rule] = []
        for index, rule in enumerate(rules):
            where = f"{field}[{index}]"
            try:
                paths = tuple(parse_pointer(path) for path in rule.paths)
                selects = _selector(rule.target)
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from error
            self._rules.append(_Rule(paths, selects))

    def __bool__(self) -> bool:
        return bool(self._rules)

    def keep_live(self, desired: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
        """``desired`` with every ignored field of its rules set as ``live`` has it."""
        result = copy.deepcopy(dict(desired))
        for rule in self._rules:
            if not rule.selects(desired):
                continue
            for path in rule.paths:
                value = _lookup(live, path)
                if value is _MISSING:
                    _remove(result, path)
                else:
                    _put(result, path, copy.deepcopy(value))
        return result


def _selector(target: Any) -> Callable[[Mapping[str, Any]], bool]:
    if target is None:
        return lambda obj: True
    patterns: dict[str, re.Pattern[str]] = {}
    for what, value in (
        ("group", target.group),
        ("version", target.version),
        ("kind", target.kind),
        ("name", target.name),
        ("namespace", target.namespace),
    ):
        if value:
            try:
                patterns[what] = re.compile(value)
            except re.error as error:
                raise ValueError(
                    f"target {what} {value!r} is not a regular expression: {error}"
                ) from error
    labels = parse_label_selector(target.label_selector or "")
    annotations = parse_label_selector(target.annotation_selector or "")

    def selects(obj: Mapping[str, Any]) -> bool:
        group, _, version = str(obj.get("apiVersion") or "").rpartition("/")
        metadata = obj.get("metadata") or {}
        values = {
            "group": group,
            "version": version,
            "kind": str(obj.get("kind") or ""),
            "name": str(metadata.get("name") or ""),
            "namespace": str(metadata.get("namespace") or ""),
        }
        return (
            all(pattern.fullmatch(values[what]) for what, pattern in patterns.items())
            and labels(metadata.get("labels") or {})
            and annotations(metadata.get("annotations") or {})
        )

    return selects


def _step(node: Any, token: str) -> Any:
    if isinstance(node, Mapping):
        return node.get(token, _MISSING)
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    return _MISSING


def _lookup(node: Any, path: tuple[str, ...]) -> Any:
    for token in path:
        node = _step(node, token)
        if node is _MISSING:
            break
    return node


def _remove(node: Any, path: tuple[str, ...]) -> None:
    parent = _lookup(node, path[:-1])
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    elif isinstance(parent, list) and path[-1].isdigit() and int(path[-1]) < len(parent):
        del parent[int(path[-1])]


def _put(node: Any, path: tuple[str, ...], value: Any) -> None:
    for token in path[:-1]:
        child = _step(node, token)
        if child is _MISSING:
            if not isinstance(node, dict):
                return
            child = node[token] = {}
        node = child
    if isinstance(node, dict):
        node[path[-1]] = value
    elif isinstance(node, list) and path[-1].isdigit() and int(path[-1]) < len(node):
        node[int(path[-1])] = value
