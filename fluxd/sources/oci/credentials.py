"""How fluxd authenticates to a registry: OCIRepository and ImageRepository Secrets, as Flux.

``spec.secretRef`` names a ``kubernetes.io/dockerconfigjson`` Secret: its
``.dockerconfigjson`` maps registry hosts to ``username``/``password`` (or ``auth``, their
base64 ``user:password``); only the entry of the repository's host is used, and a host
without an entry is pulled anonymously, as a Docker keychain does. ``spec.certSecretRef``
holds ``ca.crt`` (trusted besides the system store) and ``tls.crt``/``tls.key`` (a client
certificate). A Secret that is missing or malformed is ``AuthenticationFailed``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from fluxd.api import LocalObjectReference
from fluxd.kube.objects import ObjectApi, SecretNotFound, ServiceAccountNotFound
from fluxd.sources.client_certificate import (
    STORAGE_OPERATION_FAILED,
    CertificateFilesFailed,
    load_client_certificate,
)
from fluxd.sources.oci.errors import AUTHENTICATION_FAILED, RegistryError
from fluxd.sources.proxy import Proxy, ProxyConfigError, read_proxy

__all__ = [
    "DOCKER_CONFIG_KEY",
    "CredentialsSpec",
    "RegistryAuth",
    "SecretReader",
    "docker_config_auth",
    "registry_auth",
    "spec_proxy",
    "spec_registry_auth",
    "tls_context",
]

DOCKER_CONFIG_KEY = ".dockerconfigjson"


class CredentialsSpec(Protocol):
    """The credential fields an OCIRepository and an ImageRepository share."""

    @property
    def secret_ref(self) -> LocalObjectReference | None: ...
    @property
    def cert_secret_ref(self) -> LocalObjectReference | None: ...
    @property
    def service_account_name(self) -> str | None: ...
    @property
    def proxy_secret_ref(self) -> LocalObjectReference | None: ...


class SecretReader(Protocol):
    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes]: ...


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials and TLS settings for one registry; anonymous and system CAs by default."""

    username: str | None = None
    password: str | None = None
    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None

    @property
    def basic(self) -> str | None:
        """The ``Authorization`` value of these credentials as HTTP basic auth."""
        if self.username is None:
            return None
        token = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
        return f"Basic {token}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """A context for this registry's TLS settings; ``None``: the default one."""
        if self.ca is None and self.cert is None:
            return None
        return tls_context(self.ca, self.cert, self.key)


def docker_config_auth(data: dict[str, bytes], host: str, *, secret: str) -> RegistryAuth:
    """The credentials ``host`` has in the dockerconfigjson Secret ``data`` (named
    ``secret`` in messages); anonymous when the Secret has no entry for it."""
    raw = data.get(DOCKER_CONFIG_KEY)
    if raw is None:
        raise RegistryError(
            f"secret '{secret}' has no '{DOCKER_CONFIG_KEY}' key: it must be of type "
            "kubernetes.io/dockerconfigjson",
            reason=AUTHENTICATION_FAILED,
        )
    try:
        config = json.loads(raw)
        auths = config.get("auths") or {}
        if not isinstance(auths, dict):
            raise TypeError("'auths' is not an object")
    except (ValueError, TypeError, AttributeError) as error:
        raise RegistryError(
            f"secret '{secret}': '{DOCKER_CONFIG_KEY}' is not a docker config: {error}",
            reason=AUTHENTICATION_FAILED,
        ) from error
    for server, entry in auths.items():
        if _server_host(server) != host or not isinstance(entry, dict):
            continue
        username, password = entry.get("username"), entry.get("password")
        if not username and entry.get("auth"):
            try:
                decoded = base64.b64decode(entry["auth"], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as error:
                raise RegistryError(
                    f"secret '{secret}': the 'auth' of '{server}' is not base64 "
                    f"'user:password': {error}",
                    reason=AUTHENTICATION_FAILED,
                ) from error
            username, _, password = decoded.partition(":")
        if username:
            return RegistryAuth(username=str(username), password=str(password or ""))
    return RegistryAuth()


async def registry_auth(
    secrets: SecretReader,
    namespace: str,
    host: str,
    *,
    secret_ref: str | None = None,
    cert_secret_ref: str | None = None,
    pull_secrets: Sequence[str] = (),
) -> RegistryAuth:
    """The credentials and TLS settings for ``host`` an object's Secrets give: the
    dockerconfigjson ``spec.secretRef``, else the first of ``pull_secrets`` (a service
    account's) with an entry for the host, and ``spec.certSecretRef``'s certificates.
    ``AuthenticationFailed`` naming the Secret and field when one is missing or malformed."""
    auth = RegistryAuth()
    if secret_ref is not None:
        data = await _secret(secrets, namespace, secret_ref, "spec.secretRef")
        auth = docker_config_auth(data, host, secret=f"{namespace}/{secret_ref}")
    else:
        for name in pull_secrets:
            data = await _secret(secrets, namespace, name, "the service account's imagePullSecrets")
            auth = docker_config_auth(data, host, secret=f"{namespace}/{name}")
            if auth.username is not None:
                break
    if cert_secret_ref is not None:
        data = await _secret(secrets, namespace, cert_secret_ref, "spec.certSecretRef")
        auth = replace(
            auth, ca=data.get("ca.crt"), cert=data.get("tls.crt"), key=data.get("tls.key")
        )
        auth.ssl_context()
    return auth


async def spec_registry_auth(
    objects: ObjectApi, namespace: str, spec: CredentialsSpec, host: str
) -> RegistryAuth:
    """What an OCIRepository or an ImageRepository (its scans, and its ImagePolicies'
    digest lookups) authenticates with: ``secretRef``, else ``serviceAccountName``'s
    ``imagePullSecrets``, and ``certSecretRef``."""
    pull_secrets: list[str] = []
    if spec.secret_ref is None and spec.service_account_name:
        try:
            pull_secrets = await objects.image_pull_secrets(namespace, spec.service_account_name)
        except ServiceAccountNotFound as error:
            raise RegistryError(
                f"{error}: create it or fix spec.serviceAccountName",
                reason=AUTHENTICATION_FAILED,
            ) from error
    return await registry_auth(
        objects,
        namespace,
        host,
        secret_ref=spec.secret_ref.name if spec.secret_ref else None,
        cert_secret_ref=spec.cert_secret_ref.name if spec.cert_secret_ref else None,
        pull_secrets=pull_secrets,
    )


async def spec_proxy(secrets: SecretReader, namespace: str, spec: CredentialsSpec) -> Proxy | None:
    """The proxy ``spec.proxySecretRef`` names, if any; ``AuthenticationFailed`` with
    Flux's "failed to get proxy address" when its Secret is missing or unusable."""
    if spec.proxy_secret_ref is None:
        return None
    try:
        return await read_proxy(secrets, namespace, spec.proxy_secret_ref.name)
    except ProxyConfigError as error:
        raise RegistryError(
            f"failed to get proxy address: {error}", reason=AUTHENTICATION_FAILED
        ) from error


async def _secret(secrets: SecretReader, namespace: str, name: str, field: str) -> dict[str, bytes]:
    try:
        return await secrets.secret_data(namespace, name)
    except SecretNotFound as error:
        raise RegistryError(
            f"{error}: create it or fix {field}", reason=AUTHENTICATION_FAILED
        ) from error


def _server_host(server: str) -> str:
    """The host of a docker config key (``https://host/v1/``, ``host``, ``host:port``)."""
    return server.removeprefix("https://").removeprefix("http://").split("/", 1)[0]


@functools.lru_cache(maxsize=32)
def tls_context(ca: bytes | None, cert: bytes | None, key: bytes | None) -> ssl.SSLContext:
    """A client context trusting the system store plus ``ca``, presenting ``cert``."""
    if (cert is None) != (key is None):
        raise RegistryError(
            "invalid TLS secret data: 'tls.crt' and 'tls.key' must be given together",
            reason=AUTHENTICATION_FAILED,
        )
    context = ssl.create_default_context()
    try:
        if ca:
            context.load_verify_locations(cadata=ca.decode("ascii"))
        if cert and key:
            load_client_certificate(context, cert, key)
    except CertificateFilesFailed as error:
        raise RegistryError(str(error), reason=STORAGE_OPERATION_FAILED) from error
    except (ssl.SSLError, ValueError, UnicodeDecodeError) as error:
        raise RegistryError(
            f"the TLS data in the Secret is not valid PEM: {error}", reason=AUTHENTICATION_FAILED
        ) from error
    return context
