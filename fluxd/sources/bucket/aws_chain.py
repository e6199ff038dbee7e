"""The AWS default credential chain: where ``provider: aws`` finds keys without a Secret.

Flux hands this job to the AWS SDK's default chain; fluxd walks the same links, in the
SDK's order, and the first link that is *configured* decides (a configured link that
fails is an error naming it, not a reason to try the next, as the SDK does):

1. **environment**: ``AWS_ACCESS_KEY_ID`` + ``AWS_SECRET_ACCESS_KEY`` [+ ``AWS_SESSION_TOKEN``];
2. **shared credentials file**: ``AWS_SHARED_CREDENTIALS_FILE`` or ``~/.aws/credentials``,
   profile ``AWS_PROFILE`` or ``default`` (a missing file or ``default`` profile passes
   on; a profile named in ``AWS_PROFILE`` must be there);
3. **web identity** (EKS IRSA): ``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``
   [+ ``AWS_ROLE_SESSION_NAME``], the token traded at STS by ``AssumeRoleWithWebIdentity``;
   STS is ``sts.<region>.amazonaws.com`` (``sts.amazonaws.com`` with no region or
   ``AWS_STS_REGIONAL_ENDPOINTS=legacy``), overridden by ``AWS_ENDPOINT_URL_STS`` or
   ``AWS_ENDPOINT_URL`` unless ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true``;
4. **container** (EKS Pod Identity, ECS): ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` (on
   ``169.254.170.2``) or ``_FULL_URI`` (https, or http to a loopback or the ECS/EKS agent
   address), sending ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` or ``_TOKEN`` as
   ``Authorization``;
5. **instance metadata** (EC2): IMDSv2, a session token PUT then the role's credentials
   GET, at ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` or ``169.254.169.254``; skipped when
   ``AWS_EC2_METADATA_DISABLED=true``. Being last, it is also what runs when nothing else
   is set, so its requests give up after a second, as the SDKs' do.

Temporary credentials (links 3-5) are cached process-wide, per configuration, until
:data:`REFRESH_MARGIN` before their ``Expiration``: every Bucket shares one STS or
metadata call, and none signs with keys about to lapse. The token and credentials files
are read on every fetch, because the kubelet and operators rotate them in place.
"""

from __future__ import annotations

import asyncio
import configparser
import ipaddress
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, Final
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

from fluxd.sources.bucket.sigv4 import Credentials

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "REFRESH_MARGIN",
    "AwsChainError",
    "ExpiringCredentials",
    "aws_credentials",
    "credentials_from_file",
    "credentials_from_json",
    "credentials_from_sts",
    "sts_endpoint",
    "sts_error",
]

#: Cached temporary credentials are fetched again this long before they expire.
REFRESH_MARGIN: Final = timedelta(minutes=5)
#: Seconds a metadata endpoint (container agent, IMDS) gets to answer.
METADATA_TIMEOUT: Final = 1.0
#: Seconds STS gets to answer.
STS_TIMEOUT: Final = 10.0
#: Where ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` is resolved (the ECS agent).
CONTAINER_HOST: Final = "http://169.254.170.2"
#: Plain-HTTP hosts a ``FULL_URI`` may name besides loopback: the ECS and EKS Pod
#: Identity agents.
CONTAINER_AGENT_HOSTS: Final = frozenset({"169.254.170.2", "169.254.170.23", "fd00:ec2::23"})
IMDS_ENDPOINT: Final = "http://169.254.169.254"
IMDS_TOKEN_TTL_SECONDS: Final = "21600"
_STS_NS: Final = "{https://sts.amazonaws.com/doc/2011-06-15/}"
_STS_FIELDS: Final = ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")
_ROLE_CREDENTIALS: Final = "/latest/meta-data/iam/security-credentials/"


class AwsChainError(Exception):
    """No link of the chain gave credentials; the message names the link and why."""


@dataclass(frozen=True)
class ExpiringCredentials:
    """Credentials and when they stop working (``None``: they do not expire)."""

    credentials: Credentials
    expires_at: datetime | None

    def fresh(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at - REFRESH_MARGIN


@dataclass(frozen=True)
class _WebIdentity:
    """A role assumed with the token in ``token_file`` at the STS at ``endpoint``."""

    name: ClassVar[str] = "web identity"
    endpoint: str
    role: str
    token_file: str
    session_name: str

    async def fetch(self, session: aiohttp.ClientSession) -> ExpiringCredentials:
        return await _assume_role_with_web_identity(session, self)


@dataclass(frozen=True)
class _Container:
    """The credentials a container agent serves at ``uri``."""

    name: ClassVar[str] = "container"
    uri: str
    token_file: str
    token: str

    async def fetch(self, session: aiohttp.ClientSession) -> ExpiringCredentials:
        return await _container_credentials(session, self)


@dataclass(frozen=True)
class _InstanceMetadata:
    """The instance role's credentials from the IMDS at ``endpoint``."""

    name: ClassVar[str] = "instance metadata"
    endpoint: str

    async def fetch(self, session: aiohttp.ClientSession) -> ExpiringCredentials:
        return await _imds_credentials(session, self.endpoint)


_Temporary = _WebIdentity | _Container | _InstanceMetadata
_cache: dict[_Temporary, ExpiringCredentials] = {}
_locks: dict[_Temporary, asyncio.Lock] = {}


async def aws_credentials(environ: Mapping[str, str]) -> Credentials:
    """The credentials the chain finds in ``environ`` (and the files and endpoints it
    names); :class:`AwsChainError` naming the failed link when there are none."""
    static = _from_environment(environ)
    if static is not None:
        return static
    passed = ["environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set"]
    from_file, why = _from_shared_file(environ)
    if from_file is not None:
        return from_file
    passed.append(why)
    if environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return await _temporary(_web_identity(environ))
    passed.append("web identity: AWS_WEB_IDENTITY_TOKEN_FILE not set")
    container = _container(environ)
    if container is not None:
        return await _temporary(container)
    passed.append("container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI not set")
    if environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        passed.append("instance metadata: disabled by AWS_EC2_METADATA_DISABLED")
        raise AwsChainError(f"no credentials found ({'; '.join(passed)})")
    try:
        return await _temporary(
            _InstanceMetadata(environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or IMDS_ENDPOINT)
        )
    except AwsChainError as error:
        passed.append(str(error))
        raise AwsChainError(f"no credentials found ({'; '.join(passed)})") from error


def _from_environment(environ: Mapping[str, str]) -> Credentials | None:
    access = environ.get("AWS_ACCESS_KEY_ID") or environ.get("AWS_ACCESS_KEY")
    secret = environ.get("AWS_SECRET_ACCESS_KEY") or environ.get("AWS_SECRET_KEY")
    if not access or not secret:
        return None
    return Credentials(access, secret, environ.get("AWS_SESSION_TOKEN") or None)


def _from_shared_file(environ: Mapping[str, str]) -> tuple[Credentials | None, str]:
    """The profile's keys, or ``None`` and why this link passed on."""
    path = environ.get("AWS_SHARED_CREDENTIALS_FILE")
    if not path:
        home = environ.get("HOME")
        if not home:
            return None, "shared credentials file: HOME not set"
        path = os.path.join(home, ".aws", "credentials")
    named = environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE")
    profile = named or "default"
    try:
        with open(path, encoding="utf-8") as source:
            text = source.read()
    except FileNotFoundError:
        if named:
            raise AwsChainError(
                f"shared credentials file: AWS_PROFILE '{named}' is set but {path} does not exist"
            ) from None
        return None, f"shared credentials file: {path} does not exist"
    except (OSError, UnicodeDecodeError) as error:
        raise AwsChainError(f"shared credentials file: cannot read {path}: {error}") from error
    found = credentials_from_file(text, profile, path)
    if found is None:
        if named:
            raise AwsChainError(
                f"shared credentials file: profile '{named}' (AWS_PROFILE) not found in {path}"
            )
        return None, f"shared credentials file: no [default] profile in {path}"
    return found, ""


def credentials_from_file(text: str, profile: str, path: str) -> Credentials | None:
    """The keys of ``[profile]`` in a shared credentials file, ``None`` when it has no
    such profile; :class:`AwsChainError` when it is malformed or the profile has no keys."""
    parser = configparser.ConfigParser(interpolation=None, default_section="\0")
    try:
        parser.read_string(text, source=path)
    except configparser.Error as error:
        raise AwsChainError(
            f"shared credentials file: {path} is not a valid INI file: {error.message}"
        ) from error
    if not parser.has_section(profile):
        return None
    section = parser[profile]
    access = section.get("aws_access_key_id", "").strip()
    secret = section.get("aws_secret_access_key", "").strip()
    if not access or not secret:
        raise AwsChainError(
            f"shared credentials file: profile '{profile}' in {path} has no "
            "aws_access_key_id and aws_secret_access_key (role_arn, credential_process and "
            "sso profiles are not supported by fluxd)"
        )
    token = section.get("aws_session_token", "").strip() or None
    return Credentials(access, secret, token)


def _web_identity(environ: Mapping[str, str]) -> _WebIdentity:
    role = environ.get("AWS_ROLE_ARN")
    if not role:
        raise AwsChainError(
            "web identity: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not: "
            "set the role to assume (EKS sets both for a ServiceAccount annotated with "
            "eks.amazonaws.com/role-arn)"
        )
    return _WebIdentity(
        endpoint=sts_endpoint(environ),
        role=role,
        token_file=environ["AWS_WEB_IDENTITY_TOKEN_FILE"],
        session_name=environ.get("AWS_ROLE_SESSION_NAME", ""),
    )


def _container(environ: Mapping[str, str]) -> _Container | None:
    relative = environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    full = environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if relative:
        uri = CONTAINER_HOST + ("" if relative.startswith("/") else "/") + relative
    elif full:
        uri = full
        _check_container_uri(uri)
    else:
        return None
    return _Container(
        uri=uri,
        token_file=environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", ""),
        token=environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN", ""),
    )


def _check_container_uri(uri: str) -> None:
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            if ipaddress.ip_address(host).is_loopback or host in CONTAINER_AGENT_HOSTS:
                return
        except ValueError:
            if host == "localhost":
                return
    raise AwsChainError(
        f"container: AWS_CONTAINER_CREDENTIALS_FULL_URI '{uri}' must be https, or http to "
        "a loopback address or the ECS/EKS agent (169.254.170.2, 169.254.170.23)"
    )


def sts_endpoint(environ: Mapping[str, str]) -> str:
    """The STS URL the SDKs would call for ``environ``."""
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
        configured = environ.get("AWS_ENDPOINT_URL_STS") or environ.get("AWS_ENDPOINT_URL")
        if configured:
            return configured
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if not region or environ.get("AWS_STS_REGIONAL_ENDPOINTS", "").lower() == "legacy":
        return "https://sts.amazonaws.com"
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://sts.{region}.{suffix}"


async def _temporary(link: _Temporary) -> Credentials:
    """The cached credentials of ``link`` while fresh, fetched again otherwise."""
    import aiohttp

    async with _locks.setdefault(link, asyncio.Lock()):
        cached = _cache.get(link)
        if cached is not None and cached.fresh(datetime.now(UTC)):
            return cached.credentials
        try:
            # Only STS is on the internet, where the proxy environment variables apply.
            async with aiohttp.ClientSession(trust_env=isinstance(link, _WebIdentity)) as session:
                fetched = await link.fetch(session)
        except aiohttp.ClientError as error:
            raise AwsChainError(f"{link.name}: {error or type(error).__name__}") from error
        except TimeoutError as error:
            raise AwsChainError(f"{link.name}: no answer in time") from error
        _cache[link] = fetched
        return fetched.credentials


async def _assume_role_with_web_identity(
    session: aiohttp.ClientSession, link: _WebIdentity
) -> ExpiringCredentials:
    import aiohttp

    token = _read_token(link.token_file, "web identity: AWS_WEB_IDENTITY_TOKEN_FILE")
    form = {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": link.role,
        "RoleSessionName": link.session_name or f"fluxd-{time.time_ns()}",
        "WebIdentityToken": token,
    }
    async with session.post(
        link.endpoint,
        data=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        timeout=aiohttp.ClientTimeout(total=STS_TIMEOUT),
    ) as response:
        body = await response.read()
        if response.status != 200:
            raise AwsChainError(
                f"web identity: AssumeRoleWithWebIdentity at {link.endpoint} answered "
                f"{response.status}: {sts_error(body) or response.reason}"
            )
    return credentials_from_sts(body)


def _read_token(path: str, setting: str) -> str:
    """A token file's content, read on every fetch: its owner rotates it in place."""
    try:
        with open(path, encoding="utf-8") as source:
            token = source.read().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise AwsChainError(f"{setting} {path} cannot be read: {error}") from error
    if not token:
        raise AwsChainError(f"{setting} {path} is empty")
    return token


def credentials_from_sts(body: bytes) -> ExpiringCredentials:
    """The ``Credentials`` of an ``AssumeRoleWithWebIdentityResponse`` document."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise AwsChainError(f"web identity: STS answered something not XML: {error}") from error
    found = root.find(f".//{_STS_NS}Credentials")
    namespace = _STS_NS
    if found is None:
        found, namespace = root.find(".//Credentials"), ""
    if found is None:
        raise AwsChainError("web identity: the STS answer holds no Credentials")
    values = {name: found.findtext(f"{namespace}{name}", "").strip() for name in _STS_FIELDS}
    return _expiring(
        values["AccessKeyId"],
        values["SecretAccessKey"],
        values["SessionToken"],
        values["Expiration"],
        "web identity: the STS answer",
    )


def sts_error(body: bytes) -> str:
    """``Code: Message`` of an STS ``ErrorResponse`` document, ``""`` when it is none."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return body.decode("utf-8", "replace").strip()[:200]
    error = root.find(f".//{_STS_NS}Error")
    namespace = _STS_NS
    if error is None:
        error, namespace = root.find(".//Error"), ""
    if error is None:
        return ""
    code = error.findtext(f"{namespace}Code", "").strip()
    message = error.findtext(f"{namespace}Message", "").strip()
    return ": ".join(part for part in (code, message) if part)


async def _container_credentials(
    session: aiohttp.ClientSession, link: _Container
) -> ExpiringCredentials:
    import aiohttp

    uri, token = link.uri, link.token
    if link.token_file:
        token = _read_token(link.token_file, "container: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    headers = {"Authorization": token} if token else {}
    async with session.get(
        uri, headers=headers, timeout=aiohttp.ClientTimeout(total=METADATA_TIMEOUT)
    ) as response:
        body = await response.read()
        if response.status != 200:
            why = _json_error(body) or response.reason
            raise AwsChainError(f"container: {uri} answered {response.status}: {why}")
    return credentials_from_json(body, f"container: the answer of {uri}")


async def _imds_credentials(session: aiohttp.ClientSession, endpoint: str) -> ExpiringCredentials:
    import aiohttp

    base = endpoint.rstrip("/")
    timeout = aiohttp.ClientTimeout(total=METADATA_TIMEOUT)
    link = f"instance metadata at {base}"
    async with session.put(
        f"{base}/latest/api/token",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": IMDS_TOKEN_TTL_SECONDS},
        timeout=timeout,
    ) as response:
        token = (await response.read()).decode("utf-8", "replace").strip()
        if response.status != 200 or not token:
            raise AwsChainError(
                f"{link}: the IMDSv2 token PUT answered {response.status} (fluxd does not fall "
                "back to IMDSv1)"
            )
    headers = {"X-aws-ec2-metadata-token": token}
    async with session.get(
        f"{base}{_ROLE_CREDENTIALS}", headers=headers, timeout=timeout
    ) as response:
        listing = (await response.read()).decode("utf-8", "replace").split()
        if response.status != 200 or not listing:
            raise AwsChainError(
                f"{link}: no IAM role attached to the instance ({_ROLE_CREDENTIALS} answered "
                f"{response.status})"
            )
    role = listing[0]
    async with session.get(
        f"{base}{_ROLE_CREDENTIALS}{role}", headers=headers, timeout=timeout
    ) as response:
        body = await response.read()
        if response.status != 200:
            raise AwsChainError(
                f"{link}: the credentials of role '{role}' answered {response.status}"
            )
    return credentials_from_json(body, f"{link}: the credentials of role '{role}'")


def credentials_from_json(body: bytes, source: str) -> ExpiringCredentials:
    """Credentials from the JSON document a container agent or IMDS answers (``Code``,
    when present, must be ``Success``)."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise AwsChainError(f"{source} is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise AwsChainError(f"{source} is not a JSON object")
    code = document.get("Code", "Success")
    if code != "Success":
        raise AwsChainError(f"{source} says {code}: {document.get('Message', '')}".rstrip(": "))
    fields = [
        document.get(name) for name in ("AccessKeyId", "SecretAccessKey", "Token", "Expiration")
    ]
    access, secret, token, expiration = (
        value if isinstance(value, str) else "" for value in fields
    )
    return _expiring(access, secret, token, expiration, source)


def _json_error(body: bytes) -> str:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", "replace").strip()[:200]
    if not isinstance(document, dict):
        return ""
    code = document.get("code") or document.get("Code") or ""
    message = document.get("message") or document.get("Message") or ""
    return ": ".join(str(part) for part in (code, message) if part)


def _expiring(
    access: str, secret: str, token: str, expiration: str, source: str
) -> ExpiringCredentials:
    if not access or not secret:
        raise AwsChainError(f"{source} has no AccessKeyId and SecretAccessKey")
    expires_at = None
    if expiration:
        try:
            expires_at = datetime.fromisoformat(expiration)
        except ValueError as error:
            raise AwsChainError(f"{source} has an invalid Expiration '{expiration}'") from error
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
    return ExpiringCredentials(Credentials(access, secret, token or None), expires_at)
