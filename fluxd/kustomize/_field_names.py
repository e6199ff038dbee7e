"""Field names of a kustomization file, matched in any case as kustomize matches them.

Kustomize decodes a kustomization by turning the YAML into JSON and handing it to Go's
``encoding/json``, which matches an object's keys to struct fields without regard to
case: ``RESOURCES``, ``patchesJSON6902`` and a patch's ``Target: {Kind: ...}`` all count.
When several spellings of one field appear, each is decoded in turn and the last wins.
Maps (``commonLabels``, a label entry's ``pairs``, ``openapi``) keep their keys as
written: only struct fields fold. :func:`canonical_field_names` rewrites a decoded file
to the spellings the rest of the engine reads, struct by struct; unknown keys are left
alone for the strict check to report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["canonical_field_names"]

#: A struct: its fields' canonical names, each with the struct its value holds (or, for
#: a list, each of its items holds), or None for a scalar, map or list of scalars.
_Struct = Mapping[str, "_Struct | None"]

_SELECTOR: _Struct = dict.fromkeys(
    ("group", "version", "kind", "name", "namespace", "labelSelector", "annotationSelector")
)
_FIELD_SPEC: _Struct = dict.fromkeys(("group", "version", "kind", "path", "create"))
_PATCH: _Struct = {
    "path": None,
    "patch": None,
    "target": _SELECTOR,
    "options": dict.fromkeys(("allowNameChange", "allowKindChange")),
}
_GENERATOR_OPTIONS: _Struct = dict.fromkeys(
    ("labels", "annotations", "disableNameSuffixHash", "immutable")
)
_GENERATOR: _Struct = {
    **dict.fromkeys(("name", "namespace", "behavior", "files", "literals", "envs", "env")),
    "type": None,
    "options": _GENERATOR_OPTIONS,
}
_REPLACEMENT_OPTIONS: _Struct = dict.fromkeys(("delimiter", "index", "create"))
_REPLACEMENT: _Struct = {
    "path": None,
    "source": {**_SELECTOR, "fieldPath": None, "options": _REPLACEMENT_OPTIONS},
    "targets": {
        "select": _SELECTOR,
        "reject": _SELECTOR,
        "fieldPaths": None,
        "options": _REPLACEMENT_OPTIONS,
    },
}
_KUSTOMIZATION: _Struct = {
    **dict.fromkeys(
        (
            "apiVersion",
            "kind",
            "openapi",
            "namePrefix",
            "nameSuffix",
            "namespace",
            "commonLabels",
            "commonAnnotations",
            "patchesStrategicMerge",
            "resources",
            "components",
            "crds",
            "bases",
            "helmGlobals",
            "helmCharts",
            "helmChartInflationGenerator",
            "configurations",
            "generators",
            "transformers",
            "validators",
            "buildMetadata",
        )
    ),
    "metadata": dict.fromkeys(("name", "namespace", "labels", "annotations")),
    "labels": {
        "pairs": None,
        "includeSelectors": None,
        "includeTemplates": None,
        "fields": _FIELD_SPEC,
    },
    "patchesJson6902": _PATCH,
    "patches": _PATCH,
    "images": dict.fromkeys(("name", "newName", "newTag", "digest", "tagSuffix")),
    "replacements": _REPLACEMENT,
    "replicas": dict.fromkeys(("name", "count")),
    "vars": {
        "name": None,
        "objref": dict.fromkeys(("group", "version", "kind", "name", "namespace", "apiVersion")),
        "fieldref": dict.fromkeys(("fieldPath",)),
    },
    "sortOptions": {
        "order": None,
        "legacySortOptions": dict.fromkeys(("orderFirst", "orderLast")),
    },
    "configMapGenerator": _GENERATOR,
    "secretGenerator": _GENERATOR,
    "generatorOptions": _GENERATOR_OPTIONS,
}


def canonical_field_names(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a decoded kustomization) with every struct field spelled as kustomize's
    JSON tags spell it (a new dict: ``data`` is left as it is)."""
    folded: dict[str, Any] = _fold(data, _KUSTOMIZATION)
    return folded


def _fold(value: Any, struct: _Struct | None) -> Any:
    if struct is None:
        return value
    if isinstance(value, list):
        return [_fold(item, struct) for item in value]
    if not isinstance(value, dict):
        return value
    by_lower = {name.lower(): name for name in struct}
    folded: dict[str, Any] = {}
    for key, item in value.items():
        name = key
        if isinstance(key, str) and key not in struct:
            name = by_lower.get(key.lower(), key)
        folded.pop(name, None)  # the last spelling wins, where it stands
        folded[name] = _fold(item, struct[name]) if name in struct else item
    return folded
