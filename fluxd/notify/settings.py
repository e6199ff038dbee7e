"""A Provider object resolved into what a delivery needs: address, credentials, TLS,
proxy, timeout; and the fields fluxd refuses by name.

Read the way Flux's notification-controller reads them: ``spec.address`` unless the
``secretRef`` Secret has an ``address``; from that Secret also ``token``, ``username``
and ``password``, ``headers`` (a YAML map) and the deprecated ``proxy``;
``spec.proxy`` (deprecated) or ``proxySecretRef`` (``address``, ``username``,
``password``); ``certSecretRef`` (``ca.crt``, ``tls.crt``/``tls.key``), or for the
commit status types without one, the ``secretRef`` Secret's ``ca.crt``; and
``commitStatusExpr``, compiled when a request is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import yaml

from fluxd.api import ProviderSpec, parse_duration
from fluxd.kube.objects import ObjectApi, SecretNotFound
from fluxd.notify.commit_status import COMMIT_STATUS_TYPES
from fluxd.notify.delivery import Transport, tls_context
from fluxd.notify.providers import SUPPORTED_TYPES, ProviderSettings

__all__ = ["ProviderError", "Resolved", "refusal", "resolve"]

DEFAULT_TIMEOUT = 15.0
MAX_ADDRESS = 2048
#: Flux's NATS Provider reads these Secret keys too; fluxd authenticates with a user only.
NATS_UNSERVED_KEYS = ("creds", "nkey")
#: Types whose service address is fixed, so a Provider needs none (as in Flux).
ADDRESS_OPTIONAL = frozenset({"telegram"})


class ProviderError(Exception):
    """The Provider cannot deliver; ``reason`` is the condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Resolved:
    settings: ProviderSettings
    transport: Transport


def refusal(spec: ProviderSpec) -> str | None:
    """Why fluxd cannot serve this Provider at all (a spec change is needed), or None."""
    if spec.type not in SUPPORTED_TYPES:
        supported = ", ".join(sorted(SUPPORTED_TYPES))
        return f"spec.type '{spec.type}' is not supported by fluxd yet (supported: {supported})"
    if spec.service_account_name:
        return "spec.serviceAccountName (workload identity) is not supported; use spec.secretRef"
    return None


async def _secret(objects: ObjectApi, namespace: str, name: str, field: str) -> dict[str, bytes]:
    try:
        return await objects.secret_data(namespace, name)
    except SecretNotFound as error:
        raise ProviderError("SecretNotFound", f"{field}: {error}") from error


def _text(data: dict[str, bytes], key: str) -> str:
    return data[key].decode(errors="replace").strip() if key in data else ""


async def resolve(objects: ObjectApi, provider: dict[str, Any], spec: ProviderSpec) -> Resolved:
    """Everything a delivery through ``provider`` needs; :class:`ProviderError` names
    the missing Secret or the bad value."""
    namespace = provider["metadata"].get("namespace", "")
    address = spec.address or ""
    token = username = password = ""
    secret: dict[str, bytes] = {}
    headers: dict[str, str] = {}
    proxy = spec.proxy or None
    proxy_auth: aiohttp.BasicAuth | None = None
    if spec.secret_ref is not None:
        data = secret = await _secret(objects, namespace, spec.secret_ref.name, "spec.secretRef")
        if "address" in data:
            if len(data["address"]) > MAX_ADDRESS:
                raise ProviderError(
                    "InvalidConfig",
                    f"invalid address in secret: address exceeds maximum length of "
                    f"{MAX_ADDRESS} bytes",
                )
            address = _text(data, "address")
        if "proxy" in data:
            proxy = _text(data, "proxy")
        if "headers" in data:
            try:
                loaded = yaml.safe_load(data["headers"])
            except yaml.YAMLError as error:
                raise ProviderError(
                    "InvalidConfig", f"failed to read headers from secret: {error}"
                ) from error
            if not isinstance(loaded, dict):
                raise ProviderError(
                    "InvalidConfig", "failed to read headers from secret: not a map of strings"
                )
            headers = {str(k): str(v) for k, v in loaded.items()}
        token = _text(data, "token")
        username = _text(data, "username")
        password = _text(data, "password")
        unserved = [key for key in NATS_UNSERVED_KEYS if key in data]
        if spec.type == "nats" and unserved:
            raise ProviderError(
                "InvalidConfig",
                f"nats: secret key(s) {', '.join(repr(k) for k in unserved)} (credentials"
                " file, nkey) not supported by fluxd; use 'username' and 'password'",
            )
    if spec.proxy_secret_ref is not None:
        data = await _secret(objects, namespace, spec.proxy_secret_ref.name, "spec.proxySecretRef")
        proxy = _text(data, "address")
        if not proxy:
            raise ProviderError(
                "InvalidConfig",
                f"secret '{namespace}/{spec.proxy_secret_ref.name}': key 'address' not found",
            )
        if "username" in data:
            proxy_auth = aiohttp.BasicAuth(_text(data, "username"), _text(data, "password"))
    context = None
    tls_data = None
    if spec.cert_secret_ref is not None:
        tls_data = await _secret(
            objects, namespace, spec.cert_secret_ref.name, "spec.certSecretRef"
        )
    elif spec.type in COMMIT_STATUS_TYPES and "ca.crt" in secret:
        # As in Flux, a git service's CA may sit in its secretRef Secret.
        tls_data = secret
    if tls_data is not None:
        source = "spec.certSecretRef" if spec.cert_secret_ref is not None else "spec.secretRef"
        try:
            context = tls_context(
                tls_data.get("ca.crt"), tls_data.get("tls.crt"), tls_data.get("tls.key")
            )
        except ValueError as error:
            raise ProviderError(
                "InvalidConfig", f"failed to get TLS config from {source}: {error}"
            ) from error
    if not address and spec.type not in ADDRESS_OPTIONAL:
        raise ProviderError(
            "InvalidConfig",
            "no address: set spec.address or 'address' in the spec.secretRef Secret",
        )
    settings = ProviderSettings(
        type=spec.type,
        address=address,
        channel=spec.channel or "",
        username=username or spec.username or "",
        password=password,
        token=token,
        headers=headers,
        uid=str(provider["metadata"].get("uid", "")),
        commit_status_expr=spec.commit_status_expr or "",
    )
    transport = Transport(
        timeout=parse_duration(spec.timeout) if spec.timeout else DEFAULT_TIMEOUT,
        ssl_context=context,
        proxy=proxy or None,
        proxy_auth=proxy_auth,
    )
    return Resolved(settings, transport)
