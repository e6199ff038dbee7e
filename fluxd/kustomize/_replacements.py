"""``replacements:``: copy a value from one resource into fields of others.

Each replacement takes one value -- ``sourceValue``, or the field ``source.fieldPath``
(default ``metadata.name``) of the single resource ``source`` selects -- optionally cut out
of a delimited string (``options.delimiter`` + ``index``), and writes it to every
``fieldPaths`` entry of every resource each target ``select``s and does not ``reject``.

Selection, as in kustomize v5.7: group, version, kind, name and namespace compare exactly
(an empty selector field matches anything; namespace ``default`` equals none) against a
resource's current identity and every earlier one, so a selector may use a name from
before ``namePrefix``. A resource is rejected when any of its identities matches a
reject's id fields, or when it matches a reject's label/annotation selectors.

Writing: a scalar target keeps its YAML type and takes the value's text (so ``replicas:
1`` stays an int and ``"1"`` stays a string; text that does not fit the type, like
``abc`` into an int, fails as it fails in kustomize); a map or list target is replaced
by the value. A target path that matches nothing is an error unless ``options.create``
makes it (wildcards cannot be created). With ``options.delimiter`` the target's text is
split and the value replaces part ``index`` (negative: prepended; past the end:
appended).

This module also re-exports the other value transformers of a kustomization:
``apply_images``, ``apply_replicas`` and ``apply_vars``.
"""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from fluxd.kustomize._images import apply_images
from fluxd.kustomize._kpath import (
    CREATED,
    PathError,
    kind_name,
    lookup,
    match,
    resolve_plain,
    scalar_text,
)
from fluxd.kustomize._model import KustomizeError, ResId, Resource
from fluxd.kustomize._replicas import apply_replicas
from fluxd.kustomize._vars import apply_vars

__all__ = ["apply_images", "apply_replacements", "apply_replicas", "apply_vars"]

_DEFAULT_FIELD_PATH = "metadata.name"


@dataclass(frozen=True)
class _IdSelector:
    group: str = ""
    version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> _IdSelector:
        return cls(**{key: str(data.get(key) or "") for key in cls.__dataclass_fields__})

    def is_empty(self) -> bool:
        return not any((self.group, self.version, self.kind, self.name, self.namespace))

    def selects(self, rid: ResId) -> bool:
        return (
            (not self.name or self.name == rid.name)
            and (
                not self.namespace or (self.namespace or "default") == (rid.namespace or "default")
            )
            and (not self.group or self.group == rid.group)
            and (not self.version or self.version == rid.version)
            and (not self.kind or self.kind == rid.kind)
        )

    def __str__(self) -> str:
        return (
            f"{self.kind or '[noKind]'}.{self.version or '[noVer]'}.{self.group or '[noGrp]'}"
            f"/{self.name or '[noName]'}.{self.namespace or '[noNs]'}"
        )


@dataclass(frozen=True)
class _Options:
    delimiter: str = ""
    index: int = 0
    create: bool = False


@dataclass(frozen=True)
class _Selector:
    id: _IdSelector
    label_selector: str = ""
    annotation_selector: str = ""


@dataclass(frozen=True)
class _Target:
    select: _Selector
    reject: tuple[_Selector, ...]
    field_paths: tuple[str, ...]
    options: _Options


@dataclass(frozen=True)
class _Replacement:
    source: _IdSelector | None
    source_value: str | None
    field_path: str
    given_field_path: str
    source_options: _Options
    targets: tuple[_Target, ...]


def apply_replacements(
    resources: list[Resource],
    replacements: Sequence[Mapping[str, Any]],
    *,
    read_file: Callable[[str], bytes],
    kustomization_file: str,
) -> None:
    """Apply a kustomization's ``replacements:`` (inline or ``path:`` entries) in order.

    ``read_file`` loads a ``path:`` entry, relative to the kustomization's directory.
    """
    parsed: list[_Replacement] = []
    for entry in replacements:
        parsed.extend(_load_entry(entry, read_file, kustomization_file))
    for replacement in parsed:
        value = _source_value(resources, replacement, kustomization_file)
        for target in replacement.targets:
            _apply_target(resources, value, target, kustomization_file)


# -- configuration --------------------------------------------------------------------


def _fail(message: str, file: str) -> KustomizeError:
    return KustomizeError(message, file=file, field="replacements")


def _load_entry(entry: Any, read_file: Callable[[str], bytes], file: str) -> list[_Replacement]:
    if not isinstance(entry, Mapping):
        raise _fail(f"a replacements entry must be a mapping, got {entry!r}", file)
    path = entry.get("path")
    if not path:
        return [_parse(entry, file)]
    if entry.get("source") is not None or entry.get("targets"):
        raise _fail("cannot specify both path and inline replacement", file)
    try:
        content = read_file(str(path))
    except OSError as exc:
        raise _fail(f"cannot read replacement file {path}: {exc}", file) from exc
    where = f"{file} -> {path}"
    try:
        data = YAML(typ="safe", pure=True).load(io.BytesIO(content))
    except YAMLError as exc:
        raise _fail(f"invalid YAML in replacement file {path}: {exc}", file) from exc
    if isinstance(data, list):
        return [_parse(item, where) for item in data]
    if isinstance(data, Mapping):
        return [_parse(data, where)]
    raise _fail(
        f"unsupported replacement type encountered within replacement path {path}: "
        "expected a replacement or a list of them",
        file,
    )


def _mapping(value: Any, what: str, file: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(f"{what} must be a mapping, got {value!r}", file)
    return value


def _options(value: Any, file: str) -> _Options:
    data = _mapping(value, "options", file)
    index = data.get("index", 0)
    if isinstance(index, bool) or not isinstance(index, int):
        raise _fail(f"options.index must be an integer, got {index!r}", file)
    return _Options(
        delimiter=str(data.get("delimiter") or ""),
        index=index,
        create=bool(data.get("create", False)),
    )


def _selector(value: Any, what: str, file: str) -> _Selector:
    data = _mapping(value, what, file)
    return _Selector(
        id=_IdSelector.parse(data),
        label_selector=str(data.get("labelSelector") or ""),
        annotation_selector=str(data.get("annotationSelector") or ""),
    )


def _parse(entry: Any, file: str) -> _Replacement:
    if not isinstance(entry, Mapping):
        raise _fail(f"a replacement must be a mapping, got {entry!r}", file)
    source = entry.get("source")
    source_value = entry.get("sourceValue")
    targets = entry.get("targets")
    if (source is None and source_value is None) or targets is None:
        raise _fail("replacements must specify a source and at least one target", file)
    if source is not None and source_value is not None:
        raise _fail("value and resource selectors are mutually exclusive", file)
    if not isinstance(targets, list):
        raise _fail(f"targets must be a list, got {targets!r}", file)
    source_map = _mapping(source, "source", file)
    return _Replacement(
        source=None if source is None else _IdSelector.parse(source_map),
        source_value=None if source_value is None else scalar_text(source_value),
        field_path=str(source_map.get("fieldPath") or _DEFAULT_FIELD_PATH),
        given_field_path=str(source_map.get("fieldPath") or ""),
        source_options=_options(source_map.get("options"), file),
        targets=tuple(_parse_target(target, file) for target in targets),
    )


def _parse_target(value: Any, file: str) -> _Target:
    data = _mapping(value, "a target", file)
    if data.get("select") is None:
        raise _fail("target must specify resources to select", file)
    rejects = data.get("reject") or []
    if not isinstance(rejects, list):
        raise _fail(f"reject must be a list, got {rejects!r}", file)
    paths = data.get("fieldPaths") or [_DEFAULT_FIELD_PATH]
    if not isinstance(paths, list):
        raise _fail(f"fieldPaths must be a list, got {paths!r}", file)
    return _Target(
        select=_selector(data["select"], "select", file),
        reject=tuple(_selector(reject, "reject", file) for reject in rejects),
        field_paths=tuple(str(path) for path in paths),
        options=_options(data.get("options"), file),
    )


# -- identities and selection ---------------------------------------------------------


def _ids(resource: Resource) -> list[ResId]:
    current = resource.id
    ids = [current]
    for name in (*resource.previous_names, resource.original_name):
        earlier = current._replace(name=name, namespace=resource.original_namespace)
        if earlier not in ids:
            ids.append(earlier)
    if resource.original_namespace != current.namespace:
        moved = current._replace(namespace=resource.original_namespace)
        if moved not in ids:
            ids.append(moved)
    return ids


def _selected_by_labels(resource: Resource, selector: _Selector, file: str) -> bool:
    metadata = resource.obj.get("metadata") or {}
    return _matches_selector(
        metadata.get("labels") or {}, selector.label_selector, file
    ) and _matches_selector(metadata.get("annotations") or {}, selector.annotation_selector, file)


def _is_target(resource: Resource, target: _Target, file: str) -> bool:
    if not _selected_by_labels(resource, target.select, file):
        return False
    for reject in target.reject:
        if (reject.label_selector or reject.annotation_selector) and _selected_by_labels(
            resource, reject, file
        ):
            return False
    ids = _ids(resource)
    for reject in target.reject:
        if not reject.id.is_empty() and any(reject.id.selects(rid) for rid in ids):
            return False
    return any(target.select.id.selects(rid) for rid in ids)


_REQUIREMENT = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[^\s!=,()]+)\s*"
    r"(?:(?P<op>==|!=|=|in(?=\s*\()|notin(?=\s*\())\s*(?P<value>\([^)]*\)|[^\s,()]*))?\s*$"
)


def _split_requirements(selector: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def _matches_selector(values: Mapping[str, Any], selector: str, file: str) -> bool:
    """Kubernetes label-selector syntax (``a=b,c!=d,e in (f,g),!h``) over ``values``."""
    for requirement in _split_requirements(selector):
        found = _REQUIREMENT.match(requirement)
        if not found or (found["neg"] and found["op"]):
            raise _fail(f"unable to parse requirement {requirement.strip()!r} of selector", file)
        key, op = found["key"], (found["op"] or "").strip()
        present = key in values
        actual = scalar_text(values.get(key))
        if not op:
            if present == bool(found["neg"]):
                return False
            continue
        raw = found["value"] or ""
        wanted = [item.strip() for item in raw[1:-1].split(",")] if raw.startswith("(") else [raw]
        if op in ("=", "==", "in"):
            if not present or actual not in wanted:
                return False
        elif present and actual in wanted:
            return False
    return True


# -- reading the source -----------------------------------------------------------------


def _source_value(resources: list[Resource], replacement: _Replacement, file: str) -> Any:
    if replacement.source_value is not None:
        return replacement.source_value
    selector = replacement.source
    assert selector is not None
    matches = [r for r in resources if any(selector.selects(rid) for rid in _ids(r))]
    # kustomize prints the source selector with the field path it was given, if any.
    described = (
        f"{selector}:{replacement.given_field_path}"
        if replacement.given_field_path
        else f"{selector}"
    )
    if len(matches) > 1:
        raise _fail(f"multiple matches for selector {described}", file)
    if not matches:
        raise _fail(f"nothing selected by {described}", file)
    try:
        value = lookup(matches[0].obj, replacement.field_path)
    except PathError as exc:
        raise _fail(f"error looking up replacement source: {exc}", file) from exc
    if value is None or value == {} or value == []:
        raise _fail(
            f"fieldPath `{replacement.field_path}` is missing for replacement source {selector}",
            file,
        )
    return _refine(value, replacement.source_options, file)


def _refine(value: Any, options: _Options, file: str) -> Any:
    if not options.delimiter:
        return value
    if isinstance(value, dict | list):
        raise _fail("delimiter option can only be used with scalar nodes", file)
    text = scalar_text(value)
    parts = text.split(options.delimiter)
    if not 0 <= options.index < len(parts):
        raise _fail(f"options.index {options.index} is out of bounds for value {text}", file)
    part = parts[options.index]
    return part if isinstance(value, str) else _retype(value, part, file)


# -- writing the targets ----------------------------------------------------------------


def _create_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "seq"
    return "scalar"


def _apply_target(resources: list[Resource], value: Any, target: _Target, file: str) -> None:
    for resource in resources:
        if not _is_target(resource, target, file):
            continue
        for path in target.field_paths:
            _write(resource, path, value, target.options, file)


def _write(resource: Resource, path: str, value: Any, options: _Options, file: str) -> None:
    create = _create_kind(value) if options.create else None
    verb = "find or create" if create else "find"
    try:
        slots = match(resource.obj, path, create=create)
    except PathError as exc:
        raise _fail(f'unable to {verb} field "{path}" in replacement target: {exc}', file) from exc
    if not slots:
        raise _fail(f'unable to {verb} field "{path}" in replacement target', file)
    for slot in slots:
        current = slot.value
        scalar_target = not isinstance(current, dict | list)
        new = value
        if options.delimiter:
            if not scalar_target:
                raise _fail("delimiter option can only be used with scalar nodes", file)
            new = _splice(current, value, options)
        if scalar_target:
            text = "" if isinstance(new, dict | list) else scalar_text(new)
            slot.set(_retype(current, text, file))
        else:
            slot.set(copy.deepcopy(new))


def _splice(current: Any, value: Any, options: _Options) -> str:
    parts = ("" if current is CREATED else scalar_text(current)).split(options.delimiter)
    text = "" if isinstance(value, dict | list) else scalar_text(value)
    if options.index < 0:
        parts.insert(0, text)
    elif options.index >= len(parts):
        parts.append(text)
    else:
        parts[options.index] = text
    return options.delimiter.join(parts)


def _tag(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def _retype(current: Any, text: str, file: str) -> Any:
    """``text`` as a value of ``current``'s YAML type (kyaml keeps a scalar's tag)."""
    if current is CREATED:
        return resolve_plain(text) if text else text
    if isinstance(current, str):
        return text
    resolved = resolve_plain(text) if text else None
    want = _tag(current)
    if want == _tag(resolved) or (want == "float" and _tag(resolved) == "int"):
        return resolved
    raise _fail(
        f"cannot decode !!{_tag(resolved) if text else 'str'} `{text}` as a !!{want} "
        f"(the replacement target is a {kind_name(current)} of type {want})",
        file,
    )
