"""The ``transformers:`` and ``generators:`` fields: built-in plugins configured by hand.

Instead of ``namePrefix:`` or ``images:``, a kustomization may list plugin configs, inline
or in files (or directories whose build output is configs), such as::

    apiVersion: builtin
    kind: PrefixSuffixTransformer
    metadata: {name: add-prefix}
    prefix: dev-
    fieldSpecs: [{path: metadata/name}]

Only kustomize's built-in kinds (``apiVersion: builtin``) are run, each by the same code
as its kustomization keyword, with the config's own field specs (a hand-written config
does not get the default tables). Any other kind is an exec or Go plugin: Flux builds
with plugins disabled, and so does fluxd.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fluxd.kustomize import _builtins
from fluxd.kustomize._fieldspec import FieldSpec
from fluxd.kustomize._generators import run_generators
from fluxd.kustomize._images import apply_images
from fluxd.kustomize._loader import scalar_text
from fluxd.kustomize._model import KustomizeError, Resource
from fluxd.kustomize._patches import apply_patches
from fluxd.kustomize._replacements import apply_replacements
from fluxd.kustomize._replicas import apply_replicas

__all__ = ["BUILTIN_API_VERSION", "run_generator_configs", "run_transformer_configs"]

BUILTIN_API_VERSION = "builtin"

ReadFile = Callable[[str], bytes]

_TRANSFORMER_KINDS = frozenset(
    {
        "AnnotationsTransformer",
        "ImageTagTransformer",
        "LabelTransformer",
        "NamespaceTransformer",
        "PatchJson6902Transformer",
        "PatchStrategicMergeTransformer",
        "PatchTransformer",
        "PrefixSuffixTransformer",
        "PrefixTransformer",
        "SuffixTransformer",
        "ReplacementTransformer",
        "ReplicaCountTransformer",
    }
)
_GENERATOR_KINDS = frozenset({"ConfigMapGenerator", "SecretGenerator"})


def _check_builtin(config: Mapping[str, Any], kinds: frozenset[str], field: str, file: str) -> str:
    kind = str(config.get("kind") or "")
    api_version = str(config.get("apiVersion") or "")
    name = str((config.get("metadata") or {}).get("name") or "")
    if api_version != BUILTIN_API_VERSION or kind not in kinds:
        if kind in ("HelmChartInflationGenerator",) and api_version == BUILTIN_API_VERSION:
            raise KustomizeError(
                "HelmChartInflationGenerator is not supported yet: render the chart with a"
                " HelmRelease instead",
                file=file,
                field=field,
            )
        raise KustomizeError(
            f"plugin {api_version}/{kind} {name!r} is not a kustomize built-in: exec and Go"
            f" plugins are disabled (supported in {field}: apiVersion: builtin with kind one"
            f" of {', '.join(sorted(kinds))})",
            file=file,
            field=field,
        )
    return kind


def _specs(config: Mapping[str, Any], file: str) -> tuple[FieldSpec, ...]:
    raw = config.get("fieldSpecs") or []
    if not isinstance(raw, list) or not all(isinstance(entry, dict) for entry in raw):
        raise KustomizeError("fieldSpecs must be a list of {path, kind, ...} maps", file=file)
    try:
        return tuple(FieldSpec.from_config(entry) for entry in raw)
    except KeyError:
        raise KustomizeError("every fieldSpecs entry needs a path", file=file) from None


def run_transformer_configs(
    resources: list[Resource],
    configs: Sequence[Mapping[str, Any]],
    *,
    read_file: ReadFile,
    kustomization_file: str,
    config_file: str | None = None,
) -> list[Resource]:
    """Run the built-in transformer ``configs`` over ``resources``, in order.

    ``config_file`` is the file holding the configs, for errors in their values (by
    default the kustomization file, as for inline configs).
    """
    for config in configs:
        kind = _check_builtin(config, _TRANSFORMER_KINDS, "transformers", kustomization_file)
        resources = _run_one(
            kind,
            config,
            resources,
            read_file=read_file,
            kustomization_file=kustomization_file,
            config_file=config_file or kustomization_file,
        )
    return resources


def _string_map(config: Mapping[str, Any], field: str, kind: str, file: str) -> dict[str, str]:
    """A config's ``labels`` or ``annotations``, every scalar value made a string as
    kustomize makes it (``51`` is ``"51"``, ``null`` is ``""``); a map or list fails,
    naming the config, the file holding it and the field."""
    values = config.get(field)
    if values is None:
        return {}
    name = str((config.get("metadata") or {}).get("name") or "")
    if not isinstance(values, Mapping):
        raise KustomizeError(f"{kind} {name!r}: {field} must be a map", file=file, field=field)
    strings: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, dict | list):
            raise KustomizeError(
                f"{kind} {name!r}: the value of {key!r} in {field} must be a string, not a"
                f" {'map' if isinstance(value, dict) else 'list'}",
                file=file,
                field=f"{field}.{key}",
            )
        if value is None:
            strings[str(key)] = ""
        else:
            strings[str(key)] = value if isinstance(value, str) else scalar_text(value)
    return strings


def _run_one(
    kind: str,
    config: Mapping[str, Any],
    resources: list[Resource],
    *,
    read_file: ReadFile,
    kustomization_file: str,
    config_file: str,
) -> list[Resource]:
    file = kustomization_file
    if kind == "LabelTransformer":
        labels = _string_map(config, "labels", kind, config_file)
        _builtins.apply_labels(resources, labels, _specs(config, file), file=file)
    elif kind == "AnnotationsTransformer":
        annotations = _string_map(config, "annotations", kind, config_file)
        _builtins.apply_annotations(resources, annotations, _specs(config, file), file=file)
    elif kind in ("PrefixSuffixTransformer", "PrefixTransformer", "SuffixTransformer"):
        specs = _specs(config, file)
        _builtins.apply_prefix(resources, str(config.get("prefix") or ""), specs)
        _builtins.apply_suffix(resources, str(config.get("suffix") or ""), specs)
    elif kind == "NamespaceTransformer":
        _builtins.apply_namespace(
            resources,
            str((config.get("metadata") or {}).get("namespace") or ""),
            _specs(config, file),
            unset_only=bool(config.get("unsetOnly")),
            role_binding_subjects=str(config.get("setRoleBindingSubjects") or ""),
            file=file,
        )
    elif kind in ("PatchTransformer", "PatchStrategicMergeTransformer", "PatchJson6902Transformer"):
        return apply_patches(
            resources,
            _patch_fields(kind, config),
            read_file=read_file,
            kustomization_file=file,
        )
    elif kind == "ImageTagTransformer":
        apply_images(
            resources,
            [config.get("imageTag") or {}],
            kustomization_file=file,
            field_specs=_specs(config, file) or None,
        )
    elif kind == "ReplicaCountTransformer":
        apply_replicas(
            resources,
            [config.get("replica") or {}],
            kustomization_file=file,
            field_specs=_specs(config, file) or None,
        )
    elif kind == "ReplacementTransformer":
        apply_replacements(
            resources,
            list(config.get("replacements") or []),
            read_file=read_file,
            kustomization_file=file,
        )
    return resources


def _patch_fields(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The kustomization fields equivalent to one patch plugin config."""
    if kind == "PatchTransformer":
        patch = {
            key: config[key] for key in ("path", "patch", "target", "options") if key in config
        }
        return {"patches": [patch]}
    if kind == "PatchJson6902Transformer":
        patch = {key: config[key] for key in ("path", "target") if key in config}
        if "jsonOp" in config:
            patch["patch"] = config["jsonOp"]
        return {"patchesJson6902": [patch]}
    entries: list[Any] = list(config.get("paths") or [])
    if config.get("patches"):
        entries.append(config["patches"])
    return {"patchesStrategicMerge": entries}


def run_generator_configs(
    resources: list[Resource],
    configs: Sequence[Mapping[str, Any]],
    *,
    read_file: ReadFile,
    kustomization_file: str,
) -> list[Resource]:
    """Run the built-in generator ``configs`` (ConfigMapGenerator, SecretGenerator)."""
    for config in configs:
        kind = _check_builtin(config, _GENERATOR_KINDS, "generators", kustomization_file)
        metadata = config.get("metadata") or {}
        entry = {
            key: value
            for key, value in config.items()
            if key not in ("apiVersion", "kind", "metadata")
        }
        entry["name"] = metadata.get("name")
        if metadata.get("namespace"):
            entry["namespace"] = metadata["namespace"]
        field = "configMapGenerator" if kind == "ConfigMapGenerator" else "secretGenerator"
        resources = run_generators(
            resources,
            {field: [entry]},
            read_file=read_file,
            kustomization_file=kustomization_file,
        )
    return resources
