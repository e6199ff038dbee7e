"""Talking to an HTTP(S) Helm chart repository: its index, and the charts it lists.

The credentials are Flux's: ``spec.secretRef`` holds ``username``/``password`` (and, a
deprecated form Flux still reads, TLS keys), ``spec.certSecretRef`` holds ``tls.crt``,
``tls.key`` and ``ca.crt`` and wins over the former. Basic auth goes to the repository's
own host; to a chart listed on another host only with ``passCredentials``, as Helm
decides. Sizes are bounded as Flux bounds them (an index at 50 MiB, a chart at 10 MiB),
so a server that answers with something huge costs a clear error, not the daemon's memory.
"""

from __future__ import annotations

import base64
import functools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp

from fluxd.kube.objects import SecretNotFound
from fluxd.sources.client_certificate import (
    STORAGE_OPERATION_FAILED,
    CertificateFilesFailed,
    load_client_certificate,
)
from fluxd.sources.helm.index import MAX_INDEX_BYTES, ChartVersion
from fluxd.sources.transfer import describe_client_error

__all__ = [
    "MAX_CHART_BYTES",
    "RepositoryAuth",
    "RepositoryError",
    "download_chart",
    "fetch_index",
    "repository_auth",
]

#: Flux's default ``--helm-chart-max-size``.
MAX_CHART_BYTES = 10 * 1024 * 1024
AUTHENTICATION_FAILED = "AuthenticationFailed"


class RepositoryError(Exception):
    """The repository could not be reached or read; ``reason`` is Flux's."""

    def __init__(self, message: str, *, reason: str = "Failed") -> None:
        super().__init__(message)
        self.reason = reason


class SecretReader(Protocol):
    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes]: ...


class AuthSpec(Protocol):
    """The fields of a HelmRepository spec that say how to authenticate."""

    @property
    def secret_ref(self) -> object | None: ...

    @property
    def cert_secret_ref(self) -> object | None: ...

    @property
    def pass_credentials(self) -> bool: ...


@dataclass(frozen=True)
class RepositoryAuth:
    """Credentials and TLS settings for one repository."""

    username: str | None = None
    password: str | None = None
    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    pass_credentials: bool = False

    def headers(self, url: str, repository_url: str) -> dict[str, str]:
        """Basic auth for a request to ``url``, if the repository's credentials go there."""
        if self.username is None:
            return {}
        same_host = urlsplit(url).netloc == urlsplit(repository_url).netloc
        if not (same_host or self.pass_credentials):
            return {}
        token = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.ca is None and self.cert is None:
            return None
        return _tls_context(self.ca, self.cert, self.key)


async def repository_auth(secrets: SecretReader, namespace: str, spec: AuthSpec) -> RepositoryAuth:
    """The credentials a HelmRepository's spec names; RepositoryError when a Secret is
    missing or incomplete."""
    basic: Mapping[str, bytes] = {}
    tls: Mapping[str, bytes] = {}
    if spec.secret_ref is not None:
        basic = await _secret(secrets, namespace, spec.secret_ref, "spec.secretRef")
        if ("username" in basic) != ("password" in basic):
            raise RepositoryError(
                f"invalid '{namespace}/{_name(spec.secret_ref)}' secret data: required fields "
                "'username' and 'password'",
                reason=AUTHENTICATION_FAILED,
            )
        tls = _tls_keys(basic)
    if spec.cert_secret_ref is not None:
        tls = _tls_keys(
            await _secret(secrets, namespace, spec.cert_secret_ref, "spec.certSecretRef")
        )
    if ("cert" in tls) != ("key" in tls):
        raise RepositoryError(
            "invalid TLS secret data: 'tls.crt' and 'tls.key' must be given together",
            reason=AUTHENTICATION_FAILED,
        )

    def text(key: str) -> str | None:
        value = basic.get(key)
        return value.decode() if value is not None else None

    return RepositoryAuth(
        username=text("username"),
        password=text("password"),
        ca=tls.get("ca"),
        cert=tls.get("cert"),
        key=tls.get("key"),
        pass_credentials=spec.pass_credentials,
    )


async def fetch_index(url: str, auth: RepositoryAuth, time_limit: float) -> bytes:
    """The bytes of ``<url>/index.yaml``."""
    split = urlsplit(url)
    index_url = urlunsplit(split._replace(path=split.path.rstrip("/") + "/index.yaml"))
    return await _get(index_url, url, auth, time_limit, MAX_INDEX_BYTES, "index")


async def download_chart(
    repository_url: str, chart: ChartVersion, auth: RepositoryAuth, time_limit: float
) -> bytes:
    """The packaged chart the index entry ``chart`` points at (its first URL, resolved
    against the repository's URL as Helm resolves it)."""
    if not chart.urls:
        raise RepositoryError(f"chart '{chart.name}' has no downloadable URLs")
    return await _get(
        chart_url(repository_url, chart.urls[0]),
        repository_url,
        auth,
        time_limit,
        MAX_CHART_BYTES,
        f"chart '{chart.name}' version '{chart.version}'",
    )


def chart_url(repository_url: str, reference: str) -> str:
    """``reference`` as is when absolute, else relative to the repository's directory,
    keeping the repository URL's query (Helm's ``ResolveReferenceURL``)."""
    base = urlsplit(repository_url)
    directory = base._replace(path=base.path.rstrip("/") + "/", query="", fragment="")
    resolved = urlsplit(urljoin(urlunsplit(directory), reference))
    if base.query and not resolved.query:
        resolved = resolved._replace(query=base.query)
    return urlunsplit(resolved)


async def _get(
    url: str,
    repository_url: str,
    auth: RepositoryAuth,
    time_limit: float,
    limit: int,
    what: str,
) -> bytes:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=time_limit)) as session,
            session.get(
                url,
                headers=auth.headers(url, repository_url),
                ssl=auth.ssl_context() or True,
            ) as response,
        ):
            if response.status != 200:
                raise RepositoryError(
                    f"failed to fetch {what} from {url}: {response.status} {response.reason}"
                )
            if (response.content_length or 0) > limit:
                raise _too_large(what, url, limit)
            body = bytearray()
            async for chunk in response.content.iter_chunked(1 << 16):
                body += chunk
                if len(body) > limit:
                    raise _too_large(what, url, limit)
            return bytes(body)
    except TimeoutError as error:
        raise RepositoryError(
            f"failed to fetch {what} from {url}: timed out after {time_limit:g}s"
        ) from error
    except aiohttp.ClientError as error:
        raise RepositoryError(
            f"failed to fetch {what} from {url}: {describe_client_error(error)}"
        ) from error


def _too_large(what: str, url: str, limit: int) -> RepositoryError:
    return RepositoryError(f"{what} from {url} is larger than {limit // 2**20} MiB")


def _name(ref: object) -> str:
    return str(getattr(ref, "name", ref))


async def _secret(
    secrets: SecretReader, namespace: str, ref: object, field: str
) -> dict[str, bytes]:
    try:
        return await secrets.secret_data(namespace, _name(ref))
    except SecretNotFound as error:
        raise RepositoryError(
            f"failed to get credentials: {error}: create it or fix {field}",
            reason=AUTHENTICATION_FAILED,
        ) from error


def _tls_keys(data: Mapping[str, bytes]) -> dict[str, bytes]:
    """``tls.crt``/``tls.key``/``ca.crt``, or the deprecated ``certFile``/``keyFile``/
    ``caFile`` when the Secret has none of the former."""
    keys = {"cert": "tls.crt", "key": "tls.key", "ca": "ca.crt"}
    if not any(name in data for name in keys.values()):
        keys = {"cert": "certFile", "key": "keyFile", "ca": "caFile"}
    return {short: data[name] for short, name in keys.items() if name in data}


@functools.lru_cache(maxsize=32)
def _tls_context(ca: bytes | None, cert: bytes | None, key: bytes | None) -> ssl.SSLContext:
    """A client context trusting the system store plus ``ca``, presenting ``cert``."""
    context = ssl.create_default_context()
    try:
        if ca:
            context.load_verify_locations(cadata=ca.decode("ascii"))
        if cert and key:
            load_client_certificate(context, cert, key)
    except CertificateFilesFailed as error:
        raise RepositoryError(str(error), reason=STORAGE_OPERATION_FAILED) from error
    except (ssl.SSLError, ValueError, UnicodeDecodeError) as error:
        raise RepositoryError(
            f"the TLS data in the Secret is not valid PEM: {error}", reason=AUTHENTICATION_FAILED
        ) from error
    return context
