"""A stand-in for the GitHub API's App endpoints on loopback, speaking GitHub's protocol.

Register as a pytest plugin (``pytest_plugins = ["tests.githubapi"]``). The
``github_api`` fixture is one app (its own RSA key, app id, installation id and owner)
served under ``/api/v3`` (GitHub Enterprise's layout) by a fresh server per test:

- ``POST /api/v3/app/installations/{id}/access_tokens`` checks the ``Bearer`` JWT (RS256
  signature against the app's public key, ``iss`` the app id, ``iat``/``exp`` current and
  at most ten minutes apart) and answers ``201 {"token", "expires_at"}``; a bad JWT is a
  401, another installation id a 404;
- ``GET /api/v3/orgs/{owner}/installation`` and ``/users/{owner}/installation`` find the
  installation by owner (the org lookup answers for the app's owner, the user one 404s).

Every issued token is passed to ``on_token`` (a git server accepts it that way) and
counted in ``token_requests``.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

API_PREFIX = "/api/v3"
APP_ID = 424242
INSTALLATION_ID = 987654
INSTALLATION_OWNER = "fluxd-org"


@dataclass
class GitHubApp:
    """The app the stand-in knows, and what it saw."""

    private_key_pem: bytes
    public_key: rsa.RSAPublicKey
    base_url: str
    app_id: int = APP_ID
    installation_id: int = INSTALLATION_ID
    owner: str = INSTALLATION_OWNER
    token_requests: int = 0
    rejected: list[str] = field(default_factory=list)  # why each request was refused
    on_token: Callable[[str], None] = lambda token: None

    def secret_data(self, **overrides: str | bytes) -> dict[str, str | bytes]:
        """A ``provider: github`` Secret's data for this app, with keys overridden."""
        data: dict[str, str | bytes] = {
            "githubAppID": str(self.app_id),
            "githubAppInstallationID": str(self.installation_id),
            "githubAppPrivateKey": self.private_key_pem,
            "githubAppBaseURL": self.base_url,
        }
        data.update(overrides)
        return data


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _APIHandler(http.server.BaseHTTPRequestHandler):
    server: _APIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = self._route()
        if parts is None:
            return
        if parts == ["orgs", self.server.app.owner, "installation"]:
            self._reply(200, {"id": self.server.app.installation_id})
        else:
            self._reply(404, {"message": "Not Found"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = self._route()
        if parts is None:
            return
        app = self.server.app
        if len(parts) != 4 or parts[:2] != ["app", "installations"] or parts[3] != "access_tokens":
            self._reply(404, {"message": "Not Found"})
            return
        app.token_requests += 1
        if parts[2] != str(app.installation_id):
            app.rejected.append(f"unknown installation {parts[2]}")
            self._reply(404, {"message": "Not Found"})
            return
        token = "ghs_" + secrets.token_hex(16)
        app.on_token(token)
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        self._reply(201, {"token": token, "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ")})

    def _route(self) -> list[str] | None:
        """The path under the API prefix, once the JWT checked out; None when answered."""
        why = self._jwt_problem()
        if why is not None:
            self.server.app.rejected.append(why)
            self._reply(401, {"message": f"A JSON web token could not be decoded: {why}"})
            return None
        if not self.path.startswith(API_PREFIX + "/"):
            self._reply(404, {"message": "Not Found"})
            return None
        return self.path[len(API_PREFIX) + 1 :].split("/")

    def _jwt_problem(self) -> str | None:
        scheme, _, jwt = self.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or jwt.count(".") != 2:
            return "no Bearer JWT"
        header, claims, signature = jwt.split(".")
        try:
            self.server.app.public_key.verify(
                _unb64(signature),
                f"{header}.{claims}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return "signature does not match the app's public key"
        if json.loads(_unb64(header)).get("alg") != "RS256":
            return "alg is not RS256"
        payload = json.loads(_unb64(claims))
        now = time.time()
        if payload.get("iss") != str(self.server.app.app_id):
            return f"iss {payload.get('iss')!r} is not the app id"
        if not payload["iat"] <= now < payload["exp"] or payload["exp"] - payload["iat"] > 600:
            return "iat/exp not current or more than 10 minutes apart"
        return None

    def _reply(self, status: int, body: object) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _APIServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    app: GitHubApp


def new_app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@pytest.fixture
def github_api() -> Iterator[GitHubApp]:
    key = new_app_key()
    server = _APIServer(("127.0.0.1", 0), _APIHandler)
    server.app = GitHubApp(
        private_key_pem=pem(key),
        public_key=key.public_key(),
        base_url=f"http://127.0.0.1:{server.server_address[1]}{API_PREFIX}",
    )
    thread = threading.Thread(target=server.serve_forever, name="github-api", daemon=True)
    thread.start()
    try:
        yield server.app
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
