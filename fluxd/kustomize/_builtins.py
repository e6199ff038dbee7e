"""Kustomize's built-in name, namespace, label and annotation transformers.

Each transformer is table driven, like kustomize's: the tables below are kustomize's
``builtinpluginconsts`` field specs (v5.7), kept as data so a ``configurations:`` file can
extend them. What the tables cannot express is written out, as kustomize hard-codes it
too:

- ``metadata.namespace`` is set only on kinds that are not known to be cluster scoped
  (kustomize's built-in list comes from the Kubernetes 1.21 OpenAPI document; kinds it does
  not know, custom resources included, count as namespaced);
- a ``v1`` Namespace object is renamed to the target namespace;
- (Cluster)RoleBinding subjects get the namespace only when named ``default`` (or, with
  ``setRoleBindingSubjects: allServiceAccounts``, when of kind ServiceAccount);
- name prefixes and suffixes skip CustomResourceDefinitions, APIServices and Namespaces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from fluxd.kustomize._fieldspec import FieldSpec, visit
from fluxd.kustomize._model import KustomizeError, Resource

__all__ = [
    "COMMON_ANNOTATIONS_SPECS",
    "COMMON_LABELS_SPECS",
    "NAMESPACE_SPECS",
    "NAME_PREFIX_SPECS",
    "NAME_SUFFIX_SPECS",
    "TEMPLATE_LABELS_SPECS",
    "apply_annotations",
    "apply_labels",
    "apply_namespace",
    "apply_prefix",
    "apply_suffix",
    "is_cluster_scoped",
    "merge_specs",
]


def _specs(*rows: tuple[str, str, str, bool]) -> tuple[FieldSpec, ...]:
    """Rows of (path, group, kind, create); version is only ever ``v1`` for core kinds."""
    return tuple(
        FieldSpec(path=path, group=group, kind=kind, create=create)
        for path, group, kind, create in rows
    )


def _core(path: str, kind: str, create: bool) -> FieldSpec:
    return FieldSpec(path=path, kind=kind, version="v1", create=create)


NAME_PREFIX_SPECS: tuple[FieldSpec, ...] = (FieldSpec(path="metadata/name"),)
NAME_SUFFIX_SPECS: tuple[FieldSpec, ...] = (FieldSpec(path="metadata/name"),)

NAMESPACE_SPECS: tuple[FieldSpec, ...] = (
    FieldSpec(path="metadata/namespace", create=True),
    FieldSpec(path="metadata/name", kind="Namespace", create=True),
    FieldSpec(path="subjects/namespace", kind="RoleBinding"),
    FieldSpec(path="subjects/namespace", kind="ClusterRoleBinding"),
    FieldSpec(
        path="spec/service/namespace",
        group="apiregistration.k8s.io",
        kind="APIService",
        create=True,
    ),
    FieldSpec(
        path="spec/conversion/webhook/clientConfig/service/namespace",
        group="apiextensions.k8s.io",
        kind="CustomResourceDefinition",
    ),
)

#: ``metadata.labels`` and the pod/job/claim templates of the workload kinds.
TEMPLATE_LABELS_SPECS: tuple[FieldSpec, ...] = (
    _core("spec/template/metadata/labels", "ReplicationController", True),
    *_specs(
        ("spec/template/metadata/labels", "", "Deployment", True),
        ("spec/template/metadata/labels", "", "ReplicaSet", True),
        ("spec/template/metadata/labels", "", "DaemonSet", True),
        ("spec/template/metadata/labels", "apps", "StatefulSet", True),
        ("spec/volumeClaimTemplates[]/metadata/labels", "apps", "StatefulSet", True),
        ("spec/template/metadata/labels", "batch", "Job", True),
        ("spec/jobTemplate/metadata/labels", "batch", "CronJob", True),
        ("spec/jobTemplate/spec/template/metadata/labels", "batch", "CronJob", True),
    ),
)

_METADATA_LABELS = FieldSpec(path="metadata/labels", create=True)

_AFFINITY_SELECTORS = (
    "spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/"
    "podAffinityTerm/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/"
    "labelSelector/matchLabels",
    "spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/"
    "podAffinityTerm/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/"
    "labelSelector/matchLabels",
    "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels",
)

#: ``commonLabels`` (and ``labels`` with ``includeSelectors``): metadata, templates, selectors.
COMMON_LABELS_SPECS: tuple[FieldSpec, ...] = (
    _core("spec/selector", "Service", True),
    _core("spec/selector", "ReplicationController", True),
    FieldSpec(path="spec/selector/matchLabels", kind="Deployment", create=True),
    *(FieldSpec(path=path, group="apps", kind="Deployment") for path in _AFFINITY_SELECTORS),
    FieldSpec(path="spec/selector/matchLabels", kind="ReplicaSet", create=True),
    FieldSpec(path="spec/selector/matchLabels", kind="DaemonSet", create=True),
    FieldSpec(path="spec/selector/matchLabels", group="apps", kind="StatefulSet", create=True),
    *(FieldSpec(path=path, group="apps", kind="StatefulSet") for path in _AFFINITY_SELECTORS),
    *_specs(
        ("spec/selector/matchLabels", "batch", "Job", False),
        ("spec/jobTemplate/spec/selector/matchLabels", "batch", "CronJob", False),
        ("spec/selector/matchLabels", "policy", "PodDisruptionBudget", False),
        ("spec/podSelector/matchLabels", "networking.k8s.io", "NetworkPolicy", False),
        ("spec/ingress/from/podSelector/matchLabels", "networking.k8s.io", "NetworkPolicy", False),
        ("spec/egress/to/podSelector/matchLabels", "networking.k8s.io", "NetworkPolicy", False),
    ),
    _METADATA_LABELS,
    *TEMPLATE_LABELS_SPECS,
)

COMMON_ANNOTATIONS_SPECS: tuple[FieldSpec, ...] = (
    FieldSpec(path="metadata/annotations", create=True),
    _core("spec/template/metadata/annotations", "ReplicationController", True),
    *_specs(
        ("spec/template/metadata/annotations", "", "Deployment", True),
        ("spec/template/metadata/annotations", "", "ReplicaSet", True),
        ("spec/template/metadata/annotations", "", "DaemonSet", True),
        ("spec/template/metadata/annotations", "", "StatefulSet", True),
        ("spec/template/metadata/annotations", "batch", "Job", True),
        ("spec/jobTemplate/metadata/annotations", "batch", "CronJob", True),
        ("spec/jobTemplate/spec/template/metadata/annotations", "batch", "CronJob", True),
    ),
)

#: apiVersion/kind pairs kustomize knows to be cluster scoped (its precomputed table).
_CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    [
        *(
            (f"admissionregistration.k8s.io/{v}", kind)
            for v in ("v1", "v1beta1")
            for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
        ),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"),
        ("apiregistration.k8s.io/v1", "APIService"),
        ("apiregistration.k8s.io/v1beta1", "APIService"),
        ("certificates.k8s.io/v1", "CertificateSigningRequest"),
        ("certificates.k8s.io/v1beta1", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io/v1beta1", "PriorityLevelConfiguration"),
        ("networking.k8s.io/v1", "IngressClass"),
        ("networking.k8s.io/v1beta1", "IngressClass"),
        ("node.k8s.io/v1", "RuntimeClass"),
        ("node.k8s.io/v1beta1", "RuntimeClass"),
        ("policy/v1beta1", "PodSecurityPolicy"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("rbac.authorization.k8s.io/v1beta1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding"),
        ("scheduling.k8s.io/v1", "PriorityClass"),
        ("scheduling.k8s.io/v1beta1", "PriorityClass"),
        *(
            (f"storage.k8s.io/{v}", kind)
            for v in ("v1", "v1beta1")
            for kind in ("CSIDriver", "CSINode", "StorageClass", "VolumeAttachment")
        ),
        ("v1", "ComponentStatus"),
        ("v1", "Namespace"),
        ("v1", "Node"),
        ("v1", "NodeProxyOptions"),
        ("v1", "PersistentVolume"),
    ]
)

_PREFIX_SUFFIX_SKIP: tuple[FieldSpec, ...] = (
    FieldSpec(path="", kind="CustomResourceDefinition"),
    FieldSpec(path="", group="apiregistration.k8s.io", kind="APIService"),
    FieldSpec(path="", kind="Namespace"),
)

_ROLE_BINDINGS = ("RoleBinding", "ClusterRoleBinding")


def is_cluster_scoped(obj: Mapping[str, Any]) -> bool:
    """Whether kustomize is certain ``obj``'s kind is cluster scoped."""
    return (str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")) in _CLUSTER_SCOPED


def merge_specs(*groups: Iterable[FieldSpec]) -> tuple[FieldSpec, ...]:
    """Concatenate field specs, dropping repeats (same path and kind selector)."""
    seen: dict[tuple[str, str, str, str], FieldSpec] = {}
    for group in groups:
        for spec in group:
            key = (spec.path, spec.group, spec.version, spec.kind)
            earlier = seen.get(key)
            if earlier is None:
                seen[key] = spec
            elif earlier.create != spec.create:
                raise KustomizeError(
                    f"conflicting fieldspecs for path {spec.path!r}"
                    f" (kind {spec.kind or 'any'}): create is both true and false"
                )
    return tuple(seen.values())


def _string_map(values: Any, *, what: str, file: str | None) -> dict[str, str]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise KustomizeError(f"{what} must be a map of strings", file=file, field=what)
    result: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise KustomizeError(
                f"{what}: the value of {key!r} must be a string (quote it), not {value!r}",
                file=file,
                field=what,
            )
        result[str(key)] = value
    return result


def _set_map_entries(
    resources: Sequence[Resource],
    entries: Mapping[str, str],
    specs: Iterable[FieldSpec],
    *,
    what: str,
) -> None:
    if not entries:
        return

    def setter(origin: str, path: str) -> Callable[[Any], Any]:
        def set_entries(value: Any) -> Any:
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise KustomizeError(
                    f"cannot set {what} at {path}: expected a map, found {type(value).__name__}",
                    file=origin,
                )
            value.update(entries)
            return value

        return set_entries

    specs = tuple(specs)
    for resource in resources:
        for spec in specs:
            visit(resource.obj, spec, setter(resource.origin, spec.path))


def apply_labels(
    resources: Sequence[Resource],
    labels: Any,
    specs: Iterable[FieldSpec] = COMMON_LABELS_SPECS,
    *,
    file: str | None = None,
) -> None:
    """Set every label in ``labels`` at every field spec path."""
    _set_map_entries(resources, _string_map(labels, what="labels", file=file), specs, what="labels")


def apply_annotations(
    resources: Sequence[Resource],
    annotations: Any,
    specs: Iterable[FieldSpec] = COMMON_ANNOTATIONS_SPECS,
    *,
    file: str | None = None,
) -> None:
    """Set every annotation in ``annotations`` at every field spec path."""
    _set_map_entries(
        resources,
        _string_map(annotations, what="commonAnnotations", file=file),
        specs,
        what="annotations",
    )


def _skips_name_change(resource: Resource) -> bool:
    return any(spec.matches(resource.obj) for spec in _PREFIX_SUFFIX_SKIP)


def _affix(
    resources: Sequence[Resource],
    specs: Iterable[FieldSpec],
    change: Callable[[str], str],
) -> None:
    specs = tuple(specs)
    for resource in resources:
        if _skips_name_change(resource):
            continue
        for spec in specs:
            if not spec.matches(resource.obj):
                continue
            if spec.path == "metadata/name":
                resource.rename(change(resource.name))
                continue
            visit(resource.obj, spec, _scalar_change(change, resource, spec))


def _scalar_change(
    change: Callable[[str], str], resource: Resource, spec: FieldSpec
) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        if isinstance(value, dict | list):
            found = "SequenceNode" if isinstance(value, list) else "MappingNode"
            raise KustomizeError(
                f"considering field '{spec.path}' of object {resource.id}: wrong node kind:"
                f" expected ScalarNode but got {found}",
                file=resource.origin,
            )
        return change("" if value is None else str(value))

    return apply


def apply_prefix(
    resources: Sequence[Resource], prefix: str, specs: Iterable[FieldSpec] = NAME_PREFIX_SPECS
) -> None:
    """Prepend ``prefix`` to names (kustomize's PrefixTransformer)."""
    if prefix:
        _affix(resources, specs, lambda name: prefix + name)


def apply_suffix(
    resources: Sequence[Resource], suffix: str, specs: Iterable[FieldSpec] = NAME_SUFFIX_SPECS
) -> None:
    """Append ``suffix`` to names (kustomize's SuffixTransformer)."""
    if suffix:
        _affix(resources, specs, lambda name: name + suffix)


def apply_namespace(
    resources: Sequence[Resource],
    namespace: str,
    specs: Iterable[FieldSpec] = NAMESPACE_SPECS,
    *,
    unset_only: bool = False,
    role_binding_subjects: str = "defaultOnly",
    file: str | None = None,
) -> None:
    """Move resources into ``namespace`` (kustomize's NamespaceTransformer)."""
    if not namespace:
        return
    if role_binding_subjects not in ("", "defaultOnly", "allServiceAccounts", "none"):
        raise KustomizeError(
            f"invalid value {role_binding_subjects!r} for setRoleBindingSubjects: must be one"
            ' of "defaultOnly", "none" or "allServiceAccounts"',
            file=file,
        )

    def set_namespace(value: Any) -> Any:
        if isinstance(value, dict | list):
            raise KustomizeError(
                "namespace field specs must target scalar nodes", file=file, field="namespace"
            )
        if unset_only and value not in (None, ""):
            return value
        return namespace

    all_specs = tuple(specs)
    for resource in resources:
        resource.namespace_transformed = True
        obj = resource.obj
        kind = obj.get("kind")
        # metadata/namespace is never written by the table: cluster-scoped kinds keep none.
        chosen = [
            spec
            for spec in all_specs
            if spec.path != "metadata/namespace"
            and (spec.path != "metadata/name" or obj.get("apiVersion") == "v1")
            and not (kind in _ROLE_BINDINGS and _is_subjects_spec(spec))
        ]
        if not is_cluster_scoped(obj):
            visit(
                obj,
                FieldSpec(path="metadata/namespace", create=True),
                set_namespace,
                create_value=str,
            )
        if kind in _ROLE_BINDINGS:
            _namespace_subjects(obj, role_binding_subjects, set_namespace)
        for spec in chosen:
            visit(obj, spec, set_namespace, create_value=str)
    _check_unique(resources, file)


def _is_subjects_spec(spec: FieldSpec) -> bool:
    # The subjects are handled by _namespace_subjects, whatever the table says.
    return spec.kind in _ROLE_BINDINGS and spec.path in (
        "subjects/namespace",
        "subjects[]/namespace",
    )


def _namespace_subjects(
    obj: dict[str, Any], mode: str, set_namespace: Callable[[Any], Any]
) -> None:
    if mode == "none":
        return
    subjects = obj.get("subjects")
    if not isinstance(subjects, list):
        return
    for subject in subjects:
        if not isinstance(subject, dict):
            continue
        wanted = (
            subject.get("kind") == "ServiceAccount"
            if mode == "allServiceAccounts"
            else subject.get("name") == "default"
        )
        if wanted:
            subject["namespace"] = set_namespace(subject.get("namespace"))


def _check_unique(resources: Sequence[Resource], file: str | None) -> None:
    seen: set[tuple[str, ...]] = set()
    for resource in resources:
        key = identity_key(resource.obj)
        if key in seen:
            raise KustomizeError(
                f"namespace transformation produces ID conflict: {resource.id}", file=file
            )
        seen.add(key)


def identity_key(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """What makes two objects the same resource to kustomize.

    Cluster-scoped kinds ignore the namespace; for the others an empty namespace and
    ``default`` are the same one.
    """
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    metadata = obj.get("metadata") or {}
    namespace = str(metadata.get("namespace") or "")
    if is_cluster_scoped(obj):
        namespace = "_non_namespaceable_"
    elif namespace == "":
        namespace = "default"
    return (group, version, str(obj.get("kind") or ""), namespace, str(metadata.get("name") or ""))
