"""Real OCI registries on loopback for tests: Debian's ``docker-registry`` (distribution 2.8).

Register as a pytest plugin (root conftest). Three session registries, each its own
process with its own storage, shared by the tests of a session (every test pushes to
repositories of its own name, so they never see each other's tags):

- ``oci_registry``: plain HTTP, anonymous (an OCIRepository reaches it with ``insecure``);
- ``oci_registry_tls``: HTTPS with a CA of its own (``ca_pem``) and htpasswd basic auth;
- ``oci_registry_token``: plain HTTP behind the distribution token flow: the registry
  answers ``401`` with a ``Bearer`` challenge, and a token server on loopback (here)
  issues JWTs signed by a key the registry trusts, to the right basic credentials only.

Needs ``/usr/bin/docker-registry`` (Debian package ``docker-registry``).
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import bcrypt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from fluxd.sources.oci import RegistryAuth
from tests.gitservers import _stop, _wait_for_port, free_port, make_ca

__all__ = ["REGISTRY_PASSWORD", "REGISTRY_USERNAME", "OCIRegistry", "docker_config"]

REGISTRY_BINARY = "/usr/bin/docker-registry"
REGISTRY_USERNAME = "oci-user"
REGISTRY_PASSWORD = "oci-pa55word"
TOKEN_SERVICE = "fluxd-test-registry"
TOKEN_ISSUER = "fluxd-test-token-issuer"


@dataclass(frozen=True)
class OCIRegistry:
    """A running registry: ``host`` (``127.0.0.1:<port>``), how to reach it, and the
    credentials and CA a client needs."""

    host: str
    insecure: bool
    ca_pem: bytes | None = None
    username: str | None = None
    password: str | None = None

    def url(self, name: str) -> str:
        """``oci://`` URL of repository ``name`` (unique per call site's choosing)."""
        return f"oci://{self.host}/{name}"

    def fresh_url(self, prefix: str) -> str:
        """``oci://`` URL of a repository no other test uses."""
        return self.url(f"{prefix}-{uuid.uuid4().hex[:8]}")

    @property
    def auth(self) -> RegistryAuth:
        """Credentials and CA for pushing from the test."""
        return RegistryAuth(username=self.username, password=self.password, ca=self.ca_pem)


def docker_config(host: str, username: str, password: str) -> str:
    """The ``.dockerconfigjson`` of a pull Secret for ``host``."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps(
        {"auths": {host: {"username": username, "password": password, "auth": token}}}
    )


def _start(config: dict[str, object], directory: Path, port: int) -> subprocess.Popen[bytes]:
    if not os.access(REGISTRY_BINARY, os.X_OK):
        pytest.fail(f"{REGISTRY_BINARY} missing: scripts/test installs docker-registry")
    path = directory / "config.yml"
    path.write_text(yaml.safe_dump(config))
    log = (directory / "registry.log").open("wb")
    proc = subprocess.Popen(
        [REGISTRY_BINARY, "serve", str(path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _wait_for_port(port, proc, "docker-registry")
    return proc


def _config(directory: Path, port: int) -> dict[str, object]:
    return {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        # Deletes enabled: tests remove a blob to prove fluxd does not download it again.
        "storage": {
            "filesystem": {"rootdirectory": str(directory / "data")},
            "delete": {"enabled": True},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": uuid.uuid4().hex},
    }


@pytest.fixture(scope="session")
def oci_registry() -> Iterator[OCIRegistry]:
    """A plain-HTTP, anonymous registry."""
    directory = Path(tempfile.mkdtemp(prefix="fluxd-oci-"))
    port = free_port()
    proc = _start(_config(directory, port), directory, port)
    try:
        yield OCIRegistry(host=f"127.0.0.1:{port}", insecure=True)
    finally:
        _stop(proc)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def oci_registry_tls() -> Iterator[OCIRegistry]:
    """An HTTPS registry (its own CA) with htpasswd basic auth."""
    directory = Path(tempfile.mkdtemp(prefix="fluxd-oci-tls-"))
    ca = make_ca()
    (directory / "server.crt").write_bytes(ca.server_cert_pem)
    (directory / "server.key").write_bytes(ca.server_key_pem)
    hashed = bcrypt.hashpw(REGISTRY_PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
    (directory / "htpasswd").write_text(f"{REGISTRY_USERNAME}:{hashed}\n")
    port = free_port()
    config = _config(directory, port)
    config["http"] = {
        **config["http"],  # type: ignore[dict-item]
        "tls": {
            "certificate": str(directory / "server.crt"),
            "key": str(directory / "server.key"),
        },
    }
    config["auth"] = {"htpasswd": {"realm": "fluxd-test", "path": str(directory / "htpasswd")}}
    proc = _start(config, directory, port)
    try:
        yield OCIRegistry(
            host=f"127.0.0.1:{port}",
            insecure=False,
            ca_pem=ca.cert_pem,
            username=REGISTRY_USERNAME,
            password=REGISTRY_PASSWORD,
        )
    finally:
        _stop(proc)
        shutil.rmtree(directory, ignore_errors=True)


class _TokenIssuer:
    """Signs distribution JWTs (ES256, the certificate in the ``x5c`` header)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.requests: list[tuple[str, str | None]] = []  # (scope, Authorization)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def token(self, scope: str) -> str:
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"alg": "ES256", "typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        access = []
        for item in scope.split(" "):
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind and name:
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": REGISTRY_USERNAME,
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 60,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(
            self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        )
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input}.{_b64(signature)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token_handler(issuer: _TokenIssuer) -> type[http.server.BaseHTTPRequestHandler]:
    expected = (
        "Basic " + base64.b64encode(f"{REGISTRY_USERNAME}:{REGISTRY_PASSWORD}".encode()).decode()
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            scope = " ".join(query.get("scope", []))
            given = self.headers.get("Authorization")
            issuer.requests.append((scope, given))
            if given != expected:
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'
                self.send_response(401)
            else:
                body = json.dumps({"token": issuer.token(scope)}).encode()
                self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: tests read ``issuer.requests``."""

    return Handler


@dataclass(frozen=True)
class TokenRegistry(OCIRegistry):
    """A registry behind a token server; ``token_requests`` lists what it was asked."""

    token_requests: list[tuple[str, str | None]] | None = None


@pytest.fixture(scope="session")
def oci_registry_token() -> Iterator[TokenRegistry]:
    """A plain-HTTP registry that takes bearer tokens from a loopback token server."""
    issuer = _TokenIssuer()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _token_handler(issuer))
    thread = threading.Thread(target=server.serve_forever, name="oci-token", daemon=True)
    thread.start()
    directory = Path(tempfile.mkdtemp(prefix="fluxd-oci-token-"))
    (directory / "token.crt").write_bytes(issuer.cert_pem)
    port = free_port()
    config = _config(directory, port)
    config["auth"] = {
        "token": {
            "realm": f"http://127.0.0.1:{server.server_address[1]}/token",
            "service": TOKEN_SERVICE,
            "issuer": TOKEN_ISSUER,
            "rootcertbundle": str(directory / "token.crt"),
        }
    }
    proc = _start(config, directory, port)
    try:
        yield TokenRegistry(
            host=f"127.0.0.1:{port}",
            insecure=True,
            username=REGISTRY_USERNAME,
            password=REGISTRY_PASSWORD,
            token_requests=issuer.requests,
        )
    finally:
        _stop(proc)
        server.shutdown()
        server.server_close()
        thread.join(5)
        shutil.rmtree(directory, ignore_errors=True)
