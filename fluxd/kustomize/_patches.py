"""The patch stage: ``patchesStrategicMerge``, ``patches`` and ``patchesJson6902``.

What kustomize 5.7 does, in its order:

- ``patchesStrategicMerge`` entries are file paths or inline YAML; a file may hold
  several patches. Each patch applies to the one resource with the patch's own group,
  version, kind, name and namespace (a missing namespace is ``default``; the resource's
  original name, before prefixes and suffixes, works too). No such resource is an error.
- ``patches`` entries have an inline ``patch`` or a ``path``, an optional ``target`` and
  ``options`` (``allowNameChange``, ``allowKindChange``). The content is a strategic
  merge patch when it is YAML maps, a JSON 6902 patch when it is a list of operations.
  A strategic merge patch without ``target`` finds its resource as above; with one, it
  applies to every selected resource. A JSON patch needs a ``target``. A target that
  selects nothing is not an error.
- ``patchesJson6902`` entries have a ``target`` (which must name the resource) and a
  ``patch`` or ``path``. The build runs them later than the other two, after names,
  namespaces and labels are set, which is why :func:`apply_patches` takes whichever of
  the fields it is given.

A strategic merge patch keeps the resource's name and kind (unless the options allow a
change), its namespace, and its apiVersion; a JSON patch may change anything.

Errors name the kustomization file and the entry (``patches[1]``). Entries an overlay
appended (after the file's own) are named as the overlay's author wrote them,
``spec.patches[0]`` for an overlay named ``spec``, with no file: the file does not hold
them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fluxd.kustomize import _documents
from fluxd.kustomize._builtins import is_cluster_scoped
from fluxd.kustomize._json6902 import apply_json_patch, parse_operations
from fluxd.kustomize._model import KustomizeError, Resource
from fluxd.kustomize._selector import Selector
from fluxd.kustomize._strategic_merge import strategic_merge

__all__ = ["apply_patches"]

_PATCH_FIELDS = frozenset({"path", "patch", "target", "options"})
_JSON6902_FIELDS = frozenset({"path", "patch", "target"})


@dataclass
class _Patch:
    """One loaded patch: either a strategic merge document or JSON 6902 operations."""

    source: str
    field: str
    #: The kustomization file holding the entry; None for one an overlay appended.
    file: str | None
    strategic: dict[str, Any] | None = None
    operations: list[dict[str, Any]] | None = None
    target: Selector | None = None
    allow_name_change: bool = False
    allow_kind_change: bool = False
    #: ``patches`` records a JSON patch's rename for name references; ``patchesJson6902``
    #: does not (kustomize 5.7's PatchJson6902Transformer never stores the previous id).
    record_rename: bool = True


def apply_patches(
    resources: list[Resource],
    kustomization: Mapping[str, Any],
    *,
    read_file: Callable[[str], bytes],
    kustomization_file: str,
    overlay_entries: Mapping[str, int] | None = None,
    overlay_name: str = "",
) -> list[Resource]:
    """Apply the kustomization's patch fields to ``resources``; returns the new list.

    Handles whichever of ``patchesStrategicMerge``, ``patches`` and ``patchesJson6902``
    are present, in that order. Patched resources are updated in place; resources a
    patch deletes (``$patch: delete``) are left out of the result. ``overlay_entries``
    says where, per field, the entries overlay ``overlay_name`` appended start.
    """
    loader = _Loader(read_file, kustomization_file, overlay_entries or {}, overlay_name)
    patches: list[_Patch] = []
    patches += loader.strategic_merge_entries(kustomization.get("patchesStrategicMerge"))
    patches += loader.patch_entries(kustomization.get("patches"))
    patches += loader.json6902_entries(kustomization.get("patchesJson6902"))
    result = list(resources)
    for patch in patches:
        result = _apply(patch, result)
    return result


# --- loading ------------------------------------------------------------------------------


class _Loader:
    def __init__(
        self,
        read_file: Callable[[str], bytes],
        kustomization_file: str,
        overlay_entries: Mapping[str, int],
        overlay_name: str,
    ) -> None:
        self.read_file = read_file
        self.file = kustomization_file
        self.overlay_entries = overlay_entries
        self.overlay_prefix = f"{overlay_name}."

    def field_of(self, key: str, index: int) -> str:
        start = self.overlay_entries.get(key)
        if start is not None and index >= start:
            return f"{self.overlay_prefix}{key}[{index - start}]"
        return f"{key}[{index}]"

    def file_of(self, field: str) -> str | None:
        return None if field.startswith(self.overlay_prefix) else self.file

    def error(self, message: str, field: str) -> KustomizeError:
        return KustomizeError(message, file=self.file_of(field), field=field)

    def read(self, path: Any, field: str) -> tuple[bytes, str]:
        if not isinstance(path, str) or not path:
            raise self.error("a patch path must be a non-empty string", field)
        try:
            return self.read_file(path), path
        except KustomizeError as exc:
            reason = str(exc).removesuffix(f" (in {exc.file})") if exc.file else str(exc)
            raise self.error(f"cannot read the patch file {path!r}: {reason}", field) from exc

    def entries(self, value: Any, field: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(f"{field} must be a list", field)
        return value

    def strategic_merge_entries(self, value: Any) -> list[_Patch]:
        patches: list[_Patch] = []
        for index, entry in enumerate(self.entries(value, "patchesStrategicMerge")):
            field = self.field_of("patchesStrategicMerge", index)
            if not isinstance(entry, str) or not entry.strip():
                raise self.error("a patchesStrategicMerge entry must be a path or YAML", field)
            # Like kustomize: an entry that parses as patches is one, else it is a path.
            source = f"{field} (inline)"
            documents = self.inline_patches(entry, source)
            if documents is None:
                content, source = self.read(entry.strip(), field)
                documents = self.documents(content, source, field)
            if not all(isinstance(document, dict) for document in documents):
                raise self.error(f"{source} must hold strategic merge patches (YAML maps)", field)
            for document in documents:
                patches.append(self.strategic(document, source, field))
        return patches

    def inline_patches(self, entry: str, source: str) -> list[Any] | None:
        try:
            documents = _load_any(entry.encode(), source)
        except KustomizeError:
            return None
        if documents and all(_looks_like_patch(document) for document in documents):
            return documents
        return None

    def map_entries(
        self, value: Any, key: str, fields: frozenset[str]
    ) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """Each entry of list field ``key`` with its name, checked to be a map of ``fields``."""
        for index, entry in enumerate(self.entries(value, key)):
            field = self.field_of(key, index)
            if not isinstance(entry, Mapping):
                raise self.error(f"a {key} entry must be a map", field)
            self.known(entry, fields, field)
            yield field, entry

    def patch_entries(self, value: Any) -> list[_Patch]:
        patches: list[_Patch] = []
        for field, entry in self.map_entries(value, "patches", _PATCH_FIELDS):
            content, source = self.content(entry, field)
            target = self.target(entry.get("target"), f"{field}.target")
            options = entry.get("options") or {}
            if not isinstance(options, Mapping):
                raise self.error("patch options must be a map", f"{field}.options")
            documents = self.documents(content, source, field)
            if len(documents) == 1 and isinstance(documents[0], list):
                if target is None:
                    raise self.error(
                        f"the JSON patch {source} needs a target (group, version, kind, name...)",
                        field,
                    )
                operations = parse_operations(documents[0], source=source)
                patches.append(
                    _Patch(source, field, self.file_of(field), operations=operations, target=target)
                )
                continue
            if not all(isinstance(document, dict) for document in documents):
                raise self.error(
                    f"unable to parse {source} as a strategic merge patch (YAML maps) or a "
                    "JSON 6902 patch (a list of operations)",
                    field,
                )
            if target is not None and len(documents) > 1:
                raise self.error(
                    f"{source} holds {len(documents)} strategic merge patches; an entry with "
                    "a target may hold only one",
                    field,
                )
            for document in documents:
                patch = self.strategic(document, source, field)
                patch.target = target
                patch.allow_name_change = bool(options.get("allowNameChange"))
                patch.allow_kind_change = bool(options.get("allowKindChange"))
                patches.append(patch)
        return patches

    def json6902_entries(self, value: Any) -> list[_Patch]:
        patches: list[_Patch] = []
        for field, entry in self.map_entries(value, "patchesJson6902", _JSON6902_FIELDS):
            target = self.target(entry.get("target"), f"{field}.target")
            if target is None or not target.name:
                raise self.error("a patchesJson6902 target must name the resource", field)
            content, source = self.content(entry, field)
            documents = self.documents(content, source, field)
            if len(documents) != 1 or not documents[0]:
                raise self.error(f"{source} holds no JSON 6902 operations", field)
            try:
                operations = parse_operations(documents[0], source=source)
            except KustomizeError as exc:
                raise self.error(str(exc), field) from exc
            patches.append(
                _Patch(
                    source,
                    field,
                    self.file_of(field),
                    operations=operations,
                    target=target,
                    record_rename=False,
                )
            )
        return patches

    def known(self, entry: Mapping[str, Any], fields: frozenset[str], field: str) -> None:
        unknown = sorted(str(key) for key in entry if key not in fields)
        if unknown:
            raise self.error(
                f"unknown field(s) {', '.join(unknown)}; known are {', '.join(sorted(fields))}",
                field,
            )

    def content(self, entry: Mapping[str, Any], field: str) -> tuple[bytes, str]:
        inline, path = entry.get("patch"), entry.get("path")
        if isinstance(inline, str) and not inline.strip():
            inline = None
        if path == "":
            path = None
        if inline is not None and path is not None:
            raise self.error("patch and path can't be set at the same time", field)
        if path is not None:
            return self.read(path, f"{field}.path")
        if inline is None:
            raise self.error("must specify one of patch and path", field)
        if not isinstance(inline, str):
            raise self.error("an inline patch must be a string", f"{field}.patch")
        return inline.encode(), f"{field}.patch (inline)"

    def documents(self, content: bytes, source: str, field: str) -> list[Any]:
        try:
            return _load_any(content, source)
        except KustomizeError as exc:
            raise self.error(str(exc), field) from exc

    def target(self, value: Any, field: str) -> Selector | None:
        if value is None:
            return None
        return Selector.from_config(value, file=self.file_of(field), field=field)

    def strategic(self, document: dict[str, Any], source: str, field: str) -> _Patch:
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if not isinstance(name, str) or not name or not document.get("kind"):
            raise self.error(
                f"the strategic merge patch in {source} needs kind and metadata.name", field
            )
        return _Patch(source, field, self.file_of(field), strategic=document)


def _load_any(content: bytes, source: str) -> list[Any]:
    """The non-empty YAML documents in ``content``, maps or lists (a JSON patch is a list).

    Strategic merge patches are read as kustomize reads resources (kyaml's round trip of
    block scalars); JSON 6902 patches are decoded as they are written.
    """
    documents = _documents.load_values(content, source=source)
    if any(_looks_like_patch(document) for document in documents):
        return _documents.load_values(content, source=source, kyaml_round_trip=True)
    return documents


def _looks_like_patch(document: Any) -> bool:
    if not isinstance(document, dict) or not document.get("kind"):
        return False
    metadata = document.get("metadata")
    return isinstance(metadata, dict) and bool(metadata.get("name"))


# --- applying -----------------------------------------------------------------------------


def _apply(patch: _Patch, resources: list[Resource]) -> list[Resource]:
    if patch.target is not None:
        targets = patch.target.select(resources)
    else:
        assert patch.strategic is not None
        targets = [_unique_target(patch, patch.strategic, resources)]
    deleted: set[int] = set()
    for resource in targets:
        try:
            if patch.operations is not None:
                _apply_json(patch.operations, resource, record_rename=patch.record_rename)
            elif not _apply_strategic(patch, resource):
                deleted.add(id(resource))
        except KustomizeError as exc:
            raise KustomizeError(
                f"applying the patch {patch.source} to {resource.id}: {exc}",
                file=patch.file,
                field=patch.field,
            ) from exc
    return [resource for resource in resources if id(resource) not in deleted]


def _apply_strategic(patch: _Patch, resource: Resource) -> bool:
    """Merge the patch into ``resource``; False when the patch deletes it."""
    assert patch.strategic is not None
    obj = resource.obj
    name, kind = resource.name, obj.get("kind")
    namespace = (obj.get("metadata") or {}).get("namespace")
    document = copy.deepcopy(patch.strategic)
    if "apiVersion" in obj:
        document["apiVersion"] = obj["apiVersion"]
    group, _, version = str(obj.get("apiVersion") or "").rpartition("/")
    merged = strategic_merge(obj, document, gvk=(group, version, str(kind or "")))
    if merged is None:
        return False
    if not patch.allow_kind_change:
        merged["kind"] = kind
    metadata = merged.get("metadata")
    if not isinstance(metadata, dict):
        metadata = merged["metadata"] = {}
    new_name = metadata.get("name")
    metadata["name"] = name
    if namespace:
        metadata["namespace"] = namespace
    else:
        metadata.pop("namespace", None)
    resource.obj = merged
    if patch.allow_name_change and isinstance(new_name, str) and new_name != name:
        resource.rename(new_name)
    return True


def _apply_json(
    operations: list[dict[str, Any]], resource: Resource, *, record_rename: bool
) -> None:
    name = resource.name
    result = apply_json_patch(resource.obj, operations)
    if not isinstance(result, dict):
        raise KustomizeError("the JSON patch did not leave an object")
    resource.obj = result
    new_name = resource.name
    if record_rename and new_name != name:
        # Record the old name for name-reference rewriting, as kustomize does.
        resource.obj.setdefault("metadata", {})["name"] = name
        resource.rename(new_name)


def _unique_target(patch: _Patch, document: dict[str, Any], resources: list[Resource]) -> Resource:
    group, _, version = str(document.get("apiVersion") or "").rpartition("/")
    kind = str(document.get("kind") or "")
    metadata = document.get("metadata") or {}
    name = str(metadata.get("name") or "")
    namespace = str(metadata.get("namespace") or "")
    cluster_scoped = is_cluster_scoped(document)
    wanted_namespace = _effective_namespace(namespace, cluster_scoped)
    found = [
        resource
        for resource in resources
        if _gvk(resource.obj) == (group, version, kind)
        and name in {resource.name, resource.original_name, *resource.previous_names}
        and wanted_namespace
        in {
            _effective_namespace(resource.original_namespace, cluster_scoped),
            _effective_namespace(
                str((resource.obj.get("metadata") or {}).get("namespace") or ""), cluster_scoped
            ),
        }
    ]
    if len(found) == 1:
        return found[0]
    patch_id = _id_string(group, version, kind, name, namespace)
    problem = "no matches" if not found else "multiple matches"
    raise KustomizeError(
        f"no resource matches strategic merge patch {patch_id!r} from {patch.source}: "
        f"{problem} for Id {patch_id}; failed to find unique target for patch",
        file=patch.file,
        field=patch.field,
    )


def _gvk(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    group, _, version = str(obj.get("apiVersion") or "").rpartition("/")
    return group, version, str(obj.get("kind") or "")


def _effective_namespace(namespace: str, cluster_scoped: bool) -> str:
    if cluster_scoped:
        return ""
    return namespace or "default"


def _id_string(group: str, version: str, kind: str, name: str, namespace: str) -> str:
    """A resource id written the way kustomize writes it in errors."""
    gvk = f"{kind}.{version or '[noVer]'}.{group or '[noGrp]'}"
    return f"{gvk}/{name}.{namespace or '[noNs]'}"
