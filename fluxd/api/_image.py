"""``image.toolkit.fluxcd.io/v1``: ImageRepository, ImagePolicy, ImageUpdateAutomation.

Mirrors image-reflector-controller's and image-automation-controller's ``api/v1``.
The same schema is served as ``v1beta2``, which most existing YAML still uses.
"""

# fluxd.api._schema.field is a dataclass field specifier, not a mutable default.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fluxd.api._meta import (
    AccessFrom,
    LabelSelector,
    LocalObjectReference,
    NamespacedObjectReference,
)
from fluxd.api._schema import DURATION_PATTERN, SHORT_DURATION_PATTERN, Rule, field
from fluxd.api._source import GitRepositoryRef

__all__ = [
    "AlphabeticalPolicy",
    "CommitSpec",
    "CommitUser",
    "GitCheckoutSpec",
    "GitSourceReference",
    "GitSpec",
    "ImagePolicyChoice",
    "ImagePolicySpec",
    "ImageRepositorySpec",
    "ImageUpdateAutomationSpec",
    "NumericalPolicy",
    "PushSpec",
    "SemVerPolicy",
    "SigningKey",
    "TagFilter",
    "UpdateStrategy",
]


@dataclass(frozen=True, kw_only=True)
class ImageRepositorySpec:
    """Desired state of an ImageRepository: which image to scan for tags, how often."""

    image: str = field("image", "Image repository to scan (e.g. ghcr.io/org/app).", required=True)
    interval: str = field("interval", "How often to scan.", required=True, pattern=DURATION_PATTERN)
    timeout: str | None = field(
        "timeout", "Timeout of a scan; the interval when not set.", pattern=SHORT_DURATION_PATTERN
    )
    secret_ref: LocalObjectReference | None = field(
        "secretRef", "docker-registry Secret with registry credentials."
    )
    proxy_secret_ref: LocalObjectReference | None = field(
        "proxySecretRef", "Secret with the proxy to use."
    )
    service_account_name: str | None = field(
        "serviceAccountName", "ServiceAccount whose image pull secrets are used.", max_length=253
    )
    cert_secret_ref: LocalObjectReference | None = field(
        "certSecretRef", "Secret with tls.crt/tls.key and/or ca.crt for the registry."
    )
    suspend: bool = field("suspend", "Suspend scans.", default=False)
    access_from: AccessFrom | None = field(
        "accessFrom", "Namespaces whose ImagePolicies may reference this object."
    )
    exclusion_list: tuple[str, ...] = field(
        "exclusionList",
        "Regular expressions of tags not to store.",
        schema_default=(r"^.*\.sig$",),
        max_items=25,
    )
    provider: str = field(
        "provider",
        "Authentication provider.",
        schema_default="generic",
        enum=("generic", "aws", "azure", "gcp"),
    )
    insecure: bool = field("insecure", "Allow plain HTTP registries.", default=False)


@dataclass(frozen=True, kw_only=True)
class SemVerPolicy:
    """Pick the highest tag within a semver range."""

    range: str = field("range", "Semver range, e.g. '>=1.0.0 <2.0.0'.", required=True)


@dataclass(frozen=True, kw_only=True)
class AlphabeticalPolicy:
    """Pick a tag by alphabetical order."""

    order: str = field(
        "order",
        "'asc' picks the last tag in order, 'desc' the first.",
        schema_default="asc",
        enum=("asc", "desc"),
    )


@dataclass(frozen=True, kw_only=True)
class NumericalPolicy:
    """Pick a tag by numerical order."""

    order: str = field(
        "order",
        "'asc' picks the largest number, 'desc' the smallest.",
        schema_default="asc",
        enum=("asc", "desc"),
    )


@dataclass(frozen=True, kw_only=True)
class ImagePolicyChoice:
    """Exactly one ordering policy."""

    semver: SemVerPolicy | None = field("semver", "Semver ordering.")
    alphabetical: AlphabeticalPolicy | None = field("alphabetical", "Alphabetical ordering.")
    numerical: NumericalPolicy | None = field("numerical", "Numerical ordering.")


@dataclass(frozen=True, kw_only=True)
class TagFilter:
    """Filter tags by regular expression, optionally extracting the part to order by."""

    pattern: str | None = field("pattern", "Regular expression tags must match.")
    extract: str | None = field(
        "extract", "Replacement (e.g. '$ts') built from the match, ordered instead of the tag."
    )


@dataclass(frozen=True, kw_only=True)
class ImagePolicySpec:
    """Desired state of an ImagePolicy: how to pick the latest image of a repository."""

    __rules__ = (
        Rule(
            cel="!has(self.interval) || (has(self.digestReflectionPolicy) && "
            "self.digestReflectionPolicy == 'Always')",
            message="spec.interval is only accepted when spec.digestReflectionPolicy is set "
            "to 'Always'",
            check=lambda s: s.interval is None or s.digest_reflection_policy == "Always",
        ),
        Rule(
            cel="has(self.interval) || !has(self.digestReflectionPolicy) || "
            "self.digestReflectionPolicy != 'Always'",
            message="spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'",
            check=lambda s: s.interval is not None or s.digest_reflection_policy != "Always",
        ),
    )

    image_repository_ref: NamespacedObjectReference = field(
        "imageRepositoryRef", "The ImageRepository whose tags are considered.", required=True
    )
    policy: ImagePolicyChoice = field("policy", "How to order the tags.", required=True)
    filter_tags: TagFilter | None = field("filterTags", "Tags to consider; all when not set.")
    digest_reflection_policy: str = field(
        "digestReflectionPolicy",
        "When to record the digest of the latest image.",
        schema_default="Never",
        enum=("Always", "IfNotPresent", "Never"),
    )
    interval: str | None = field(
        "interval",
        "How often to refresh the digest (digestReflectionPolicy 'Always' only).",
        pattern=DURATION_PATTERN,
    )
    suspend: bool = field("suspend", "Suspend reconciliation of this object.", default=False)


@dataclass(frozen=True, kw_only=True)
class GitSourceReference:
    """The GitRepository that is checked out, updated and pushed."""

    api_version: str | None = field("apiVersion", "API version of the referent.")
    kind: str = field(
        "kind",
        "Kind of the referent.",
        required=True,
        schema_default="GitRepository",
        enum=("GitRepository",),
    )
    name: str = field("name", "Name of the referent.", required=True)
    namespace: str | None = field(
        "namespace", "Namespace of the referent; the automation's namespace when not set."
    )


@dataclass(frozen=True, kw_only=True)
class GitCheckoutSpec:
    """What to check out before updating."""

    ref: GitRepositoryRef = field("ref", "Branch, tag or commit to check out.", required=True)


@dataclass(frozen=True, kw_only=True)
class CommitUser:
    """Commit author."""

    name: str | None = field("name", "Author name.")
    email: str = field("email", "Author email.", required=True)


@dataclass(frozen=True, kw_only=True)
class SigningKey:
    """Secret with the key commits are signed with."""

    secret_ref: LocalObjectReference = field(
        "secretRef", "Secret with git.asc (gpg) or identity (ssh).", required=True
    )
    type: str | None = field("type", "Key format; 'gpg' when not set.", enum=("gpg", "ssh"))


@dataclass(frozen=True, kw_only=True)
class CommitSpec:
    """How the update commit is made."""

    author: CommitUser = field("author", "Commit author.", required=True)
    signing_key: SigningKey | None = field("signingKey", "Key to sign commits with.")
    message_template: str | None = field("messageTemplate", "Go template of the commit message.")
    message_template_values: Mapping[str, str] = field(
        "messageTemplateValues", "Extra values available to the message template.", default={}
    )


@dataclass(frozen=True, kw_only=True)
class PushSpec:
    """Where commits are pushed."""

    branch: str | None = field("branch", "Branch to push to, created from the checkout.")
    refspec: str | None = field(
        "refspec", "Refspec to push with, in addition to the branch when both are set."
    )
    options: Mapping[str, str] = field("options", "Git push options.", default={})


@dataclass(frozen=True, kw_only=True)
class GitSpec:
    """Git checkout, commit and push settings."""

    checkout: GitCheckoutSpec | None = field(
        "checkout", "Checkout; the GitRepository's ref when not set."
    )
    commit: CommitSpec = field("commit", "Commit settings.", required=True)
    push: PushSpec | None = field("push", "Push target; the checkout branch when not set.")


@dataclass(frozen=True, kw_only=True)
class UpdateStrategy:
    """How files are updated."""

    strategy: str = field(
        "strategy", "Update strategy.", schema_default="Setters", enum=("Setters",)
    )
    path: str | None = field("path", "Directory to update; the repository root when not set.")


@dataclass(frozen=True, kw_only=True)
class ImageUpdateAutomationSpec:
    """Desired state of an ImageUpdateAutomation: write policy results back to Git."""

    source_ref: GitSourceReference = field(
        "sourceRef", "The GitRepository to update.", required=True
    )
    git: GitSpec | None = field("git", "Git settings (needed in practice).")
    interval: str = field(
        "interval", "How often to run the automation.", required=True, pattern=DURATION_PATTERN
    )
    policy_selector: LabelSelector | None = field(
        "policySelector",
        "ImagePolicies to apply; all in the namespace when not set.",
        map_type="atomic",
    )
    update: UpdateStrategy = field(
        "update",
        "How to update files.",
        schema_default={"strategy": "Setters"},
        default=UpdateStrategy(),
    )
    suspend: bool = field("suspend", "Suspend the automation.", default=False)
