"""Loopback stand-ins for the AWS endpoints a credential chain calls, for tests.

- :class:`StsFront`: STS as moto implements it. Real STS takes
  ``AssumeRoleWithWebIdentity`` unsigned (the web identity token is the proof); moto,
  once it checks signatures, refuses any unsigned request. The front records each form
  fluxd posts, signs it as the suite's IAM user (SigV4, service ``sts``) and relays it to
  the session's moto server, so the answer -- temporary keys moto's S3 then accepts for the
  assumed role -- is moto's own. ``refuse`` makes it answer as STS refuses a token.
- :class:`CredentialEndpoints`: an ECS/EKS container agent (``GET /creds``, checking the
  ``Authorization`` token) and an EC2 instance metadata service (IMDSv2: token ``PUT``
  then the role's credentials ``GET``) in one server. Each answer is a fresh set of
  temporary keys moto's STS issued for the assumed role (so moto's S3 accepts them, session
  token and all) with an ``Expiration`` the test chooses; every request is recorded.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tests.s3servers import S3Store

__all__ = ["CredentialEndpoints", "StsFront", "serve_credential_endpoints", "serve_sts_front"]

ROLE_NAME = "fluxd-node"
IMDS_TOKEN = "imds-session-token"
_STS_REFUSAL = (
    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
    "<Type>Sender</Type><Code>InvalidIdentityToken</Code>"
    "<Message>Couldn't retrieve verification key from your identity provider</Message>"
    "</Error><RequestId>r-1</RequestId></ErrorResponse>"
)


@dataclass
class StsFront:
    """The front's URL, the forms posted to it, and whether it refuses them."""

    url: str = ""
    forms: list[dict[str, str]] = field(default_factory=list)
    refuse: bool = False


@dataclass
class CredentialEndpoints:
    """The stand-in's URL, what it serves, and the requests it got."""

    url: str
    store: S3Store
    role_arn: str
    container_token: str = "container-token"
    expires_in: timedelta = timedelta(hours=1)
    role_attached: bool = True
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def credentials(self) -> bytes:
        import boto3  # type: ignore[import-untyped]  # ships no type information

        sts = boto3.client(
            "sts",
            endpoint_url=self.store.url,
            region_name="us-east-1",
            aws_access_key_id=self.store.access_key,
            aws_secret_access_key=self.store.secret_key,
        )
        issued = sts.assume_role(RoleArn=self.role_arn, RoleSessionName="stand-in")
        keys = issued["Credentials"]
        expiration = datetime.now(UTC) + self.expires_in
        return json.dumps(
            {
                "Code": "Success",
                "Type": "AWS-HMAC",
                "AccessKeyId": keys["AccessKeyId"],
                "SecretAccessKey": keys["SecretAccessKey"],
                "Token": keys["SessionToken"],
                "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ).encode()

    def paths(self, method: str) -> list[str]:
        return [path for sent, path, _ in list(self.requests) if sent == method]


class _StsHandler(http.server.BaseHTTPRequestHandler):
    server: _StsServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
        from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
        from botocore.credentials import Credentials  # type: ignore[import-untyped]

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        front = self.server.front
        front.forms.append(dict(urllib.parse.parse_qsl(body.decode())))
        if front.refuse:
            self._answer(400, _STS_REFUSAL.encode(), "text/xml")
            return
        upstream_host = f"127.0.0.1:{self.server.upstream_port}"
        request = AWSRequest(
            method="POST",
            url=f"http://{upstream_host}/",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        store = self.server.store
        SigV4Auth(Credentials(store.access_key, store.secret_key), "sts", "us-east-1").add_auth(
            request
        )
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=30)
        try:
            upstream.request("POST", "/", body=body, headers=dict(request.headers.items()))
            response = upstream.getresponse()
            self._answer(response.status, response.read(), "text/xml")
        finally:
            upstream.close()

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the front's record is ``forms``."""


class _StsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store: S3Store, front: StsFront) -> None:
        super().__init__(("127.0.0.1", 0), _StsHandler)
        self.store = store
        self.upstream_port = int(store.url.rpartition(":")[2])
        self.front = front


class _EndpointsHandler(http.server.BaseHTTPRequestHandler):
    server: _EndpointsServer
    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:
        self._record()
        if self.path == "/latest/api/token" and self.headers.get(
            "X-aws-ec2-metadata-token-ttl-seconds"
        ):
            self._answer(200, IMDS_TOKEN.encode(), "text/plain")
        else:
            self._answer(400, b"bad token request", "text/plain")

    def do_GET(self) -> None:
        self._record()
        endpoints = self.server.endpoints
        if self.path == "/creds":
            if self.headers.get("Authorization") != endpoints.container_token:
                refusal = {"code": "AccessDenied", "message": "bad authorization token"}
                self._answer(403, json.dumps(refusal).encode(), "application/json")
            else:
                self._answer(200, endpoints.credentials(), "application/json")
            return
        prefix = "/latest/meta-data/iam/security-credentials/"
        if self.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
            self._answer(401, b"", "text/plain")
        elif not self.path.startswith(prefix) or not endpoints.role_attached:
            self._answer(404, b"", "text/plain")
        elif self.path == prefix:
            self._answer(200, ROLE_NAME.encode(), "text/plain")
        elif self.path == prefix + ROLE_NAME:
            self._answer(200, endpoints.credentials(), "application/json")
        else:
            self._answer(404, b"", "text/plain")

    def _record(self) -> None:
        self.server.endpoints.requests.append((self.command, self.path, dict(self.headers)))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the stand-in's record is ``requests``."""


class _EndpointsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, endpoints: CredentialEndpoints) -> None:
        super().__init__(("127.0.0.1", 0), _EndpointsHandler)
        self.endpoints = endpoints


@contextlib.contextmanager
def _running(server: http.server.ThreadingHTTPServer, name: str) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def serve_sts_front(store: S3Store) -> Iterator[StsFront]:
    front = StsFront()
    server = _StsServer(store, front)
    front.url = f"http://127.0.0.1:{server.server_address[1]}"
    with _running(server, "sts front"):
        yield front


@contextlib.contextmanager
def serve_credential_endpoints(store: S3Store, role_arn: str) -> Iterator[CredentialEndpoints]:
    endpoints = CredentialEndpoints(url="", store=store, role_arn=role_arn)
    server = _EndpointsServer(endpoints)
    endpoints.url = f"http://127.0.0.1:{server.server_address[1]}"
    with _running(server, "aws credential endpoints"):
        yield endpoints
