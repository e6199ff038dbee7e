"""The registry of Flux kinds fluxd serves: one ``KindInfo`` per kind.

Everything that needs to know "which kinds exist" reads ``KINDS``: the CRD
generator, the informers (group/version/plural to watch), the reconciler registry
(spec class to parse), the webhook receiver (kind names). Names, short names,
categories and printer columns are Flux's, so ``kubectl get gitrepo`` and
``flux get`` output look the same.

Older API versions that still appear in real-world YAML are served with the
storage version's schema and ``conversion: None``: the API server only rewrites
``apiVersion``. They are marked deprecated so ``kubectl`` warns, as Flux does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fluxd.api._helm import HelmReleaseSpec
from fluxd.api._image import ImagePolicySpec, ImageRepositorySpec, ImageUpdateAutomationSpec
from fluxd.api._kustomize import KustomizationSpec
from fluxd.api._notification import AlertSpec, ProviderSpec, ReceiverSpec
from fluxd.api._schema import SpecError, from_dict
from fluxd.api._source import (
    BucketSpec,
    ExternalArtifactSpec,
    GitRepositorySpec,
    HelmChartSpec,
    HelmRepositorySpec,
    OCIRepositorySpec,
)
from fluxd.api._status import (
    BucketStatus,
    ExternalArtifactStatus,
    GitRepositoryStatus,
    HelmChartStatus,
    HelmReleaseStatus,
    HelmRepositoryStatus,
    ImagePolicyStatus,
    ImageRepositoryStatus,
    ImageUpdateAutomationStatus,
    KustomizationStatus,
    ObjectStatus,
    OCIRepositoryStatus,
    ReceiverStatus,
)

__all__ = [
    "ALERT",
    "BUCKET",
    "EXTERNAL_ARTIFACT",
    "GIT_REPOSITORY",
    "HELM_CHART",
    "HELM_RELEASE",
    "HELM_REPOSITORY",
    "IMAGE_POLICY",
    "IMAGE_REPOSITORY",
    "IMAGE_UPDATE_AUTOMATION",
    "KINDS",
    "KUSTOMIZATION",
    "OCI_REPOSITORY",
    "PROVIDER",
    "RECEIVER",
    "KindInfo",
    "PrinterColumn",
    "VersionInfo",
    "kind_for",
    "lookup",
    "parse_spec",
]

S = TypeVar("S")

SOURCE_GROUP = "source.toolkit.fluxcd.io"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
HELM_GROUP = "helm.toolkit.fluxcd.io"
NOTIFICATION_GROUP = "notification.toolkit.fluxcd.io"
IMAGE_GROUP = "image.toolkit.fluxcd.io"


@dataclass(frozen=True, kw_only=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry."""

    name: str
    type: str
    json_path: str
    priority: int = 0


@dataclass(frozen=True, kw_only=True)
class VersionInfo:
    """One served API version; exactly one per kind is the storage version."""

    name: str
    storage: bool = False
    deprecation_warning: str | None = None


@dataclass(frozen=True, kw_only=True)
class KindInfo(Generic[S]):
    """Everything fluxd knows about one Flux kind."""

    group: str
    kind: str
    plural: str
    singular: str
    versions: tuple[VersionInfo, ...]
    spec: type[S]
    status: type[Any]
    printer_columns: tuple[PrinterColumn, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    namespaced: bool = True

    @property
    def storage_version(self) -> str:
        return next(v.name for v in self.versions if v.storage)

    @property
    def served_versions(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.versions)

    @property
    def api_version(self) -> str:
        """``group/version`` of the storage version, the one fluxd reads and writes."""
        return f"{self.group}/{self.storage_version}"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def controller(self) -> str:
        """The Flux controller that reconciles this kind: the ``source.component`` of
        its Events, as ``kubectl describe`` and event-based tooling know it."""
        if self.group == "image.toolkit.fluxcd.io":
            if self.kind == "ImageUpdateAutomation":
                return "image-automation-controller"
            return "image-reflector-controller"
        return f"{self.group.split('.')[0]}-controller"

    def parse_spec(self, obj: Mapping[str, Any]) -> S:
        """The typed spec of a whole object (``{"apiVersion", "kind", "spec", ...}``).

        Raises ``SpecError`` with a path rooted at ``spec``.
        """
        return from_dict(self.spec, obj.get("spec"), "spec")


# --------------------------------------------------------------------------- printer columns


def _col(name: str, path: str, type_: str = "string", priority: int = 0) -> PrinterColumn:
    return PrinterColumn(name=name, type=type_, json_path=path, priority=priority)


_AGE = _col("Age", ".metadata.creationTimestamp", "date")
_READY = _col("Ready", '.status.conditions[?(@.type=="Ready")].status')
_STATUS = _col("Status", '.status.conditions[?(@.type=="Ready")].message')
_URL = _col("URL", ".spec.url")

_SOURCE_CATEGORIES = ("all", "fluxcd", "fluxcd-sources")
_IMAGE_CATEGORIES = ("all", "fluxcd", "fluxcd-images")


def _versions(storage: str, *deprecated: str, kind: str, group: str) -> tuple[VersionInfo, ...]:
    older = tuple(
        VersionInfo(
            name=v,
            deprecation_warning=f"{group}/{v} {kind} is deprecated, upgrade to {storage}",
        )
        for v in deprecated
    )
    return (*older, VersionInfo(name=storage, storage=True))


# --------------------------------------------------------------------------- the kinds

GIT_REPOSITORY: KindInfo[GitRepositorySpec] = KindInfo(
    group=SOURCE_GROUP,
    kind="GitRepository",
    plural="gitrepositories",
    singular="gitrepository",
    short_names=("gitrepo",),
    categories=_SOURCE_CATEGORIES,
    versions=_versions("v1", "v1beta2", kind="GitRepository", group=SOURCE_GROUP),
    spec=GitRepositorySpec,
    status=GitRepositoryStatus,
    printer_columns=(_URL, _AGE, _READY, _STATUS),
)

OCI_REPOSITORY: KindInfo[OCIRepositorySpec] = KindInfo(
    group=SOURCE_GROUP,
    kind="OCIRepository",
    plural="ocirepositories",
    singular="ocirepository",
    short_names=("ocirepo",),
    categories=_SOURCE_CATEGORIES,
    versions=_versions("v1", "v1beta2", kind="OCIRepository", group=SOURCE_GROUP),
    spec=OCIRepositorySpec,
    status=OCIRepositoryStatus,
    printer_columns=(_URL, _READY, _STATUS, _AGE),
)

HELM_REPOSITORY: KindInfo[HelmRepositorySpec] = KindInfo(
    group=SOURCE_GROUP,
    kind="HelmRepository",
    plural="helmrepositories",
    singular="helmrepository",
    short_names=("helmrepo",),
    categories=_SOURCE_CATEGORIES,
    versions=_versions("v1", "v1beta2", kind="HelmRepository", group=SOURCE_GROUP),
    spec=HelmRepositorySpec,
    status=HelmRepositoryStatus,
    printer_columns=(_URL, _AGE, _READY, _STATUS),
)

HELM_CHART: KindInfo[HelmChartSpec] = KindInfo(
    group=SOURCE_GROUP,
    kind="HelmChart",
    plural="helmcharts",
    singular="helmchart",
    short_names=("hc",),
    versions=_versions("v1", "v1beta2", kind="HelmChart", group=SOURCE_GROUP),
    spec=HelmChartSpec,
    status=HelmChartStatus,
    printer_columns=(
        _col("Chart", ".spec.chart"),
        _col("Version", ".spec.version"),
        _col("Source Kind", ".spec.sourceRef.kind"),
        _col("Source Name", ".spec.sourceRef.name"),
        _AGE,
        _READY,
        _STATUS,
    ),
)

BUCKET: KindInfo[BucketSpec] = KindInfo(
    group=SOURCE_GROUP,
    kind="Bucket",
    plural="buckets",
    singular="bucket",
    categories=_SOURCE_CATEGORIES,
    versions=_versions("v1", "v1beta2", kind="Bucket", group=SOURCE_GROUP),
    spec=BucketSpec,
    status=BucketStatus,
    printer_columns=(_col("Endpoint", ".spec.endpoint"), _AGE, _READY, _STATUS),
)

EXTERNAL_ARTIFACT: KindInfo[ExternalArtifactSpec] = KindInfo(
    group=SOURCE_GROUP,
    kind="ExternalArtifact",
    plural="externalartifacts",
    singular="externalartifact",
    short_names=("ea",),
    categories=_SOURCE_CATEGORIES,
    versions=_versions("v1", kind="ExternalArtifact", group=SOURCE_GROUP),
    spec=ExternalArtifactSpec,
    status=ExternalArtifactStatus,
    printer_columns=(_AGE, _READY, _STATUS, _col("Source", ".spec.sourceRef.name")),
)

KUSTOMIZATION: KindInfo[KustomizationSpec] = KindInfo(
    group=KUSTOMIZE_GROUP,
    kind="Kustomization",
    plural="kustomizations",
    singular="kustomization",
    short_names=("ks",),
    versions=_versions("v1", kind="Kustomization", group=KUSTOMIZE_GROUP),
    spec=KustomizationSpec,
    status=KustomizationStatus,
    printer_columns=(_AGE, _READY, _STATUS),
)

HELM_RELEASE: KindInfo[HelmReleaseSpec] = KindInfo(
    group=HELM_GROUP,
    kind="HelmRelease",
    plural="helmreleases",
    singular="helmrelease",
    short_names=("hr",),
    versions=_versions("v2", "v2beta1", "v2beta2", kind="HelmRelease", group=HELM_GROUP),
    spec=HelmReleaseSpec,
    status=HelmReleaseStatus,
    printer_columns=(_AGE, _READY, _STATUS),
)

PROVIDER: KindInfo[ProviderSpec] = KindInfo(
    group=NOTIFICATION_GROUP,
    kind="Provider",
    plural="providers",
    singular="provider",
    versions=_versions("v1beta3", "v1beta2", kind="Provider", group=NOTIFICATION_GROUP),
    spec=ProviderSpec,
    status=ObjectStatus,
    printer_columns=(_AGE,),
)

ALERT: KindInfo[AlertSpec] = KindInfo(
    group=NOTIFICATION_GROUP,
    kind="Alert",
    plural="alerts",
    singular="alert",
    versions=_versions("v1beta3", "v1beta2", kind="Alert", group=NOTIFICATION_GROUP),
    spec=AlertSpec,
    status=ObjectStatus,
    printer_columns=(_AGE,),
)

RECEIVER: KindInfo[ReceiverSpec] = KindInfo(
    group=NOTIFICATION_GROUP,
    kind="Receiver",
    plural="receivers",
    singular="receiver",
    versions=_versions("v1", "v1beta2", kind="Receiver", group=NOTIFICATION_GROUP),
    spec=ReceiverSpec,
    status=ReceiverStatus,
    printer_columns=(_AGE, _READY, _STATUS),
)

IMAGE_REPOSITORY: KindInfo[ImageRepositorySpec] = KindInfo(
    group=IMAGE_GROUP,
    kind="ImageRepository",
    plural="imagerepositories",
    singular="imagerepository",
    short_names=("imgrepo", "imagerepo"),
    categories=_IMAGE_CATEGORIES,
    versions=_versions("v1", "v1beta2", kind="ImageRepository", group=IMAGE_GROUP),
    spec=ImageRepositorySpec,
    status=ImageRepositoryStatus,
    printer_columns=(
        _col("Image", ".spec.image"),
        _col("Tags", ".status.lastScanResult.tagCount"),
        _READY,
        _STATUS,
        _col("Last scan", ".status.lastScanResult.scanTime", priority=1),
        _AGE,
    ),
)

IMAGE_POLICY: KindInfo[ImagePolicySpec] = KindInfo(
    group=IMAGE_GROUP,
    kind="ImagePolicy",
    plural="imagepolicies",
    singular="imagepolicy",
    short_names=("imgpol", "imagepol"),
    categories=_IMAGE_CATEGORIES,
    versions=_versions("v1", "v1beta2", kind="ImagePolicy", group=IMAGE_GROUP),
    spec=ImagePolicySpec,
    status=ImagePolicyStatus,
    printer_columns=(
        _col("Image", ".status.latestRef.name"),
        _col("Tag", ".status.latestRef.tag"),
        _READY,
        _STATUS,
        _AGE,
    ),
)

IMAGE_UPDATE_AUTOMATION: KindInfo[ImageUpdateAutomationSpec] = KindInfo(
    group=IMAGE_GROUP,
    kind="ImageUpdateAutomation",
    plural="imageupdateautomations",
    singular="imageupdateautomation",
    short_names=("iua", "imgupd", "imgauto"),
    categories=_IMAGE_CATEGORIES,
    versions=_versions("v1", "v1beta2", kind="ImageUpdateAutomation", group=IMAGE_GROUP),
    spec=ImageUpdateAutomationSpec,
    status=ImageUpdateAutomationStatus,
    printer_columns=(
        _READY,
        _STATUS,
        _col("Last run", ".status.lastAutomationRunTime", priority=1),
        _AGE,
    ),
)

#: All kinds, sources first (the order the generator writes them in).
KINDS: tuple[KindInfo[Any], ...] = (
    GIT_REPOSITORY,
    OCI_REPOSITORY,
    HELM_REPOSITORY,
    HELM_CHART,
    BUCKET,
    EXTERNAL_ARTIFACT,
    KUSTOMIZATION,
    HELM_RELEASE,
    PROVIDER,
    ALERT,
    RECEIVER,
    IMAGE_REPOSITORY,
    IMAGE_POLICY,
    IMAGE_UPDATE_AUTOMATION,
)

_BY_GROUP_KIND = {(k.group, k.kind): k for k in KINDS}


def lookup(kind: str, group: str | None = None) -> KindInfo[Any]:
    """The kind named ``kind`` (``Kustomization`` needs no group: Flux has only one)."""
    matches = [k for k in KINDS if k.kind == kind and (group is None or k.group == group)]
    if not matches:
        where = f" in group {group}" if group else ""
        raise KeyError(f"{kind}{where} is not a Flux kind served by fluxd")
    return matches[0]


def kind_for(api_version: str, kind: str) -> KindInfo[Any]:
    """The kind of an object's ``apiVersion``/``kind``; any served version matches."""
    group, _, version = api_version.rpartition("/")
    info = _BY_GROUP_KIND.get((group, kind))
    if info is None or version not in info.served_versions:
        raise KeyError(f"{api_version} {kind} is not served by fluxd")
    return info


def parse_spec(obj: Mapping[str, Any]) -> Any:
    """Parse the spec of any Flux object, found by its ``apiVersion`` and ``kind``."""
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise SpecError("apiVersion", "object has no apiVersion/kind")
    try:
        info = kind_for(api_version, kind)
    except KeyError as exc:
        raise SpecError("apiVersion", str(exc.args[0])) from None
    return info.parse_spec(obj)
