"""AWS Signature Version 4: the request signing every S3-compatible store accepts.

A few dozen lines of hashing replace boto3 (tens of MiB resident) for the only thing
fluxd needs from it. The steps are AWS's published ones:

1. a *canonical request*: method, URI path, sorted query, the signed headers (lower-case
   names, values trimmed with inner runs of spaces collapsed, sorted) and the payload's
   sha256 (S3 accepts ``UNSIGNED-PAYLOAD`` too);
2. a *string to sign*: the algorithm, the request time, the credential scope
   (``<date>/<region>/<service>/aws4_request``) and the canonical request's sha256;
3. a signing key derived by chained HMACs of the secret key over date, region, service
   and ``aws4_request``, and the signature its HMAC of the string to sign.

Paths and query strings are percent-encoded as S3 expects them: every byte but the
unreserved ``A-Za-z0-9-._~`` (and ``/`` between path segments) and encoded once, never
normalised, so an object key such as ``a b/../c`` is signed exactly as it is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

__all__ = [
    "ALGORITHM",
    "EMPTY_SHA256",
    "Credentials",
    "canonical_query",
    "canonical_request",
    "encode_path",
    "sign",
]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
_SPACES = re.compile(r" +")


@dataclass(frozen=True)
class Credentials:
    """An access key pair, and the session token that comes with temporary keys."""

    access_key: str
    secret_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key!r}, <secret>)"


def encode_path(path: str) -> str:
    """``path`` percent-encoded as S3 signs it: each segment once, slashes kept."""
    return quote(path, safe="/~")


def canonical_query(query: Iterable[tuple[str, str]]) -> str:
    """The query string, each name and value encoded and the pairs sorted."""
    encoded = sorted((quote(name, safe="~"), quote(value, safe="~")) for name, value in query)
    return "&".join(f"{name}={value}" for name, value in encoded)


def canonical_request(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    payload_hash: str,
) -> tuple[str, str]:
    """The canonical request of step 1 and its signed-headers list (``host;x-amz-date``).

    ``path`` is given already encoded (:func:`encode_path`): it is what goes on the wire.
    """
    normalised = sorted(
        (name.lower(), _SPACES.sub(" ", value.strip())) for name, value in headers.items()
    )
    signed = ";".join(name for name, _ in normalised)
    lines = "".join(f"{name}:{value}\n" for name, value in normalised)
    request = "\n".join((method, path or "/", canonical_query(query), lines, signed, payload_hash))
    return request, signed


def sign(
    *,
    method: str,
    host: str,
    path: str,
    query: Iterable[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    credentials: Credentials,
    region: str,
    service: str = "s3",
    payload_hash: str = EMPTY_SHA256,
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers of a signed request: ``headers``, ``Host``, ``X-Amz-Date``,
    ``X-Amz-Content-Sha256`` (S3 only), the session token if any, and ``Authorization``."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    signed_headers = {"Host": host, **(headers or {}), "X-Amz-Date": stamp}
    if service == "s3":
        signed_headers["X-Amz-Content-Sha256"] = payload_hash
    if credentials.session_token:
        signed_headers["X-Amz-Security-Token"] = credentials.session_token
    request, signed = canonical_request(
        method=method,
        path=path,
        query=query,
        headers=signed_headers,
        payload_hash=payload_hash,
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join((ALGORITHM, stamp, scope, hashlib.sha256(request.encode()).hexdigest()))
    key = _hmac(f"AWS4{credentials.secret_key}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed_headers["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return signed_headers


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
