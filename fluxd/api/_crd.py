"""CustomResourceDefinition objects built from ``KINDS``.

Spec and status schemas both come from the API classes (``openapi_schema`` of a
kind's spec and status class), so the CRDs carry Flux's fields, types and
validation on both sides and the API server prunes nothing fluxd writes.
"""

from __future__ import annotations

from typing import Any

from fluxd import __version__
from fluxd.api._kinds import KindInfo
from fluxd.api._schema import openapi_schema

__all__ = ["crd_for", "status_schema"]

#: ``flux check`` lists CRDs by the part-of label and reads the version label.
CRD_LABELS = {
    "app.kubernetes.io/component": "crds",
    "app.kubernetes.io/part-of": "flux",
    "app.kubernetes.io/version": __version__,
}


def status_schema(info: KindInfo[Any]) -> dict[str, Any]:
    """The status schema of a kind. A kind whose reconciler records the generation it
    saw defaults to ``observedGeneration: -1`` like Flux, which lets clients tell
    "never reconciled" from "reconciled generation 0"."""
    schema = openapi_schema(info.status)
    if "observedGeneration" in schema["properties"]:
        return {"default": {"observedGeneration": -1}, **schema}
    return schema


def _root_schema(info: KindInfo[Any]) -> dict[str, Any]:
    return {
        "description": f"{info.kind} is the Schema for the {info.plural} API.",
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "Versioned schema of this representation of an object.",
                "type": "string",
            },
            "kind": {
                "description": "REST resource this object represents.",
                "type": "string",
            },
            "metadata": {"type": "object"},
            "spec": openapi_schema(info.spec),
            "status": status_schema(info),
        },
    }


def crd_for(info: KindInfo[Any]) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind, as plain data in a stable key order."""
    columns = []
    for col in info.printer_columns:
        entry: dict[str, Any] = {"jsonPath": col.json_path, "name": col.name}
        if col.priority:
            entry["priority"] = col.priority
        entry["type"] = col.type
        columns.append(entry)
    versions = []
    for version in info.versions:
        entry = {"additionalPrinterColumns": columns}
        if version.deprecation_warning:
            entry["deprecated"] = True
            entry["deprecationWarning"] = version.deprecation_warning
        entry.update(
            {
                "name": version.name,
                "schema": {"openAPIV3Schema": _root_schema(info)},
                "served": True,
                "storage": version.storage,
                "subresources": {"status": {}},
            }
        )
        versions.append(entry)
    names: dict[str, Any] = {}
    if info.categories:
        names["categories"] = list(info.categories)
    names.update({"kind": info.kind, "listKind": f"{info.kind}List", "plural": info.plural})
    if info.short_names:
        names["shortNames"] = list(info.short_names)
    names["singular"] = info.singular
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            # Pruning a CRD deletes every object of its kind in the cluster: deleting the
            # bootstrap Kustomization, or dropping the CRDs from its path, must not do that.
            "annotations": {
                "kustomize.toolkit.fluxcd.io/prune": "disabled",
                "kustomize.toolkit.fluxcd.io/substitute": "disabled",
            },
            "labels": dict(CRD_LABELS),
            "name": info.crd_name,
        },
        "spec": {
            "conversion": {"strategy": "None"},
            "group": info.group,
            "names": names,
            "scope": "Namespaced" if info.namespaced else "Cluster",
            "versions": versions,
        },
    }
