"""One kustomize build, in the order kustomize v5.7 runs it.

For each kustomization, depth first (kustomize's ``accumulateTarget``):

1. ``resources`` — files (every document; ``*List`` kinds unpacked) and directories,
   each of which is built the same way, on its own, and its output appended;
2. ``components`` — each runs this whole list *on the resources gathered so far*
   (that is what makes a component different from a base);
3. ``configurations`` and ``crds`` — extra field specs for the tables the transformers
   and name references use (an OpenAPI definitions file marks them with
   ``x-kubernetes-*`` extensions); they stay in force for the parents too;
4. generators — ``configMapGenerator``, ``secretGenerator``, then ``generators:`` configs;
5. built-in transformers — strategic-merge and ``patches``, ``namespace``, ``namePrefix``,
   ``nameSuffix``, ``labels`` then ``commonLabels``, ``commonAnnotations``,
   ``patchesJson6902``, ``replicas``, ``images``, ``replacements``;
6. ``transformers:`` configs; then ``vars`` are remembered and local-config objects dropped.

Once, at the top: content-hash suffixes for generated objects, references rewritten to
the final names, ``vars`` substituted, ``buildMetadata`` honoured (origin annotations, the
managed-by label), and the output sorted (``sortOptions``, by default kustomize's legacy
kind order). The top kustomization's ``openapi: {path: FILE}`` schema replaces the
built-in one for every strategic merge of the build. Appending an object whose id is
already present fails the build, as in kustomize; so does a kustomization that includes
itself, directly or not.

``buildMetadata: [transformerAnnotations]`` lists, in each object's
``alpha.config.kubernetes.io/transformations`` annotation, every transformer that ran
over it, changed or not, as kustomize does: one per configured builtin (one per
``patches``, ``images``, ``replicas``, ``patchesJson6902`` and ``labels`` entry, one
more for ``commonLabels`` whenever either label field is set) and one per
``transformers:`` config, each with the kustomization file (or config file) it came from.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from fluxd.kustomize import _builtins, _loader
from fluxd.kustomize._documents import load_documents
from fluxd.kustomize._fieldspec import FieldSpec
from fluxd.kustomize._generators import run_generators
from fluxd.kustomize._images import IMAGES_SPECS, apply_images
from fluxd.kustomize._loader import Files, Kustomization, Overlay
from fluxd.kustomize._model import KustomizeError, Resource
from fluxd.kustomize._nameref import (
    NAME_REFERENCES,
    NameReference,
    apply_hash_suffixes,
    fix_name_references,
)
from fluxd.kustomize._order import sort_resources
from fluxd.kustomize._patch_keys import custom_schema
from fluxd.kustomize._patches import apply_patches
from fluxd.kustomize._replacements import apply_replacements
from fluxd.kustomize._replicas import REPLICAS_SPECS, apply_replicas
from fluxd.kustomize._transformers_field import run_generator_configs, run_transformer_configs
from fluxd.kustomize._vars import VAR_REFERENCE_SPECS, apply_vars

__all__ = ["build_files", "kustomize_id"]

#: Annotations kustomize uses internally and strips from its output.
_INTERNAL_ANNOTATIONS = (
    "config.kubernetes.io/index",
    "config.kubernetes.io/path",
    "config.k8s.io/id",
)
_INTERNAL_ANNOTATION_PREFIX = "internal.config.kubernetes.io/"
_LOCAL_CONFIG = "config.kubernetes.io/local-config"
_ORIGIN = "config.kubernetes.io/origin"
_TRANSFORMATIONS = "alpha.config.kubernetes.io/transformations"
_MANAGED_BY = "app.kubernetes.io/managed-by"
#: What kustomize writes as managed-by: its own version, which fluxd's output matches.
_MANAGED_BY_VALUE = "kustomize-v5.7.1"

#: The field spec tables a ``configurations:`` file may extend, with kustomize's defaults
#: (``nameReference`` is kept apart: its rows have a different shape).
_DEFAULT_TABLES: dict[str, tuple[FieldSpec, ...]] = {
    "namePrefix": _builtins.NAME_PREFIX_SPECS,
    "nameSuffix": _builtins.NAME_SUFFIX_SPECS,
    "namespace": _builtins.NAMESPACE_SPECS,
    "commonLabels": _builtins.COMMON_LABELS_SPECS,
    "templateLabels": _builtins.TEMPLATE_LABELS_SPECS,
    "commonAnnotations": _builtins.COMMON_ANNOTATIONS_SPECS,
    "images": IMAGES_SPECS,
    "replicas": REPLICAS_SPECS,
    "varReference": VAR_REFERENCE_SPECS,
}


@dataclass
class _Accumulator:
    """What a kustomization hands to its parent: objects, field spec tables, vars."""

    resources: list[Resource] = field(default_factory=list)
    tables: dict[str, tuple[FieldSpec, ...]] = field(default_factory=lambda: dict(_DEFAULT_TABLES))
    name_references: tuple[NameReference, ...] = NAME_REFERENCES
    vars: list[dict[str, Any]] = field(default_factory=list)

    def merge_all(self, children: Iterable[_Accumulator], *, file: str) -> None:
        """Merge each child in turn; an id already present fails the build, as in kustomize.

        The ids are indexed once for the whole sequence, so a kustomization listing
        thousands of files stays linear.
        """
        known = {_builtins.identity_key(existing.obj): existing for existing in self.resources}
        for child in children:
            for resource in child.resources:
                key = _builtins.identity_key(resource.obj)
                existing = known.get(key)
                if existing is not None:
                    raise KustomizeError(
                        "may not add resource with an already registered id:"
                        f" {kustomize_id(resource.obj)} (from {resource.origin}; first from"
                        f" {existing.origin})",
                        file=file,
                    )
                known[key] = resource
                self.resources.append(resource)
            for name, specs in child.tables.items():
                self.tables[name] = _builtins.merge_specs(self.tables.get(name, ()), specs)
            self.merge_name_references(child.name_references)
            self.merge_vars(child.vars, file=file)

    def append_all(self, resources: list[Resource], *, file: str) -> None:
        """Append one file's objects, refusing duplicate ids."""
        self.merge_all([_Accumulator(resources=resources, tables={})], file=file)

    def merge_name_references(self, incoming: tuple[NameReference, ...]) -> None:
        """Add referrer paths; a target already in the table gains the new ones."""
        if incoming is NAME_REFERENCES:
            return  # every table starts from the defaults and only grows
        table = list(self.name_references)
        for reference in incoming:
            for index, known in enumerate(table):
                if known.target == reference.target:
                    referrers = _merge_unique(known.referrers, reference.referrers)
                    table[index] = NameReference(known.target, referrers)
                    break
            else:
                table.append(reference)
        self.name_references = tuple(table)

    def merge_vars(self, incoming: list[dict[str, Any]], *, file: str) -> None:
        names = {var.get("name") for var in self.vars}
        for var in incoming:
            if not isinstance(var, dict):
                raise KustomizeError("every vars entry must be a map", file=file, field="vars")
            if var.get("name") in names:
                raise KustomizeError(f"var '{var.get('name')}' already encountered", file=file)
            names.add(var.get("name"))
            self.vars.append(var)


def _merge_unique(
    first: tuple[FieldSpec, ...], second: tuple[FieldSpec, ...]
) -> tuple[FieldSpec, ...]:
    return first + tuple(spec for spec in second if spec not in first)


def kustomize_id(obj: Mapping[str, Any]) -> str:
    """An object's id as kustomize prints it: ``Kind.version.group/name.namespace``."""
    group, _, version = str(obj.get("apiVersion") or "").rpartition("/")
    metadata = obj.get("metadata") or {}
    return (
        f"{obj.get('kind') or '[noKind]'}.{version or '[noVer]'}.{group or '[noGrp]'}"
        f"/{metadata.get('name') or '[noName]'}.{metadata.get('namespace') or '[noNs]'}"
    )


class _Builder:
    def __init__(
        self,
        files: Files,
        *,
        top: str = ".",
        origins: bool = False,
        transformations: bool = False,
    ) -> None:
        self.files = files
        self._stack: list[str] = []
        #: The build's directory: origins and transformations name paths relative to it.
        self.top = top
        #: Whether ``buildMetadata: [originAnnotations]`` asks each object for its source.
        self.origins = origins
        #: Whether ``buildMetadata: [transformerAnnotations]`` asks each object for the
        #: transformers that ran over it.
        self.transformations = transformations

    def _set_origin(self, resource: Resource, origin: str) -> None:
        metadata = resource.obj.setdefault("metadata", {})
        annotations = metadata.get("annotations")
        if not isinstance(annotations, dict):
            annotations = metadata["annotations"] = {}
        annotations[_ORIGIN] = origin

    def _record(
        self, resources: Iterable[Resource], configured_in: str, configured_by: str, times: int = 1
    ) -> None:
        """Add a transformer to the transformations annotation of each of ``resources``.

        Kustomize records every transformer a kustomization configures on every object
        it runs over, changed or not: ``configured_by`` is the YAML of the transformer's
        identity (``apiVersion``, ``kind``, then ``name``/``namespace`` for a config).
        """
        if not self.transformations or times == 0:
            return
        entry = f"- configuredIn: {self._relative(configured_in)}\n  configuredBy:\n"
        entry += "".join(f"    {line}\n" for line in configured_by.splitlines())
        for resource in resources:
            metadata = resource.obj.setdefault("metadata", {})
            annotations = metadata.get("annotations")
            if not isinstance(annotations, dict):
                annotations = metadata["annotations"] = {}
            annotations[_TRANSFORMATIONS] = annotations.get(_TRANSFORMATIONS, "") + entry * times

    def _record_builtin(
        self, resources: Iterable[Resource], k: Kustomization, kind: str, times: int = 1
    ) -> None:
        self._record(resources, k.file, f"apiVersion: builtin\nkind: {kind}", times)

    def _relative(self, path: str) -> str:
        return posixpath.relpath(path, self.top)

    # -- loading ---------------------------------------------------------------------

    def kustomization(self, directory: str, *, referrer: str | None) -> Kustomization:
        kustomization = _loader.read_kustomization(self.files, directory)
        if kustomization is None:
            names = "', '".join(_loader.KUSTOMIZATION_FILE_NAMES)
            raise KustomizeError(
                f"unable to find one of '{names}' in directory '{directory}'",
                file=referrer,
            )
        return kustomization

    def reader(self, kustomization: Kustomization) -> _loader.ReadFile:
        def read_file(reference: str) -> bytes:
            path = _loader.resolve(
                kustomization.directory,
                reference,
                kustomization_file=kustomization.file,
                field="path",
            )
            if not self.files.is_file(path):
                raise KustomizeError(f"file {reference!r} not found", file=kustomization.file)
            return self.files.read(path)

        return read_file

    # -- the recursion -----------------------------------------------------------------

    def accumulate(self, kustomization: Kustomization, acc: _Accumulator) -> _Accumulator:
        """Run ``kustomization`` over ``acc`` (empty, or a component's parent's)."""
        if kustomization.directory in self._stack:
            cycle = " -> ".join([*self._stack, kustomization.directory])
            raise KustomizeError(f"cycle in kustomizations: {cycle}", file=kustomization.file)
        self._stack.append(kustomization.directory)
        try:
            return self._accumulate(kustomization, acc)
        finally:
            self._stack.pop()

    def _accumulate(self, k: Kustomization, acc: _Accumulator) -> _Accumulator:
        data = k.data
        acc.merge_all(
            (self._load(k, reference, field="resources") for reference in k.paths("resources")),
            file=k.file,
        )
        for reference in k.paths("components"):
            acc = self._component(k, reference, acc)
        for reference in k.paths("configurations"):
            self._merge_configuration(k, reference, acc)
        for reference in k.paths("crds"):
            self._merge_crd_schema(k, reference, acc)

        read_file = self.reader(k)
        if data.get("configMapGenerator") or data.get("secretGenerator"):
            before = {_builtins.identity_key(resource.obj) for resource in acc.resources}
            acc.resources = run_generators(
                acc.resources, data, read_file=read_file, kustomization_file=k.file
            )
            if self.origins:
                for resource in acc.resources:
                    if _builtins.identity_key(resource.obj) not in before:
                        kind = f"{resource.obj.get('kind')}Generator"
                        self._set_origin(
                            resource,
                            f"configuredIn: {self._relative(k.file)}\nconfiguredBy:\n"
                            f"  apiVersion: builtin\n  kind: {kind}\n",
                        )
        generator_configs = self._plugin_configs(k, "generators")
        if generator_configs:
            acc.resources = run_generator_configs(
                acc.resources,
                [config.obj for config in generator_configs],
                read_file=read_file,
                kustomization_file=k.file,
            )
        acc.resources = self._builtin_transformers(k, acc, read_file)
        transformer_configs = self._plugin_configs(k, "transformers")
        for config in transformer_configs:
            acc.resources = run_transformer_configs(
                acc.resources,
                [config.obj],
                read_file=read_file,
                kustomization_file=k.file,
                config_file=config.origin,
            )
            self._record(acc.resources, config.origin, _identity_yaml(config.obj))
        if k.paths("validators"):
            raise KustomizeError(
                "validators are exec or Go plugins, which are disabled",
                file=k.file,
                field="validators",
            )
        acc.merge_vars(list(data.get("vars") or []), file=k.file)
        acc.resources = [r for r in acc.resources if not _is_local_config(r)]
        return acc

    def _read(self, k: Kustomization, reference: str, field: str) -> bytes:
        path = _loader.resolve(k.directory, reference, kustomization_file=k.file, field=field)
        if not self.files.is_file(path):
            raise KustomizeError(f"file {reference!r} not found", file=k.file, field=field)
        return self.files.read(path)

    def _load(self, k: Kustomization, reference: str, *, field: str) -> _Accumulator:
        """The objects ``reference`` (a file or a kustomization directory) stands for."""
        path = _loader.resolve(k.directory, reference, kustomization_file=k.file, field=field)
        if self.files.is_file(path):
            acc = _Accumulator()
            loaded = _loader.load_resources(self.files, path)
            if self.origins:
                for resource in loaded:
                    self._set_origin(resource, f"path: {self._relative(path)}\n")
            acc.append_all(loaded, file=k.file)
            return acc
        if self.files.is_dir(path):
            child = self.kustomization(path, referrer=k.file)
            if child.is_component:
                raise KustomizeError(
                    f"expected kind != 'Component' for path '{path}': list components under"
                    " components:, not resources:",
                    file=k.file,
                    field=field,
                )
            return self.accumulate(child, _Accumulator())
        if _loader.looks_remote(reference):
            raise KustomizeError(
                f"remote {field} entry {reference!r} is not supported: fluxd builds only from"
                " the source artifact (vendor the remote base into the repository, or add it"
                " as its own GitRepository/OCIRepository source)",
                file=k.file,
                field=field,
            )
        raise KustomizeError(
            f"{field} entry {reference!r} not found: no file or directory {path!r} in the"
            " source artifact",
            file=k.file,
            field=field,
        )

    def _component(self, k: Kustomization, reference: str, acc: _Accumulator) -> _Accumulator:
        path = _loader.resolve(
            k.directory, reference, kustomization_file=k.file, field="components"
        )
        if not self.files.is_dir(path):
            if _loader.looks_remote(reference):
                raise KustomizeError(
                    f"remote component {reference!r} is not supported: fluxd builds only from"
                    " the source artifact",
                    file=k.file,
                    field="components",
                )
            raise KustomizeError(
                f"component {reference!r} not found: no directory {path!r} in the source artifact",
                file=k.file,
                field="components",
            )
        component = self.kustomization(path, referrer=k.file)
        if not component.is_component:
            raise KustomizeError(
                f"expected kind 'Component' for path '{path}' but got"
                f" '{component.data.get('kind') or 'Kustomization'}'",
                file=k.file,
                field="components",
            )
        return self.accumulate(component, acc)

    def _merge_configuration(self, k: Kustomization, reference: str, acc: _Accumulator) -> None:
        for document in load_documents(
            self._read(k, reference, "configurations"), source=reference
        ):
            if not isinstance(document, dict):
                raise KustomizeError(
                    f"configuration {reference!r} must be a map of field spec lists",
                    file=k.file,
                    field="configurations",
                )
            for name, entries in document.items():
                if name == "nameReference":
                    acc.merge_name_references(_name_references(entries, reference, k.file))
                    continue
                if name not in _DEFAULT_TABLES:
                    raise KustomizeError(
                        f"configurations: unknown field spec table {name!r} in {reference}",
                        file=k.file,
                        field="configurations",
                    )
                specs = _field_specs(entries, f"configurations {reference} {name}", k.file)
                acc.tables[name] = _builtins.merge_specs(acc.tables[name], specs)

    def _merge_crd_schema(self, k: Kustomization, reference: str, acc: _Accumulator) -> None:
        """Field specs from an OpenAPI definitions file, as kustomize's ``crds:`` reads it.

        The file maps Go type names to ``{Schema: {properties: ...}}``. For each type that
        looks like an object (apiVersion, kind, metadata), properties marked with
        ``x-kubernetes-annotation``, ``x-kubernetes-label-selector``,
        ``x-kubernetes-identity`` or ``x-kubernetes-object-ref-*`` extend the
        annotations, labels, name prefix and name reference tables; ``$ref`` properties
        are followed into the definitions they name.
        """
        documents = load_documents(self._read(k, reference, "crds"), source=reference)
        definitions = documents[0] if documents else {}
        for type_name, definition in definitions.items():
            properties = _schema_properties(definition)
            if not {"apiVersion", "kind", "metadata"} <= properties.keys():
                continue
            kind = str(type_name).rsplit(".", 1)[-1]
            self._crd_properties(acc, definitions, kind, str(type_name), [], set())

    def _crd_properties(
        self,
        acc: _Accumulator,
        definitions: Mapping[str, Any],
        kind: str,
        type_name: str,
        path: list[str],
        seen: set[str],
    ) -> None:
        if type_name in seen or type_name not in definitions:
            return
        seen = seen | {type_name}
        for name, prop in _schema_properties(definitions[type_name]).items():
            if not isinstance(prop, dict):
                continue
            spec = FieldSpec(path="/".join([*path, name]), kind=kind)
            for extension, table in (
                ("x-kubernetes-annotation", "commonAnnotations"),
                ("x-kubernetes-label-selector", "commonLabels"),
                ("x-kubernetes-identity", "namePrefix"),
            ):
                if extension in prop:
                    acc.tables[table] = _builtins.merge_specs(acc.tables[table], (spec,))
            ref_version = prop.get("x-kubernetes-object-ref-api-version")
            ref_kind = prop.get("x-kubernetes-object-ref-kind")
            if isinstance(ref_version, str) and isinstance(ref_kind, str):
                key = str(prop.get("x-kubernetes-object-ref-name-key") or "name")
                referrer = FieldSpec(path="/".join([*path, name, key]), kind=kind)
                target = FieldSpec(path="metadata/name", kind=ref_kind, version=ref_version)
                acc.merge_name_references((NameReference(target, (referrer,)),))
            if isinstance(prop.get("$ref"), str):
                self._crd_properties(acc, definitions, kind, prop["$ref"], [*path, name], seen)

    def _plugin_configs(self, k: Kustomization, field: str) -> list[Resource]:
        """The configs of ``generators`` or ``transformers``: inline ones come from the
        kustomization file, the others from the files or directories they name."""
        configs: list[Resource] = []
        for entry in k.data.get(field) or []:
            text = str(entry)
            try:
                inline = load_documents(text.encode(), source=k.file)
            except KustomizeError:
                inline = []
            if inline and all(isinstance(doc, dict) for doc in inline):
                configs.extend(Resource(obj=doc, origin=k.file) for doc in inline)
                continue
            configs.extend(self._load(k, text, field=field).resources)
        return configs

    def _builtin_transformers(
        self, k: Kustomization, acc: _Accumulator, read_file: _loader.ReadFile
    ) -> list[Resource]:
        data = k.data
        resources = acc.resources
        tables = acc.tables
        if data.get("patchesStrategicMerge") or data.get("patches"):
            fields = {
                key: data[key] for key in ("patchesStrategicMerge", "patches") if data.get(key)
            }
            resources = apply_patches(
                resources,
                fields,
                read_file=read_file,
                kustomization_file=k.file,
                overlay_entries=k.overlay_entries,
                overlay_name=k.overlay_name,
            )
            self._record_builtin(
                resources,
                k,
                "PatchStrategicMergeTransformer",
                int(bool(data.get("patchesStrategicMerge"))),
            )
            self._record_builtin(resources, k, "PatchTransformer", len(data.get("patches") or []))
        _builtins.apply_namespace(
            resources, str(data.get("namespace") or ""), tables["namespace"], file=k.file
        )
        _builtins.apply_prefix(resources, str(data.get("namePrefix") or ""), tables["namePrefix"])
        _builtins.apply_suffix(resources, str(data.get("nameSuffix") or ""), tables["nameSuffix"])
        for field_name, kind in (
            ("namespace", "NamespaceTransformer"),
            ("namePrefix", "PrefixTransformer"),
            ("nameSuffix", "SuffixTransformer"),
        ):
            self._record_builtin(resources, k, kind, int(bool(data.get(field_name))))
        for label in data.get("labels") or []:
            _builtins.apply_labels(
                resources, label.get("pairs"), _label_specs(label, tables, k.file), file=k.file
            )
        _builtins.apply_labels(
            resources, data.get("commonLabels"), tables["commonLabels"], file=k.file
        )
        if data.get("labels") or data.get("commonLabels"):
            # One per labels entry, and one more for commonLabels, even empty.
            self._record_builtin(
                resources, k, "LabelTransformer", len(data.get("labels") or []) + 1
            )
        _builtins.apply_annotations(
            resources, data.get("commonAnnotations"), tables["commonAnnotations"], file=k.file
        )
        self._record_builtin(
            resources, k, "AnnotationsTransformer", int(bool(data.get("commonAnnotations")))
        )
        if data.get("patchesJson6902"):
            resources = apply_patches(
                resources,
                {"patchesJson6902": data["patchesJson6902"]},
                read_file=read_file,
                kustomization_file=k.file,
                overlay_entries=k.overlay_entries,
                overlay_name=k.overlay_name,
            )
            self._record_builtin(
                resources, k, "PatchJson6902Transformer", len(data["patchesJson6902"])
            )
        for name, apply, kind in (
            ("replicas", apply_replicas, "ReplicaCountTransformer"),
            ("images", apply_images, "ImageTagTransformer"),
        ):
            if data.get(name):
                entries = _entries(data[name], name, k.file)
                apply(resources, entries, kustomization_file=k.file, field_specs=tables[name])
                self._record_builtin(resources, k, kind, len(entries))
        if data.get("replacements"):
            apply_replacements(
                resources,
                list(data["replacements"]),
                read_file=read_file,
                kustomization_file=k.file,
            )
            self._record_builtin(resources, k, "ReplacementTransformer")
        return resources


def _field_specs(entries: Any, what: str, file: str) -> tuple[FieldSpec, ...]:
    if entries is None:
        return ()
    if not isinstance(entries, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("path"), str) for entry in entries
    ):
        raise KustomizeError(
            f"{what}: expected a list of field specs ({{path, kind, group, version, create}})",
            file=file,
        )
    return tuple(FieldSpec.from_config(entry) for entry in entries)


def _name_references(entries: Any, reference: str, file: str) -> tuple[NameReference, ...]:
    what = f"configurations {reference} nameReference"
    if not isinstance(entries, list):
        raise KustomizeError(f"{what}: expected a list of {{kind, fieldSpecs}}", file=file)
    table: list[NameReference] = []
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("kind"):
            raise KustomizeError(f"{what}: every entry needs a kind", file=file)
        target = FieldSpec(
            path="metadata/name",
            kind=str(entry["kind"]),
            group=str(entry.get("group") or ""),
            version=str(entry.get("version") or ""),
        )
        table.append(NameReference(target, _field_specs(entry.get("fieldSpecs"), what, file)))
    return tuple(table)


def _schema_properties(definition: Any) -> dict[str, Any]:
    """``definition.Schema.properties`` (Go's JSON decoding matches the key in any case)."""
    if not isinstance(definition, dict):
        return {}
    schema = next(
        (value for key, value in definition.items() if str(key).lower() == "schema"), None
    )
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return properties if isinstance(properties, dict) else {}


def _label_specs(
    label: Any, tables: Mapping[str, tuple[FieldSpec, ...]], file: str
) -> tuple[FieldSpec, ...]:
    if not isinstance(label, dict):
        raise KustomizeError("every labels entry must be a map", file=file, field="labels")
    custom = tuple(FieldSpec.from_config(entry) for entry in label.get("fields") or [])
    if label.get("includeSelectors"):
        return _builtins.merge_specs(custom, tables["commonLabels"])
    if label.get("includeTemplates"):
        custom = _builtins.merge_specs(custom, tables["templateLabels"])
    return _builtins.merge_specs(custom, (FieldSpec(path="metadata/labels", create=True),))


def _entries(value: Any, field: str, file: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise KustomizeError(f"{field} must be a list of maps", file=file, field=field)
    return value


def _identity_yaml(obj: Mapping[str, Any]) -> str:
    """A config's ``apiVersion``, ``kind``, ``name`` and ``namespace``, as YAML (set ones)."""
    metadata = obj.get("metadata") or {}
    fields = (
        ("apiVersion", obj.get("apiVersion")),
        ("kind", obj.get("kind")),
        ("name", metadata.get("name")),
        ("namespace", metadata.get("namespace")),
    )
    return "".join(f"{key}: {value}\n" for key, value in fields if value)


def _is_local_config(resource: Resource) -> bool:
    annotations = (resource.obj.get("metadata") or {}).get("annotations") or {}
    return _LOCAL_CONFIG in annotations and annotations[_LOCAL_CONFIG] != "false"


def _finalize(obj: dict[str, Any]) -> dict[str, Any]:
    _loader.stringify_annotations(obj)
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "annotations" in metadata:
        annotations = metadata["annotations"]
        if isinstance(annotations, dict):
            for key in list(annotations):
                if key in _INTERNAL_ANNOTATIONS or key.startswith(_INTERNAL_ANNOTATION_PREFIX):
                    del annotations[key]
        if not annotations:
            del metadata["annotations"]
    return obj


def _openapi_schema(files: Files, root: Kustomization) -> AbstractContextManager[None]:
    """The ``openapi: {path: FILE}`` schema of the top kustomization, for its patches.

    Kustomize reads it from the top kustomization only and uses it, in place of the
    built-in schema, for every strategic merge of the build. (``openapi: {version: V}``
    names one of kustomize's built-in schemas: fluxd has one, the newest, and uses it.)
    """
    openapi = root.data.get("openapi")
    if openapi is None:
        return nullcontext()
    if not isinstance(openapi, dict) or not all(isinstance(v, str) for v in openapi.values()):
        raise KustomizeError(
            "openapi must be a map of strings (path: FILE)", file=root.file, field="openapi"
        )
    if "path" not in openapi:
        return nullcontext()
    if "version" in openapi:
        raise KustomizeError(
            "builtin version and custom schema provided, cannot use both",
            file=root.file,
            field="openapi",
        )
    path = _loader.resolve(
        root.directory, openapi["path"], kustomization_file=root.file, field="openapi.path"
    )
    if not files.is_file(path):
        raise KustomizeError(
            f"openapi schema file {openapi['path']!r} not found", file=root.file, field="openapi"
        )
    documents = load_documents(files.read(path), source=path)
    schema = documents[0] if documents else None
    if not isinstance(schema, dict) or not isinstance(schema.get("definitions"), dict):
        raise KustomizeError(
            f"invalid schema file {path}: an OpenAPI v2 document needs a definitions map",
            file=root.file,
            field="openapi.path",
        )
    return custom_schema(schema)


def build_files(
    files: Files, path: str, *, generate_missing: bool, overlay: Overlay | None
) -> list[Resource]:
    """Build the kustomization at ``path`` in ``files``; objects in output order."""
    directory = _loader.top_directory(path)
    if not files.is_dir(directory):
        raise KustomizeError(f"path {path!r} is not a directory in the source artifact")
    root = _loader.read_kustomization(files, directory, rewritten=overlay is not None)
    if root is None:
        if not generate_missing:
            _Builder(files).kustomization(directory, referrer=None)
        root = _loader.generate_kustomization(files, directory)
    if overlay is not None:
        _loader.apply_overlay(root, overlay, files)
    build_metadata = [str(option) for option in root.data.get("buildMetadata") or []]
    builder = _Builder(
        files,
        top=directory,
        origins="originAnnotations" in build_metadata,
        transformations="transformerAnnotations" in build_metadata,
    )
    with _openapi_schema(files, root):
        acc = builder.accumulate(root, _Accumulator())
    resources = acc.resources
    apply_hash_suffixes(resources)
    fix_name_references(resources, acc.name_references)
    if acc.vars:
        apply_vars(
            resources,
            acc.vars,
            kustomization_file=root.file,
            field_specs=acc.tables["varReference"],
        )
    if "managedByLabel" in build_metadata:
        _builtins.apply_labels(
            resources,
            {_MANAGED_BY: _MANAGED_BY_VALUE},
            (FieldSpec(path="metadata/labels", create=True),),
        )
    ordered = sort_resources(resources, root.data.get("sortOptions"), file=root.file)
    for resource in ordered:
        _finalize(resource.obj)
    return ordered
