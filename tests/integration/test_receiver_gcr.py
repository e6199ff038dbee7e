"""The ``gcr`` Receiver end to end: Google Pub/Sub push requests, authenticated by
Google-signed ID tokens, at the Receiver's ``status.webhookPath``.

Google's keys are fetched from their real address, ``www.googleapis.com``, the way a
daemon behind an egress proxy reaches it: ``HTTPS_PROXY`` names a loopback ``CONNECT``
proxy that tunnels to a loopback HTTPS stand-in serving the key set, whose certificate
for ``www.googleapis.com`` comes from a test CA that ``SSL_CERT_FILE`` makes the trust
store. What a user sees: a push whose token Google signed for the Secret's service
account and audience triggers the Receiver's resources; a forged, expired, mis-addressed
or unverified token, or none, answers 401 and triggers nothing; a body that is not a
Pub/Sub push answers 400; a Secret without ``email``/``audience`` answers 503 naming the
key; the keys are fetched once for as long as Google's ``Cache-Control`` allows, and a
certificate ``SSL_CERT_FILE`` does not trust is refused; a ``resourceFilter`` sees the
registry event (``req.action``, ``req.tag``), as in Flux.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fluxd.api import GIT_REPOSITORY, RECEIVER
from tests.gitservers import CertAuthority
from tests.integration.conftest import Fluxd
from tests.servicestandins import redirecting_proxy, service_ca

pytestmark = pytest.mark.integration

EMAIL = "pubsub-push@team-project.iam.gserviceaccount.com"
AUDIENCE = "https://flux.example.com/hook"
KEY_ID = "google-key-1"
UNREACHABLE_GIT = "http://127.0.0.1:9/never-answers.git"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
GCR_EVENT = {
    "action": "INSERT",
    "digest": "gcr.io/team-project/app@sha256:" + "a" * 64,
    "tag": "gcr.io/team-project/app:v1.2.3",
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pubsub_push(event: dict[str, Any] | bytes) -> bytes:
    data = event if isinstance(event, bytes) else json.dumps(event).encode()
    return json.dumps(
        {
            "message": {
                "data": base64.b64encode(data).decode(),
                "messageId": "2070443601311540",
                "publishTime": "2026-12-04T21:00:00.123Z",
            },
            "subscription": "projects/team-project/subscriptions/flux",
        }
    ).encode()


@dataclass
class Google:
    """Google's signing key, the key set it publishes, and how often that was fetched."""

    key: rsa.RSAPrivateKey
    fetches: int = 0

    def key_set(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": KEY_ID, "n": b64url(n)}
        return json.dumps({"keys": [jwk | {"e": b64url(e)}]}).encode()

    def token(self, signer: rsa.RSAPrivateKey | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": AUDIENCE,
            "azp": "104711",
            "sub": "104711",
            "email": EMAIL,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
        } | overrides
        header = {"alg": "RS256", "kid": KEY_ID, "typ": "JWT"}
        signed = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = (signer or self.key).sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signed}.{b64url(signature)}"


@contextmanager
def google_certs(google: Google, ca: CertAuthority, directory: Path) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 answering ``GET /oauth2/v3/certs`` as Google does;
    yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/oauth2/v3/certs":
                self.send_error(404)
                return
            google.fetches += 1
            body = google.key_set()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header(
                "Cache-Control", "public, max-age=19204, must-revalidate, no-transform"
            )
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    cert, key = directory / "tls.crt", directory / "tls.key"
    cert.write_bytes(ca.server_cert_pem)
    key.write_bytes(ca.server_key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, name="google certs", daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def google() -> Google:
    return Google(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def egress(google: Google, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Google reachable only through ``HTTPS_PROXY``, trusted only through ``SSL_CERT_FILE``;
    yields the targets the proxy was asked to tunnel to."""
    ca = service_ca("www.googleapis.com")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(ca.cert_pem)
    with google_certs(google, ca, tmp_path) as port, redirecting_proxy(port) as proxy:
        for name in ("https_proxy", "no_proxy", "SSL_CERT_DIR"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("SSL_CERT_FILE", os.fspath(ca_file))
        yield proxy.targets


async def post(fluxd: Fluxd, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
    host, port = fluxd.daemon.addresses["artifacts"]
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://{host}:{port}{path}", data=body, headers=headers) as response,
    ):
        return response.status, await response.text()


async def requested_at(fluxd: Fluxd) -> str | None:
    target = await fluxd.get(GIT_REPOSITORY, "target")
    annotations: dict[str, str] = target["metadata"].get("annotations") or {}
    return annotations.get(REQUESTED_AT)


async def gcr_receiver(fluxd: Fluxd, name: str, secret: dict[str, str | bytes], **spec: str) -> str:
    await fluxd.secret(name, secret)
    await fluxd.create(
        RECEIVER,
        name,
        {
            "type": "gcr",
            "secretRef": {"name": name},
            "resources": [{"kind": "GitRepository", "name": "target"}],
        }
        | spec,
    )
    obj = await fluxd.wait_ready(RECEIVER, name)
    path: str = obj["status"]["webhookPath"]
    return path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_gcr_receiver_triggers_only_on_google_signed_pushes(
    fluxd: Fluxd, google: Google, egress: list[str]
) -> None:
    await fluxd.create(GIT_REPOSITORY, "target", {"interval": "1h", "url": UNREACHABLE_GIT})
    path = await gcr_receiver(
        fluxd, "gcr", {"token": "salt-t0ken", "email": EMAIL, "audience": AUDIENCE}
    )
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused: dict[str, tuple[dict[str, str], str]] = {
        "no header": ({}, "Authorization header is missing"),
        "not bearer": ({"Authorization": google.token()}, "Authorization header is missing"),
        "wrong signature": (bearer(google.token(impostor)), "failed to verify"),
        "wrong audience": (bearer(google.token(aud="https://other.example")), "audience"),
        "expired": (bearer(google.token(exp=int(time.time()) - 60)), "expired"),
        "unverified email": (bearer(google.token(email_verified=False)), "is not verified"),
        "other account": (bearer(google.token(email="x@evil.example")), "token email"),
        "other issuer": (bearer(google.token(iss="https://evil.example")), "issuer"),
    }
    for case, (headers, reason) in refused.items():
        status, text = await post(fluxd, path, headers, pubsub_push(GCR_EVENT))
        assert status == 401, case
        assert "cannot authenticate GCR request" in text, case
        assert reason in text, (case, text)

    not_pushes = [b"not json", b"[]", b'{"message": {"data": 42}}', pubsub_push(b"{oops")]
    for body in not_pushes:
        status, text = await post(fluxd, path, bearer(google.token()), body)
        assert status == 400, body
        assert "cannot decode GCR webhook" in text, body
    assert await requested_at(fluxd) is None, "a refused push triggers nothing"

    status, text = await post(fluxd, path, bearer(google.token()), pubsub_push(GCR_EVENT))
    assert status == 200, text
    assert await requested_at(fluxd) is not None

    assert set(egress) == {"www.googleapis.com:443"}, "the keys came through HTTPS_PROXY"
    assert google.fetches == 1, "the keys are kept for the Cache-Control max-age"


async def test_gcr_secret_without_account_or_audience_answers_503(
    fluxd: Fluxd, google: Google, egress: list[str]
) -> None:
    await fluxd.create(GIT_REPOSITORY, "target", {"interval": "1h", "url": UNREACHABLE_GIT})
    no_email = await gcr_receiver(fluxd, "no-email", {"token": "t1", "audience": AUDIENCE})
    no_audience = await gcr_receiver(fluxd, "no-audience", {"token": "t2", "email": EMAIL})
    for path, key in ((no_email, "email"), (no_audience, "audience")):
        status, text = await post(fluxd, path, bearer(google.token()), pubsub_push(GCR_EVENT))
        assert status == 503
        assert f"required field '{key}' for GCR receiver" in text
    assert await requested_at(fluxd) is None
    assert google.fetches == 0, "nothing is fetched for a receiver that cannot verify"


async def test_gcr_untrusted_google_certificate_answers_401_then_recovers(
    fluxd: Fluxd, google: Google, egress: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await fluxd.create(GIT_REPOSITORY, "target", {"interval": "1h", "url": UNREACHABLE_GIT})
    path = await gcr_receiver(
        fluxd, "gcr", {"token": "salt-t0ken", "email": EMAIL, "audience": AUDIENCE}
    )
    test_ca = os.environ["SSL_CERT_FILE"]
    monkeypatch.setenv("SSL_CERT_FILE", os.devnull)
    status, text = await post(fluxd, path, bearer(google.token()), pubsub_push(GCR_EVENT))
    assert status == 401
    assert "unable to fetch Google's keys from https://www.googleapis.com/oauth2/v3/certs" in text
    assert "certificate verify failed" in text, "an untrusted certificate is refused"
    assert await requested_at(fluxd) is None
    assert google.fetches == 0

    monkeypatch.setenv("SSL_CERT_FILE", test_ca)
    status, text = await post(fluxd, path, bearer(google.token()), pubsub_push(GCR_EVENT))
    assert status == 200, "a failed fetch is not cached: the next push fetches again"
    assert await requested_at(fluxd) is not None


async def test_gcr_resource_filter_sees_the_registry_event(
    fluxd: Fluxd, google: Google, egress: list[str]
) -> None:
    await fluxd.create(GIT_REPOSITORY, "target", {"interval": "1h", "url": UNREACHABLE_GIT})
    path = await gcr_receiver(
        fluxd,
        "releases-only",
        {"token": "salt-t0ken", "email": EMAIL, "audience": AUDIENCE},
        resourceFilter=f"req.action == 'INSERT' && req.tag == '{GCR_EVENT['tag']}'",
    )
    headers = bearer(google.token()) | {"Content-Type": "application/json"}
    other_tag = pubsub_push(GCR_EVENT | {"tag": "gcr.io/team-project/app:nightly"})
    status, text = await post(fluxd, path, headers, other_tag)
    assert status == 200, text
    assert await requested_at(fluxd) is None, "the filter saw another tag"

    status, text = await post(fluxd, path, headers, pubsub_push(GCR_EVENT))
    assert status == 200, text
    assert await requested_at(fluxd) is not None
