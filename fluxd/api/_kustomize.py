"""``kustomize.toolkit.fluxcd.io/v1``: Kustomization.

Mirrors kustomize-controller's ``api/v1``. Defaults Flux resolves in Go rather
than in the CRD (timeout derived from interval, retry interval, deletion policy)
are exposed as properties so every reconciler resolves them the same way.
"""

# fluxd.api._schema.field is a dataclass field specifier, not a mutable default.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fluxd.api._meta import (
    CommonMetadata,
    CustomHealthCheck,
    DependencyReference,
    IgnoreRule,
    Image,
    KubeConfigReference,
    LocalObjectReference,
    NamespacedObjectKindReference,
    Patch,
)
from fluxd.api._schema import DURATION_PATTERN, field, parse_duration

__all__ = [
    "CrossNamespaceSourceReference",
    "Decryption",
    "KustomizationSpec",
    "PostBuild",
    "SubstituteReference",
]


@dataclass(frozen=True, kw_only=True)
class CrossNamespaceSourceReference:
    """The source whose artifact holds the manifests."""

    api_version: str | None = field("apiVersion", "API version of the referent.")
    kind: str = field(
        "kind",
        "Kind of the referent.",
        required=True,
        enum=("OCIRepository", "GitRepository", "Bucket", "ExternalArtifact"),
    )
    name: str = field("name", "Name of the referent.", required=True)
    namespace: str | None = field(
        "namespace", "Namespace of the referent, defaults to the Kustomization's namespace."
    )


@dataclass(frozen=True, kw_only=True)
class Decryption:
    """How encrypted Secrets in the manifests are decrypted."""

    provider: str = field("provider", "Decryption engine.", required=True, enum=("sops",))
    service_account_name: str | None = field(
        "serviceAccountName", "ServiceAccount used to reach cloud KMS services."
    )
    secret_ref: LocalObjectReference | None = field(
        "secretRef", "Secret with the private keys (age, OpenPGP) or KMS credentials."
    )


@dataclass(frozen=True, kw_only=True)
class SubstituteReference:
    """A ConfigMap or Secret whose data keys are substitution variables."""

    kind: str = field("kind", "Kind of the referent.", required=True, enum=("Secret", "ConfigMap"))
    name: str = field(
        "name",
        "Name of the referent, in the Kustomization's namespace.",
        required=True,
        min_length=1,
        max_length=253,
    )
    optional: bool = field(
        "optional", "Tolerate a missing referent (as if it were empty).", schema_default=False
    )


@dataclass(frozen=True, kw_only=True)
class PostBuild:
    """Variable substitution applied to the built manifests."""

    substitute: Mapping[str, str] = field(
        "substitute", "Variables and their values, for ${var} substitution.", default={}
    )
    substitute_from: tuple[SubstituteReference, ...] = field(
        "substituteFrom", "ConfigMaps and Secrets holding more variables.", default=()
    )
    substitute_strategy: str | None = field(
        "substituteStrategy",
        "'WithVariables' (when not set): substitute only when some variable is defined; "
        "'Always': substitute even with none, so defaults (${var:=x}) apply.",
        enum=("WithVariables", "Always"),
    )


@dataclass(frozen=True, kw_only=True)
class KustomizationSpec:
    """Desired state of a Kustomization: build a path of a source and apply it."""

    common_metadata: CommonMetadata | None = field(
        "commonMetadata", "Labels and annotations added to every applied object."
    )
    depends_on: tuple[DependencyReference, ...] = field(
        "dependsOn", "Kustomizations that must be ready first.", default=()
    )
    decryption: Decryption | None = field("decryption", "Decryption of SOPS-encrypted Secrets.")
    interval: str = field(
        "interval",
        "How often to reconcile (approximate, jittered).",
        required=True,
        pattern=DURATION_PATTERN,
    )
    retry_interval: str | None = field(
        "retryInterval",
        "How soon to retry after a failure; the interval when not set.",
        pattern=DURATION_PATTERN,
    )
    kube_config: KubeConfigReference | None = field(
        "kubeConfig", "Kubeconfig of a remote cluster to apply to."
    )
    path: str | None = field(
        "path", "Directory in the source to build; the source root when not set."
    )
    post_build: PostBuild | None = field("postBuild", "Actions on the built manifests.")
    prune: bool = field("prune", "Delete objects that are no longer in the source.", required=True)
    deletion_policy: str | None = field(
        "deletionPolicy",
        "What happens to applied objects when the Kustomization is deleted; "
        "'MirrorPrune' (follow prune) when not set.",
        enum=("MirrorPrune", "Delete", "WaitForTermination", "Orphan"),
    )
    health_checks: tuple[NamespacedObjectKindReference, ...] = field(
        "healthChecks", "Objects whose health is part of readiness.", default=()
    )
    name_prefix: str | None = field(
        "namePrefix", "Prefix added to every object name.", min_length=1, max_length=200
    )
    name_suffix: str | None = field(
        "nameSuffix", "Suffix added to every object name.", min_length=1, max_length=200
    )
    patches: tuple[Patch, ...] = field(
        "patches", "Strategic merge and JSON 6902 patches with target selectors.", default=()
    )
    images: tuple[Image, ...] = field("images", "Image name, tag and digest overrides.", default=())
    service_account_name: str | None = field(
        "serviceAccountName", "ServiceAccount to impersonate when applying."
    )
    source_ref: CrossNamespaceSourceReference = field(
        "sourceRef", "Source holding the manifests.", required=True
    )
    suspend: bool = field("suspend", "Suspend reconciliation of this object.", default=False)
    target_namespace: str | None = field(
        "targetNamespace",
        "Namespace set on every namespaced object.",
        min_length=1,
        max_length=63,
    )
    timeout: str | None = field(
        "timeout",
        "Timeout of build, apply and health checks; derived from interval when not set.",
        pattern=DURATION_PATTERN,
    )
    force: bool = field(
        "force", "Recreate objects whose immutable fields changed.", schema_default=False
    )
    wait: bool = field(
        "wait",
        "Wait for every applied object to be healthy (healthChecks are ignored).",
        default=False,
    )
    components: tuple[str, ...] = field(
        "components", "Kustomize components to include, relative to path.", default=()
    )
    ignore_missing_components: bool = field(
        "ignoreMissingComponents", "Skip components that do not exist.", default=False
    )
    health_check_exprs: tuple[CustomHealthCheck, ...] = field(
        "healthCheckExprs", "CEL health checks for custom resource kinds.", default=()
    )
    ignore: tuple[IgnoreRule, ...] = field(
        "ignore", "Fields excluded from drift detection and apply.", default=()
    )
    build_metadata: tuple[str, ...] = field(
        "buildMetadata",
        "Kustomize build metadata added to every object: 'originAnnotations' (where it "
        "came from), 'transformerAnnotations' (which transformers changed it).",
        default=(),
        enum=("originAnnotations", "transformerAnnotations"),
    )

    @property
    def interval_seconds(self) -> float:
        return parse_duration(self.interval)

    @property
    def timeout_seconds(self) -> float:
        """``timeout``, else interval minus 30s; never below 30s (as Flux)."""
        seconds = parse_duration(self.timeout) if self.timeout else self.interval_seconds - 30.0
        return max(seconds, 30.0)

    @property
    def retry_interval_seconds(self) -> float:
        if self.retry_interval:
            return parse_duration(self.retry_interval)
        return self.interval_seconds

    @property
    def effective_deletion_policy(self) -> str:
        return self.deletion_policy or "MirrorPrune"
