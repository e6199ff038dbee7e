"""Content-hash suffixes, and the name references that must follow every rename.

After the whole build has run, kustomize appends the content hash to generated
ConfigMaps and Secrets, then walks its *nameReference* table: for every field known to
hold the name of another object (a Deployment's ``envFrom[].configMapRef.name``, a
RoleBinding's ``roleRef.name``, an Ingress backend's service name...), a value that was
once the name of a renamed object of the right kind is replaced by that object's final
name. The selection, as kustomize v5.7 does it:

1. candidates are the objects the referrer can see: all of them for a cluster-scoped
   referrer; otherwise cluster-scoped ones, ones in the referrer's namespace (``""``
   counts as ``default``), and for a RoleBinding, ones in a namespace one of its
   ServiceAccount subjects names;
2. keep those with a *previous* name (never the current one) equal to the value, of the
   table row's kind; for ``roleRef/name`` also of the roleRef's ``apiGroup``/``kind``;
   and in the referrer's namespace unless cluster scoped or a ServiceAccount;
3. if several remain, keep those renamed by the same prefixes and suffixes as the
   referrer (two overlays of one base, each with its own ``namePrefix``); if still
   several with different names, the build fails.

A field that holds a map (RoleBinding ``subjects``, webhook ``clientConfig.service``)
also narrows by its ``namespace`` and gets the chosen object's namespace written back.
Kustomize's quirks are kept on purpose, since the output must be byte-identical: a
subject of kind ``User`` is renamed like a ServiceAccount of that name, and an Ingress's
``ingressClassName`` is never rewritten (kustomize's table names the IngressClass group
``networking.k8s.io/v1``, which no object has).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from fluxd.kustomize._builtins import is_cluster_scoped
from fluxd.kustomize._fieldspec import FieldSpec, visit
from fluxd.kustomize._hashing import content_hash
from fluxd.kustomize._model import KustomizeError, Resource

__all__ = ["NAME_REFERENCES", "NameReference", "apply_hash_suffixes", "fix_name_references"]


@dataclass(frozen=True)
class NameReference:
    """Objects selected by ``target`` are referred to by name at each of ``referrers``."""

    target: FieldSpec
    referrers: tuple[FieldSpec, ...]


def _spec(path: str, kind: str, group: str = "", version: str = "") -> FieldSpec:
    return FieldSpec(path=path, kind=kind, group=group, version=version)


def _target(kind: str, group: str = "", version: str = "") -> FieldSpec:
    return FieldSpec(path="metadata/name", kind=kind, group=group, version=version)


# Where each workload kind keeps its pod spec. Pod's own rows are pinned to version v1.
_POD_SPECS = (
    ("Pod", "spec/", "v1"),
    ("PodTemplate", "template/spec/", ""),
    ("Deployment", "spec/template/spec/", ""),
    ("ReplicaSet", "spec/template/spec/", ""),
    ("DaemonSet", "spec/template/spec/", ""),
    ("StatefulSet", "spec/template/spec/", ""),
    ("Job", "spec/template/spec/", ""),
    ("CronJob", "spec/jobTemplate/spec/template/spec/", ""),
)
_CONFIGMAP_POD_PATHS = (
    "volumes/configMap/name",
    "containers/env/valueFrom/configMapKeyRef/name",
    "initContainers/env/valueFrom/configMapKeyRef/name",
    "containers/envFrom/configMapRef/name",
    "initContainers/envFrom/configMapRef/name",
    "volumes/projected/sources/configMap/name",
)
_SECRET_POD_PATHS = (
    "volumes/secret/secretName",
    "containers/env/valueFrom/secretKeyRef/name",
    "initContainers/env/valueFrom/secretKeyRef/name",
    "containers/envFrom/secretRef/name",
    "initContainers/envFrom/secretRef/name",
    "imagePullSecrets/name",
    "volumes/projected/sources/secret/name",
)
# ServiceAccount, PVC and PriorityClass references are listed for these kinds only.
_WORKLOADS = (
    ("Pod", "spec/"),
    ("StatefulSet", "spec/template/spec/"),
    ("Deployment", "spec/template/spec/"),
    ("ReplicationController", "spec/template/spec/"),
    ("CronJob", "spec/jobTemplate/spec/template/spec/"),
    ("Job", "spec/template/spec/"),
    ("DaemonSet", "spec/template/spec/"),
)
_RBAC = "rbac.authorization.k8s.io"
_ADMISSION = "admissionregistration.k8s.io"


def _pod_refs(paths: Iterable[str]) -> tuple[FieldSpec, ...]:
    paths = tuple(paths)
    return tuple(
        _spec(prefix + path, kind, version=version)
        for kind, prefix, version in _POD_SPECS
        for path in paths
    )


def _workload_refs(path: str) -> tuple[FieldSpec, ...]:
    return tuple(_spec(prefix + path, kind) for kind, prefix in _WORKLOADS)


def _scale_target(kind: str) -> NameReference:
    return NameReference(
        _target(kind), (_spec("spec/scaleTargetRef/name", "HorizontalPodAutoscaler"),)
    )


#: Kustomize v5.7's built-in nameReference configuration.
NAME_REFERENCES: tuple[NameReference, ...] = (
    _scale_target("Deployment"),
    _scale_target("ReplicationController"),
    _scale_target("ReplicaSet"),
    _scale_target("StatefulSet"),
    NameReference(
        _target("ConfigMap", version="v1"),
        (
            *_pod_refs(_CONFIGMAP_POD_PATHS),
            _spec("spec/configSource/configMap", "Node"),
            _spec("rules/resourceNames", "Role"),
            _spec("rules/resourceNames", "ClusterRole"),
            _spec(
                "metadata/annotations/nginx.ingress.kubernetes.io\\/fastcgi-params-configmap",
                "Ingress",
            ),
        ),
    ),
    NameReference(
        _target("Secret", version="v1"),
        (
            *_pod_refs(_SECRET_POD_PATHS),
            _spec("spec/tls/secretName", "Ingress"),
            _spec("metadata/annotations/ingress.kubernetes.io\\/auth-secret", "Ingress"),
            _spec("metadata/annotations/nginx.ingress.kubernetes.io\\/auth-secret", "Ingress"),
            _spec("metadata/annotations/nginx.ingress.kubernetes.io\\/auth-tls-secret", "Ingress"),
            _spec("imagePullSecrets/name", "ServiceAccount"),
            _spec("parameters/secretName", "StorageClass"),
            _spec("parameters/adminSecretName", "StorageClass"),
            _spec("parameters/userSecretName", "StorageClass"),
            _spec("parameters/secretRef", "StorageClass"),
            _spec("rules/resourceNames", "Role"),
            _spec("rules/resourceNames", "ClusterRole"),
            _spec(
                "spec/template/spec/containers/env/valueFrom/secretKeyRef/name",
                "Service",
                group="serving.knative.dev",
                version="v1",
            ),
            _spec("spec/azureFile/secretName", "PersistentVolume"),
        ),
    ),
    NameReference(
        _target("Service", version="v1"),
        (
            _spec("spec/serviceName", "StatefulSet", group="apps"),
            _spec("spec/rules/http/paths/backend/serviceName", "Ingress"),
            _spec("spec/backend/serviceName", "Ingress"),
            _spec("spec/rules/http/paths/backend/service/name", "Ingress"),
            _spec("spec/defaultBackend/service/name", "Ingress"),
            _spec("spec/service/name", "APIService", group="apiregistration.k8s.io"),
            _spec("webhooks/clientConfig/service", "ValidatingWebhookConfiguration", _ADMISSION),
            _spec("webhooks/clientConfig/service", "MutatingWebhookConfiguration", _ADMISSION),
        ),
    ),
    NameReference(_target("Role", group=_RBAC), (_spec("roleRef/name", "RoleBinding", _RBAC),)),
    NameReference(
        _target("ClusterRole", group=_RBAC),
        (
            _spec("roleRef/name", "RoleBinding", _RBAC),
            _spec("roleRef/name", "ClusterRoleBinding", _RBAC),
        ),
    ),
    NameReference(
        _target("ServiceAccount", version="v1"),
        (
            _spec("subjects", "RoleBinding", _RBAC),
            _spec("subjects", "ClusterRoleBinding", _RBAC),
            *_workload_refs("serviceAccountName"),
        ),
    ),
    NameReference(
        _target("PersistentVolumeClaim", version="v1"),
        _workload_refs("volumes/persistentVolumeClaim/claimName"),
    ),
    NameReference(
        _target("PersistentVolume", version="v1"),
        (
            _spec("spec/volumeName", "PersistentVolumeClaim"),
            _spec("rules/resourceNames", "ClusterRole"),
        ),
    ),
    NameReference(
        _target("StorageClass", group="storage.k8s.io", version="v1"),
        (
            _spec("spec/storageClassName", "PersistentVolume"),
            _spec("spec/storageClassName", "PersistentVolumeClaim"),
            _spec("spec/volumeClaimTemplates/spec/storageClassName", "StatefulSet"),
        ),
    ),
    NameReference(
        _target("PriorityClass", group="scheduling.k8s.io", version="v1"),
        _workload_refs("priorityClassName"),
    ),
    NameReference(
        # Sic: kustomize's group carries the version, so this row never matches.
        _target("IngressClass", group="networking.k8s.io/v1", version="v1"),
        (_spec("spec/ingressClassName", "Ingress"),),
    ),
    NameReference(
        _target("ValidatingAdmissionPolicy", group=_ADMISSION),
        (_spec("spec/policyName", "ValidatingAdmissionPolicyBinding", _ADMISSION),),
    ),
)


def apply_hash_suffixes(resources: list[Resource]) -> None:
    """Rename every resource that wants it to ``<name>-<content hash>``.

    Call once, after every transformer of the top-level kustomization has run: the hash
    covers the final content, and a second call would hash twice.
    """
    for resource in resources:
        if resource.needs_hash_suffix:
            resource.rename(f"{resource.name}-{content_hash(resource.obj)}")


def fix_name_references(
    resources: list[Resource], table: Sequence[NameReference] = NAME_REFERENCES
) -> None:
    """Point every name reference in ``resources`` at the final name of what it names."""
    histories = {id(resource): _History.of(resource) for resource in resources}
    # Candidates are looked up by the names they had, and the resources a referrer may see
    # depend only on its namespace: both are computed once, so a build stays near-linear.
    by_previous_name: dict[str, list[Resource]] = {}
    for resource in resources:
        for name in histories[id(resource)].previous_names:
            by_previous_name.setdefault(name, []).append(resource)
    scopes: dict[tuple[object, ...], _Scope] = {}
    for referrer in resources:
        scope: _Scope | None = None
        for reference in table:
            for spec in reference.referrers:
                if not spec.matches(referrer.obj):
                    continue
                if scope is None:
                    key = _scope_key(referrer)
                    scope = scopes.get(key)
                    if scope is None:
                        scope = scopes[key] = _Scope(_visible_from(referrer, resources))
                fixer = _Fixer(referrer, reference.target, spec, scope, by_previous_name, histories)
                visit(referrer.obj, spec, fixer.fix)


class _Scope:
    """The resources one referrer may name at all, with what lookups need of them."""

    def __init__(self, visible: list[Resource]) -> None:
        self.ids = {id(resource) for resource in visible}
        self.original_namespaces = {_effective(r.original_namespace) for r in visible}


def _scope_key(referrer: Resource) -> tuple[object, ...]:
    if is_cluster_scoped(referrer.obj):
        return (True,)
    return (
        False,
        _effective(referrer.id.namespace),
        frozenset(_service_account_namespaces(referrer)),
    )


@dataclass(frozen=True)
class _History:
    """What kustomize's build annotations would say about a resource's renames."""

    previous_names: frozenset[str]
    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]

    @classmethod
    def of(cls, resource: Resource) -> _History:
        names = list(resource.previous_names)
        moved = resource.id.namespace != resource.original_namespace
        if not names and (moved or resource.namespace_transformed):
            # Kustomize records an id whenever a namespace transformer runs over it, too.
            names.append(resource.name)
        steps = [*resource.previous_names, resource.name]
        if resource.needs_hash_suffix and len(steps) >= 2 and _is_hash_step(*steps[-2:]):
            # The hash is no prefix or suffix of the kustomization's; leave it out.
            steps.pop()
        prefixes: list[str] = []
        suffixes: list[str] = []
        for old, new in pairwise(steps):
            at = new.find(old) if old else -1
            if at < 0:
                continue
            if new[:at]:
                prefixes.append(new[:at])
            if new[at + len(old) :]:
                suffixes.append(new[at + len(old) :])
        return cls(frozenset(names), tuple(prefixes), tuple(suffixes))

    def same_affixes(self, other: _History) -> bool:
        return _same_ending(self.prefixes, other.prefixes) and _same_ending(
            self.suffixes, other.suffixes
        )


def _is_hash_step(old: str, new: str) -> bool:
    return len(new) == len(old) + 11 and new.startswith(old + "-")


def _same_ending(one: Sequence[str], other: Sequence[str]) -> bool:
    """Kustomize's SameEndingSubSlice: the shorter list ends the longer (both empty: yes)."""
    shorter, longer = sorted((one, other), key=len)
    if not shorter:
        return not longer
    return tuple(longer[len(longer) - len(shorter) :]) == tuple(shorter)


class _Fixer:
    """Rewrites the values found at one field spec of one referrer."""

    def __init__(
        self,
        referrer: Resource,
        target: FieldSpec,
        spec: FieldSpec,
        scope: _Scope,
        by_previous_name: Mapping[str, list[Resource]],
        histories: dict[int, _History],
    ) -> None:
        self.referrer = referrer
        self.target = target
        self.spec = spec
        self.scope = scope
        self.by_previous_name = by_previous_name
        self.histories = histories

    def _named(self, name: str) -> list[Resource]:
        """Visible resources that once had ``name``, in build order."""
        return [r for r in self.by_previous_name.get(name, ()) if id(r) in self.scope.ids]

    def fix(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._scalar(value)
        if isinstance(value, dict):
            return self._mapping(value)
        if isinstance(value, list):
            return [self.fix(item) if isinstance(item, str | dict) else item for item in value]
        return value

    def _scalar(self, name: str) -> str:
        referral = self._select(name, self._named(name), same=lambda r: r.name)
        return referral.name if referral is not None else name

    def _mapping(self, node: dict[str, Any]) -> dict[str, Any]:
        if "name" not in node:
            raise KustomizeError(
                f"{self.referrer.id}: the map at {self.spec.path} has no `name` field",
                file=self.referrer.origin,
                field=self.spec.path,
            )
        name = node["name"]
        if not isinstance(name, str):
            return node
        candidates = self._named(name)
        namespace = node.get("namespace")
        if isinstance(namespace, str):
            wanted = _effective(namespace)
            # By original namespace when any visible resource had it, else by current one.
            if wanted in self.scope.original_namespaces:
                candidates = [r for r in candidates if _effective(r.original_namespace) == wanted]
            else:
                candidates = [r for r in candidates if _effective(r.id.namespace) == wanted]
        referral = self._select(name, candidates, same=lambda r: (r.name, r.id.namespace))
        if referral is None:
            return node
        if referral.name == name and not referral.id.namespace:
            return node
        node["name"] = referral.name
        if referral.id.namespace:
            # An empty namespace is a wildcard here; it must not overwrite "default".
            node["namespace"] = referral.id.namespace
        return node

    def _select(
        self, name: str, candidates: Iterable[Resource], *, same: Callable[[Resource], object]
    ) -> Resource | None:
        role_ref = self._role_ref_target()
        chosen = [
            r
            for r in candidates
            if name in self.histories[id(r)].previous_names
            and self.target.matches(r.obj)
            and (role_ref is None or role_ref.matches(r.obj))
            and self._same_namespace(r)
        ]
        if len(chosen) > 1:
            mine = self.histories[id(self.referrer)]
            chosen = [r for r in chosen if self.histories[id(r)].same_affixes(mine)]
        if not chosen:
            return None
        if len({same(r) for r in chosen}) > 1:
            ids = ", ".join(str(r.id) for r in chosen)
            raise KustomizeError(
                f"{self.referrer.id} refers to {name!r} at {self.spec.path}, which could be "
                f"any of: {ids}; give them distinct names or namespaces",
                file=self.referrer.origin,
                field=self.spec.path,
            )
        return chosen[0]

    def _role_ref_target(self) -> FieldSpec | None:
        """For ``roleRef/name``, the Role or ClusterRole the roleRef says it names."""
        if not self.spec.path.endswith("roleRef/name"):
            return None
        role_ref = self.referrer.obj.get("roleRef")
        if not isinstance(role_ref, dict):
            return None
        group, kind = role_ref.get("apiGroup"), role_ref.get("kind")
        if group is None or kind is None:
            return None
        return FieldSpec(path="metadata/name", kind=str(kind), group=str(group))

    def _same_namespace(self, candidate: Resource) -> bool:
        if is_cluster_scoped(self.referrer.obj) or is_cluster_scoped(candidate.obj):
            return True
        if candidate.obj.get("kind") == "ServiceAccount":
            # A RoleBinding may name a ServiceAccount of any namespace.
            return True
        return _effective(candidate.id.namespace) == _effective(self.referrer.id.namespace)


def _visible_from(referrer: Resource, resources: list[Resource]) -> list[Resource]:
    """The resources ``referrer`` may refer to at all (kustomize's first namespace cut)."""
    if is_cluster_scoped(referrer.obj):
        return list(resources)
    namespace = _effective(referrer.id.namespace)
    subject_namespaces = _service_account_namespaces(referrer)
    return [
        r
        for r in resources
        if is_cluster_scoped(r.obj)
        or _effective(r.id.namespace) == namespace
        or r.id.namespace in subject_namespaces
    ]


def _service_account_namespaces(referrer: Resource) -> set[str]:
    """Namespaces a RoleBinding's ServiceAccount subjects name explicitly."""
    if referrer.obj.get("kind") != "RoleBinding":
        return set()
    subjects = referrer.obj.get("subjects")
    if not isinstance(subjects, list):
        return set()
    return {
        str(subject["namespace"])
        for subject in subjects
        if isinstance(subject, dict)
        and subject.get("kind") == "ServiceAccount"
        and subject.get("namespace") is not None
    }


def _effective(namespace: str) -> str:
    return namespace or "default"
