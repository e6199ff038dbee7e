"""The ``replicas:`` transformer: set ``spec.replicas`` of workloads by name.

An entry matches a resource of a kind in kustomize's ``replicas`` table by its current
name or any name it had before (so ``name: app`` still finds ``prod-app`` after a
``namePrefix``); the field is created when missing. An entry that matches nothing is an
error, as in kustomize.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fluxd.kustomize._fieldspec import FieldSpec, visit
from fluxd.kustomize._model import KustomizeError, Resource

__all__ = ["REPLICAS_SPECS", "apply_replicas"]

#: kustomize v5.7's ``replicas`` field specs, in the order its error message lists them.
REPLICAS_SPECS: tuple[FieldSpec, ...] = tuple(
    FieldSpec("spec/replicas", kind=kind, create=True)
    for kind in ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController")
)


def _names(resource: Resource) -> set[str]:
    return {resource.name, resource.original_name, *resource.previous_names}


def _gvk_text(spec: FieldSpec) -> str:
    return ".".join((spec.kind or "[noKind]", spec.version or "[noVer]", spec.group or "[noGrp]"))


def apply_replicas(
    resources: list[Resource],
    replicas: Sequence[Mapping[str, Any]],
    *,
    kustomization_file: str,
    field_specs: Sequence[FieldSpec] | None = None,
) -> None:
    """Apply a kustomization's ``replicas:`` entries, in order.

    ``field_specs`` replaces kustomize's built-in ``replicas`` table.
    """
    specs = REPLICAS_SPECS if field_specs is None else tuple(field_specs)
    for entry in replicas:
        name, count = _parse(entry, kustomization_file)
        found = False
        for spec in specs:
            for resource in resources:
                if name in _names(resource) and spec.matches(resource.obj):
                    found = True
                    visit(resource.obj, spec, _constant(count))
        if not found:
            gvks = " ".join(_gvk_text(spec) for spec in specs)
            raise KustomizeError(
                f"resource with name {name} does not match a config with the following "
                f"GVK [{gvks}]",
                file=kustomization_file,
                field="replicas",
            )


def _constant(value: int) -> Callable[[Any], int]:
    return lambda _old: value


def _parse(entry: Any, file: str) -> tuple[str, int]:
    if not isinstance(entry, Mapping):
        raise KustomizeError(
            f"a replicas entry must be a mapping with name and count, got {entry!r}",
            file=file,
            field="replicas",
        )
    name = entry.get("name")
    count = entry.get("count", 0)
    if count is None:
        count = 0
    if not isinstance(name, str) or not name:
        raise KustomizeError(
            f"a replicas entry needs a name, got {name!r}", file=file, field="replicas.name"
        )
    if isinstance(count, bool) or not isinstance(count, int):
        raise KustomizeError(
            f"replicas entry {name!r}: count must be an integer, got {count!r}",
            file=file,
            field="replicas.count",
        )
    return name, count
