"""The status of every Flux kind, declared with the same schema layer as the specs.

fluxd writes status as plain JSON patches (``fluxd.runtime.status``), so these classes
are not used to parse anything at run time: they exist so the CRDs carry Flux's status
schema field for field. A Flux user's tooling (``flux get``, dashboards, ``kubectl
wait --for=jsonpath``) then reads the same typed fields it reads from Flux, and the API
server prunes nothing fluxd writes: every status field a reconciler sets is declared
here, which ``tests/unit/test_crd_parity.py`` and the integration suite check.

The shapes mirror Flux's status types: ``metav1.Condition``, the source ``Artifact``,
the inventory of applied objects, Kustomization and HelmRelease history snapshots.
"""

# fluxd.api._schema.field is a dataclass field specifier, not a mutable default.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fluxd.api._schema import field
from fluxd.api._source import GitRepositoryInclude, OCILayerSelector

__all__ = [
    "BucketStatus",
    "ExternalArtifactStatus",
    "GitRepositoryStatus",
    "HelmChartStatus",
    "HelmReleaseStatus",
    "HelmRepositoryStatus",
    "ImagePolicyStatus",
    "ImageRepositoryStatus",
    "ImageUpdateAutomationStatus",
    "KustomizationStatus",
    "OCIRepositoryStatus",
    "ObjectStatus",
    "ReceiverStatus",
]

_DATE_TIME = "date-time"
_CONDITION_TYPE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)


@dataclass(frozen=True, kw_only=True)
class Condition:
    """One aspect of the object's current state (metav1.Condition)."""

    last_transition_time: str = field(
        "lastTransitionTime",
        "When the condition last changed status.",
        required=True,
        format=_DATE_TIME,
    )
    message: str = field(
        "message", "Human readable details of the transition.", required=True, max_length=32768
    )
    observed_generation: int | None = field(
        "observedGeneration",
        "The generation the condition was set for.",
        format="int64",
        minimum=0,
    )
    reason: str = field(
        "reason",
        "CamelCase reason of the last transition.",
        required=True,
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    )
    status: str = field(
        "status", "True, False or Unknown.", required=True, enum=("True", "False", "Unknown")
    )
    type: str = field(
        "type",
        "Condition type in CamelCase (Ready, Reconciling, Stalled, ...).",
        required=True,
        max_length=316,
        pattern=_CONDITION_TYPE,
    )


@dataclass(frozen=True, kw_only=True)
class Artifact:
    """The output of a source reconciliation, served over HTTP."""

    digest: str = field(
        "digest",
        "Digest of the file, algo:checksum.",
        required=True,
        pattern=r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$",
    )
    last_update_time: str = field(
        "lastUpdateTime", "When the artifact was last updated.", required=True, format=_DATE_TIME
    )
    metadata: Mapping[str, str] | None = field(
        "metadata", "Metadata of the artifact, e.g. OCI annotations."
    )
    path: str = field("path", "Path relative to the artifact server root.", required=True)
    revision: str = field(
        "revision", "Human readable source revision, e.g. main@sha1:<hex>.", required=True
    )
    size: int | None = field("size", "Size in bytes.", format="int64")
    url: str = field("url", "HTTP address of the artifact.", required=True)


@dataclass(frozen=True, kw_only=True)
class ObjectStatus:
    """Observed state of the object."""

    conditions: tuple[Condition, ...] = field(
        "conditions", "Conditions of the object: Ready, Reconciling, Stalled, ...", default=()
    )
    last_handled_reconcile_at: str | None = field(
        "lastHandledReconcileAt", "Last handled reconcile.fluxcd.io/requestedAt annotation value."
    )
    observed_generation: int | None = field(
        "observedGeneration", "The last generation reconciled.", format="int64"
    )


@dataclass(frozen=True, kw_only=True)
class ExternalArtifactStatus:
    """Observed state of an ExternalArtifact, written by the producer that owns it."""

    artifact: Artifact | None = field("artifact", "The artifact the producer stored.")
    conditions: tuple[Condition, ...] = field(
        "conditions", "Conditions written by the producer.", default=()
    )


@dataclass(frozen=True, kw_only=True)
class _ArtifactStatus(ObjectStatus):
    artifact: Artifact | None = field("artifact", "The last artifact stored.")


@dataclass(frozen=True, kw_only=True)
class _ServedSourceStatus(_ArtifactStatus):
    url: str | None = field("url", "Address where the latest artifact is served, stable over time.")


@dataclass(frozen=True, kw_only=True)
class _IgnoreObserved:
    observed_ignore: str | None = field(
        "observedIgnore", "spec.ignore as applied to the last artifact."
    )


@dataclass(frozen=True, kw_only=True)
class GitRepositoryStatus(_ArtifactStatus, _IgnoreObserved):
    """Observed state of a GitRepository."""

    included_artifacts: tuple[Artifact, ...] = field(
        "includedArtifacts", "Artifacts of the included GitRepositories.", default=()
    )
    observed_include: tuple[GitRepositoryInclude, ...] = field(
        "observedInclude", "spec.include as applied to the last artifact.", default=()
    )
    observed_recurse_submodules: bool | None = field(
        "observedRecurseSubmodules", "spec.recurseSubmodules as applied to the last artifact."
    )
    observed_sparse_checkout: tuple[str, ...] = field(
        "observedSparseCheckout",
        "spec.sparseCheckout as applied to the last artifact.",
        default=(),
    )
    source_verification_mode: str | None = field(
        "sourceVerificationMode", "What signature verification checked: head, tag or both."
    )


@dataclass(frozen=True, kw_only=True)
class OCIRepositoryStatus(_ServedSourceStatus, _IgnoreObserved):
    """Observed state of an OCIRepository."""

    observed_layer_selector: OCILayerSelector | None = field(
        "observedLayerSelector", "spec.layerSelector as applied to the last artifact."
    )


@dataclass(frozen=True, kw_only=True)
class BucketStatus(_ServedSourceStatus, _IgnoreObserved):
    """Observed state of a Bucket."""


@dataclass(frozen=True, kw_only=True)
class HelmRepositoryStatus(_ServedSourceStatus):
    """Observed state of a HelmRepository."""


@dataclass(frozen=True, kw_only=True)
class HelmChartStatus(_ServedSourceStatus):
    """Observed state of a HelmChart."""

    observed_chart_name: str | None = field(
        "observedChartName", "Name of the chart in the last artifact."
    )
    observed_source_artifact_revision: str | None = field(
        "observedSourceArtifactRevision", "Revision of the source artifact the chart came from."
    )
    observed_values_files: tuple[str, ...] = field(
        "observedValuesFiles", "Values files merged into the last artifact.", default=()
    )


@dataclass(frozen=True, kw_only=True)
class InventoryEntry:
    """One object applied by the reconciler."""

    id: str = field(
        "id", "namespace_name_group_kind of the object, as Flux encodes it.", required=True
    )
    v: str = field("v", "API version of the object.", required=True)


@dataclass(frozen=True, kw_only=True)
class Inventory:
    """The objects a reconciler applied and will prune when they leave the source."""

    entries: tuple[InventoryEntry, ...] = field("entries", "The applied objects.", required=True)


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """A past reconciliation of one source revision, in Flux's history format."""

    digest: str = field("digest", "Checksum of the applied objects.", required=True)
    first_reconciled: str = field(
        "firstReconciled",
        "When this snapshot was first reconciled.",
        required=True,
        format=_DATE_TIME,
    )
    last_reconciled: str = field(
        "lastReconciled",
        "When this snapshot was last reconciled.",
        required=True,
        format=_DATE_TIME,
    )
    last_reconciled_duration: str = field(
        "lastReconciledDuration", "How long the last reconciliation took.", required=True
    )
    last_reconciled_status: str = field(
        "lastReconciledStatus", "Outcome of the last reconciliation.", required=True
    )
    metadata: Mapping[str, str] | None = field(
        "metadata", "Source revision and origin revision of the snapshot."
    )
    total_reconciliations: int = field(
        "totalReconciliations",
        "How many times this snapshot was reconciled.",
        required=True,
        format="int64",
    )


@dataclass(frozen=True, kw_only=True)
class KustomizationStatus(ObjectStatus):
    """Observed state of a Kustomization."""

    history: tuple[Snapshot, ...] = field(
        "history", "The last reconciled snapshots, newest first.", default=()
    )
    inventory: Inventory | None = field("inventory", "The objects applied last.")
    last_applied_origin_revision: str | None = field(
        "lastAppliedOriginRevision", "Origin revision of the last applied source artifact."
    )
    last_applied_revision: str | None = field(
        "lastAppliedRevision", "Revision of the last successfully applied source artifact."
    )
    last_attempted_revision: str | None = field(
        "lastAttemptedRevision", "Revision of the last source artifact tried."
    )


@dataclass(frozen=True, kw_only=True)
class TestHookStatus:
    """The last run of one Helm test hook."""

    last_completed: str | None = field(
        "lastCompleted", "When the hook last completed.", format=_DATE_TIME
    )
    last_started: str | None = field(
        "lastStarted", "When the hook last started.", format=_DATE_TIME
    )
    phase: str | None = field("phase", "Outcome of the last run.")


@dataclass(frozen=True, kw_only=True)
class HelmSnapshot:
    """A Helm release revision, as HelmRelease history records it."""

    action: str | None = field("action", "The Helm action that made this revision.")
    api_version: str | None = field("apiVersion", "Version of the snapshot format.")
    app_version: str | None = field("appVersion", "appVersion of the chart.")
    chart_name: str = field("chartName", "Name of the chart.", required=True)
    chart_version: str = field("chartVersion", "Version of the chart.", required=True)
    config_digest: str = field(
        "configDigest", "Checksum of the values of the release.", required=True
    )
    deleted: str | None = field("deleted", "When the release was deleted.", format=_DATE_TIME)
    digest: str = field("digest", "Checksum of the release object.", required=True)
    first_deployed: str = field(
        "firstDeployed",
        "When the release was first deployed.",
        required=True,
        format=_DATE_TIME,
    )
    last_deployed: str = field(
        "lastDeployed", "When this revision was deployed.", required=True, format=_DATE_TIME
    )
    name: str = field("name", "Name of the release.", required=True)
    namespace: str = field("namespace", "Namespace of the release.", required=True)
    oci_digest: str | None = field("ociDigest", "Digest of the OCI artifact of the chart.")
    status: str = field("status", "Helm status of the release.", required=True)
    test_hooks: Mapping[str, TestHookStatus] | None = field(
        "testHooks", "Test hooks of the revision by name."
    )
    version: int = field("version", "Helm revision number.", required=True)


@dataclass(frozen=True, kw_only=True)
class HelmReleaseStatus(ObjectStatus):
    """Observed state of a HelmRelease."""

    failures: int | None = field(
        "failures", "Reconciliation failures since the last success.", format="int64"
    )
    helm_chart: str | None = field("helmChart", "namespace/name of the HelmChart made for it.")
    history: tuple[HelmSnapshot, ...] = field(
        "history", "Release revisions, newest first.", default=()
    )
    install_failures: int | None = field(
        "installFailures", "Failed installs since the last success.", format="int64"
    )
    inventory: Inventory | None = field("inventory", "The objects of the release.")
    last_attempted_config_digest: str | None = field(
        "lastAttemptedConfigDigest", "Checksum of the values last tried."
    )
    last_attempted_generation: int | None = field(
        "lastAttemptedGeneration", "Generation of the last attempted release.", format="int64"
    )
    last_attempted_release_action: str | None = field(
        "lastAttemptedReleaseAction",
        "The release action last tried.",
        enum=("install", "upgrade"),
    )
    last_attempted_release_action_duration: str | None = field(
        "lastAttemptedReleaseActionDuration", "How long the last release action took."
    )
    last_attempted_revision: str | None = field(
        "lastAttemptedRevision", "Chart version last tried."
    )
    last_attempted_revision_digest: str | None = field(
        "lastAttemptedRevisionDigest", "Digest of the chart artifact last tried."
    )
    last_attempted_values_checksum: str | None = field(
        "lastAttemptedValuesChecksum", "Checksum of the values last tried (older format)."
    )
    last_handled_force_at: str | None = field(
        "lastHandledForceAt", "Last handled reconcile.fluxcd.io/forceAt annotation value."
    )
    last_handled_reset_at: str | None = field(
        "lastHandledResetAt", "Last handled reconcile.fluxcd.io/resetAt annotation value."
    )
    last_release_revision: int | None = field(
        "lastReleaseRevision", "Helm revision of the last release (older format)."
    )
    observed_common_metadata_digest: str | None = field(
        "observedCommonMetadataDigest", "Checksum of spec.commonMetadata last applied."
    )
    observed_post_renderers_digest: str | None = field(
        "observedPostRenderersDigest", "Checksum of spec.postRenderers last applied."
    )
    storage_namespace: str | None = field(
        "storageNamespace",
        "Namespace holding the Helm storage of the release.",
        min_length=1,
        max_length=63,
    )
    upgrade_failures: int | None = field(
        "upgradeFailures", "Failed upgrades since the last success.", format="int64"
    )


@dataclass(frozen=True, kw_only=True)
class ImageRef:
    """An image chosen by a policy."""

    digest: str | None = field("digest", "Digest of the image, when known.")
    name: str = field("name", "Image name without tag.", required=True)
    tag: str = field("tag", "The chosen tag.", required=True)


@dataclass(frozen=True, kw_only=True)
class ScanResult:
    """What the last scan of the image repository found."""

    latest_tags: tuple[str, ...] = field("latestTags", "The newest tags found.", default=())
    revision: str | None = field("revision", "Checksum of the tag list.")
    scan_time: str | None = field("scanTime", "When the scan ran.", format=_DATE_TIME)
    tag_count: int = field("tagCount", "How many tags the scan found.", required=True)


@dataclass(frozen=True, kw_only=True)
class ImageRepositoryStatus(ObjectStatus):
    """Observed state of an ImageRepository."""

    canonical_image_name: str | None = field(
        "canonicalImageName", "The image name with its registry, as scanned."
    )
    last_scan_result: ScanResult | None = field("lastScanResult", "The result of the last scan.")
    observed_exclusion_list: tuple[str, ...] = field(
        "observedExclusionList", "spec.exclusionList as applied by the last scan.", default=()
    )


@dataclass(frozen=True, kw_only=True)
class ImagePolicyStatus(ObjectStatus):
    """Observed state of an ImagePolicy."""

    latest_ref: ImageRef | None = field("latestRef", "The image the policy selects now.")
    observed_previous_ref: ImageRef | None = field(
        "observedPreviousRef", "The image the policy selected before the latest one."
    )


@dataclass(frozen=True, kw_only=True)
class ImageUpdateAutomationStatus(ObjectStatus):
    """Observed state of an ImageUpdateAutomation."""

    last_automation_run_time: str | None = field(
        "lastAutomationRunTime", "When the automation last ran.", format=_DATE_TIME
    )
    last_push_commit: str | None = field("lastPushCommit", "SHA of the last commit pushed.")
    last_push_time: str | None = field(
        "lastPushTime", "When the last commit was pushed.", format=_DATE_TIME
    )
    observed_policies: Mapping[str, ImageRef] | None = field(
        "observedPolicies", "The policies and images the last run used, by policy name."
    )
    observed_source_revision: str | None = field(
        "observedSourceRevision", "Source revision the last run worked on."
    )


@dataclass(frozen=True, kw_only=True)
class ReceiverStatus(ObjectStatus):
    """Observed state of a Receiver."""

    webhook_path: str | None = field(
        "webhookPath", "Path under the receiver server where the webhook listens."
    )
