"""``notification.toolkit.fluxcd.io``: Provider and Alert (v1beta3), Receiver (v1).

Mirrors notification-controller's ``api/v1beta3`` and ``api/v1``. Providers and
alerts are configuration only (Flux gives them no status in v1beta3); fluxd keeps a
status subresource on them anyway so it can report a broken reference.
"""

# fluxd.api._schema.field is a dataclass field specifier, not a mutable default.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fluxd.api._meta import LocalObjectReference
from fluxd.api._schema import DURATION_PATTERN, SHORT_DURATION_PATTERN, Rule, field

__all__ = [
    "AlertSpec",
    "NotificationObjectReference",
    "OIDCProvider",
    "OIDCValidation",
    "OIDCVariable",
    "ProviderSpec",
    "ReceiverResource",
    "ReceiverSpec",
]

PROVIDER_TYPES = (
    "slack",
    "discord",
    "msteams",
    "rocket",
    "generic",
    "generic-hmac",
    "github",
    "gitlab",
    "gitea",
    "giteapullrequestcomment",
    "bitbucketserver",
    "bitbucket",
    "azuredevops",
    "googlechat",
    "googlepubsub",
    "webex",
    "sentry",
    "azureeventhub",
    "telegram",
    "lark",
    "matrix",
    "opsgenie",
    "alertmanager",
    "grafana",
    "githubdispatch",
    "githubpullrequestcomment",
    "gitlabmergerequestcomment",
    "pagerduty",
    "datadog",
    "nats",
    "zulip",
    "otel",
    "zoom",
    "incident.io",
)
_COMMIT_STATUS_TYPES = ("github", "gitlab", "gitea", "bitbucketserver", "bitbucket", "azuredevops")

RECEIVER_TYPES = (
    "generic",
    "generic-hmac",
    "generic-oidc",
    "github",
    "gitlab",
    "bitbucket",
    "harbor",
    "dockerhub",
    "quay",
    "gcr",
    "nexus",
    "acr",
    "cdevents",
)

REFERENCE_KINDS = (
    "Bucket",
    "GitRepository",
    "Kustomization",
    "HelmRelease",
    "HelmChart",
    "HelmRepository",
    "ImageRepository",
    "ImagePolicy",
    "ImageUpdateAutomation",
    "OCIRepository",
    "ArtifactGenerator",
    "ExternalArtifact",
)


@dataclass(frozen=True, kw_only=True)
class NotificationObjectReference:
    """Flux objects an alert listens to or a receiver wakes up; '*' matches all names."""

    api_version: str | None = field("apiVersion", "API version of the referent.")
    kind: str = field("kind", "Kind of the referent.", required=True, enum=REFERENCE_KINDS)
    name: str = field(
        "name",
        "Name of the referent, or '*' for all.",
        required=True,
        min_length=1,
        max_length=253,
    )
    namespace: str | None = field(
        "namespace",
        "Namespace of the referent ('*' for all, with name '*').",
        min_length=1,
        max_length=253,
    )
    match_labels: Mapping[str, str] = field(
        "matchLabels", "Labels the referents must carry (requires name '*').", default={}
    )


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    """Where and how events are delivered (chat, git commit status, webhook...)."""

    __rules__ = (
        Rule(
            cel="self.type == 'github' || self.type == 'gitlab' || self.type == 'gitea' || "
            "self.type == 'bitbucketserver' || self.type == 'bitbucket' || "
            "self.type == 'azuredevops' || !has(self.commitStatusExpr)",
            message="spec.commitStatusExpr is only supported for the 'github', 'gitlab', "
            "'gitea', 'bitbucketserver', 'bitbucket', 'azuredevops' provider types",
            check=lambda s: s.type in _COMMIT_STATUS_TYPES or s.commit_status_expr is None,
        ),
    )

    type: str = field("type", "Provider implementation.", required=True, enum=PROVIDER_TYPES)
    interval: str | None = field("interval", "Deprecated and unused.", pattern=DURATION_PATTERN)
    channel: str | None = field("channel", "Destination channel.", max_length=2048)
    username: str | None = field("username", "Name events are posted as.", max_length=2048)
    address: str | None = field(
        "address", "Endpoint events are sent to (meaning depends on type).", max_length=2048
    )
    timeout: str | None = field(
        "timeout", "Timeout of one delivery; 15s when not set.", pattern=SHORT_DURATION_PATTERN
    )
    proxy: str | None = field(
        "proxy",
        "Deprecated: HTTP(S) proxy address; use proxySecretRef.",
        pattern=r"^(http|https)://.*$",
        max_length=2048,
    )
    proxy_secret_ref: LocalObjectReference | None = field(
        "proxySecretRef", "Secret with the proxy address and credentials."
    )
    secret_ref: LocalObjectReference | None = field(
        "secretRef", "Secret with the address, token or other credentials."
    )
    service_account_name: str | None = field(
        "serviceAccountName", "ServiceAccount for workload identity."
    )
    cert_secret_ref: LocalObjectReference | None = field(
        "certSecretRef", "Secret with ca.crt and/or tls.crt/tls.key."
    )
    suspend: bool = field("suspend", "Stop delivering events.", default=False)
    commit_status_expr: str | None = field(
        "commitStatusExpr", "CEL expression building the commit status (git providers only)."
    )


@dataclass(frozen=True, kw_only=True)
class AlertSpec:
    """Which events go to which provider."""

    provider_ref: LocalObjectReference = field(
        "providerRef", "The Provider to deliver to.", required=True
    )
    event_severity: str = field(
        "eventSeverity",
        "Minimum severity: 'info' passes everything.",
        schema_default="info",
        enum=("info", "error"),
    )
    event_sources: tuple[NotificationObjectReference, ...] = field(
        "eventSources", "Objects whose events are forwarded.", required=True
    )
    inclusion_list: tuple[str, ...] = field(
        "inclusionList", "Regular expressions a message must match.", default=()
    )
    event_metadata: Mapping[str, str] = field(
        "eventMetadata", "Metadata added to each event (never overriding).", default={}
    )
    exclusion_list: tuple[str, ...] = field(
        "exclusionList", "Regular expressions that drop a message.", default=()
    )
    summary: str | None = field("summary", "Short description of the impact.", max_length=255)
    suspend: bool = field("suspend", "Stop forwarding events.", default=False)


@dataclass(frozen=True, kw_only=True)
class ReceiverResource(NotificationObjectReference):
    """Objects a receiver wakes up, optionally narrowed by a CEL expression of their own."""

    filter: str | None = field(
        "filter",
        "CEL expression over 'res' (the resource), 'req' (the webhook body) and, for "
        "generic-oidc, 'claims'; the resource is reconciled only when it and resourceFilter "
        "both hold. An invalid expression stalls the Receiver.",
    )


@dataclass(frozen=True, kw_only=True)
class OIDCValidation:
    """A CEL condition a token must meet for its request to be accepted."""

    expression: str = field(
        "expression", "CEL boolean expression over 'claims' and 'vars'.", required=True
    )
    message: str = field(
        "message", "Returned to the caller when the expression is false.", required=True
    )


@dataclass(frozen=True, kw_only=True)
class OIDCVariable:
    """A named CEL value computed from the token claims, reusable as 'vars.<name>'."""

    name: str = field("name", "Variable name, a CEL identifier.", required=True)
    expression: str = field(
        "expression",
        "CEL expression over 'claims' and the variables declared before this one.",
        required=True,
    )


@dataclass(frozen=True, kw_only=True)
class OIDCProvider:
    """An OIDC issuer whose tokens authenticate the requests of a generic-oidc receiver."""

    issuer_url: str = field(
        "issuerURL",
        "Issuer address used for discovery; tokens are matched to it by their 'iss' claim.",
        required=True,
        pattern="^https?://",
    )
    audience: str | None = field(
        "audience", "Expected 'aud' claim of the tokens; 'notification-controller' when not set."
    )
    variables: tuple[OIDCVariable, ...] = field(
        "variables", "Named expressions evaluated in order before the validations.", default=()
    )
    validations: tuple[OIDCValidation, ...] = field(
        "validations",
        "Conditions on the caller's identity claims that must all hold; a valid signature "
        "alone authorizes nothing.",
        required=True,
        min_items=1,
    )


_OIDC = "generic-oidc"


@dataclass(frozen=True, kw_only=True)
class ReceiverSpec:
    """A webhook endpoint that requests reconciliation of the listed objects."""

    __rules__ = (
        Rule(
            cel="self.type != 'generic-oidc' || "
            "(has(self.oidcProviders) && size(self.oidcProviders) > 0)",
            message="generic-oidc receivers must define at least one oidcProvider",
            check=lambda s: s.type != _OIDC or len(s.oidc_providers) > 0,
        ),
        Rule(
            cel="self.type == 'generic-oidc' || !has(self.oidcProviders) || "
            "size(self.oidcProviders) == 0",
            message="oidcProviders can only be set when type is generic-oidc",
            check=lambda s: s.type == _OIDC or not s.oidc_providers,
        ),
        Rule(
            cel="self.type != 'generic-oidc' || !has(self.secretRef)",
            message="secretRef cannot be set when type is generic-oidc",
            check=lambda s: s.type != _OIDC or s.secret_ref is None,
        ),
        Rule(
            cel="self.type == 'generic-oidc' || has(self.secretRef)",
            message="secretRef is required when type is not generic-oidc",
            check=lambda s: s.type == _OIDC or s.secret_ref is not None,
        ),
    )

    type: str = field(
        "type", "Webhook sender, decides payload validation.", required=True, enum=RECEIVER_TYPES
    )
    interval: str = field(
        "interval",
        "How often the Secret reference is reconciled.",
        schema_default="10m",
        pattern=DURATION_PATTERN,
    )
    events: tuple[str, ...] = field(
        "events", "Event types to act on (e.g. 'push'); all when empty.", default=()
    )
    resources: tuple[ReceiverResource, ...] = field(
        "resources", "Objects to reconcile on a valid webhook.", required=True
    )
    resource_filter: str | None = field(
        "resourceFilter", "CEL expression deciding per resource whether to reconcile it."
    )
    secret_ref: LocalObjectReference | None = field(
        "secretRef",
        "Secret with the 'token' the payload is validated with (gcr also needs 'email' and "
        "'audience'); required for every type but generic-oidc, which must not set it.",
    )
    oidc_providers: tuple[OIDCProvider, ...] = field(
        "oidcProviders",
        "Issuers whose tokens authenticate generic-oidc requests; only for that type.",
        default=(),
        list_type="map",
        list_map_keys=("issuerURL",),
    )
    suspend: bool = field("suspend", "Stop handling webhooks.", default=False)
