"""CustomResourceDefinition objects built from ``KINDS``.

The spec schema comes from the API classes (``openapi_schema``). Status is typed
where every Flux kind agrees -- ``conditions`` (the ``metav1.Condition`` schema),
``observedGeneration``, ``lastHandledReconcileAt``, ``artifact`` -- and otherwise
preserves unknown fields, so kind-specific status (inventory, history,
lastAppliedRevision, lastScanResult, ...) is stored without fluxd having to
describe every field of every kind. Status defaults to ``observedGeneration: -1``
like Flux, which lets clients tell "never reconciled" from "reconciled gen 0".
"""

from __future__ import annotations

from typing import Any

from fluxd.api._kinds import KindInfo
from fluxd.api._schema import openapi_schema

__all__ = ["ARTIFACT_SCHEMA", "CONDITION_SCHEMA", "crd_for", "status_schema"]

CRD_LABELS = {
    "app.kubernetes.io/component": "crds",
    "app.kubernetes.io/part-of": "fluxd",
}

CONDITION_SCHEMA: dict[str, Any] = {
    "description": "One aspect of the object's current state (metav1.Condition).",
    "type": "object",
    "properties": {
        "lastTransitionTime": {
            "description": "When the condition last changed status.",
            "format": "date-time",
            "type": "string",
        },
        "message": {
            "description": "Human readable details of the transition.",
            "maxLength": 32768,
            "type": "string",
        },
        "observedGeneration": {
            "description": "The generation the condition was set for.",
            "format": "int64",
            "minimum": 0,
            "type": "integer",
        },
        "reason": {
            "description": "CamelCase reason of the last transition.",
            "maxLength": 1024,
            "minLength": 1,
            "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
            "type": "string",
        },
        "status": {
            "description": "True, False or Unknown.",
            "enum": ["True", "False", "Unknown"],
            "type": "string",
        },
        "type": {
            "description": "Condition type in CamelCase (Ready, Reconciling, Stalled, ...).",
            "maxLength": 316,
            "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
            r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
            "type": "string",
        },
    },
    "required": ["lastTransitionTime", "message", "reason", "status", "type"],
}

ARTIFACT_SCHEMA: dict[str, Any] = {
    "description": "The output of a source reconciliation, served over HTTP.",
    "type": "object",
    "properties": {
        "digest": {
            "description": "Digest of the file, algo:checksum.",
            "pattern": "^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$",
            "type": "string",
        },
        "lastUpdateTime": {
            "description": "When the artifact was last updated.",
            "format": "date-time",
            "type": "string",
        },
        "metadata": {
            "additionalProperties": {"type": "string"},
            "description": "Metadata of the artifact, e.g. OCI annotations.",
            "type": "object",
        },
        "path": {"description": "Path relative to the artifact server root.", "type": "string"},
        "revision": {
            "description": "Human readable source revision, e.g. main@sha1:<hex>.",
            "type": "string",
        },
        "size": {"description": "Size in bytes.", "format": "int64", "type": "integer"},
        "url": {"description": "HTTP address of the artifact.", "type": "string"},
    },
    "required": ["lastUpdateTime", "path", "revision", "url"],
}


def status_schema(kind: str) -> dict[str, Any]:
    return {
        "default": {"observedGeneration": -1},
        "description": f"Observed state of the {kind}.",
        "type": "object",
        "properties": {
            "artifact": ARTIFACT_SCHEMA,
            "conditions": {
                "description": "Conditions of the object: Ready, Reconciling, Stalled, ...",
                "items": CONDITION_SCHEMA,
                "type": "array",
            },
            "lastHandledReconcileAt": {
                "description": "Last handled reconcile.fluxcd.io/requestedAt annotation value.",
                "type": "string",
            },
            "observedGeneration": {
                "description": "The last generation reconciled.",
                "format": "int64",
                "type": "integer",
            },
        },
        "x-kubernetes-preserve-unknown-fields": True,
    }


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
            "status": status_schema(info.kind),
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
            "annotations": {"kustomize.toolkit.fluxcd.io/substitute": "disabled"},
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
