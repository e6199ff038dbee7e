"""An S3 API client over aiohttp: the two calls a Bucket source makes.

``ListObjectsV2`` (every key and ETag under a prefix, following continuation tokens;
a missing bucket answers ``NoSuchBucket``) and ``GetObject`` (conditional on an ETag
when asked), addressed path-style
(``<endpoint>/<bucket>/<key>``, which every S3-compatible store serves) and signed with
:mod:`~fluxd.sources.bucket.sigv4` when there are credentials (anonymous otherwise, as
minio-go sends requests without them).

ETags are kept without their quotes, as minio-go hands them to Flux: the revision a
Bucket computes from them is then the one Flux computes. With a proxy every request goes
through it, and a failure there is reported as the proxy's. Failures raise
:class:`S3Error` with the HTTP status and S3's error code and message, so the reconciler
can tell a missing object from a refused signature.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self
from xml.etree import ElementTree

import aiohttp
from yarl import URL

from fluxd.sources.bucket.sigv4 import (
    EMPTY_SHA256,
    Credentials,
    canonical_query,
    encode_path,
    sign,
)
from fluxd.sources.proxy import Proxy
from fluxd.sources.transfer import describe_client_error

__all__ = ["S3Client", "S3Error", "S3Object"]

_NS: Final = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class S3Error(Exception):
    """An S3 request failed: ``status`` is the HTTP status (0 when none came back) and
    ``code`` S3's error code (``NoSuchKey``, ``AccessDenied``, ``SignatureDoesNotMatch``)."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class S3Object:
    """A listed object: its key and ETag (unquoted)."""

    key: str
    etag: str


class S3Client:
    """One store's endpoint, credentials and TLS; an ``async with`` holds its session."""

    def __init__(
        self,
        *,
        endpoint: str,
        secure: bool,
        region: str,
        credentials: Credentials | None,
        ssl_context: ssl.SSLContext | None = None,
        connections: int = 16,
        proxy: Proxy | None = None,
    ) -> None:
        self.host = endpoint
        self.base = f"{'https' if secure else 'http'}://{endpoint}"
        self.region = region
        self.credentials = credentials
        self.ssl_context = ssl_context
        self.connections = connections
        self.proxy = proxy
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.connections),
            auto_decompress=False,
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

    async def list_objects(self, bucket: str, prefix: str | None) -> AsyncIterator[S3Object]:
        """Every object of ``bucket`` whose key starts with ``prefix``, page by page."""
        token: str | None = None
        while True:
            query = [("list-type", "2")]
            if prefix:
                query.append(("prefix", prefix))
            if token:
                query.append(("continuation-token", token))
            _, body, _ = await self._request("GET", f"/{bucket}", query)
            try:
                root = ElementTree.fromstring(body)
            except ElementTree.ParseError as error:
                raise S3Error(f"the listing of bucket '{bucket}' is not XML: {error}") from error
            for item in root.iter(f"{_NS}Contents"):
                yield S3Object(_text(item, "Key"), _text(item, "ETag").strip('"'))
            token = _text(root, "NextContinuationToken")
            if _text(root, "IsTruncated") != "true" or not token:
                return

    async def get_object(
        self, bucket: str, key: str, *, unless_etag: str | None = None
    ) -> tuple[bytes, str] | None:
        """The content and ETag of object ``key``; ``None`` when its ETag still is
        ``unless_etag`` (nothing downloaded); S3Error (code ``NoSuchKey``) when there is
        no such object."""
        headers = {"If-None-Match": f'"{unless_etag}"'} if unless_etag else {}
        status, body, etag = await self._request("GET", f"/{bucket}/{key}", headers=headers)
        if status == 304:
            return None
        return body, etag.strip('"')

    async def _request(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]] = (),
        *,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes, str]:
        if self._session is None:
            raise RuntimeError("S3Client used outside 'async with'")
        query = list(query)
        wire_path = encode_path(path)
        wire_query = canonical_query(query)
        url = URL(self.base + wire_path + (f"?{wire_query}" if wire_query else ""), encoded=True)
        sent = (
            sign(
                method=method,
                host=self.host,
                path=wire_path,
                query=query,
                headers=headers,
                credentials=self.credentials,
                region=self.region,
                payload_hash=EMPTY_SHA256,
            )
            if self.credentials is not None
            else {"Host": self.host, **(headers or {})}
        )
        request = f"{method} {self.base}{path}"
        if self.proxy is not None:
            sent = {**sent, **self.proxy.forwarded_headers(self.base)}
        try:
            async with self._session.request(
                method,
                url,
                headers=sent,
                ssl=self.ssl_context or True,
                proxy=self.proxy.url if self.proxy is not None else None,
                proxy_headers=self.proxy.headers() if self.proxy is not None else None,
            ) as response:
                body = await response.read()
                if response.status == 407:
                    raise self._proxy_error(request, "rejected the credentials (HTTP 407)")
                if response.status >= 300 and response.status != 304:
                    raise _error(response.status, response.reason or "", body)
                return response.status, body, response.headers.get("ETag", "")
        except aiohttp.ClientHttpProxyError as error:
            what = (
                "rejected the credentials (HTTP 407)"
                if error.status == 407
                else f"refused the connection (HTTP {error.status})"
            )
            raise self._proxy_error(request, what) from error
        except aiohttp.ClientProxyConnectionError as error:
            raise self._proxy_error(request, f"cannot be reached ({error})") from error
        except aiohttp.ClientError as error:
            raise S3Error(f"{request}: {describe_client_error(error)}") from error

    def _proxy_error(self, request: str, what: str) -> S3Error:
        assert self.proxy is not None
        hint = (
            "check username/password in the spec.proxySecretRef Secret"
            if "407" in what
            else "check 'address' in the spec.proxySecretRef Secret and that the proxy runs"
        )
        return S3Error(f"{request}: the proxy '{self.proxy.url}' {what}: {hint}", status=407)


def _text(element: ElementTree.Element, name: str) -> str:
    found = element.find(f"{_NS}{name}")
    if found is None:
        found = element.find(name)
    return (found.text or "") if found is not None else ""


def _error(status: int, reason: str, body: bytes) -> S3Error:
    """The S3Error of a failed response, from its XML error document when it has one."""
    code, message = "", ""
    if body:
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            pass
        else:
            code, message = _text(root, "Code"), _text(root, "Message")
    if not code:
        # HEAD answers carry no body: name the code S3 would have sent.
        code = {403: "AccessDenied", 404: "NoSuchKey"}.get(status, "")
    detail = message or code or reason
    return S3Error(f"{status} {reason}: {detail}", status=status, code=code)
