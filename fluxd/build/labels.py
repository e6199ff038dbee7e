"""The labels that name the Kustomization an object belongs to, as Flux sets them.

Every object a Kustomization applies carries ``kustomize.toolkit.fluxcd.io/name`` and
``.../namespace``: ``flux trace``, prune and the CLI's ``diff`` find a Kustomization's
objects by them, so Flux and fluxd must write exactly the same pair.
"""

from __future__ import annotations

__all__ = ["NAMESPACE_LABEL", "NAME_LABEL", "owner_labels"]

NAME_LABEL = "kustomize.toolkit.fluxcd.io/name"
NAMESPACE_LABEL = "kustomize.toolkit.fluxcd.io/namespace"


def owner_labels(namespace: str, name: str) -> dict[str, str]:
    """The owner labels of Kustomization ``namespace/name``."""
    return {NAME_LABEL: name, NAMESPACE_LABEL: namespace}
