"""A real Helm chart repository on loopback for tests: ``index.yaml`` and packaged charts.

Register as a pytest plugin (root conftest). Each test gets its own repository server
(``chart_repo``, plain HTTP; ``chart_repo_https``, TLS with a CA of its own and basic
auth), holding what the test publishes: :meth:`ChartRepository.publish` adds a chart
(packaged by :func:`package_chart`) and rewrites the index as ``helm repo index`` would
(name, version, digest, urls, created), :meth:`ChartRepository.serve` puts any bytes at
any path (a broken index), and :meth:`ChartRepository.fail` makes a path answer an HTTP
error. Every request is
recorded, so tests can count what fluxd fetched.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.server
import io
import ssl
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.gitservers import CertAuthority, make_ca

REPO_USERNAME = "chart-user"
REPO_PASSWORD = "chart-pa55word"

__all__ = ["REPO_PASSWORD", "REPO_USERNAME", "ChartRepository", "package_chart"]


def package_chart(name: str, version: str, files: dict[str, str] | None = None) -> bytes:
    """A chart archive laid out as ``helm package`` writes one: ``<name>/Chart.yaml`` plus
    ``files`` (paths relative to the chart directory; ``values.yaml`` empty unless given)."""
    chart_yaml = f"apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: '1.0'\n"
    contents = {"Chart.yaml": chart_yaml, "values.yaml": "", **(files or {})}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for path, text in sorted(contents.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@dataclass
class ChartRepository:
    """One repository: its URL, what it serves, what it was asked."""

    url: str
    files: dict[str, bytes] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, auth)
    ca_pem: bytes | None = None
    _entries: dict[str, list[dict[str, object]]] = field(default_factory=dict)

    def publish(self, archive: bytes, name: str, version: str) -> str:
        """Serve ``archive`` at ``charts/<name>-<version>.tgz`` and list it in the index;
        returns the archive's digest."""
        path = f"charts/{name}-{version}.tgz"
        self.files[path] = archive
        digest = hashlib.sha256(archive).hexdigest()
        created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        entry: dict[str, object] = {
            "apiVersion": "v2",
            "name": name,
            "version": version,
            "appVersion": "1.0",
            "created": created,
            "digest": digest,
            "urls": [path],
        }
        versions = [e for e in self._entries.get(name, []) if e["version"] != version]
        self._entries[name] = [entry, *versions]
        self.files["index.yaml"] = yaml.safe_dump(
            {"apiVersion": "v1", "entries": self._entries, "generated": created}
        ).encode()
        return digest

    def serve(self, path: str, data: bytes) -> None:
        self.files[path] = data
        self.failures.pop(path, None)

    def fail(self, path: str, status: int) -> None:
        self.failures[path] = status

    def fetched(self, path: str) -> int:
        """How many times ``path`` was requested."""
        return sum(1 for requested, _ in self.requests if requested == path)


#: The repository lives under this path of its server, as most repositories' URLs have one.
ROOT = "charts-root/"


def _handler(repo: ChartRepository, auth: str | None) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].lstrip("/")
            given = self.headers.get("Authorization")
            repo.requests.append((path.removeprefix(ROOT), given))
            if not path.startswith(ROOT):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path = path.removeprefix(ROOT)
            if auth is not None and given != auth:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="charts"')
                self.end_headers()
                return
            status = repo.failures.get(path)
            body = repo.files.get(path)
            if status is None and body is None:
                status = 404
            if status is not None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            assert body is not None
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads ``requests`` instead."""

    return Handler


def _serve(
    context: ssl.SSLContext | None, auth: str | None, ca: CertAuthority | None
) -> Iterator[ChartRepository]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    scheme = "https" if context else "http"
    repo = ChartRepository(
        url=f"{scheme}://127.0.0.1:{server.server_address[1]}/{ROOT.rstrip('/')}",
        ca_pem=ca.cert_pem if ca else None,
    )
    server.RequestHandlerClass = _handler(repo, auth)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield repo
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def chart_repo() -> Iterator[ChartRepository]:
    """A fresh chart repository over plain HTTP, no auth."""
    yield from _serve(None, None, None)


@pytest.fixture
def chart_repo_https() -> Iterator[ChartRepository]:
    """A fresh chart repository over HTTPS (its own CA, in ``ca_pem``) with basic auth."""
    ca = make_ca()
    with tempfile.TemporaryDirectory(prefix="fluxd-charts-tls-") as directory:
        cert, key = Path(directory, "server.crt"), Path(directory, "server.key")
        cert.write_bytes(ca.server_cert_pem)
        key.write_bytes(ca.server_key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    token = base64.b64encode(f"{REPO_USERNAME}:{REPO_PASSWORD}".encode()).decode()
    yield from _serve(context, f"Basic {token}", ca)
