"""Real git servers on loopback for tests: git daemon, smart HTTP(S), sshd.

Register as a pytest plugin (``pytest_plugins = ["tests.gitservers"]`` in the
root conftest). Servers are session fixtures serving one temporary root; each
test makes its own repositories there with the ``git_remote`` factory, so tests
never see each other's refs. Every server is stopped at teardown: child
processes run in their own process group, which is killed by id.

Needs: ``git`` (with /usr/lib/git-core/git-http-backend and git-daemon, both in
Debian's ``git`` package) and ``/usr/sbin/sshd`` (Debian ``openssh-server``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import getpass
import http.server
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

HTTP_USERNAME = "fluxd-user"
HTTP_PASSWORD = "http-pa55word"
HTTP_TOKEN = "bearer-t0ken-value"
SSH_KEY_PASSPHRASE = "ssh-key-passphrase"
GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
SSHD = "/usr/sbin/sshd"

_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Fixture Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Fixture Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
    "GIT_TERMINAL_PROMPT": "0",
}


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(port: int, proc: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within 10s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server we started, and the children it forked (same process group)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


# --- repositories ------------------------------------------------------------------------


@dataclass
class GitRemote:
    """A bare repository under the served root, changed through a work clone."""

    name: str  # path relative to the served root, e.g. "repo-3.git"
    bare: Path
    work: Path
    home: Path

    def git(self, *args: str, cwd: Path | None = None) -> str:
        env = {**os.environ, **_GIT_ENV, "HOME": str(self.home)}
        out = subprocess.run(
            ["git", *args],
            cwd=cwd or self.work,
            env=env,
            check=True,
            capture_output=True,
            timeout=30,
        )
        return out.stdout.decode().strip()

    def commit(
        self,
        files: Mapping[str, str | bytes],
        message: str = "change",
        *,
        branch: str = "master",
        push: bool = True,
    ) -> str:
        """Write ``files`` on ``branch`` (created from the current HEAD if new), commit, push."""
        self._switch(branch)
        for path, content in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
        self.git("add", "-A")
        self.git("commit", "--allow-empty", "-q", "-m", message)
        if push:
            self.git("push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return self.git("rev-parse", "HEAD")

    def symlink(self, path: str, target: str, *, branch: str = "master") -> str:
        self._switch(branch)
        link = self.work / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", f"link {path}")
        self.git("push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return self.git("rev-parse", "HEAD")

    def tag(
        self, name: str, rev: str = "HEAD", *, message: str | None = None, push: bool = True
    ) -> str:
        """Tag ``rev`` (annotated when ``message`` is given) and push; returns the tag ref value."""
        if message is None:
            self.git("tag", name, rev)
        else:
            self.git("tag", "-a", name, "-m", message, rev)
        if push:
            self.git("push", "-q", "origin", f"refs/tags/{name}")
        return self.git("rev-parse", f"refs/tags/{name}")

    def push_all(self) -> None:
        """Push every local branch and tag (after ``push=False`` changes)."""
        self.git("push", "-q", "origin", "--all")
        self.git("push", "-q", "origin", "--tags")

    def set_ref(self, ref: str, sha: str) -> None:
        """Point any ref (e.g. ``refs/pull/1/head``) at ``sha`` on the server."""
        self.git("push", "-q", "origin", f"{sha}:{ref}")

    def force_push(self, files: Mapping[str, str | bytes], message: str, *, branch: str) -> str:
        """Rewrite ``branch`` to a new root commit with ``files`` only; returns its sha."""
        self.git("checkout", "-q", "--orphan", f"rewrite-{branch}")
        self.git("rm", "-rq", "--cached", "--ignore-unmatch", ".")
        for child in self.work.iterdir():
            if child.name != ".git":
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        for path, content in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", "--force", "origin", f"HEAD:refs/heads/{branch}")
        sha = self.git("rev-parse", "HEAD")
        self.git("checkout", "-q", "-B", branch, sha)
        return sha

    def rev(self, ref: str) -> str:
        """What the server holds for ``ref`` (``^{}`` peels tags)."""
        return self.git("rev-parse", ref, cwd=self.bare)

    def _switch(self, branch: str) -> None:
        if not (self.work / ".git" / "HEAD").read_text().strip().endswith(f"/{branch}"):
            self.git("checkout", "-q", "-B", branch)

    def add_submodule(self, path: str, url: str, sha: str, *, branch: str = "master") -> str:
        """Commit a submodule at ``path`` pinned to commit ``sha``, with ``url`` (as written,
        e.g. ``../repo-3.git``) in ``.gitmodules``, and push; returns the new commit.

        The gitlink is written with real git plumbing and never cloned, so any URL works
        and the pinned commit need not be the submodule's branch tip."""
        self._switch(branch)
        self.git("config", "-f", ".gitmodules", f"submodule.{path}.path", path)
        self.git("config", "-f", ".gitmodules", f"submodule.{path}.url", url)
        self.git("update-index", "--add", "--cacheinfo", f"160000,{sha},{path}")
        (self.work / path).mkdir(parents=True, exist_ok=True)  # an unpopulated submodule
        self.git("add", ".gitmodules")
        self.git("commit", "-q", "-m", f"add submodule {path}")
        self.git("push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return self.git("rev-parse", "HEAD")

    def commit_signed(self, files: Mapping[str, str], signing_key: Path) -> str:
        """Like :meth:`commit` on ``master``, with the commit SSH-signed by the OpenSSH
        private key file ``signing_key``; returns the commit."""
        self._switch("master")
        for path, content in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        self.git("add", "-A")
        ssh_signing = ("-c", "gpg.format=ssh", "-c", f"user.signingkey={signing_key}")
        self.git(*ssh_signing, "commit", "-q", "-S", "-m", "signed")
        self.git("push", "-q", "origin", "HEAD:refs/heads/master")
        return self.git("rev-parse", "HEAD")


@dataclass
class RepoRoot:
    """The directory every server exports; makes uniquely named repositories in it."""

    path: Path
    _ids: Iterator[int] = field(default_factory=count)

    def new(self) -> GitRemote:
        name = f"repo-{next(self._ids)}.git"
        bare = self.path / name
        work = self.path.parent / "work" / name
        home = self.path.parent / "home"
        home.mkdir(exist_ok=True)
        env = {**os.environ, **_GIT_ENV, "HOME": str(home)}
        subprocess.run(
            ["git", "init", "-q", "--bare", "-b", "master", str(bare)], check=True, env=env
        )
        # Let the commit-by-sha paths be exercised without special server config
        # being the reason they pass: keep upload-pack defaults.
        subprocess.run(
            ["git", "init", "-q", "-b", "master", str(work)], check=True, env=env, timeout=30
        )
        remote = GitRemote(name, bare, work, home)
        remote.git("remote", "add", "origin", str(bare))
        return remote


@pytest.fixture(scope="session")
def git_root(tmp_path_factory: pytest.TempPathFactory) -> RepoRoot:
    base = tmp_path_factory.mktemp("gitservers")
    (base / "repos").mkdir()
    return RepoRoot(base / "repos")


@pytest.fixture
def git_remote(git_root: RepoRoot) -> GitRemote:
    """A fresh empty repository, served by every server fixture."""
    return git_root.new()


# --- git daemon (git://) ------------------------------------------------------------------


@dataclass(frozen=True)
class GitDaemon:
    port: int

    def url(self, remote: GitRemote) -> str:
        return f"git://127.0.0.1:{self.port}/{remote.name}"


@pytest.fixture(scope="session")
def git_daemon(git_root: RepoRoot) -> Iterator[GitDaemon]:
    port = free_port()
    log = (git_root.path.parent / "git-daemon.log").open("wb")
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={git_root.path}",
            str(git_root.path),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for_port(port, proc, "git daemon")
        yield GitDaemon(port)
    finally:
        _stop(proc)
        log.close()


# --- smart HTTP(S) via git-http-backend ----------------------------------------------------


class _GitHTTPHandler(http.server.BaseHTTPRequestHandler):
    """Runs git-http-backend as CGI. Path prefixes choose the auth scheme:
    ``/public/<repo>``, ``/basic/<repo>`` (HTTP_USERNAME/HTTP_PASSWORD),
    ``/bearer/<repo>`` (HTTP_TOKEN)."""

    server: _GitHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _authorized(self, scheme: str) -> bool:
        header = self.headers.get("Authorization", "")
        if scheme == "public":
            return True
        if scheme == "basic":
            expected = base64.b64encode(f"{HTTP_USERNAME}:{HTTP_PASSWORD}".encode()).decode()
            return header == f"Basic {expected}"
        if scheme == "bearer":
            return header == f"Bearer {HTTP_TOKEN}"
        return False

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        scheme, _, rest = path.lstrip("/").partition("/")
        body = self._body() if self.command == "POST" else b""
        self.server.requests.append((self.command, path, self.headers.get("Authorization")))
        if _asks_for_objects(body):
            self.server.fetches.append(path)
        if scheme not in ("public", "basic", "bearer"):
            self._reply(404, [], b"unknown auth prefix\n")
            return
        if not self._authorized(scheme):
            challenge = 'Basic realm="git"' if scheme == "basic" else 'Bearer realm="git"'
            self._reply(401, [("WWW-Authenticate", challenge)], b"unauthorized\n")
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": "/" + rest,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": HTTP_USERNAME if scheme != "public" else "",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        if encoding := self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = encoding
        if git_protocol := self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = git_protocol
        out = subprocess.run(
            [GIT_HTTP_BACKEND], input=body, env=env, capture_output=True, timeout=60
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = out.partition(b"\n\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self._reply(status, headers, payload)

    def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _asks_for_objects(body: bytes) -> bool:
    """Whether an upload-pack request body is a fetch: protocol v2's ``command=fetch``,
    or v0's want lines (a v2 ``command=ls-refs`` only lists refs)."""
    return b"command=fetch" in body or (b"want " in body and b"command=" not in body)


class _GitHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, context: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _GitHTTPHandler)
        self.root = root
        self.requests: list[tuple[str, str, str | None]] = []
        self.fetches: list[str] = []
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that reject our certificate or hang up are test subjects,
        # not server failures; keep the test output clean.
        pass


@dataclass(frozen=True)
class GitHTTPServer:
    scheme: str
    port: int
    ca_pem: bytes | None  # the CA that signed the server certificate (https only)
    requests: list[tuple[str, str, str | None]]  # (method, path, Authorization) seen
    fetches: list[str]  # paths of the requests that asked for objects (not ref listings)

    def url(self, remote: GitRemote, auth: str = "public") -> str:
        """``auth`` is ``public``, ``basic`` or ``bearer``."""
        return f"{self.scheme}://127.0.0.1:{self.port}/{auth}/{remote.name}"


@contextlib.contextmanager
def _serve_http(root: Path, context: ssl.SSLContext | None) -> Iterator[_GitHTTPServer]:
    server = _GitHTTPServer(root, context)
    thread = threading.Thread(target=server.serve_forever, name="git-http", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="session")
def git_http(git_root: RepoRoot) -> Iterator[GitHTTPServer]:
    with _serve_http(git_root.path, None) as server:
        yield GitHTTPServer("http", server.server_address[1], None, server.requests, server.fetches)


@dataclass(frozen=True)
class CertAuthority:
    cert_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes


def make_ca() -> CertAuthority:
    """A self-signed CA and a server certificate for 127.0.0.1/localhost signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fluxd test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return CertAuthority(
        cert_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        server_cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        server_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@pytest.fixture(scope="session")
def git_https(git_root: RepoRoot) -> Iterator[GitHTTPServer]:
    ca = make_ca()
    tls_dir = git_root.path.parent / "tls"
    tls_dir.mkdir()
    (tls_dir / "server.crt").write_bytes(ca.server_cert_pem)
    (tls_dir / "server.key").write_bytes(ca.server_key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_dir / "server.crt", tls_dir / "server.key")
    with _serve_http(git_root.path, context) as server:
        yield GitHTTPServer(
            "https", server.server_address[1], ca.cert_pem, server.requests, server.fetches
        )


# --- sshd ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SSHKeys:
    identity: bytes  # OpenSSH private key, authorized
    encrypted_identity: bytes  # OpenSSH private key under SSH_KEY_PASSPHRASE, authorized
    stranger_identity: bytes  # a valid key the server does not know
    known_hosts: bytes  # the server's real host key line
    wrong_known_hosts: bytes  # a different key for the same host


@dataclass(frozen=True)
class SSHServer:
    port: int
    user: str
    keys: SSHKeys
    authorized_keys: Path  # read on every login: a line added here is accepted at once

    def url(self, remote: GitRemote, root: RepoRoot) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{root.path / remote.name}"


def _openssh_private(key: ed25519.Ed25519PrivateKey, passphrase: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    )


def _openssh_public(key: ed25519.Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


@pytest.fixture(scope="session")
def git_sshd(git_root: RepoRoot) -> Iterator[SSHServer]:
    if not os.path.exists(SSHD):
        pytest.fail(f"{SSHD} is missing: install Debian's openssh-server")
    base = git_root.path.parent / "sshd"
    base.mkdir()
    host_key = ed25519.Ed25519PrivateKey.generate()
    (base / "host_ed25519").write_bytes(_openssh_private(host_key))
    (base / "host_ed25519").chmod(0o600)
    client, encrypted, stranger = (ed25519.Ed25519PrivateKey.generate() for _ in range(3))
    (base / "authorized_keys").write_text(
        f"{_openssh_public(client)}\n{_openssh_public(encrypted)}\n"
    )
    port = free_port()
    (base / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {base / 'host_ed25519'}",
                f"PidFile {base / 'sshd.pid'}",
                f"AuthorizedKeysFile {base / 'authorized_keys'}",
                "StrictModes no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "PermitRootLogin prohibit-password",
                "AcceptEnv GIT_PROTOCOL",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    log = (base / "sshd.log").open("wb")
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(base / "sshd_config")],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    other_host_key = ed25519.Ed25519PrivateKey.generate()
    host = f"[127.0.0.1]:{port}"
    keys = SSHKeys(
        identity=_openssh_private(client),
        encrypted_identity=_openssh_private(encrypted, SSH_KEY_PASSPHRASE),
        stranger_identity=_openssh_private(stranger),
        known_hosts=f"{host} {_openssh_public(host_key)}\n".encode(),
        wrong_known_hosts=f"{host} {_openssh_public(other_host_key)}\n".encode(),
    )
    try:
        _wait_for_port(port, proc, f"sshd (log: {base / 'sshd.log'})")
        yield SSHServer(port, getpass.getuser(), keys, base / "authorized_keys")
    finally:
        _stop(proc)
        log.close()


# --- smart HTTP accepting GitHub App installation tokens ------------------------------------

ACCESS_TOKEN_USERNAME = "x-access-token"


@dataclass(frozen=True)
class AccessTokenGitServer:
    """Smart HTTP whose ``/basic/<repo>`` accepts only ``x-access-token:<token>`` for a
    token in ``accepted`` (as GitHub takes an App installation token); tests add to it."""

    port: int
    accepted: set[str]
    requests: list[tuple[str, str, str | None]]

    def url(self, remote: GitRemote) -> str:
        return f"http://127.0.0.1:{self.port}/basic/{remote.name}"


def _access_token_handler(accepted: set[str]) -> type[_GitHTTPHandler]:
    class AccessTokenHandler(_GitHTTPHandler):
        def _authorized(self, scheme: str) -> bool:
            if scheme != "basic":
                return super()._authorized(scheme)
            header = self.headers.get("Authorization", "")
            return any(
                header
                == "Basic " + base64.b64encode(f"{ACCESS_TOKEN_USERNAME}:{token}".encode()).decode()
                for token in accepted
            )

    return AccessTokenHandler


@pytest.fixture
def git_http_access_token(git_root: RepoRoot) -> Iterator[AccessTokenGitServer]:
    accepted: set[str] = set()
    with _serve_http(git_root.path, None) as server:
        server.RequestHandlerClass = _access_token_handler(accepted)
        yield AccessTokenGitServer(server.server_address[1], accepted, server.requests)
