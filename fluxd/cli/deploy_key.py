"""The SSH side of ``fluxd bootstrap``: the deploy key and the server's host key.

Bootstrap over ``ssh://`` leaves the cluster a Secret with ``identity``, ``identity.pub``
and ``known_hosts``, as Flux does. The identity is the ``--private-key-file`` given, or an
ed25519 key generated here whose public half the user gives write access to the
repository. ``known_hosts`` is the host key the server shows now (trust on first use, as
``flux bootstrap`` scans it), written in OpenSSH's format for the URL's host and port so
that the GitRepository's strict host check accepts this server and no other.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeployKey", "DeployKeyError", "generate_deploy_key", "load_deploy_key", "scan_host_key"]


class DeployKeyError(Exception):
    """A key file that cannot be used, or a host key that cannot be read."""


@dataclass(frozen=True)
class DeployKey:
    """An SSH key pair: the private key as given (OpenSSH or PEM) and the public line."""

    private: bytes
    public: str


def generate_deploy_key() -> DeployKey:
    """A new ed25519 key pair, the private half in OpenSSH form without a passphrase."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return DeployKey(private, public.decode("ascii"))


def load_deploy_key(private: bytes, passphrase: str | None, *, source: str) -> DeployKey:
    """The key pair of an existing private key (``source`` names it in messages)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

    secret = passphrase.encode() if passphrase else None
    key: PrivateKeyTypes
    try:
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in private:
            key = serialization.load_ssh_private_key(private, secret)
        else:
            key = serialization.load_pem_private_key(private, secret)
    except TypeError:
        raise DeployKeyError(
            f"{source} is encrypted: give its passphrase with --password"
            if secret is None
            else f"{source} is not encrypted: leave out --password"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise DeployKeyError(
            f"{source} is not a private key fluxd can use (OpenSSH or PEM; ed25519, ecdsa"
            " or rsa), or the passphrase is wrong"
        ) from None
    if not isinstance(
        key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    ):
        raise DeployKeyError(f"{source} holds a {type(key).__name__}; use ed25519, ecdsa or rsa")
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return DeployKey(private, public.decode("ascii"))


def _known_hosts_name(host: str, port: int | None) -> str:
    """How OpenSSH (and paramiko) name a host in ``known_hosts``: ``[host]:port`` off 22."""
    return host if port in (None, 22) else f"[{host}]:{port}"


def scan_host_key(host: str, port: int | None, timeout: float) -> bytes:
    """The server's host key as a ``known_hosts`` line (blocking: run it in a thread)."""
    import socket

    import paramiko

    where = f"{host}:{port or 22}"
    try:
        sock = socket.create_connection((host, port or 22), timeout=timeout)
    except OSError as error:
        raise DeployKeyError(f"cannot reach the SSH server {where}: {_os_cause(error)}") from None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as error:
        raise DeployKeyError(f"cannot read the host key of {where}: {error}") from None
    finally:
        transport.close()
    return f"{_known_hosts_name(host, port)} {key.get_name()} {key.get_base64()}\n".encode()


def _os_cause(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused: is the server running and the port right?"
    if isinstance(error, TimeoutError):
        return "the server did not answer in time"
    return error.strerror or str(error)
