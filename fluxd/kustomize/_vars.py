"""Legacy ``vars:``: ``$(NAME)`` references filled from fields of other resources.

Each var names one resource (``objref``: apiVersion, kind, name, optional namespace --
group, version and kind must equal the resource's, and an empty namespace matches any)
and a field in it (``fieldref.fieldpath``, default ``metadata.name``; ``a[0].b`` and
``a.0.b`` both index lists). Values are read after every transformer ran, so a var on
``metadata.name`` yields the final, prefixed or hashed name.

``$(NAME)`` is expanded in kustomize's ``varReference`` fields only: container
command/args/env values and mount paths of workloads, ingress hosts, service ports, labels
and annotations (and whatever a ``configurations:`` file adds). A field that is exactly
``$(NAME)`` takes the var's type (``replicas``-like ints stay ints); inside a longer
string the value is printed. ``$$`` escapes a ``$``; unknown names and vars whose value is
a map or list stay as written; a var no field uses is only logged, as in kustomize.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fluxd.kustomize._fieldspec import FieldSpec, visit
from fluxd.kustomize._kpath import PathError, lookup, scalar_text
from fluxd.kustomize._model import KustomizeError, Resource

__all__ = ["VAR_REFERENCE_SPECS", "apply_vars", "expand"]

_log = logging.getLogger(__name__)


def _workload(prefix: str, kind: str) -> list[FieldSpec]:
    specs = [
        FieldSpec(f"{prefix}/{containers}/{field}", kind=kind)
        for containers in ("containers", "initContainers")
        for field in ("args", "command", "env/value", "volumeMounts/mountPath")
    ]
    return specs


#: kustomize v5.7's ``varReference`` field specs, in its order.
VAR_REFERENCE_SPECS: tuple[FieldSpec, ...] = (
    *_workload("spec/jobTemplate/spec/template/spec", "CronJob"),
    FieldSpec("spec/jobTemplate/spec/template/volumes/nfs/server", kind="CronJob"),
    *_workload("spec/template/spec", "DaemonSet"),
    FieldSpec("spec/template/spec/volumes/nfs/server", kind="DaemonSet"),
    *_workload("spec/template/spec", "Deployment"),
    FieldSpec("spec/template/spec/volumes/nfs/server", kind="Deployment"),
    FieldSpec("spec/template/metadata/annotations", kind="Deployment"),
    FieldSpec("spec/rules/host", kind="Ingress"),
    FieldSpec("spec/tls/hosts", kind="Ingress"),
    FieldSpec("spec/tls/secretName", kind="Ingress"),
    *_workload("spec/template/spec", "Job"),
    FieldSpec("spec/template/spec/volumes/nfs/server", kind="Job"),
    *_workload("spec", "Pod"),
    FieldSpec("spec/volumes/nfs/server", kind="Pod"),
    *_workload("spec/template/spec", "ReplicaSet"),
    FieldSpec("spec/template/spec/volumes/nfs/server", kind="ReplicaSet"),
    FieldSpec("spec/ports/port", kind="Service"),
    FieldSpec("spec/ports/targetPort", kind="Service"),
    *_workload("spec/template/spec", "StatefulSet"),
    FieldSpec("spec/volumeClaimTemplates/spec/nfs/server", kind="StatefulSet"),
    FieldSpec("spec/nfs/server", kind="PersistentVolume"),
    FieldSpec("metadata/labels"),
    FieldSpec("metadata/annotations"),
)

_UNSET = object()


@dataclass
class _Var:
    name: str
    group: str
    version: str
    kind: str
    ref_name: str
    namespace: str
    fieldpath: str
    declared_fieldpath: str

    def describe(self, *, fieldpath: str | None = None) -> str:
        gvk = ".".join(
            (self.kind or "[noKind]", self.version or "[noVer]", self.group or "[noGrp]")
        )
        path = self.fieldpath if fieldpath is None else fieldpath
        return f"{{{self.name} {gvk} {{{path}}}}}"


def _parse(entry: Any, file: str) -> _Var:
    if not isinstance(entry, Mapping):
        raise KustomizeError(
            f"a vars entry must be a mapping with name, objref and fieldref, got {entry!r}",
            file=file,
            field="vars",
        )
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise KustomizeError(
            f"a vars entry needs a name, got {name!r}", file=file, field="vars.name"
        )
    objref = entry.get("objref") or {}
    fieldref = entry.get("fieldref") or {}
    if not isinstance(objref, Mapping) or not isinstance(fieldref, Mapping):
        raise KustomizeError(
            f"var {name!r}: objref and fieldref must be mappings", file=file, field="vars"
        )
    api_version = str(objref.get("apiVersion") or "")
    if api_version:
        group, _, version = api_version.rpartition("/")
    else:
        group, version = str(objref.get("group") or ""), str(objref.get("version") or "")
    declared = str(fieldref.get("fieldpath") or fieldref.get("fieldPath") or "")
    return _Var(
        name=name,
        group=group,
        version=version,
        kind=str(objref.get("kind") or ""),
        ref_name=str(objref.get("name") or ""),
        namespace=str(objref.get("namespace") or ""),
        fieldpath=declared or "metadata.name",
        declared_fieldpath=declared,
    )


def _namespace_equal(a: str, b: str) -> bool:
    return (a or "default") == (b or "default")


def _refers_to(var: _Var, resource: Resource) -> bool:
    rid = resource.id
    if (rid.group, rid.version, rid.kind) != (var.group, var.version, var.kind):
        return False
    names = {resource.name, resource.original_name, *resource.previous_names}
    if var.ref_name not in names:
        return False
    if not var.namespace:
        return True
    namespaces = {rid.namespace, resource.original_namespace}
    return any(_namespace_equal(var.namespace, ns) for ns in namespaces)


def _fieldpath_parts(fieldpath: str) -> list[str]:
    parts: list[str] = []
    for part in fieldpath.split("."):
        head, bracket, tail = part.partition("[")
        if bracket and tail.endswith("]") and tail[:-1].isdigit():
            parts.extend((head, tail[:-1]) if head else (tail[:-1],))
        else:
            parts.append(part)
    return parts


def _value(var: _Var, resource: Resource, file: str) -> Any:
    try:
        value = lookup(resource.obj, _fieldpath_parts(var.fieldpath))
    except PathError:
        value = None
    if value is None:
        raise KustomizeError(
            f"field specified in var '{var.describe()}' not found in corresponding resource",
            file=file,
            field="vars",
        )
    return value


def apply_vars(
    resources: list[Resource],
    vars: Sequence[Mapping[str, Any]],
    *,
    kustomization_file: str,
    field_specs: Sequence[FieldSpec] | None = None,
) -> None:
    """Resolve ``vars`` against ``resources`` and expand ``$(NAME)`` in place.

    Call once, after all other transformers of the top-level build, with the vars of the
    whole kustomization tree. ``field_specs`` replaces the built-in ``varReference`` table.
    """
    parsed = [_parse(entry, kustomization_file) for entry in vars]
    seen: set[str] = set()
    for var in parsed:
        if var.name in seen:
            listed = " ".join(v.describe(fieldpath=v.declared_fieldpath) for v in parsed)
            raise KustomizeError(
                f"merging vars [{listed}]: var '{var.name}' already encountered",
                file=kustomization_file,
                field="vars",
            )
        seen.add(var.name)
    values: dict[str, Any] = {}
    for var in parsed:
        matched = [resource for resource in resources if _refers_to(var, resource)]
        if len(matched) > 1:
            raise KustomizeError(
                f"found {len(matched)} resId matches for var {var.describe()} "
                "(unable to disambiguate)",
                file=kustomization_file,
                field="vars",
            )
        if not matched:
            raise KustomizeError(
                f"var '{var.describe()}' cannot be mapped to a field in the set of known resources",
                file=kustomization_file,
                field="vars",
            )
        values[var.name] = _value(var, matched[0], kustomization_file)
    if not values:
        return
    used: set[str] = set()
    specs = VAR_REFERENCE_SPECS if field_specs is None else tuple(field_specs)
    for resource in resources:
        for spec in specs:
            visit(resource.obj, spec, _substituter(values, used, resource, kustomization_file))
    unused = [name for name in values if name not in used]
    if unused:
        _log.warning("well-defined vars that were never replaced: %s", ",".join(unused))


def _substituter(values: Mapping[str, Any], used: set[str], resource: Resource, file: str) -> Any:
    def mapping(name: str) -> Any:
        value = values.get(name, _UNSET)
        if value is _UNSET:
            return f"$({name})"
        if isinstance(value, str | int | float):
            used.add(name)
            return value
        return f"$({name})"

    def substitute(node: Any) -> Any:
        if isinstance(node, str):
            return expand(node, mapping)
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise KustomizeError(
                        f"{resource.id}: invalid map key: value='{key}'", file=file, field="vars"
                    )
                if isinstance(value, str):
                    node[key] = expand(value, mapping)
            return node
        if isinstance(node, list):
            if not all(isinstance(item, str) for item in node):
                raise KustomizeError(
                    f"{resource.id}: invalid value type expect a string in a list where "
                    "$(VAR) references are expanded",
                    file=file,
                    field="vars",
                )
            return [expand(item, mapping) for item in node]
        return node

    return substitute


def expand(text: str, mapping: Any) -> Any:
    """Expand ``$(NAME)`` in ``text`` through ``mapping`` (kubernetes' expansion rules).

    When ``text`` is exactly one reference the mapped value is returned as is, keeping
    its type; otherwise the result is a string.
    """
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_var, advance = _read_name(text[cursor + 1 :])
            if is_var:
                mapped = mapping(read)
                if text == f"$({read})":
                    return mapped
                out.append(scalar_text(mapped))
            else:
                out.append(read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


def _read_name(rest: str) -> tuple[str, bool, int]:
    if rest[0] == "$":
        return "$", False, 1
    if rest[0] == "(":
        end = rest.find(")", 1)
        if end > 0:
            return rest[1:end], True, end + 1
        return "$(", False, 1
    return "$" + rest[0], False, 1
