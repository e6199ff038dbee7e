"""The identity of one Flux object across the daemon: kind, namespace, name.

The scheduler queues by it, the artifact cache stores by it, metrics label by it. Kind is
part of the key because one process reconciles every kind: a GitRepository and a
Kustomization may share a namespace and a name.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["ObjectKey"]


class ObjectKey(NamedTuple):
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectKey:
        """The key of an API object (a dict as the API server returns it)."""
        metadata = obj["metadata"]
        return cls(obj["kind"], metadata.get("namespace", ""), metadata["name"])

    @classmethod
    def every(cls, kind: str, namespace: str) -> ObjectKey:
        """The key standing for all objects of ``kind`` in ``namespace``: a consumer that
        reads them all (an ImageUpdateAutomation its ImagePolicies) tracks it, and a
        change to any of them wakes its dependents."""
        return cls(kind, namespace, "*")

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"
