"""``helm.toolkit.fluxcd.io/v2``: HelmRelease.

Mirrors helm-controller's ``api/v2``. The same schema is also served as
``v2beta1``/``v2beta2`` (no conversion webhook): real-world YAML still uses the
beta versions, and the fields that matter are the same. Go-side defaults (timeout
5m, max history 5, persistent client, remediation strategy) are properties here.

The actions' shared fields are declared once, on ``HelmAction`` (every action),
``ReleaseAction`` (install, upgrade, rollback), ``RenderAction`` (install and
upgrade) and ``RevisitAction`` (upgrade and rollback, which act on an existing
release); the remediations' on ``Remediation``, the retry strategies' on
``ActionStrategy`` and the two chart references' on ``ChartReference``. The chart
template shares its build fields and its verification with the HelmChart kind; the
dependencies and common metadata are the Kustomization's types.
"""

# fluxd.api._schema.field is a dataclass field specifier, not a mutable default.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from fluxd.api._meta import (
    CommonMetadata,
    CustomHealthCheck,
    DependencyReference,
    IgnoreRule,
    Image,
    JSON6902Patch,
    KubeConfigReference,
    Patch,
)
from fluxd.api._schema import DURATION_PATTERN, Rule, field, parse_duration
from fluxd.api._source import HelmChartBuild, SignatureVerification

__all__ = [
    "ActionStrategy",
    "ChartReference",
    "CrossNamespaceObjectReference",
    "DriftDetection",
    "Filter",
    "HelmAction",
    "HelmChartTemplate",
    "HelmChartTemplateObjectMeta",
    "HelmChartTemplateSpec",
    "HelmChartTemplateVerification",
    "HelmReleaseDependency",
    "HelmReleaseSourceReference",
    "HelmReleaseSpec",
    "Install",
    "InstallRemediation",
    "InstallStrategy",
    "Kustomize",
    "PostRenderer",
    "ReleaseAction",
    "Remediation",
    "RenderAction",
    "RevisitAction",
    "Rollback",
    "Test",
    "Uninstall",
    "Upgrade",
    "UpgradeRemediation",
    "UpgradeStrategy",
    "ValuesReference",
    "WaitStrategy",
]

_CRDS = ("Skip", "Create", "CreateReplace")


@dataclass(frozen=True, kw_only=True)
class ChartReference:
    """The object a release's chart comes from, possibly in another namespace; each of
    the two references (``chart.spec.sourceRef``, ``chartRef``) allows its own kinds."""

    api_version: str | None = field("apiVersion", "API version of the referent.")
    name: str = field("name", "Name of the referent.", required=True, min_length=1, max_length=253)
    namespace: str | None = field(
        "namespace",
        "Namespace of the referent; the HelmRelease's namespace when not set.",
        min_length=1,
        max_length=63,
    )


@dataclass(frozen=True, kw_only=True)
class CrossNamespaceObjectReference(ChartReference):
    """The source (HelmRepository, GitRepository or Bucket) the chart comes from."""

    kind: str = field(
        "kind",
        "Kind of the referent.",
        required=True,
        enum=("HelmRepository", "GitRepository", "Bucket"),
    )


@dataclass(frozen=True, kw_only=True)
class HelmReleaseSourceReference(ChartReference):
    """A source object that directly provides the chart artifact."""

    kind: str = field(
        "kind",
        "Kind of the referent.",
        required=True,
        enum=("OCIRepository", "HelmChart", "ExternalArtifact"),
    )


@dataclass(frozen=True, kw_only=True)
class ValuesReference:
    """A ConfigMap or Secret key holding values, and where to merge them."""

    kind: str = field("kind", "Kind of the referent.", required=True, enum=("Secret", "ConfigMap"))
    name: str = field(
        "name",
        "Name of the referent, in the HelmRelease's namespace.",
        required=True,
        min_length=1,
        max_length=253,
    )
    values_key: str | None = field(
        "valuesKey",
        "Data key holding the values; 'values.yaml' when not set.",
        max_length=253,
        pattern=r"^[\-._a-zA-Z0-9]+$",
    )
    target_path: str | None = field(
        "targetPath",
        "Dot path the single value is set at; merged at the root when not set.",
        max_length=250,
        pattern=r"^([a-zA-Z0-9_\-.\\\/]|\[[0-9]{1,5}\])+$",
    )
    optional: bool = field(
        "optional", "Ignore a missing referent (other errors still fail).", default=False
    )
    literal: bool = field(
        "literal",
        "Set the value at targetPath as is, like 'helm --set-literal', instead of parsing "
        "it as '--set' syntax; no effect without targetPath.",
        default=False,
    )

    @property
    def key(self) -> str:
        return self.values_key or "values.yaml"


@dataclass(frozen=True, kw_only=True)
class HelmReleaseDependency(DependencyReference):
    """A HelmRelease that must be ready before this one is reconciled."""

    __descriptions__: ClassVar[Mapping[str, str]] = {
        "namespace": "Namespace of the referent, defaults to the HelmRelease's namespace.",
    }


@dataclass(frozen=True, kw_only=True)
class HelmChartTemplateVerification(SignatureVerification):
    """Signature verification of an OCI chart."""


@dataclass(frozen=True, kw_only=True)
class HelmChartTemplateObjectMeta:
    """Labels and annotations of the generated HelmChart."""

    labels: Mapping[str, str] = field("labels", "Labels of the HelmChart.", default={})
    annotations: Mapping[str, str] = field(
        "annotations", "Annotations of the HelmChart.", default={}
    )


@dataclass(frozen=True, kw_only=True)
class HelmChartTemplateSpec(HelmChartBuild):
    """Template of the HelmChart spec fluxd creates for this release."""

    __descriptions__: ClassVar[Mapping[str, str]] = {
        "reconcile_strategy": "New chart artifact on a new version, or on every source revision.",
    }

    chart: str = field(
        "chart",
        "Chart name, or path within a Git/Bucket source.",
        required=True,
        min_length=1,
        max_length=2048,
    )
    source_ref: CrossNamespaceObjectReference = field(
        "sourceRef", "Source holding the chart.", required=True
    )
    interval: str | None = field(
        "interval",
        "How often the source is checked; the release interval when not set.",
        pattern=DURATION_PATTERN,
    )
    verify: HelmChartTemplateVerification | None = field(
        "verify", "Signature verification (OCI sources only)."
    )


@dataclass(frozen=True, kw_only=True)
class HelmChartTemplate:
    """The HelmChart fluxd creates in the source's namespace for this release."""

    metadata: HelmChartTemplateObjectMeta | None = field(
        "metadata", "Labels and annotations of the HelmChart."
    )
    spec: HelmChartTemplateSpec = field("spec", "Spec of the HelmChart.", required=True)


@dataclass(frozen=True, kw_only=True)
class DriftDetection:
    """Whether and how cluster state is compared with the release manifest."""

    mode: str | None = field(
        "mode",
        "'enabled' corrects drift, 'warn' reports it, 'disabled' (default) ignores it.",
        enum=("enabled", "warn", "disabled"),
    )
    ignore: tuple[IgnoreRule, ...] = field("ignore", "Changes to ignore.", default=())

    @property
    def effective_mode(self) -> str:
        return self.mode or "disabled"


@dataclass(frozen=True, kw_only=True)
class Remediation:
    """What install and upgrade remediations share: how often to retry, and whether failed
    tests count as failures."""

    retries: int = field(
        "retries", "Retries before giving up; negative means unlimited.", default=0
    )
    ignore_test_failures: bool | None = field(
        "ignoreTestFailures", "Do not remediate failed tests; test.ignoreFailures when not set."
    )


@dataclass(frozen=True, kw_only=True)
class InstallRemediation(Remediation):
    """What to do when an install fails."""

    remediate_last_failure: bool | None = field(
        "remediateLastFailure", "Remediate the last failure too; false when not set."
    )


_STRATEGIES = ("RemediateOnFailure", "RetryOnFailure")


@dataclass(frozen=True, kw_only=True)
class ActionStrategy:
    """How a failed install or upgrade is followed up: remediated (see remediation), or
    retried as is at an interval."""

    name: str = field(
        "name",
        "'RemediateOnFailure' or 'RetryOnFailure'.",
        required=True,
        enum=_STRATEGIES,
    )
    retry_interval: str | None = field(
        "retryInterval",
        "How long to wait before retrying (RetryOnFailure only); 5m when not set.",
        pattern=DURATION_PATTERN,
    )


@dataclass(frozen=True, kw_only=True)
class InstallStrategy(ActionStrategy):
    """How a failed install is followed up."""

    __rules__ = (
        Rule(
            cel="!has(self.retryInterval) || self.name != 'RemediateOnFailure'",
            message=".retryInterval cannot be set when .name is 'RemediateOnFailure'",
            check=lambda s: s.retry_interval is None or s.name != "RemediateOnFailure",
        ),
    )


@dataclass(frozen=True, kw_only=True)
class UpgradeStrategy(ActionStrategy):
    """How a failed upgrade is followed up."""

    __rules__ = (
        Rule(
            cel="!has(self.retryInterval) || self.name == 'RetryOnFailure'",
            message=".retryInterval can only be set when .name is 'RetryOnFailure'",
            check=lambda s: s.retry_interval is None or s.name == "RetryOnFailure",
        ),
    )


@dataclass(frozen=True, kw_only=True)
class HelmAction:
    """What the configuration of every Helm action has: a timeout of its own."""

    timeout: str | None = field(
        "timeout",
        "Timeout of each Kubernetes operation of this action; spec.timeout when not set.",
        pattern=DURATION_PATTERN,
    )


@dataclass(frozen=True, kw_only=True)
class ReleaseAction(HelmAction):
    """An action that writes a release's resources (install, upgrade, rollback): its hooks
    run and its resources are waited for, unless disabled."""

    disable_wait: bool = field("disableWait", "Do not wait for resources.", default=False)
    disable_wait_for_jobs: bool = field(
        "disableWaitForJobs", "Do not wait for Jobs to complete.", default=False
    )
    disable_hooks: bool = field("disableHooks", "Do not run hooks.", default=False)


@dataclass(frozen=True, kw_only=True)
class RenderAction(ReleaseAction):
    """An action that renders the chart first (install, upgrade): the rendered manifests
    are validated against the cluster's OpenAPI schema, unless disabled."""

    disable_open_api_validation: bool = field(
        "disableOpenAPIValidation",
        "Skip OpenAPI validation of rendered manifests.",
        default=False,
    )
    disable_schema_validation: bool = field(
        "disableSchemaValidation",
        "Skip validating the values against the chart's JSON schema.",
        default=False,
    )
    disable_take_ownership: bool = field(
        "disableTakeOwnership",
        "Fail on existing resources the release does not own instead of adopting them.",
        default=False,
    )


@dataclass(frozen=True, kw_only=True)
class RevisitAction:
    """An action on a release that exists already (upgrade, rollback): whether it applies
    server-side can follow how the release was applied before."""

    server_side_apply: str | None = field(
        "serverSideApply",
        "'enabled', 'disabled', or 'auto' (default): as the release was applied before.",
        enum=("enabled", "disabled", "auto"),
    )


@dataclass(frozen=True, kw_only=True)
class Install(RenderAction):
    """Configuration of Helm install actions."""

    remediation: InstallRemediation | None = field(
        "remediation", "Remediation of failed installs; none by default."
    )
    replace: bool = field(
        "replace", "Reuse the name of a deleted release kept in history.", default=False
    )
    skip_crds: bool = field("skipCRDs", "Deprecated: use crds: Skip.", default=False)
    crds: str | None = field(
        "crds", "CRD policy: 'Create' (default) installs new CRDs only.", enum=_CRDS
    )
    create_namespace: bool = field(
        "createNamespace", "Create the target namespace if missing.", default=False
    )
    strategy: InstallStrategy | None = field(
        "strategy", "Follow-up of a failed install; RemediateOnFailure when not set."
    )
    server_side_apply: bool | None = field(
        "serverSideApply", "Apply the resources server-side; true when not set."
    )


@dataclass(frozen=True, kw_only=True)
class UpgradeRemediation(Remediation):
    """What to do when an upgrade fails."""

    remediate_last_failure: bool | None = field(
        "remediateLastFailure", "Remediate the last failure too; true if retries > 0 when not set."
    )
    strategy: str | None = field(
        "strategy",
        "Remediation: 'rollback' (default) or 'uninstall'.",
        enum=("rollback", "uninstall"),
    )

    @property
    def effective_strategy(self) -> str:
        return self.strategy or "rollback"


@dataclass(frozen=True, kw_only=True)
class Upgrade(RenderAction, RevisitAction):
    """Configuration of Helm upgrade actions."""

    remediation: UpgradeRemediation | None = field(
        "remediation", "Remediation of failed upgrades; none by default."
    )
    force: bool = field("force", "Force resource updates by replacement.", default=False)
    preserve_values: bool = field(
        "preserveValues", "Reuse the last release's values (not declarative).", default=False
    )
    cleanup_on_fail: bool = field(
        "cleanupOnFail", "Delete resources created by a failed upgrade.", default=False
    )
    crds: str | None = field("crds", "CRD policy: 'Skip' (default) leaves CRDs alone.", enum=_CRDS)
    strategy: UpgradeStrategy | None = field(
        "strategy", "Follow-up of a failed upgrade; RemediateOnFailure when not set."
    )
    chart_name_change_strategy: str | None = field(
        "chartNameChangeStrategy",
        "When the chart's name changes: 'Reinstall' (default) uninstalls the release and "
        "installs it anew, 'InPlaceUpdate' upgrades it.",
        enum=("InPlaceUpdate", "Reinstall"),
    )


@dataclass(frozen=True, kw_only=True)
class Filter:
    """Selects a Helm test by name."""

    name: str = field("name", "Name of the test.", required=True, min_length=1, max_length=253)
    exclude: bool = field("exclude", "Exclude the test instead of selecting it.", default=False)


@dataclass(frozen=True, kw_only=True)
class Test(HelmAction):
    """Configuration of Helm test actions."""

    enable: bool = field("enable", "Run tests after install and upgrade.", default=False)
    ignore_failures: bool = field(
        "ignoreFailures", "Do not remediate when tests fail.", default=False
    )
    filters: tuple[Filter, ...] = field("filters", "Tests to run or exclude.", default=())


@dataclass(frozen=True, kw_only=True)
class Rollback(ReleaseAction, RevisitAction):
    """Configuration of Helm rollback actions."""

    recreate: bool = field("recreate", "Restart pods where applicable.", default=False)
    force: bool = field("force", "Force resource updates by replacement.", default=False)
    cleanup_on_fail: bool = field(
        "cleanupOnFail", "Delete resources created by a failed rollback.", default=False
    )


@dataclass(frozen=True, kw_only=True)
class Uninstall(HelmAction):
    """Configuration of Helm uninstall actions."""

    disable_hooks: bool = field("disableHooks", "Do not run hooks.", default=False)
    keep_history: bool = field(
        "keepHistory", "Keep the release history (mark as uninstalled).", default=False
    )
    disable_wait: bool = field("disableWait", "Do not wait for deletion.", default=False)
    deletion_propagation: str = field(
        "deletionPropagation",
        "Propagation policy of deletes.",
        schema_default="background",
        enum=("background", "foreground", "orphan"),
    )


@dataclass(frozen=True, kw_only=True)
class Kustomize:
    """A kustomize post-renderer."""

    patches: tuple[Patch, ...] = field(
        "patches", "Strategic merge and JSON 6902 patches with target selectors.", default=()
    )
    patches_strategic_merge: tuple[Any, ...] = field(
        "patchesStrategicMerge", "Deprecated: strategic merge patches; use patches.", default=()
    )
    patches_json6902: tuple[JSON6902Patch, ...] = field(
        "patchesJson6902", "Deprecated: JSON 6902 patches; use patches.", default=()
    )
    images: tuple[Image, ...] = field("images", "Image name, tag and digest overrides.", default=())


@dataclass(frozen=True, kw_only=True)
class PostRenderer:
    """One post-renderer applied to the rendered chart."""

    kustomize: Kustomize | None = field("kustomize", "Kustomize post-renderer.")


@dataclass(frozen=True, kw_only=True)
class WaitStrategy:
    """How Helm waits for the applied resources to become ready."""

    name: str = field(
        "name",
        "'poller' (default) polls the resources' kstatus, 'legacy' waits as Helm 3 did.",
        required=True,
        enum=("poller", "legacy"),
    )


@dataclass(frozen=True, kw_only=True)
class HelmReleaseSpec:
    """Desired state of a HelmRelease: which chart, which values, how to install it."""

    __rules__ = (
        Rule(
            cel="(has(self.chart) && !has(self.chartRef)) || "
            "(!has(self.chart) && has(self.chartRef))",
            message="either chart or chartRef must be set",
            check=lambda s: (s.chart is None) != (s.chart_ref is None),
        ),
    )

    chart: HelmChartTemplate | None = field(
        "chart", "Template of the HelmChart to create; exclusive with chartRef."
    )
    chart_ref: HelmReleaseSourceReference | None = field(
        "chartRef", "OCIRepository or HelmChart providing the chart; exclusive with chart."
    )
    interval: str = field(
        "interval", "How often to reconcile the release.", required=True, pattern=DURATION_PATTERN
    )
    kube_config: KubeConfigReference | None = field(
        "kubeConfig", "Kubeconfig of a remote cluster to release into."
    )
    suspend: bool = field("suspend", "Suspend reconciliation of this object.", default=False)
    release_name: str | None = field(
        "releaseName",
        "Helm release name; '[targetNamespace-]name' when not set.",
        min_length=1,
        max_length=53,
    )
    target_namespace: str | None = field(
        "targetNamespace",
        "Namespace to release into; the HelmRelease's namespace when not set.",
        min_length=1,
        max_length=63,
    )
    storage_namespace: str | None = field(
        "storageNamespace",
        "Namespace of the Helm storage; the HelmRelease's when not set.",
        min_length=1,
        max_length=63,
    )
    depends_on: tuple[HelmReleaseDependency, ...] = field(
        "dependsOn", "HelmReleases that must be ready first.", default=()
    )
    common_metadata: CommonMetadata | None = field(
        "commonMetadata",
        "Labels and annotations set on every resource of the release, overriding the same keys.",
    )
    health_check_exprs: tuple[CustomHealthCheck, ...] = field(
        "healthCheckExprs",
        "CEL health checks for custom resource kinds, used when an action waits with the "
        "'poller' wait strategy.",
        default=(),
    )
    wait_strategy: WaitStrategy | None = field(
        "waitStrategy", "How Helm waits for resources; 'poller' when not set."
    )
    timeout: str | None = field(
        "timeout",
        "Timeout of each Kubernetes operation of a Helm action; 5m when not set.",
        pattern=DURATION_PATTERN,
    )
    max_history: int | None = field(
        "maxHistory", "Release versions Helm keeps; 0 is unlimited, 5 when not set."
    )
    service_account_name: str | None = field(
        "serviceAccountName", "ServiceAccount to impersonate.", min_length=1, max_length=253
    )
    persistent_client: bool | None = field(
        "persistentClient", "Reuse one Kubernetes client per reconcile; true when not set."
    )
    drift_detection: DriftDetection | None = field(
        "driftDetection", "Detection and correction of cluster drift."
    )
    install: Install | None = field("install", "Install action configuration.")
    upgrade: Upgrade | None = field("upgrade", "Upgrade action configuration.")
    test: Test | None = field("test", "Test action configuration.")
    rollback: Rollback | None = field("rollback", "Rollback action configuration.")
    uninstall: Uninstall | None = field("uninstall", "Uninstall action configuration.")
    values_from: tuple[ValuesReference, ...] = field(
        "valuesFrom",
        "ConfigMaps and Secrets with values, merged in order before values.",
        default=(),
    )
    values: Any = field("values", "Inline chart values, merged last.")
    post_renderers: tuple[PostRenderer, ...] = field(
        "postRenderers", "Post-renderers applied in order.", default=()
    )
    post_render_strategy: str | None = field(
        "postRenderStrategy",
        "What post-renderers see of the hooks: 'combined' (default) hooks with the "
        "templates, 'separate' hooks in a stream of their own, 'nohooks' none (Helm 3).",
        enum=("nohooks", "combined", "separate"),
    )

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout) if self.timeout else 300.0

    @property
    def effective_max_history(self) -> int:
        return 5 if self.max_history is None else self.max_history

    @property
    def uses_persistent_client(self) -> bool:
        return True if self.persistent_client is None else self.persistent_client
