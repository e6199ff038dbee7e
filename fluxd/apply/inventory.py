"""Object references, Flux's inventory format and the order objects are applied in.

A Kustomization remembers what it applied in ``status.inventory.entries``: one
``{"id": ..., "v": ...}`` per object, where ``id`` is
``<namespace>_<name>_<group>_<kind>`` (empty namespace and core group stay empty
segments, so a ClusterRole is ``_admin_rbac.authorization.k8s.io_ClusterRole``) and
``v`` the API version. Colons, legal only in RBAC names (``system:nodes``), are written
as ``__`` for the four RBAC kinds, exactly as Flux's inventory (cli-utils) does, so an
inventory written by Flux is read back by fluxd and the other way around.

The apply order is Flux's (fluxcd/pkg ssa ``ReconcileOrder``): known kinds first in a
fixed order (CRDs and Namespaces before what lives in them, RBAC before workloads),
webhook configurations last, everything else (custom resources included) in between;
ties are broken by group, kind, namespace and name, so the order never depends on the
order of the input. Deletion runs in the reverse order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "ObjectRef",
    "apply_order",
    "apply_stage",
    "entries",
    "is_cluster_definition",
    "order_key",
    "parse",
    "recorded",
    "stale",
]

_T = TypeVar("_T", "ObjectRef", Mapping[str, Any])
_SEPARATOR = "_"
_COLON = "__"
_RBAC_GROUP = "rbac.authorization.k8s.io"
_RBAC_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})

#: Kinds applied first, in this order (fluxcd/pkg ssa ``ReconcileOrder.First``).
KIND_ORDER_FIRST = (
    "CustomResourceDefinition",
    "Namespace",
    "ClusterClass",
    "RuntimeClass",
    "PriorityClass",
    "StorageClass",
    "VolumeSnapshotClass",
    "IngressClass",
    "GatewayClass",
    "ResourceQuota",
    "ServiceAccount",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
)
#: Kinds applied last: a webhook registered early would intercept the objects after it.
KIND_ORDER_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")

_KIND_INDEX = {
    **{kind: i - len(KIND_ORDER_FIRST) for i, kind in enumerate(KIND_ORDER_FIRST)},
    **{kind: i + 1 for i, kind in enumerate(KIND_ORDER_LAST)},
}


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Which object: group, kind, namespace (``""`` when cluster-scoped), name, and the
    API version it was applied at (not part of its identity)."""

    group: str
    kind: str
    namespace: str
    name: str
    version: str = ""

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        """The reference of a manifest or live object."""
        group, _, version = str(obj.get("apiVersion") or "").rpartition("/")
        metadata = obj.get("metadata") or {}
        return cls(
            group=group,
            kind=str(obj.get("kind") or ""),
            namespace=str(metadata.get("namespace") or ""),
            name=str(metadata.get("name") or ""),
            version=version,
        )

    @property
    def api_version(self) -> str:
        """``v1`` or ``group/version``, as written in manifests."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def id(self) -> str:
        """Flux's inventory id: ``<namespace>_<name>_<group>_<kind>``."""
        name = self.name
        if self.group == _RBAC_GROUP and self.kind in _RBAC_KINDS:
            name = name.replace(":", _COLON)
        return _SEPARATOR.join((self.namespace, name, self.group, self.kind))

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """What makes two references the same object: the version does not."""
        return (self.group, self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        """``Kind/namespace/name`` (``Kind/name`` when cluster-scoped), as Flux names
        objects in events and conditions."""
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"


def _ref(item: ObjectRef | Mapping[str, Any]) -> ObjectRef:
    return item if isinstance(item, ObjectRef) else ObjectRef.of(item)


def order_key(item: ObjectRef | Mapping[str, Any]) -> tuple[int, str, str, str, str]:
    """Sort key of Flux's apply order."""
    ref = _ref(item)
    return (_KIND_INDEX.get(ref.kind, 0), ref.group, ref.kind, ref.namespace, ref.name)


def is_cluster_definition(item: ObjectRef | Mapping[str, Any]) -> bool:
    """CRDs, Namespaces and ClusterRoles: applied first, in a stage of their own."""
    ref = _ref(item)
    return (
        (ref.kind == "CustomResourceDefinition" and ref.group == "apiextensions.k8s.io")
        or (ref.kind == "Namespace" and ref.group == "" and ref.version == "v1")
        or (ref.kind == "ClusterRole" and ref.group == "rbac.authorization.k8s.io")
    )


def apply_stage(item: ObjectRef | Mapping[str, Any]) -> int:
    """Flux's stage of an object: 0 the cluster definitions, 1 the class definitions
    (``StorageClass``, ``IngressClass``, ``GatewayClass``... any kind ending in
    ``Class``), 2 everything else."""
    if is_cluster_definition(item):
        return 0
    return 1 if _ref(item).kind.endswith("Class") else 2


def apply_order(items: Iterable[_T]) -> list[_T]:
    """The items in the order they are applied: stage by stage, each in kind order."""
    listed = list(items)
    return sorted(listed, key=lambda item: (apply_stage(item), order_key(item)))


def entries(items: Iterable[ObjectRef | Mapping[str, Any]]) -> list[dict[str, str]]:
    """Inventory entries of objects (manifests or references), in apply order, each
    object once."""
    seen: set[str] = set()
    found: list[dict[str, str]] = []
    for ref in apply_order([_ref(item) for item in items]):
        if ref.id not in seen:
            seen.add(ref.id)
            found.append({"id": ref.id, "v": ref.version})
    return found


def parse(inventory: Iterable[Mapping[str, Any]]) -> list[ObjectRef]:
    """The references of inventory entries; a malformed id raises ``ValueError``."""
    return [_parse_id(str(entry.get("id") or ""), str(entry.get("v") or "")) for entry in inventory]


def _parse_id(entry_id: str, version: str) -> ObjectRef:
    namespace, sep, rest = entry_id.partition(_SEPARATOR)
    rest, sep_kind, kind = rest.rpartition(_SEPARATOR)
    name, sep_group, group = rest.rpartition(_SEPARATOR)
    name = name.replace(_COLON, ":")
    if not (sep and sep_kind and sep_group) or not name or not kind or _SEPARATOR in name:
        raise ValueError(f"inventory entry {entry_id!r} is not <namespace>_<name>_<group>_<kind>")
    return ObjectRef(group=group, kind=kind, namespace=namespace, name=name, version=version)


def recorded(status: Mapping[str, Any]) -> list[ObjectRef]:
    """The objects a Kustomization's ``status.inventory`` records. A corrupt record counts
    as empty: a prune then deletes nothing it cannot name, and the next apply replaces it."""
    try:
        return parse((status.get("inventory") or {}).get("entries") or [])
    except ValueError:
        return []


def stale(old: Sequence[ObjectRef], new: Sequence[ObjectRef]) -> list[ObjectRef]:
    """Objects of ``old`` that ``new`` no longer has, in deletion (reverse apply) order."""
    kept = {ref.identity for ref in new}
    gone = [ref for ref in old if ref.identity not in kept]
    return list(reversed(apply_order(gone)))
