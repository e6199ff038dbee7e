"""Which cluster, as whom: the API client a Kustomization (or a HelmRelease) acts with.

Flux's kustomize-controller does not touch a Kustomization's objects as itself. The
dry-run, the apply, the prune, the health checks and the prune on deletion all go out as
the identity the Kustomization names, so that a tenant's Kustomization can do no more
than the tenant's RBAC allows:

- ``spec.serviceAccountName`` (else the daemon's ``--default-service-account``, which
  locks down every Kustomization that names none): each request carries
  ``Impersonate-User: system:serviceaccount:<namespace>:<name>``, the namespace being the
  Kustomization's. No groups are sent: for a service-account user the API server adds
  ``system:serviceaccounts``, ``system:serviceaccounts:<namespace>`` and
  ``system:authenticated`` itself, so bindings to those groups count as they would for
  the account's own token;
- ``spec.kubeConfig.secretRef``: the kubeconfig in that Secret of the Kustomization's
  namespace (key ``secretRef.key``, else ``value``, else ``value.yaml``) names another
  cluster and the credentials for it. With a service account as well, that account is
  impersonated on the other cluster.

What configures the reconcile rather than the tenant's objects stays with the daemon's
own identity, as in Flux: the source, the decryption Secret, the ``postBuild``
ConfigMaps and Secrets, and the kubeconfig Secret itself.

As in Flux, only self-contained kubeconfigs are used: embedded certificates, a token or
basic auth. Files and auth providers would read or run things inside the daemon's pod on
a tenant's say-so; each is refused with a message that names the Secret. Two things Flux
lets an operator allow with flags of the same names are refused unless the daemon was
started with them: a user's ``exec`` plugin (``--insecure-kubeconfig-exec``: it runs a
command in the daemon's pod) and a cluster's ``insecure-skip-tls-verify``
(``--insecure-kubeconfig-tls``: it talks to an unverified server). Flux drops those
fields quietly and the connection then fails for want of them; fluxd says why instead.

Clients are cached per identity (cluster and user), not made per reconcile: an
``ApiClient`` owns a connection pool and a :class:`~fluxd.apply.mapper.RESTMapper` a
discovery cache, and paying a TLS handshake and discovery every interval for every
Kustomization would be wasted work. An identity no Kustomization uses any more (its
kubeconfig rotated, its Kustomization deleted) is closed at the next lookup, and every
client when the daemon stops (:meth:`ClusterAccess.close`), with the watches health waits
on those clusters share (:mod:`~fluxd.apply.health_watch`).

A HelmRelease names its identity with the same two fields; its drift detection and
correction go through a :class:`ClusterAccess` of its own, writing as ``helm-controller``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from fluxd.api import KubeConfigReference
from fluxd.apply.health_watch import HealthWatches
from fluxd.apply.manager import FIELD_MANAGER, ApplyManager
from fluxd.apply.mapper import RESTMapper
from fluxd.kube import client
from fluxd.kube.client import ApiClient
from fluxd.kube.objects import ObjectApi, SecretNotFound
from fluxd.kube.resources import Resource
from fluxd.runtime.keys import ObjectKey

__all__ = [
    "Cluster",
    "ClusterAccess",
    "ClusterAccessError",
    "Identity",
    "KubeconfigPolicy",
    "kubeconfig_from_secret",
    "service_account_user",
]

#: The default keys of a kubeconfig Secret, in the order Flux tries them.
KUBECONFIG_KEYS = ("value", "value.yaml")
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts")

_CLUSTER_FIELDS = ("server", "certificate-authority-data", "tls-server-name")
_USER_FIELDS = ("client-certificate-data", "client-key-data", "token", "username", "password")
#: The fields an operator may allow, each with the ``fluxd run`` flag (Flux's) allowing it.
_FLAG_ALLOWING = {
    "insecure-skip-tls-verify": "--insecure-kubeconfig-tls",
    "exec": "--insecure-kubeconfig-exec",
}
_USER_REFUSED = {
    "exec": "runs a command",
    "auth-provider": "needs an auth provider plugin",
    "client-certificate": "reads a client certificate file",
    "client-key": "reads a client key file",
    "tokenFile": "reads a token file",
}
_CLUSTER_REFUSED = {
    "certificate-authority": "reads a certificate authority file",
    "insecure-skip-tls-verify": "turns off TLS verification",
    "proxy-url": "goes through a proxy",
}


class ClusterAccessError(Exception):
    """The cluster or identity a Kustomization names cannot be used; ``str()`` says why."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who talks to which cluster: ``cluster`` is the digest of a kubeconfig (``None``:
    the daemon's own cluster), ``user`` the impersonated user (``None``: the
    credentials' own)."""

    cluster: str | None
    user: str | None


@dataclass(frozen=True, slots=True)
class Cluster:
    """An API client with its discovery cache and apply manager, for one identity."""

    identity: Identity
    api: ApiClient
    mapper: RESTMapper
    applier: ApplyManager


def service_account_user(namespace: str, name: str) -> str:
    """The user name Kubernetes gives a service account's tokens."""
    return f"system:serviceaccount:{namespace}:{name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class KubeconfigPolicy:
    """What a tenant's kubeconfig may use beyond self-contained credentials: Flux's
    ``--insecure-kubeconfig-tls`` and ``--insecure-kubeconfig-exec``."""

    insecure_tls: bool = False
    exec_provider: bool = False

    def allows(self, field: str) -> bool:
        """Whether a kubeconfig's cluster or user field ``field`` may be used."""
        return (field == "insecure-skip-tls-verify" and self.insecure_tls) or (
            field == "exec" and self.exec_provider
        )


def kubeconfig_from_secret(
    data: Mapping[str, bytes],
    *,
    secret: str,
    key: str | None,
    policy: KubeconfigPolicy = KubeconfigPolicy(),
) -> dict[str, Any]:
    """The kubeconfig stored in a Secret's ``data``, reduced to its current context.

    ``key`` is ``secretRef.key``; without it ``value`` then ``value.yaml`` are tried.
    Raises :class:`ClusterAccessError` naming ``secret`` (``namespace/name``) when the
    key is missing, the YAML does not parse, or the kubeconfig is not self-contained
    (``exec`` and ``insecure-skip-tls-verify`` count as such when ``policy`` allows them).
    """
    if key:
        if key not in data:
            raise ClusterAccessError(
                f"kubeconfig secret '{secret}' does not contain a '{key}' key with a kubeconfig"
            )
        used = key
    else:
        found = next((name for name in KUBECONFIG_KEYS if name in data), None)
        if found is None:
            raise ClusterAccessError(
                f"kubeconfig secret '{secret}' does not contain a 'value' or 'value.yaml' "
                "key with a kubeconfig (or set spec.kubeConfig.secretRef.key)"
            )
        used = found
    where = f"kubeconfig in secret '{secret}' (key '{used}')"
    try:
        document = yaml.safe_load(data[used])
    except yaml.YAMLError as error:
        raise ClusterAccessError(f"{where} is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise ClusterAccessError(f"{where} is not a kubeconfig: expected a YAML mapping")
    return _self_contained(document, where, policy)


def _self_contained(
    document: Mapping[str, Any], where: str, policy: KubeconfigPolicy
) -> dict[str, Any]:
    """The current context of ``document`` with only the fields fluxd uses."""
    context_name = document.get("current-context")
    if not context_name:
        raise ClusterAccessError(f"{where} has no current-context")
    context = _named(document, "contexts", "context", context_name, where)
    cluster_name = context.get("cluster")
    user_name = context.get("user")
    cluster = _named(document, "clusters", "cluster", cluster_name, where)
    user = _named(document, "users", "user", user_name, where) if user_name else {}
    for fields, refused, what in (
        (cluster, _CLUSTER_REFUSED, f"cluster '{cluster_name}'"),
        (user, _USER_REFUSED, f"user '{user_name}'"),
    ):
        for field, doing in refused.items():
            if not fields.get(field) or policy.allows(field):
                continue
            remedy = (
                f"fluxd allows it only when run with {_FLAG_ALLOWING[field]}"
                if field in _FLAG_ALLOWING
                else "only self-contained kubeconfigs are used (embedded certificates, "
                "a token or basic auth)"
            )
            raise ClusterAccessError(f"{where}: {what} {doing} ({field}); {remedy}")
    if not cluster.get("server"):
        raise ClusterAccessError(f"{where}: cluster '{cluster_name}' has no server")
    cluster_fields = (*_CLUSTER_FIELDS, *filter(policy.allows, _CLUSTER_REFUSED))
    user_fields = (*_USER_FIELDS, *filter(policy.allows, _USER_REFUSED))
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "remote",
        "contexts": [{"name": "remote", "context": {"cluster": "remote", "user": "remote"}}],
        "clusters": [
            {"name": "remote", "cluster": {k: cluster[k] for k in cluster_fields if k in cluster}}
        ],
        "users": [{"name": "remote", "user": {k: user[k] for k in user_fields if k in user}}],
    }


def _named(
    document: Mapping[str, Any], section: str, field: str, name: object, where: str
) -> dict[str, Any]:
    for entry in document.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(field)
            return value if isinstance(value, dict) else {}
    raise ClusterAccessError(f"{where}: {section} has no entry named '{name}'")


class ActingSpec(Protocol):
    """The spec fields that name an identity (Kustomization's and HelmRelease's)."""

    @property
    def service_account_name(self) -> str | None: ...

    @property
    def kube_config(self) -> KubeConfigReference | None: ...


class ClusterAccess:
    """The clusters Kustomizations act on, one cached :class:`Cluster` per identity."""

    def __init__(
        self,
        objects: ObjectApi,
        *,
        field_manager: str = FIELD_MANAGER,
        default_service_account: str | None = None,
        kubeconfig_policy: KubeconfigPolicy = KubeconfigPolicy(),
    ) -> None:
        self.objects = objects
        self.field_manager = field_manager
        self.default_service_account = default_service_account or None
        self.kubeconfig_policy = kubeconfig_policy
        self.local = self._cluster(Identity(None, None), objects.api)
        self._clusters: dict[Identity, Cluster] = {self.local.identity: self.local}
        self._users: dict[ObjectKey, Identity] = {}
        #: Whether a client may have lost its last user since clients were last closed:
        #: looking for unused ones costs a pass over every Kustomization, so only then.
        self._maybe_unused = False
        self._lock = asyncio.Lock()
        #: Health waits on any of these clusters, sharing watches of their workloads.
        self.health = HealthWatches()

    def service_account(self, spec: ActingSpec) -> str | None:
        """The account a Kustomization impersonates: its own, else the default."""
        name: str | None = spec.service_account_name or self.default_service_account
        return name

    async def for_kustomization(self, key: ObjectKey, spec: ActingSpec) -> Cluster:
        """The cluster client Kustomization ``key`` acts with, for its current ``spec``.

        Raises :class:`ClusterAccessError` when its kubeconfig Secret is missing or
        unusable.
        """
        account = self.service_account(spec)
        user = service_account_user(key.namespace, account) if account else None
        remote = (
            await self.kubeconfig(key.namespace, spec.kube_config) if spec.kube_config else None
        )
        digest = (
            hashlib.sha256(json.dumps(remote[1], sort_keys=True).encode()).hexdigest()
            if remote is not None
            else None
        )
        identity = Identity(digest, user)
        async with self._lock:
            cluster = self._clusters.get(identity)
            if cluster is None:
                cluster = self._cluster(identity, await self._connect(remote, user))
                self._clusters[identity] = cluster
            previous = self._users.get(key)
            self._users[key] = identity
            if self._maybe_unused or (previous is not None and previous != identity):
                await self._close_unused()
        return cluster

    async def account_exists(self, namespace: str, spec: ActingSpec) -> bool:
        """Whether the service account a Kustomization impersonates exists (``True`` when
        it impersonates none), read with the daemon's identity on the daemon's cluster."""
        account = self.service_account(spec)
        if account is None:
            return True
        found = await client.get(
            self.objects.api, SERVICE_ACCOUNTS, namespace, account, missing_ok=True
        )
        return found is not None

    def forget(self, key: ObjectKey) -> None:
        """Kustomization ``key`` is gone; its client is closed at the next lookup if no
        other Kustomization uses it."""
        if self._users.pop(key, None) is not None:
            self._maybe_unused = True

    async def close(self) -> None:
        """Close every client fluxd opened (not the daemon's own)."""
        async with self._lock:
            self._users.clear()
            await self._close_unused()
        await self.health.close()

    # -- helpers ---------------------------------------------------------------------------

    def _cluster(self, identity: Identity, api: ApiClient) -> Cluster:
        mapper = RESTMapper(api)
        applier = ApplyManager(api, mapper, field_manager=self.field_manager)
        return Cluster(identity, api, mapper, applier)

    async def kubeconfig(
        self, namespace: str, reference: KubeConfigReference
    ) -> tuple[str, dict[str, Any]]:
        """``(namespace/name of the Secret, its self-contained kubeconfig)``, read with the
        daemon's identity (the Helm SDK takes the kubeconfig itself, not a client).
        Raises :class:`ClusterAccessError` naming the Secret when it cannot be used."""
        ref = reference.secret_ref
        if ref is None:
            raise ClusterAccessError(
                "spec.kubeConfig has no secretRef: name the Secret holding the kubeconfig"
            )
        secret = f"{namespace}/{ref.name}"
        try:
            data = await self.objects.secret_data(namespace, ref.name)
        except SecretNotFound:
            raise ClusterAccessError(f"kubeconfig secret '{secret}' not found") from None
        except client.ApiError as error:
            raise ClusterAccessError(
                f"unable to read kubeconfig secret '{secret}': {error.message or error}"
            ) from error
        return secret, kubeconfig_from_secret(
            data, secret=secret, key=ref.key, policy=self.kubeconfig_policy
        )

    async def _connect(
        self, remote: tuple[str, dict[str, Any]] | None, user: str | None
    ) -> ApiClient:
        if remote is None:
            return client.impersonating(self.objects.api, user)
        secret, kubeconfig = remote
        try:
            return await client.connect_with(kubeconfig, impersonate=user)
        except client.KubeconfigError as error:
            raise ClusterAccessError(
                f"kubeconfig in secret '{secret}' cannot be used: {error}"
            ) from error

    async def _close_unused(self) -> None:
        self._maybe_unused = False
        used = {*self._users.values(), self.local.identity}
        for identity in [identity for identity in self._clusters if identity not in used]:
            await self._clusters.pop(identity).api.close()
