"""``source.toolkit.fluxcd.io``: GitRepository, OCIRepository, HelmRepository, HelmChart, Bucket,
ExternalArtifact.

Field names, defaults, enums and patterns follow source-controller's ``api/v1``.
Where Flux leaves a field empty and resolves the default in Go (the git branch
``master``, the OCI tag ``latest``), the helper methods here do the same, so the
reconcilers do not re-derive Flux's precedence rules.

The fields the kinds share are declared once, on the bases ``SourceSpec`` (every
kind), ``PolledSourceSpec`` (an interval) and ``FetchedSourceSpec`` (a file tree
fetched from a server), so a reconciler written against a base serves each kind that
derives from it. ``HelmChartBuild`` and ``SignatureVerification`` are shared with the
HelmRelease's chart template, from which fluxd creates HelmCharts.
"""

# fluxd.api._schema.field is a dataclass field specifier, not a mutable default.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from fluxd.api._meta import AccessFrom, LocalObjectReference, NamespacedObjectKindReference
from fluxd.api._schema import DURATION_PATTERN, SHORT_DURATION_PATTERN, Rule, field

__all__ = [
    "BucketSTSSpec",
    "BucketSpec",
    "ExternalArtifactSpec",
    "FetchedSourceSpec",
    "GitRepositoryInclude",
    "GitRepositoryRef",
    "GitRepositorySpec",
    "GitRepositoryVerification",
    "HelmChartBuild",
    "HelmChartSpec",
    "HelmRepositorySpec",
    "LocalHelmChartSourceReference",
    "OCILayerSelector",
    "OCIRepositoryRef",
    "OCIRepositorySpec",
    "OCIRepositoryVerification",
    "OIDCIdentityMatch",
    "PolledSourceSpec",
    "SignatureVerification",
    "SourceSpec",
]

_INTERVAL_DOC = "How often the source is checked for updates (approximate, jittered)."

GitRefKind = Literal["commit", "name", "semver", "tag", "branch"]


# --------------------------------------------------------------------------- shared bases


@dataclass(frozen=True, kw_only=True)
class SourceSpec:
    """What the spec of every source kind has."""

    suspend: bool = field("suspend", "Suspend reconciliation of this object.", default=False)


@dataclass(frozen=True, kw_only=True)
class PolledSourceSpec(SourceSpec):
    """A source checked for updates on an interval: every kind but HelmRepository, whose
    interval is optional because an OCI HelmRepository is never polled."""

    interval: str = field("interval", _INTERVAL_DOC, required=True, pattern=DURATION_PATTERN)


@dataclass(frozen=True, kw_only=True)
class FetchedSourceSpec(PolledSourceSpec):
    """A source whose artifact is a file tree fetched from a server (GitRepository,
    OCIRepository, Bucket): within a timeout, with credentials, maybe through a proxy,
    and filtered by ignore rules."""

    timeout: str = field(
        "timeout",
        "Timeout of fetch operations.",
        schema_default="60s",
        pattern=SHORT_DURATION_PATTERN,
    )
    ignore: str | None = field("ignore", "Exclusion patterns in .sourceignore format.")
    secret_ref: LocalObjectReference | None = field(
        "secretRef", "Secret with the credentials for the server."
    )
    proxy_secret_ref: LocalObjectReference | None = field(
        "proxySecretRef", "Secret with the proxy to use."
    )


@dataclass(frozen=True, kw_only=True)
class HelmChartBuild:
    """How a chart artifact is built: which version, when it is rebuilt, which values
    files it packages. A HelmChart has these fields, and so has the HelmRelease's chart
    template a HelmChart is made from."""

    version: str = field(
        "version",
        "Semver range of the chart version (HelmRepository sources only).",
        schema_default="*",
    )
    reconcile_strategy: str = field(
        "reconcileStrategy",
        "New artifact on a new chart version, or on every source revision.",
        schema_default="ChartVersion",
        enum=("ChartVersion", "Revision"),
    )
    values_files: tuple[str, ...] = field(
        "valuesFiles", "Values files in the source merged in order, last wins.", default=()
    )
    values_file: str | None = field(
        "valuesFile", "Deprecated: a values file merged before valuesFiles."
    )
    ignore_missing_values_files: bool = field(
        "ignoreMissingValuesFiles", "Skip values files that do not exist.", default=False
    )

    @property
    def all_values_files(self) -> tuple[str, ...]:
        """``valuesFile`` (deprecated) first, then ``valuesFiles``."""
        head = (self.values_file,) if self.values_file else ()
        return head + self.values_files


@dataclass(frozen=True, kw_only=True)
class SignatureVerification:
    """Signature verification of an OCI artifact or chart: how it is signed, and the keys
    to trust."""

    provider: str = field(
        "provider",
        "Signing technology.",
        required=True,
        schema_default="cosign",
        enum=("cosign", "notation"),
    )
    secret_ref: LocalObjectReference | None = field(
        "secretRef", "Secret with the trusted public keys."
    )


# --------------------------------------------------------------------------- GitRepository


@dataclass(frozen=True, kw_only=True)
class GitRepositoryRef:
    """The Git reference to check out; when several are set, the most specific wins."""

    branch: str | None = field("branch", "Branch to check out; 'master' if nothing is set.")
    tag: str | None = field("tag", "Tag to check out; takes precedence over branch.")
    semver: str | None = field(
        "semver", "Semver range over tags; the highest match is checked out, over tag."
    )
    name: str | None = field(
        "name",
        "Full reference name (e.g. refs/pull/1/head); takes precedence over branch, tag, semver.",
    )
    commit: str | None = field(
        "commit",
        "Commit SHA to check out, over everything else; with branch, a shallow branch clone.",
    )

    def effective(self) -> tuple[GitRefKind, str]:
        """The reference that decides the checkout, by Flux's precedence.

        commit > name > semver > tag > branch, and ``("branch", "master")`` when
        nothing is set. A commit combined with a branch still reports ``commit``;
        the branch only narrows what is fetched.
        """
        if self.commit:
            return ("commit", self.commit)
        if self.name:
            return ("name", self.name)
        if self.semver:
            return ("semver", self.semver)
        if self.tag:
            return ("tag", self.tag)
        return ("branch", self.branch or "master")


@dataclass(frozen=True, kw_only=True)
class GitRepositoryVerification:
    """How commit or tag signatures are verified."""

    mode: str = field(
        "mode",
        "Which objects to verify: the HEAD commit, the tag, or both ('head' is legacy for HEAD).",
        schema_default="HEAD",
        enum=("head", "HEAD", "Tag", "TagAndHEAD"),
    )
    secret_ref: LocalObjectReference = field(
        "secretRef",
        "Secret with trusted keys: PGP under *.asc keys, SSH under *.sshpub keys.",
        required=True,
    )

    @property
    def effective_mode(self) -> str:
        """The mode with the legacy ``head`` read as ``HEAD``."""
        return "HEAD" if self.mode in ("", "head") else self.mode

    @property
    def verify_head(self) -> bool:
        return self.effective_mode in ("HEAD", "TagAndHEAD")

    @property
    def verify_tag(self) -> bool:
        return self.effective_mode in ("Tag", "TagAndHEAD")


@dataclass(frozen=True, kw_only=True)
class GitRepositoryInclude:
    """Another GitRepository whose artifact is copied into this one."""

    repository: LocalObjectReference = field(
        "repository", "The GitRepository to include.", required=True
    )
    from_path: str | None = field(
        "fromPath", "Path in the included artifact to copy from; the root by default."
    )
    to_path: str | None = field(
        "toPath", "Path to copy to; the included repository's name by default."
    )

    @property
    def destination(self) -> str:
        return self.to_path or self.repository.name


@dataclass(frozen=True, kw_only=True)
class GitRepositorySpec(FetchedSourceSpec):
    """Desired state of a GitRepository: what to clone, when, and how to authenticate."""

    __rules__ = (
        Rule(
            cel="!has(self.serviceAccountName) || (has(self.provider) && "
            "(self.provider == 'azure' || self.provider == 'aws'))",
            message="serviceAccountName can only be set when provider is 'azure' or 'aws'",
            check=lambda s: s.service_account_name is None or s.provider in ("azure", "aws"),
        ),
    )
    __descriptions__: ClassVar[Mapping[str, str]] = {
        "timeout": "Timeout of Git operations such as clone.",
        "ignore": "Exclusion patterns in .sourceignore (gitignore) format, replacing defaults.",
        "secret_ref": "Secret with credentials: username/password or bearerToken for HTTPS, "
        "identity and known_hosts for SSH.",
        "proxy_secret_ref": "Secret with the proxy (address, username, password) to use.",
    }

    url: str = field(
        "url",
        "Repository address: http(s):// or ssh://.",
        required=True,
        pattern=r"^(http|https|ssh)://.*$",
    )
    provider: str | None = field(
        "provider",
        "Authentication provider; 'generic' (secretRef) when not set.",
        enum=("generic", "aws", "azure", "github"),
    )
    service_account_name: str | None = field(
        "serviceAccountName",
        "ServiceAccount used for workload identity (azure and aws providers only).",
    )
    ref: GitRepositoryRef | None = field(
        "ref", "Reference to check out; the 'master' branch when not set."
    )
    verify: GitRepositoryVerification | None = field(
        "verify", "Signature verification of the checked out commit or tag."
    )
    recurse_submodules: bool = field("recurseSubmodules", "Clone submodules too.", default=False)
    include: tuple[GitRepositoryInclude, ...] = field(
        "include", "GitRepositories whose artifacts are copied into this one.", default=()
    )
    sparse_checkout: tuple[str, ...] = field(
        "sparseCheckout", "Only these directories are checked out.", default=()
    )

    @property
    def reference(self) -> GitRepositoryRef:
        """``ref``, or Flux's default (the ``master`` branch)."""
        return self.ref or GitRepositoryRef()


# --------------------------------------------------------------------------- OCIRepository


@dataclass(frozen=True, kw_only=True)
class OCIRepositoryRef:
    """The artifact version to pull; digest > semver > tag, 'latest' by default."""

    digest: str | None = field("digest", "Digest to pull (sha256:...), over semver and tag.")
    semver: str | None = field("semver", "Semver range; the highest matching tag, over tag.")
    semver_filter: str | None = field(
        "semverFilter", "Regular expression tags must match to enter the semver range."
    )
    tag: str | None = field("tag", "Tag to pull; 'latest' when nothing is set.")


@dataclass(frozen=True, kw_only=True)
class OCILayerSelector:
    """Which layer of the artifact becomes the source content, and how."""

    media_type: str | None = field(
        "mediaType", "Media type of the layer; the first layer when not set."
    )
    operation: str | None = field(
        "operation",
        "'extract' the layer's tarball (default) or 'copy' it as is.",
        enum=("extract", "copy"),
    )


@dataclass(frozen=True, kw_only=True)
class OIDCIdentityMatch:
    """Keyless signature identity: regular expressions for issuer and subject."""

    issuer: str = field("issuer", "Regular expression for the OIDC issuer.", required=True)
    subject: str = field("subject", "Regular expression for the identity subject.", required=True)


@dataclass(frozen=True, kw_only=True)
class OCIRepositoryVerification(SignatureVerification):
    """Signature verification of an OCI artifact."""

    match_oidc_identity: tuple[OIDCIdentityMatch, ...] = field(
        "matchOIDCIdentity", "Accepted identities for keyless signatures.", default=()
    )
    trusted_root_secret_ref: LocalObjectReference | None = field(
        "trustedRootSecretRef", "Secret with a Sigstore trusted_root.json."
    )


@dataclass(frozen=True, kw_only=True)
class OCIRepositorySpec(FetchedSourceSpec):
    """Desired state of an OCIRepository: which artifact to pull and how often."""

    __descriptions__: ClassVar[Mapping[str, str]] = {
        "timeout": "Timeout of registry operations.",
        "secret_ref": "Secret of type kubernetes.io/dockerconfigjson with registry credentials.",
    }

    url: str = field(
        "url",
        "Repository address, oci://registry/repository.",
        required=True,
        pattern=r"^oci://.*$",
    )
    ref: OCIRepositoryRef | None = field("ref", "Version to pull; the 'latest' tag when not set.")
    layer_selector: OCILayerSelector | None = field(
        "layerSelector", "Layer to use; the first one when not set."
    )
    provider: str = field(
        "provider",
        "Authentication provider.",
        schema_default="generic",
        enum=("generic", "aws", "azure", "gcp"),
    )
    verify: OCIRepositoryVerification | None = field("verify", "Signature verification.")
    service_account_name: str | None = field(
        "serviceAccountName", "ServiceAccount whose image pull secrets are used."
    )
    cert_secret_ref: LocalObjectReference | None = field(
        "certSecretRef", "Secret with tls.crt/tls.key and/or ca.crt for the registry."
    )
    insecure: bool = field("insecure", "Allow plain HTTP registries.", default=False)

    @property
    def reference(self) -> OCIRepositoryRef:
        return self.ref or OCIRepositoryRef(tag="latest")


# --------------------------------------------------------------------------- HelmRepository


@dataclass(frozen=True, kw_only=True)
class HelmRepositorySpec(SourceSpec):
    """Desired state of a HelmRepository: an index.yaml server or an OCI registry."""

    url: str = field(
        "url",
        "Repository address: http(s):// for an index, oci:// for a registry.",
        required=True,
        pattern=r"^(http|https|oci)://.*$",
    )
    secret_ref: LocalObjectReference | None = field(
        "secretRef", "Secret with username/password credentials."
    )
    cert_secret_ref: LocalObjectReference | None = field(
        "certSecretRef", "Secret with tls.crt/tls.key and/or ca.crt; over secretRef's TLS keys."
    )
    pass_credentials: bool = field(
        "passCredentials",
        "Send credentials to chart hosts other than the repository host.",
        default=False,
    )
    interval: str | None = field("interval", _INTERVAL_DOC, pattern=DURATION_PATTERN)
    insecure: bool = field(
        "insecure", "Allow plain HTTP registries (type 'oci' only).", default=False
    )
    timeout: str | None = field(
        "timeout",
        "Timeout of index fetches and OCI operations; 60s when not set.",
        pattern=SHORT_DURATION_PATTERN,
    )
    access_from: AccessFrom | None = field(
        "accessFrom", "Namespaces allowed to reference this object (not enforced)."
    )
    type: str | None = field(
        "type",
        "'default' (index.yaml) or 'oci' (url must start with oci://).",
        enum=("default", "oci"),
    )
    provider: str = field(
        "provider",
        "Authentication provider for type 'oci'.",
        schema_default="generic",
        enum=("generic", "aws", "azure", "gcp"),
    )

    @property
    def is_oci(self) -> bool:
        return self.type == "oci"


# --------------------------------------------------------------------------- HelmChart


@dataclass(frozen=True, kw_only=True)
class LocalHelmChartSourceReference:
    """The source, in the same namespace, that holds the chart."""

    api_version: str | None = field("apiVersion", "API version of the referent.")
    kind: str = field(
        "kind",
        "Kind of the referent.",
        required=True,
        enum=("HelmRepository", "GitRepository", "Bucket"),
    )
    name: str = field("name", "Name of the referent.", required=True)


@dataclass(frozen=True, kw_only=True)
class HelmChartSpec(PolledSourceSpec, HelmChartBuild):
    """Desired state of a HelmChart: which chart, which version, from which source."""

    __rules__ = (
        Rule(
            cel="!has(self.verify) || self.sourceRef.kind == 'HelmRepository'",
            message="spec.verify is only supported when spec.sourceRef.kind is 'HelmRepository'",
            check=lambda s: s.verify is None or s.source_ref.kind == "HelmRepository",
        ),
    )

    chart: str = field("chart", "Chart name, or path within a Git/Bucket source.", required=True)
    source_ref: LocalHelmChartSourceReference = field(
        "sourceRef", "The source holding the chart.", required=True
    )
    access_from: AccessFrom | None = field(
        "accessFrom", "Namespaces allowed to reference this object (not enforced)."
    )
    verify: OCIRepositoryVerification | None = field(
        "verify", "Signature verification (OCI HelmRepository sources only)."
    )


# --------------------------------------------------------------------------- Bucket


@dataclass(frozen=True, kw_only=True)
class BucketSTSSpec:
    """A Security Token Service that issues temporary bucket credentials."""

    provider: str = field("provider", "STS flavour.", required=True, enum=("aws", "ldap"))
    endpoint: str = field(
        "endpoint", "HTTP(S) address of the STS.", required=True, pattern=r"^(http|https)://.*$"
    )
    secret_ref: LocalObjectReference | None = field(
        "secretRef", "Secret with username and password (ldap only)."
    )
    cert_secret_ref: LocalObjectReference | None = field(
        "certSecretRef", "Secret with TLS material for the STS (ldap only)."
    )


@dataclass(frozen=True, kw_only=True)
class BucketSpec(FetchedSourceSpec):
    """Desired state of a Bucket: an S3-compatible, GCS or Azure object store prefix."""

    __rules__ = (
        Rule(
            cel="self.provider == 'aws' || self.provider == 'generic' || !has(self.sts)",
            message="STS configuration is only supported for the 'aws' and 'generic' "
            "Bucket providers",
            check=lambda s: s.provider in ("aws", "generic") or s.sts is None,
        ),
        Rule(
            cel="self.provider != 'aws' || !has(self.sts) || self.sts.provider == 'aws'",
            message="'aws' is the only supported STS provider for the 'aws' Bucket provider",
            check=lambda s: s.provider != "aws" or s.sts is None or s.sts.provider == "aws",
        ),
        Rule(
            cel="self.provider != 'generic' || !has(self.sts) || self.sts.provider == 'ldap'",
            message="'ldap' is the only supported STS provider for the 'generic' Bucket provider",
            check=lambda s: s.provider != "generic" or s.sts is None or s.sts.provider == "ldap",
        ),
        Rule(
            cel="!has(self.sts) || self.sts.provider != 'aws' || !has(self.sts.secretRef)",
            message="spec.sts.secretRef is not required for the 'aws' STS provider",
            check=lambda s: s.sts is None or s.sts.provider != "aws" or s.sts.secret_ref is None,
        ),
        Rule(
            cel="!has(self.sts) || self.sts.provider != 'aws' || !has(self.sts.certSecretRef)",
            message="spec.sts.certSecretRef is not required for the 'aws' STS provider",
            check=lambda s: (
                s.sts is None or s.sts.provider != "aws" or s.sts.cert_secret_ref is None
            ),
        ),
        Rule(
            cel="self.provider != 'generic' || !has(self.serviceAccountName)",
            message="ServiceAccountName is not supported for the 'generic' Bucket provider",
            check=lambda s: s.provider != "generic" or s.service_account_name is None,
        ),
        Rule(
            cel="!has(self.secretRef) || !has(self.serviceAccountName)",
            message="cannot set both .spec.secretRef and .spec.serviceAccountName",
            check=lambda s: s.secret_ref is None or s.service_account_name is None,
        ),
    )
    __descriptions__: ClassVar[Mapping[str, str]] = {
        "secret_ref": "Secret with accesskey/secretkey or provider credentials.",
    }

    provider: str = field(
        "provider",
        "Object store flavour; 'generic' is any S3-compatible API.",
        schema_default="generic",
        enum=("generic", "aws", "gcp", "azure"),
    )
    bucket_name: str = field("bucketName", "Name of the bucket.", required=True)
    endpoint: str = field("endpoint", "Object store address (host[:port]).", required=True)
    sts: BucketSTSSpec | None = field(
        "sts", "Security Token Service for temporary credentials (aws and generic)."
    )
    insecure: bool = field("insecure", "Connect over plain HTTP.", default=False)
    region: str | None = field("region", "Region of the endpoint.")
    prefix: str | None = field("prefix", "Only objects under this key prefix are fetched.")
    service_account_name: str | None = field(
        "serviceAccountName", "ServiceAccount for workload identity (gcp and aws)."
    )
    cert_secret_ref: LocalObjectReference | None = field(
        "certSecretRef", "Secret with TLS material (generic provider only)."
    )


@dataclass(frozen=True, kw_only=True)
class ExternalArtifactSpec:
    """An artifact another controller produces (fluxd reads it, never writes it).

    Its producer names the object the artifact is generated for and publishes the
    artifact in ``status.artifact``; a Kustomization (or HelmRelease) consumes it as a
    source like any other.
    """

    source_ref: NamespacedObjectKindReference | None = field(
        "sourceRef", "The custom resource the artifact is generated for."
    )
