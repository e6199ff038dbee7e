"""The objects a release consists of, as Flux's helm-controller lists them.

A HelmRelease's ``status.inventory`` and its ``healthCheckExprs`` look at the same
objects: those of the release manifest Helm stored (hooks left out: they run and go, they
are not part of what the release keeps), then the CRDs of the chart's ``crds/``
directories, which Helm installs but never records in the manifest. Helm writes no
namespace into a namespaced object that has none; the release namespace is its
namespace, and only the API server knows which kinds are namespaced, so the REST mapper
is asked. A kind it does not know keeps no namespace, as Flux does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from fluxd.apply.errors import ApplyError
from fluxd.apply.inventory import ObjectRef
from fluxd.apply.mapper import RESTMapper

__all__ = ["HOOK_ANNOTATION", "inventory_entries", "release_refs"]

HOOK_ANNOTATION = "helm.sh/hook"


def _documents(text: str) -> list[dict[str, Any]]:
    return [
        document
        for document in yaml.load_all(text, Loader=yaml.CSafeLoader)
        if isinstance(document, dict) and document.get("kind")
    ]


async def release_refs(
    manifest: str, *, namespace: str, crds: Iterable[str], mapper: RESTMapper
) -> list[ObjectRef]:
    """The release's objects: the manifest's (no hooks) in its order, then the chart's
    CRDs, each once. Raises ``yaml.YAMLError`` for a manifest that does not parse."""
    found: list[ObjectRef] = []
    for document in _documents(manifest):
        annotations = (document.get("metadata") or {}).get("annotations") or {}
        if HOOK_ANNOTATION in annotations:
            continue
        ref = ObjectRef.of(document)
        if not ref.namespace:
            try:
                resource = await mapper.resource_for(ref.api_version, ref.kind)
            except ApplyError:
                resource = None
            if resource is not None and resource.namespaced:
                ref = ObjectRef(ref.group, ref.kind, namespace, ref.name, ref.version)
        found.append(ref)
    for text in crds:
        found.extend(ObjectRef.of(document) for document in _documents(text))
    unique: dict[str, ObjectRef] = {}
    for ref in found:
        unique.setdefault(ref.id, ref)
    return list(unique.values())


def inventory_entries(refs: Iterable[ObjectRef]) -> list[dict[str, str]]:
    """``status.inventory.entries`` of the refs, in their order."""
    return [{"id": ref.id, "v": ref.version} for ref in refs]
