"""Reference and helper types shared by several Flux APIs.

These mirror ``github.com/fluxcd/pkg/apis/meta``, ``.../kustomize`` and ``.../acl``:
the same JSON names, so a secret reference or a kustomize patch reads the same in a
``Kustomization`` as in a ``HelmRelease`` post-renderer. The status-side types
(conditions, artifact) are described as schemas in ``_crd`` rather than classes,
because fluxd writes status as plain JSON patches.
"""

# fluxd.api._schema.field is a dataclass field specifier, not a mutable default.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fluxd.api._schema import Rule, field

__all__ = [
    "JSON6902",
    "AccessFrom",
    "CommonMetadata",
    "CustomHealthCheck",
    "DependencyReference",
    "IgnoreRule",
    "Image",
    "JSON6902Patch",
    "KubeConfigReference",
    "LabelSelector",
    "LabelSelectorRequirement",
    "LocalObjectReference",
    "NamespaceSelector",
    "NamespacedObjectKindReference",
    "NamespacedObjectReference",
    "Patch",
    "SecretKeyReference",
    "Selector",
]


@dataclass(frozen=True, kw_only=True)
class LocalObjectReference:
    """A reference to an object in the same namespace as the referrer."""

    name: str = field("name", "Name of the referent.", required=True)


@dataclass(frozen=True, kw_only=True)
class SecretKeyReference:
    """A reference to one key of a Secret in the same namespace as the referrer."""

    name: str = field("name", "Name of the Secret.", required=True)
    key: str | None = field("key", "Key in the Secret, when not the default one.")


@dataclass(frozen=True, kw_only=True)
class NamespacedObjectReference:
    """A reference to an object, possibly in another namespace."""

    name: str = field("name", "Name of the referent.", required=True)
    namespace: str | None = field(
        "namespace", "Namespace of the referent, defaults to the referrer's namespace."
    )


@dataclass(frozen=True, kw_only=True)
class NamespacedObjectKindReference:
    """A typed reference to an object, possibly in another namespace."""

    api_version: str | None = field("apiVersion", "API version of the referent.")
    kind: str = field("kind", "Kind of the referent.", required=True)
    name: str = field("name", "Name of the referent.", required=True)
    namespace: str | None = field(
        "namespace", "Namespace of the referent, defaults to the referrer's namespace."
    )


_ONE_KUBECONFIG_SOURCE = (
    "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified"
)


@dataclass(frozen=True, kw_only=True)
class KubeConfigReference:
    """Where to find the kubeconfig of a remote cluster to reconcile against."""

    __rules__ = (
        Rule(
            cel="has(self.configMapRef) || has(self.secretRef)",
            message=_ONE_KUBECONFIG_SOURCE,
            check=lambda s: s.config_map_ref is not None or s.secret_ref is not None,
        ),
        Rule(
            cel="!has(self.configMapRef) || !has(self.secretRef)",
            message=_ONE_KUBECONFIG_SOURCE,
            check=lambda s: s.config_map_ref is None or s.secret_ref is None,
        ),
    )

    config_map_ref: LocalObjectReference | None = field(
        "configMapRef",
        "ConfigMap naming a cloud provider (aws, azure, gcp, generic) and cluster whose "
        "credentials come from workload identity.",
    )
    secret_ref: SecretKeyReference | None = field(
        "secretRef",
        "Secret holding the kubeconfig, under 'value' or 'value.yaml' unless a key is given.",
    )


@dataclass(frozen=True, kw_only=True)
class Selector:
    """Selects the resources a patch or rule applies to."""

    group: str | None = field("group", "API group of the target resources.")
    version: str | None = field("version", "API version of the target resources.")
    kind: str | None = field("kind", "Kind of the target resources.")
    name: str | None = field("name", "Name of the target resources (a regular expression).")
    namespace: str | None = field("namespace", "Namespace of the target resources.")
    annotation_selector: str | None = field(
        "annotationSelector", "Annotation selector the target resources must match."
    )
    label_selector: str | None = field(
        "labelSelector", "Label selector the target resources must match."
    )


@dataclass(frozen=True, kw_only=True)
class Patch:
    """A strategic merge or JSON 6902 patch and the resources it targets."""

    patch: str = field("patch", "The patch document, inline YAML or JSON.", required=True)
    target: Selector | None = field(
        "target", "Resources to patch; when absent, the patch names its own target."
    )


@dataclass(frozen=True, kw_only=True)
class JSON6902:
    """One RFC 6902 JSON patch operation."""

    op: str = field(
        "op",
        "The operation.",
        required=True,
        enum=("test", "remove", "add", "replace", "move", "copy"),
    )
    path: str = field("path", "JSON pointer to the target location.", required=True)
    from_: str | None = field("from", "JSON pointer to the source, for move and copy.")
    value: Any = field("value", "The value for add, replace and test.")


@dataclass(frozen=True, kw_only=True)
class JSON6902Patch:
    """A list of JSON 6902 operations applied to the selected resources."""

    patch: tuple[JSON6902, ...] = field("patch", "The operations.", required=True)
    target: Selector = field("target", "Resources to patch.", required=True)


@dataclass(frozen=True, kw_only=True)
class Image:
    """An image override: new name, tag or digest for matching container images."""

    name: str = field("name", "Image name to match in container specs.", required=True)
    new_name: str | None = field("newName", "Replacement image name.")
    new_tag: str | None = field("newTag", "Replacement tag.")
    digest: str | None = field("digest", "Replacement digest; takes precedence over newTag.")


@dataclass(frozen=True, kw_only=True)
class CustomHealthCheck:
    """CEL expressions that tell the health of a custom resource kind."""

    api_version: str = field("apiVersion", "API version of the resources.", required=True)
    kind: str = field(
        "kind",
        "Kind of the resources; every kind of the API group without a check of its own "
        "when not set.",
        default="",
    )
    current: str = field(
        "current", "CEL expression true when the resource is healthy.", required=True
    )
    in_progress: str | None = field(
        "inProgress", "CEL expression true while the resource is progressing."
    )
    failed: str | None = field("failed", "CEL expression true when the resource failed.")


@dataclass(frozen=True, kw_only=True)
class NamespaceSelector:
    """Selects namespaces by their labels."""

    match_labels: Mapping[str, str] = field(
        "matchLabels", "Labels a namespace must carry.", default={}
    )


@dataclass(frozen=True, kw_only=True)
class AccessFrom:
    """Namespaces allowed to reference this object (provisional in Flux, unused)."""

    namespace_selectors: tuple[NamespaceSelector, ...] = field(
        "namespaceSelectors", "Selectors of the namespaces allowed access.", required=True
    )


@dataclass(frozen=True, kw_only=True)
class LabelSelectorRequirement:
    """One label selector requirement (key, operator, values)."""

    key: str = field("key", "The label key.", required=True)
    operator: str = field(
        "operator",
        "How the key relates to the values: In, NotIn, Exists or DoesNotExist.",
        required=True,
    )
    values: tuple[str, ...] = field(
        "values", "Values for In and NotIn.", default=(), list_type="atomic"
    )


@dataclass(frozen=True, kw_only=True)
class LabelSelector:
    """A Kubernetes label selector."""

    match_labels: Mapping[str, str] = field(
        "matchLabels", "Labels an object must carry.", default={}
    )
    match_expressions: tuple[LabelSelectorRequirement, ...] = field(
        "matchExpressions",
        "Requirements an object's labels must meet.",
        default=(),
        list_type="atomic",
    )


@dataclass(frozen=True, kw_only=True)
class IgnoreRule:
    """JSON pointers excluded from drift detection (and, in a Kustomization, the apply)."""

    paths: tuple[str, ...] = field("paths", "JSON pointers (RFC 6901) to ignore.", required=True)
    target: Selector | None = field("target", "Objects the rule applies to; all when not set.")


@dataclass(frozen=True, kw_only=True)
class DependencyReference:
    """An object of the same kind that must be ready before this one is reconciled."""

    name: str = field("name", "Name of the referent.", required=True)
    namespace: str | None = field(
        "namespace", "Namespace of the referent, defaults to the dependent's namespace."
    )
    ready_expr: str | None = field(
        "readyExpr", "CEL expression replacing the built-in readiness check of the dependency."
    )


@dataclass(frozen=True, kw_only=True)
class CommonMetadata:
    """Labels and annotations set on every applied object, overriding existing keys."""

    annotations: Mapping[str, str] = field("annotations", "Annotations to add.", default={})
    labels: Mapping[str, str] = field("labels", "Labels to add.", default={})
