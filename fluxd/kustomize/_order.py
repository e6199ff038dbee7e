"""The order of a build's output: kustomize's ``legacy`` sort, or ``fifo`` on request.

``kubectl kustomize`` sorts by kind unless the top kustomization says otherwise in
``sortOptions``: Namespaces and other cluster plumbing first, webhooks last, everything
else in between. Within one rank, objects sort by group/version/kind, then namespace (an
object without one after all that have one), then name. The rank list is kustomize's and
frozen ("DO NOT CHANGE" upstream): applying in this order was once meant to help the API
server, and users now rely on the exact output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fluxd.kustomize._model import KustomizeError, Resource

__all__ = ["DEFAULT_ORDER_FIRST", "DEFAULT_ORDER_LAST", "sort_resources"]

DEFAULT_ORDER_FIRST: tuple[str, ...] = (
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
)
DEFAULT_ORDER_LAST: tuple[str, ...] = (
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)


def _gvk_string(obj: Mapping[str, Any]) -> str:
    group, _, version = str(obj.get("apiVersion") or "").rpartition("/")
    kind = str(obj.get("kind") or "")
    return "_".join((group or "~G", version or "~V", kind or "~K"))


def _legacy_key(resource: Resource, ranks: Mapping[str, int]) -> tuple[int, str, str]:
    obj = resource.obj
    metadata = obj.get("metadata") or {}
    # '~' sorts after every letter and digit: objects without a namespace come last.
    namespace = str(metadata.get("namespace") or "") or "~X"
    name = str(metadata.get("name") or "") or "~N"
    # Compared as one string, as kustomize does: "a-b|x" sorts before "a|x".
    return (ranks.get(str(obj.get("kind") or ""), 0), _gvk_string(obj), f"{namespace}|{name}")


def _ranks(first: Sequence[str], last: Sequence[str]) -> dict[str, int]:
    ranks = {kind: index - len(first) for index, kind in enumerate(first)}
    ranks.update({kind: index + 1 for index, kind in enumerate(last)})
    return ranks


def sort_resources(
    resources: list[Resource], sort_options: Any = None, *, file: str | None = None
) -> list[Resource]:
    """``resources`` in output order, per ``sortOptions`` (default: legacy)."""
    if sort_options is None:
        default_ranks = _ranks(DEFAULT_ORDER_FIRST, DEFAULT_ORDER_LAST)
        return sorted(resources, key=lambda r: _legacy_key(r, default_ranks))
    if not isinstance(sort_options, Mapping):
        raise KustomizeError("sortOptions must be a map", file=file, field="sortOptions")
    order = sort_options.get("order")
    legacy_options = sort_options.get("legacySortOptions")
    if order not in ("fifo", "legacy"):
        raise KustomizeError(
            "the field 'sortOptions.order' must be one of [fifo, legacy]",
            file=file,
            field="sortOptions.order",
        )
    if order == "fifo":
        if legacy_options is not None:
            raise KustomizeError(
                "the field 'sortOptions.legacySortOptions' is set but the selected sort"
                " order is 'fifo', not 'legacy'",
                file=file,
                field="sortOptions.legacySortOptions",
            )
        return list(resources)
    first: Sequence[str] = DEFAULT_ORDER_FIRST
    last: Sequence[str] = DEFAULT_ORDER_LAST
    if isinstance(legacy_options, Mapping):
        first = [str(kind) for kind in legacy_options.get("orderFirst") or []]
        last = [str(kind) for kind in legacy_options.get("orderLast") or []]
    ranks = _ranks(first, last)
    return sorted(resources, key=lambda r: _legacy_key(r, ranks))
