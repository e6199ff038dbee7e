"""A real S3 API on loopback for tests: ``moto_server`` with signature checks on.

Register as a pytest plugin (root conftest). One ``moto_server`` per session
(``s3_store``): the first three requests it gets create an IAM user allowed every S3
action and that user's access key; from then on moto checks every request's AWS
Signature V4 against IAM, so wrong keys are refused as AWS refuses them (403
``InvalidAccessKeyId`` / ``SignatureDoesNotMatch``).

fluxd talks to moto through a counting front (:class:`S3Front`): a threaded HTTP relay
that forwards each request unchanged (the signed ``Host`` header included) and records
its method and path, so a test can assert how many objects fluxd downloaded. A front
can serve TLS with a CA of its own (``s3_front_tls``), for ``spec.certSecretRef``.
Tests put and change objects with boto3, through moto directly; each test makes its own
buckets (:meth:`S3Store.new_bucket`), so the shared server never mixes their objects.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.gitservers import CertAuthority, free_port, make_ca

__all__ = ["S3Front", "S3Store"]

#: moto's requests without a signature check: create_user, put_user_policy,
#: create_access_key.
_SETUP_ACTIONS = 3
_ALLOW_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'


@dataclass
class S3Store:
    """The session's moto server, and the keys of the IAM user it checks against."""

    url: str
    access_key: str
    secret_key: str
    client: Any  # a boto3 S3 client signed with the user's keys

    def new_bucket(self) -> str:
        """A fresh, empty bucket of the calling test's own."""
        name = f"b-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def put(self, bucket: str, key: str, body: str | bytes) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=body)

    def delete(self, bucket: str, key: str) -> None:
        self.client.delete_object(Bucket=bucket, Key=key)


@dataclass
class S3Front:
    """A relay in front of the store: its ``host:port`` and what went through it."""

    endpoint: str
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path?query)
    ca_pem: bytes | None = None

    def object_gets(self, bucket: str) -> list[str]:
        """Paths of the GETs of single objects of ``bucket`` (downloads, not listings)."""
        prefix = f"/{bucket}/"
        return [
            path
            for method, path in list(self.requests)
            if method == "GET" and path.startswith(prefix) and len(path) > len(prefix)
        ]

    def listings(self, bucket: str) -> int:
        return sum(
            1
            for method, path in list(self.requests)
            if method == "GET" and path.startswith(f"/{bucket}?")
        )


def _start_moto(port: int, log: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    if binary is None:
        pytest.fail("moto_server missing: scripts/test installs the test extras (moto[server])")
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_ACTIONS)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}: {log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return proc
        time.sleep(0.05)
    _stop(proc)
    raise RuntimeError("moto_server did not listen within 30s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="session")
def s3_store() -> Iterator[S3Store]:
    import boto3  # type: ignore[import-untyped]  # ships no type information
    from botocore.config import Config  # type: ignore[import-untyped]

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fluxd-moto-") as directory:
        proc = _start_moto(port, Path(directory) / "moto.log")
        try:
            url = f"http://127.0.0.1:{port}"
            common: dict[str, Any] = {"endpoint_url": url, "region_name": "us-east-1"}
            setup = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup", **common}
            iam = boto3.client("iam", **setup)
            iam.create_user(UserName="fluxd")
            iam.put_user_policy(UserName="fluxd", PolicyName="all", PolicyDocument=_ALLOW_ALL)
            key = iam.create_access_key(UserName="fluxd")["AccessKey"]
            client = boto3.client(
                "s3",
                aws_access_key_id=key["AccessKeyId"],
                aws_secret_access_key=key["SecretAccessKey"],
                config=Config(s3={"addressing_style": "path"}),
                **common,
            )
            yield S3Store(url, key["AccessKeyId"], key["SecretAccessKey"], client)
        finally:
            _stop(proc)


class _Relay(http.server.BaseHTTPRequestHandler):
    server: _RelayServer
    protocol_version = "HTTP/1.1"

    def _relay(self) -> None:
        self.server.front.requests.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=30)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                upstream.putheader(name, value)
            upstream.endheaders(body)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _relay

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the front's record is ``requests``."""


class _RelayServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream_port: int, front: S3Front) -> None:
        super().__init__(("127.0.0.1", 0), _Relay)
        self.upstream_port = upstream_port
        self.front = front


@contextlib.contextmanager
def _serve_front(store: S3Store, ca: CertAuthority | None) -> Iterator[S3Front]:
    front = S3Front(endpoint="")
    server = _RelayServer(int(store.url.rpartition(":")[2]), front)
    if ca is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory(prefix="fluxd-s3-tls-") as directory:
            cert, key = Path(directory) / "tls.crt", Path(directory) / "tls.key"
            cert.write_bytes(ca.server_cert_pem)
            key.write_bytes(ca.server_key_pem)
            context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        front.ca_pem = ca.cert_pem
    front.endpoint = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="s3 front", daemon=True)
    thread.start()
    try:
        yield front
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def s3_front(s3_store: S3Store) -> Iterator[S3Front]:
    with _serve_front(s3_store, None) as front:
        yield front


@pytest.fixture(scope="module")
def s3_front_tls(s3_store: S3Store) -> Iterator[S3Front]:
    with _serve_front(s3_store, make_ca()) as front:
        yield front
