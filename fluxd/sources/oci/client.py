"""The OCI distribution API over aiohttp: manifests, blobs, tags, and the auth handshake.

One :class:`RegistryClient` serves one repository for the length of one operation (a
reconcile, a push), on one HTTP session whose every request is bounded by the timeout
(``spec.timeout``). A request the
registry answers with ``401`` is retried once with what its ``WWW-Authenticate`` challenge
asks for: ``Basic`` credentials, or a ``Bearer`` token from the challenge's realm (the
distribution token flow: ``GET realm?service=...&scope=repository:<name>:<actions>``, with
the credentials as basic auth when there are any, anonymous otherwise). Tokens are kept
per scope for the client's life, so a pull asks the token server once. With a proxy
(``spec.proxySecretRef``) every request, token requests included, goes through it, and a
failure there is reported as the proxy's, not the registry's.

Every response body is read within a size limit, and blobs are checked against their
digest: a registry that sends too much or the wrong bytes fails the pull, it never fills
memory or the cache.
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlencode, urljoin

import aiohttp

from fluxd.sources.oci.credentials import RegistryAuth
from fluxd.sources.oci.errors import PULL_FAILED, RegistryError
from fluxd.sources.oci.reference import Repository
from fluxd.sources.proxy import Proxy
from fluxd.sources.transfer import describe_client_error

__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "MANIFEST_TYPES",
    "MAX_MANIFEST_BYTES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "TAG_PAGE_SIZE",
    "Manifest",
    "RegistryClient",
]

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES: Final = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)
#: A manifest is a small JSON document; distribution itself refuses those over 4 MiB.
MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024
_MAX_TOKEN_BYTES = 1024 * 1024
_MAX_TAG_PAGES = 1000
#: Tags asked for per page: what registries commonly allow at most.
TAG_PAGE_SIZE: Final = 1000
_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')
_LINK_RE = re.compile(r"<([^>]+)>")


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry sent it: its bytes, media type and digest."""

    data: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        try:
            document = json.loads(self.data)
        except ValueError as error:
            raise RegistryError(f"manifest {self.digest} is not JSON: {error}") from error
        if not isinstance(document, dict):
            raise RegistryError(f"manifest {self.digest} is not a JSON object")
        return document


class RegistryClient:
    """Distribution API calls against one repository, authenticated as challenged."""

    def __init__(
        self,
        repository: Repository,
        auth: RegistryAuth | None = None,
        *,
        timeout: float = 60.0,
        push: bool = False,
        proxy: Proxy | None = None,
    ) -> None:
        self.repository = repository
        self.auth = auth or RegistryAuth()
        self.timeout = timeout
        self.proxy = proxy
        self._actions = "pull,push" if push else "pull"
        self._session: aiohttp.ClientSession | None = None
        self._authorization: str | None = None

    async def __aenter__(self) -> RegistryClient:
        ssl_context: ssl.SSLContext | bool = self.auth.ssl_context() or True
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(ssl=ssl_context),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ reading

    async def resolve(self, tag: str) -> str:
        """The digest of the manifest ``tag`` points at: a HEAD, or a GET when the
        registry answers HEAD without a digest."""
        url = self._url(f"manifests/{tag}")
        status, headers, _ = await self._call("HEAD", url, accept=MANIFEST_TYPES)
        if status == 200 and headers.get("Docker-Content-Digest", "").startswith("sha256:"):
            return headers["Docker-Content-Digest"]
        if status not in (200, 405):
            raise self._status_error("HEAD", url, status, b"", what=f"tag '{tag}'")
        return (await self.manifest(tag)).digest

    async def manifest(self, name: str, *, keep_index: bool = False) -> Manifest:
        """The manifest of a tag or digest; one of an image index is the ``linux/amd64``
        (or else the first) entry's, as go-containerregistry picks it, unless
        ``keep_index`` asks for the index itself (to tag it as it is)."""
        found = await self._manifest(name)
        if not keep_index and found.media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST):
            found = await self._manifest(_platform_entry(found))
        return found

    async def _manifest(self, name: str) -> Manifest:
        url = self._url(f"manifests/{name}")
        status, headers, body = await self._call(
            "GET", url, accept=MANIFEST_TYPES, limit=MAX_MANIFEST_BYTES
        )
        if status != 200:
            raise self._status_error("GET", url, status, body, what=f"manifest '{name}'")
        digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
        if name.startswith("sha256:") and name != digest:
            raise RegistryError(f"manifest {name} from {url} has the digest {digest}")
        media_type = headers.get("Content-Type", "").split(";")[0].strip()
        if media_type not in MANIFEST_TYPES:
            declared = Manifest(body, "", digest).json().get("mediaType")
            media_type = declared if isinstance(declared, str) else OCI_MANIFEST
        return Manifest(body, media_type, digest)

    async def blob(self, digest: str, *, limit: int) -> bytes:
        """The bytes of blob ``digest``, at most ``limit`` of them, checked against it."""
        url = self._url(f"blobs/{digest}")
        status, _, body = await self._call("GET", url, limit=limit)
        if status != 200:
            raise self._status_error("GET", url, status, body, what=f"blob '{digest}'")
        actual = f"sha256:{hashlib.sha256(body).hexdigest()}"
        if actual != digest:
            raise RegistryError(f"blob {digest} from {url} has the digest {actual}")
        return body

    async def tags(self, *, page_size: int = TAG_PAGE_SIZE) -> list[str]:
        """Every tag of the repository, ``page_size`` per request, following ``Link``
        headers page after page (as go-containerregistry lists them)."""
        url: str | None = self._url(f"tags/list?{urlencode({'n': page_size})}")
        found: list[str] = []
        for _ in range(_MAX_TAG_PAGES):
            if url is None:
                return found
            status, headers, body = await self._call("GET", url, limit=MAX_MANIFEST_BYTES)
            if status != 200:
                raise self._status_error("GET", url, status, body, what="the tag list")
            try:
                page = json.loads(body).get("tags") or []
            except (ValueError, AttributeError) as error:
                raise RegistryError(f"the tag list from {url} is not JSON: {error}") from error
            found.extend(str(tag) for tag in page)
            link = _LINK_RE.search(headers.get("Link", ""))
            url = urljoin(url, link.group(1)) if link else None
        raise RegistryError(f"the tag list of {self.repository} has over {_MAX_TAG_PAGES} pages")

    # ------------------------------------------------------------------ writing

    async def push_blob(self, data: bytes) -> str:
        """Upload ``data`` unless the registry has it already; its digest."""
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        status, _, _ = await self._call("HEAD", self._url(f"blobs/{digest}"))
        if status == 200:
            return digest
        start = self._url("blobs/uploads/")
        status, headers, body = await self._call("POST", start)
        if status != 202 or "Location" not in headers:
            raise self._status_error("POST", start, status, body, what="a blob upload")
        location = urljoin(start, headers["Location"])
        separator = "&" if "?" in location else "?"
        target = f"{location}{separator}{urlencode({'digest': digest})}"
        status, _, body = await self._call(
            "PUT", target, data=data, content_type="application/octet-stream"
        )
        if status != 201:
            raise self._status_error("PUT", location, status, body, what=f"blob '{digest}'")
        return digest

    async def push_manifest(self, tag: str, data: bytes, media_type: str) -> str:
        """Store manifest ``data`` under ``tag``; its digest."""
        url = self._url(f"manifests/{tag}")
        status, _, body = await self._call("PUT", url, data=data, content_type=media_type)
        if status != 201:
            raise self._status_error("PUT", url, status, body, what=f"manifest '{tag}'")
        return f"sha256:{hashlib.sha256(data).hexdigest()}"

    # ------------------------------------------------------------------ HTTP

    def _url(self, path: str) -> str:
        return f"{self.repository.base_url}/{self.repository.name}/{path}"

    async def _call(
        self,
        method: str,
        url: str,
        *,
        accept: tuple[str, ...] = (),
        limit: int = MAX_MANIFEST_BYTES,
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """``(status, headers, body)``, authenticating once when challenged."""
        headers = {"Accept": ", ".join(accept)} if accept else {}
        if content_type:
            headers["Content-Type"] = content_type
        answer = await self._send(method, url, headers, data, limit)
        if answer[0] == 401 and await self._authenticate(answer[1].get("WWW-Authenticate", "")):
            answer = await self._send(method, url, headers, data, limit)
        return answer

    async def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: bytes | None,
        limit: int,
    ) -> tuple[int, Mapping[str, str], bytes]:
        if self._session is None:
            raise RuntimeError("RegistryClient used outside 'async with'")
        sent = dict(headers)
        if self.proxy is not None:
            sent.update(self.proxy.forwarded_headers(url))
        if self._authorization:
            sent["Authorization"] = self._authorization
        try:
            async with self._session.request(
                method, url, headers=sent, data=data, **self._proxy_options()
            ) as response:
                body = b"" if method == "HEAD" else await _read(response, limit, url)
                if response.status == 407:
                    raise self._proxy_rejected(f"{method} {url}")
                return response.status, dict(response.headers), body
        except TimeoutError as error:
            raise RegistryError(
                f"{method} {url}: timed out after {self.timeout:g}s (spec.timeout)"
            ) from error
        except aiohttp.ClientHttpProxyError as error:
            raise self._proxy_rejected(f"{method} {url}", error.status) from error
        except aiohttp.ClientProxyConnectionError as error:
            raise self._proxy_unreachable(f"{method} {url}", error) from error
        except aiohttp.ClientError as error:
            raise RegistryError(f"{method} {url}: {describe_client_error(error)}") from error

    def _proxy_options(self) -> dict[str, Any]:
        """The ``proxy``/``proxy_headers`` arguments of every request, when there is one."""
        if self.proxy is None:
            return {}
        return {"proxy": self.proxy.url, "proxy_headers": self.proxy.headers()}

    def _proxy_rejected(self, request: str, status: int = 407) -> RegistryError:
        assert self.proxy is not None
        if status != 407:
            return RegistryError(
                f"{request}: the proxy '{self.proxy.url}' refused the connection (HTTP {status})"
            )
        return RegistryError(
            f"{request}: the proxy '{self.proxy.url}' rejected the credentials (HTTP 407):"
            " check username/password in the spec.proxySecretRef Secret",
            status=407,
        )

    def _proxy_unreachable(self, request: str, error: aiohttp.ClientError) -> RegistryError:
        assert self.proxy is not None
        return RegistryError(
            f"{request}: cannot reach the proxy '{self.proxy.url}' ({error}): check 'address'"
            " in the spec.proxySecretRef Secret and that the proxy runs"
        )

    async def _authenticate(self, challenge: str) -> bool:
        """Set the ``Authorization`` the challenge asks for; False when it cannot be met
        (no credentials for basic auth, or an unknown scheme)."""
        scheme, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_RE.findall(params_text))
        if scheme.lower() == "basic":
            if self.auth.basic is None or self._authorization == self.auth.basic:
                return False
            self._authorization = self.auth.basic
            return True
        if scheme.lower() != "bearer" or "realm" not in params:
            return False
        scope = params.get("scope") or f"repository:{self.repository.name}:{self._actions}"
        if self._actions != "pull" and scope.endswith(":pull"):
            scope = f"repository:{self.repository.name}:{self._actions}"
        token = await self._token(params["realm"], params.get("service"), scope)
        if f"Bearer {token}" == self._authorization:
            return False
        self._authorization = f"Bearer {token}"
        return True

    async def _token(self, realm: str, service: str | None, scope: str) -> str:
        assert self._session is not None
        query = {"scope": scope, **({"service": service} if service else {})}
        url = f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}"
        headers = {"Authorization": self.auth.basic} if self.auth.basic else {}
        if self.proxy is not None:
            headers.update(self.proxy.forwarded_headers(url))
        try:
            async with self._session.get(url, headers=headers, **self._proxy_options()) as response:
                body = await _read(response, _MAX_TOKEN_BYTES, url)
                status = response.status
        except TimeoutError as error:
            raise RegistryError(f"token request to {realm}: timed out") from error
        except aiohttp.ClientHttpProxyError as error:
            raise self._proxy_rejected(f"token request to {realm}", error.status) from error
        except aiohttp.ClientProxyConnectionError as error:
            raise self._proxy_unreachable(f"token request to {realm}", error) from error
        except aiohttp.ClientError as error:
            raise RegistryError(
                f"token request to {realm}: {describe_client_error(error)}"
            ) from error
        if status == 407:
            raise self._proxy_rejected(f"token request to {realm}")
        if status != 200:
            raise RegistryError(
                f"token request to {realm} for scope '{scope}': {status}"
                f"{_error_detail(body)}: check the registry credentials",
                status=status,
            )
        try:
            answer = json.loads(body)
            token = answer.get("token") or answer.get("access_token")
        except (ValueError, AttributeError) as error:
            raise RegistryError(f"token server {realm} sent no JSON: {error}") from error
        if not isinstance(token, str) or not token:
            raise RegistryError(f"token server {realm} sent no token")
        return token

    def _status_error(
        self, method: str, url: str, status: int, body: bytes, *, what: str
    ) -> RegistryError:
        hint = ""
        if status in (401, 403):
            hint = ": check the registry credentials"
        elif status == 404:
            hint = f": {what} does not exist in {self.repository}"
        return RegistryError(
            f"{method} {url}: {status}{_error_detail(body)}{hint}",
            reason=PULL_FAILED,
            status=status,
        )


async def _read(response: aiohttp.ClientResponse, limit: int, url: str) -> bytes:
    if (response.content_length or 0) > limit:
        raise RegistryError(f"{url} sends {response.content_length} bytes, over {limit} allowed")
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise RegistryError(f"{url} sends over {limit} bytes, more than allowed")
    return bytes(body)


def _error_detail(body: bytes) -> str:
    """The distribution error codes of a response body (``MANIFEST_UNKNOWN: ...``)."""
    try:
        errors = json.loads(body).get("errors") or []
        parts = [f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError):
        return ""
    return f" ({'; '.join(parts)})" if parts else ""


def _platform_entry(index: Manifest) -> str:
    """The digest of an index's ``linux/amd64`` manifest, or of its first one."""
    entries = index.json().get("manifests") or []
    if not entries:
        raise RegistryError(f"image index {index.digest} lists no manifests")
    for entry in entries:
        platform = entry.get("platform") or {}
        if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            return str(entry["digest"])
    return str(entries[0]["digest"])
