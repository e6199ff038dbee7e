"""Turn a repository URL plus credentials into a dulwich client.

This is the only place that knows about transports. Every client it returns has
its network waits bounded by ``timeout`` (urllib3 timeouts for HTTP, a socket
timeout for git://, paramiko connect/banner/auth/channel timeouts for SSH), so a
worker thread running dulwich cannot hang forever on a silent server.

SSH goes through paramiko behind dulwich's ``SSHVendor`` seam: no ``ssh`` binary,
no files on disk, and host keys are checked strictly against the Secret's
``known_hosts`` as Flux does (an unknown or changed host key is an error).

With a proxy (``spec.proxySecretRef``), http(s) goes through a urllib3 ``ProxyManager``
built by :func:`http_pool` with the same timeouts and TLS context, the pool the GitHub
App token requests use too; a failure at the proxy is reported as the proxy's, by name,
not as the git server's. Other schemes refuse a proxy rather than bypassing it.
"""

from __future__ import annotations

import functools
import io
import socket
import ssl
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import paramiko
import urllib3
import urllib3.exceptions
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from dulwich.client import (
    GitClient,
    HTTPProxyUnauthorized,
    SSHGitClient,
    SSHVendor,
    TCPGitClient,
    Urllib3HttpGitClient,
)
from dulwich.errors import GitProtocolError

from fluxd.sources.git.proxy import refuse_url
from fluxd.sources.proxy import Proxy, ProxyConfigError

__all__ = [
    "GitAuth",
    "GitError",
    "ParamikoSSHVendor",
    "http_pool",
    "open_client",
    "redact_url",
]


@dataclass(frozen=True, kw_only=True)
class GitAuth:
    """Credentials from a GitRepository's ``secretRef`` (Flux Secret keys in comments)."""

    username: str | None = None  # username
    password: str | None = None  # password (also the SSH key passphrase)
    bearer_token: str | None = None  # bearerToken
    ca_file: bytes | None = None  # ca.crt / caFile, PEM
    identity: bytes | None = None  # identity, PEM or OpenSSH private key
    passphrase: str | None = None  # password, when the identity is encrypted
    known_hosts: bytes | None = None  # known_hosts, required for ssh
    proxy: Proxy | None = None  # from spec.proxySecretRef

    def __repr__(self) -> str:
        # Never let a stray log line or traceback print a secret.
        present = [name for name, value in vars(self).items() if value is not None]
        return f"GitAuth(<{', '.join(present) or 'anonymous'}>)"

    def secrets(self) -> list[str]:
        """Secret strings that must never appear in a message."""
        values = [self.password, self.bearer_token, self.passphrase]
        if self.proxy is not None:
            values.append(self.proxy.password)
        return [v for v in values if v]


class GitError(Exception):
    """A failed git operation, with the Flux condition reason to report it under."""

    def __init__(self, message: str, *, reason: str = "GitOperationFailed") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def redact_url(url: str) -> str:
    """The URL without any ``user:password@`` part, fit for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    if parts.scheme == "ssh" and parts.username:
        netloc = f"{parts.username}@{netloc}"  # an SSH user name is not a secret
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def open_client(url: str, auth: GitAuth, timeout: float) -> tuple[GitClient, str]:
    """A dulwich client and the remote path for ``url``; GitError for bad URL/credentials."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise GitError(f"invalid git URL '{redact_url(url)}': no host", reason="URLInvalid")
    try:
        refuse_url(url, auth.proxy)
    except ProxyConfigError as error:
        raise GitError(str(error), reason="GitOperationFailed") from error
    if parts.scheme in ("http", "https"):
        return _http_client(url, auth, timeout), parts.path
    if parts.scheme == "git":
        return _TimeoutTCPGitClient(parts.hostname, parts.port, timeout=timeout), parts.path
    if parts.scheme == "ssh":
        vendor = ParamikoSSHVendor(auth, timeout)
        client = SSHGitClient(
            parts.hostname, parts.port, username=parts.username or "git", vendor=vendor
        )
        return client, parts.path
    raise GitError(
        f"unsupported git URL scheme '{parts.scheme}' in '{redact_url(url)}':"
        " use http://, https:// or ssh://",
        reason="URLInvalid",
    )


def http_pool(
    *,
    headers: dict[str, str],
    ca_file: bytes | None,
    proxy: Proxy | None,
    timeout: float,
) -> urllib3.PoolManager:
    """A urllib3 pool whose waits end after ``timeout`` seconds, trusting ``ca_file`` (or
    the system store) for https, through ``proxy`` when one is given."""
    options: dict[str, Any] = {
        "headers": headers,
        "ssl_context": _tls_context(ca_file),
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        # Fail on the first refused connection instead of retrying inside the
        # deadline; redirects (e.g. http -> https) are still followed.
        "retries": urllib3.Retry(total=5, connect=0, read=0, status=0, other=0, redirect=5),
    }
    if proxy is None:
        return urllib3.PoolManager(**options)
    return urllib3.ProxyManager(
        proxy.url,
        proxy_headers=proxy.headers(),
        proxy_ssl_context=_tls_context(None) if proxy.url.startswith("https:") else None,
        **options,
    )


def _http_client(url: str, auth: GitAuth, timeout: float) -> GitClient:
    parts = urlsplit(url)
    headers = {"User-Agent": "git/2.0 (fluxd)"}
    if auth.bearer_token:
        headers["Authorization"] = f"Bearer {auth.bearer_token}"
    pool = http_pool(
        headers=headers,
        ca_file=auth.ca_file if parts.scheme == "https" else None,
        proxy=auth.proxy,
        timeout=timeout,
    )
    username = auth.username
    if username is None and parts.username is not None:
        username = parts.username
    password = auth.password if auth.password is not None else parts.password
    if username is None and password is not None:
        username = ""
    base_url = redact_url(url)
    if auth.proxy is None:
        return Urllib3HttpGitClient(
            base_url, pool_manager=pool, username=username, password=password, timeout=timeout
        )
    return _ProxiedHttpGitClient(
        base_url,
        proxy=auth.proxy,
        pool_manager=pool,
        username=username,
        password=password,
        timeout=timeout,
    )


class _ProxiedHttpGitClient(Urllib3HttpGitClient):
    """Smart-HTTP client through a proxy: what fails at the proxy is reported as the
    proxy's (dulwich would blame the git server, or print urllib3's pool repr)."""

    def __init__(self, base_url: str, *, proxy: Proxy, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._proxy = proxy

    def _http_request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super()._http_request(*args, **kwargs)
        except HTTPProxyUnauthorized as exc:
            raise self._proxy_error("rejected the credentials (HTTP 407)") from exc
        except GitProtocolError as exc:
            cause = _proxy_cause(exc)
            if cause is None:
                raise
            raise self._proxy_error(cause) from exc

    def _proxy_error(self, what: str) -> GitError:
        hint = (
            "check username/password in the spec.proxySecretRef Secret"
            if "407" in what
            else "check 'address' in the spec.proxySecretRef Secret and that the proxy runs"
        )
        return GitError(f"proxy '{self._proxy.url}' {what}: {hint}", reason="GitOperationFailed")


def _proxy_cause(exc: BaseException) -> str | None:
    """What went wrong at the proxy, if urllib3 says the failure happened there."""
    link: BaseException | None = exc
    while link is not None and not isinstance(link, urllib3.exceptions.ProxyError):
        if isinstance(link, urllib3.exceptions.MaxRetryError) and link.reason is not None:
            link = link.reason
        else:
            link = link.__cause__
    if link is None:
        return None
    original = link.original_error
    if isinstance(original, urllib3.exceptions.NewConnectionError):
        return "refused the connection"
    text = str(original)
    if "407" in text:
        return "rejected the credentials (HTTP 407)"
    return f"failed: {text}"


@functools.lru_cache(maxsize=64)
def _tls_context(ca_file: bytes | None) -> ssl.SSLContext:
    """An SSL context trusting the system store, plus ``ca_file`` (PEM) when given."""
    # Loading the system trust store costs ~100ms; contexts are reusable and
    # thread-safe once built, so build one per distinct CA bundle.
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cadata=ca_file.decode("ascii"))
        except (ssl.SSLError, ValueError, UnicodeDecodeError) as exc:
            raise GitError(
                "the CA certificate in the Secret (ca.crt/caFile) is not valid PEM",
                reason="AuthenticationFailed",
            ) from exc
    return context


class _TimeoutTCPGitClient(TCPGitClient):
    """git:// client whose reads give up after ``timeout`` seconds of silence."""

    def __init__(self, host: str, port: int | None, *, timeout: float) -> None:
        super().__init__(host, port)
        self._timeout = timeout

    def _connect(self, cmd: bytes, path: str | bytes, protocol_version: int | None = None) -> Any:
        result = super()._connect(cmd, path, protocol_version)
        # dulwich opens a blocking socket without a timeout and only exposes it
        # through the buffered reader it built on top; reach it there.
        reader = getattr(result[0].read, "__self__", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
        if isinstance(sock, socket.socket):
            sock.settimeout(self._timeout)
        return result


def _load_identity(auth: GitAuth) -> paramiko.PKey:
    """The Secret's private key as a paramiko key.

    cryptography reads every format Flux (Go's x/crypto/ssh) accepts: OpenSSH,
    PKCS#1, SEC1 and PKCS#8, encrypted or not; the key is then handed to
    paramiko in OpenSSH form, which paramiko reads for all key types.
    """
    if not auth.identity:
        raise GitError(
            "an ssh:// URL needs the 'identity' private key in the Secret",
            reason="AuthenticationFailed",
        )
    passphrase = auth.passphrase if auth.passphrase is not None else auth.password
    secret = passphrase.encode() if passphrase else None
    try:
        key = _parse_private_key(auth.identity, secret)
    except TypeError as exc:
        if secret is not None:  # given a passphrase, but the key is not encrypted
            key = _parse_private_key(auth.identity, None)
        else:
            raise GitError(
                "the SSH identity in the Secret is encrypted: add its passphrase as 'password'",
                reason="AuthenticationFailed",
            ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        if secret is not None and _is_encrypted(auth.identity):
            raise GitError(
                "could not decrypt the SSH identity in the Secret: check its passphrase"
                " ('password')",
                reason="AuthenticationFailed",
            ) from exc
        raise GitError(
            "the SSH identity in the Secret is not a valid private key"
            " (OpenSSH or PEM; ed25519, ecdsa or rsa)",
            reason="AuthenticationFailed",
        ) from exc
    if not isinstance(
        key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    ):
        raise GitError(
            f"the SSH identity in the Secret is a {type(key).__name__}; use ed25519, ecdsa or rsa",
            reason="AuthenticationFailed",
        )
    openssh = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode("ascii")
    key_type: type[paramiko.PKey]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        key_type = paramiko.Ed25519Key
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        key_type = paramiko.ECDSAKey
    else:
        key_type = paramiko.RSAKey
    return key_type.from_private_key(io.StringIO(openssh))


def _parse_private_key(data: bytes, secret: bytes | None) -> PrivateKeyTypes:
    if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
        return serialization.load_ssh_private_key(data, secret)
    return serialization.load_pem_private_key(data, secret)


def _is_encrypted(data: bytes) -> bool:
    try:
        _parse_private_key(data, None)
    except TypeError:
        return True
    except (ValueError, UnsupportedAlgorithm):
        return False
    return False


def _host_keys(auth: GitAuth) -> paramiko.HostKeys:
    if not auth.known_hosts:
        raise GitError(
            "an ssh:// URL needs 'known_hosts' in the Secret (e.g. from ssh-keyscan)",
            reason="AuthenticationFailed",
        )
    keys = paramiko.HostKeys()
    for line in auth.known_hosts.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line)
        except (paramiko.SSHException, ValueError):
            entry = None
        if entry is None or entry.key is None:
            continue
        for name in entry.hostnames:
            keys.add(name, entry.key.get_name(), entry.key)
    if not keys.keys():
        raise GitError(
            "'known_hosts' in the Secret holds no usable host key", reason="AuthenticationFailed"
        )
    return keys


class ParamikoSSHVendor(SSHVendor):
    """dulwich SSH vendor on paramiko with in-memory keys and strict host checking."""

    def __init__(self, auth: GitAuth, timeout: float) -> None:
        self._auth = auth
        self._timeout = timeout

    def run_command(  # type: ignore[override]  # dulwich needs only the pipe protocol
        self,
        host: str,
        command: bytes,
        username: str | None = None,
        port: int | None = None,
        password: str | None = None,
        key_filename: str | None = None,
        ssh_command: str | None = None,
        protocol_version: int | None = None,
    ) -> _ChannelPipe:
        pkey = _load_identity(self._auth)
        client = paramiko.SSHClient()
        for name, by_type in _host_keys(self._auth).items():
            for key in by_type.values():
                client.get_host_keys().add(name, key.get_name(), key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        t = self._timeout
        try:
            client.connect(
                host,
                port=port or 22,
                username=username or "git",
                pkey=pkey,
                timeout=t,
                banner_timeout=t,
                auth_timeout=t,
                channel_timeout=t,
                look_for_keys=False,
                allow_agent=False,
            )
            transport = client.get_transport()
            assert transport is not None
            channel = transport.open_session(timeout=t)
            channel.settimeout(t)
            if protocol_version == 2:
                channel.set_environment_variable("GIT_PROTOCOL", "version=2")
            channel.exec_command(command)
        except BaseException:
            client.close()
            raise
        return _ChannelPipe(client, channel)


class _ChannelPipe:
    """The file-like pair dulwich expects from ``SSHVendor.run_command``."""

    def __init__(self, client: paramiko.SSHClient, channel: paramiko.Channel) -> None:
        self._client = client
        self._channel = channel
        self.stderr: IO[bytes] = channel.makefile_stderr("rb")

    def read(self, n: int | None = None) -> bytes:
        if n is None or n < 0:
            chunks = []
            while chunk := self._channel.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)
        buf = bytearray()
        while len(buf) < n:
            chunk = self._channel.recv(n - len(buf))
            if not chunk:
                break
            buf += chunk
        return bytes(buf)

    def write(self, data: bytes) -> None:
        self._channel.sendall(data)

    def can_read(self) -> bool:
        return bool(self._channel.recv_ready())

    def close(self) -> None:
        self._channel.close()
        self._client.close()
