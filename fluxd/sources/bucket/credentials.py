"""How a Bucket reaches its store: endpoint, region, keys and TLS, read as Flux reads them.

- ``spec.endpoint`` is ``host[:port]``; ``spec.insecure`` picks plain HTTP;
- ``spec.secretRef`` holds ``accesskey`` and ``secretkey`` (both keys must be present,
  as Flux's ``ValidateSecret`` demands; both empty means anonymous requests);
- ``provider: aws`` without a Secret takes its keys from the AWS SDK's default chain
  (:mod:`~fluxd.sources.bucket.aws_chain`: environment, shared credentials file, web
  identity, container agent, instance metadata), region from
  ``AWS_REGION``/``AWS_DEFAULT_REGION``;
- ``spec.certSecretRef`` holds ``ca.crt`` (added to the system trust store) and, for a
  client certificate, ``tls.crt`` with ``tls.key``;
- ``spec.proxySecretRef`` names the proxy every request goes through (its Secret read by
  :mod:`fluxd.sources.proxy`, as for the other sources).

Failures raise :class:`BucketConfigError` with Flux's ``AuthenticationFailed`` reason,
except a malformed endpoint, which no retry can fix, and a client certificate that
cannot be written to the temporary directory (``StorageOperationFailed``).
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import urlsplit

from fluxd.api import BucketSpec
from fluxd.kube.objects import SecretNotFound
from fluxd.sources.bucket.aws_chain import AwsChainError, aws_credentials
from fluxd.sources.bucket.sigv4 import Credentials
from fluxd.sources.client_certificate import (
    STORAGE_OPERATION_FAILED,
    CertificateFilesFailed,
    load_client_certificate,
)
from fluxd.sources.proxy import Proxy, ProxyConfigError, read_proxy

__all__ = ["DEFAULT_REGION", "BucketConfigError", "StoreSettings", "store_settings"]

DEFAULT_REGION: Final = "us-east-1"
AUTHENTICATION_FAILED: Final = "AuthenticationFailed"


class BucketConfigError(Exception):
    """The spec or its Secrets do not say how to reach the store; ``reason`` is Flux's."""

    def __init__(self, message: str, *, reason: str = AUTHENTICATION_FAILED, stalled: bool = False):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.stalled = stalled


class SecretReader(Protocol):
    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes]: ...


@dataclass(frozen=True)
class StoreSettings:
    """Everything an :class:`~fluxd.sources.bucket.s3.S3Client` is built from."""

    endpoint: str
    secure: bool
    region: str
    credentials: Credentials | None
    ssl_context: ssl.SSLContext | None
    proxy: Proxy | None = None


async def store_settings(
    secrets: SecretReader,
    namespace: str,
    spec: BucketSpec,
    environ: Mapping[str, str] = os.environ,
) -> StoreSettings:
    """The settings ``spec`` names, its Secrets read from ``namespace``."""
    endpoint = _endpoint(spec.endpoint)
    credentials: Credentials | None = None
    region = spec.region
    if spec.secret_ref is not None:
        data = await _secret(secrets, namespace, spec.secret_ref.name, "spec.secretRef")
        if "accesskey" not in data or "secretkey" not in data:
            raise BucketConfigError(
                f"invalid '{spec.secret_ref.name}' secret data: required fields 'accesskey' "
                "and 'secretkey'"
            )
        access, secret = data["accesskey"].decode(), data["secretkey"].decode()
        if access and secret:
            credentials = Credentials(access, secret)
    elif spec.provider == "aws":
        try:
            credentials = await aws_credentials(environ)
        except AwsChainError as error:
            raise BucketConfigError(
                f"AWS authentication failed: {error}: set spec.secretRef, or give fluxd "
                "AWS credentials through one of these"
            ) from error
        region = region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    context = None
    if spec.cert_secret_ref is not None and not spec.insecure:
        data = await _secret(secrets, namespace, spec.cert_secret_ref.name, "spec.certSecretRef")
        context = _tls_context(data, f"{namespace}/{spec.cert_secret_ref.name}")
    proxy = None
    if spec.proxy_secret_ref is not None:
        try:
            proxy = await read_proxy(secrets, namespace, spec.proxy_secret_ref.name)
        except ProxyConfigError as error:
            raise BucketConfigError(f"failed to get proxy URL: {error}") from error
    return StoreSettings(
        endpoint=endpoint,
        secure=not spec.insecure,
        region=region or DEFAULT_REGION,
        credentials=credentials,
        ssl_context=context,
        proxy=proxy,
    )


def _endpoint(endpoint: str) -> str:
    """``host[:port]``; Stalled on a URL, as minio-go refuses one."""
    parts = urlsplit(f"//{endpoint}")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        parts = parts._replace(netloc="")
    if not endpoint or "/" in endpoint or not parts.hostname:
        raise BucketConfigError(
            f"invalid spec.endpoint '{endpoint}': give the store's host[:port] without a "
            "scheme or path (spec.insecure: true selects plain HTTP)",
            reason="URLInvalid",
            stalled=True,
        )
    return endpoint


async def _secret(secrets: SecretReader, namespace: str, name: str, field: str) -> dict[str, bytes]:
    try:
        return await secrets.secret_data(namespace, name)
    except SecretNotFound as error:
        raise BucketConfigError(
            f"failed to get secret: {error}: create it or fix {field}"
        ) from error


def _tls_context(data: Mapping[str, bytes], secret: str) -> ssl.SSLContext:
    """A client context trusting the system store plus ``ca.crt``, presenting ``tls.crt``."""
    ca, cert, key = data.get("ca.crt"), data.get("tls.crt"), data.get("tls.key")
    if (cert is None) != (key is None):
        raise BucketConfigError(
            f"invalid TLS data in secret '{secret}': 'tls.crt' and 'tls.key' must be given together"
        )
    if ca is None and cert is None:
        raise BucketConfigError(
            f"secret '{secret}' of spec.certSecretRef has none of 'ca.crt', 'tls.crt', 'tls.key'"
        )
    try:
        return _context(ca, cert, key)
    except CertificateFilesFailed as error:
        raise BucketConfigError(str(error), reason=STORAGE_OPERATION_FAILED) from error
    except (ssl.SSLError, ValueError, UnicodeDecodeError) as error:
        raise BucketConfigError(
            f"the TLS data in secret '{secret}' is not valid PEM: {error}"
        ) from error


@functools.lru_cache(maxsize=32)
def _context(ca: bytes | None, cert: bytes | None, key: bytes | None) -> ssl.SSLContext:
    """Built once per distinct TLS data: loading the system trust store is not free."""
    context = ssl.create_default_context()
    if ca:
        context.load_verify_locations(cadata=ca.decode("ascii"))
    if cert and key:
        load_client_certificate(context, cert, key)
    return context
