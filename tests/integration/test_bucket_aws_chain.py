"""Bucket ``provider: aws`` without a Secret: the AWS credential chain, end to end.

Each link of the chain the AWS SDKs walk gives fluxd keys that moto's S3 (signature
checks on) accepts, and the Bucket becomes Ready with the bucket's objects: the
environment, the shared credentials file (and its ``AWS_PROFILE``), web identity (a
token file traded at STS -- moto's, through :class:`~tests.aws_standins.StsFront` --
by ``AssumeRoleWithWebIdentity``), a container agent with its authorization token, and
EC2 instance metadata (IMDSv2). The first configured link wins; temporary credentials
are reused until shortly before they expire, then fetched again; a broken link ends in
``Ready=False``/``AuthenticationFailed`` naming it, and the Bucket recovers once the link
is mended.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fluxd.api import BUCKET
from fluxd.runtime import conditions
from tests.aws_standins import (
    IMDS_TOKEN,
    ROLE_NAME,
    CredentialEndpoints,
    StsFront,
    serve_credential_endpoints,
    serve_sts_front,
)
from tests.gitservers import free_port
from tests.integration.conftest import Fluxd, is_ready_now
from tests.s3servers import S3Front, S3Store

pytestmark = pytest.mark.integration

ROLE_ARN = "arn:aws:iam::123456789012:role/fluxd-reader"
_ALLOW_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
#: Every variable the chain reads: each test starts from none of them.
CHAIN_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_DISABLED",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """fluxd's environment with no AWS credentials anywhere: no variables, a HOME without
    ``.aws``, and instance metadata off (a test that wants it points it at a stand-in).
    Tests ask for it before ``fluxd``, so it outlives the daemon's teardown reconciles."""
    for name in CHAIN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture(scope="module")
def assumable_role(s3_store: S3Store) -> str:
    """A role in moto's IAM that may do anything, for ``AssumeRoleWithWebIdentity``."""
    import boto3  # type: ignore[import-untyped]  # ships no type information

    iam = boto3.client(
        "iam",
        endpoint_url=s3_store.url,
        region_name="us-east-1",
        aws_access_key_id=s3_store.access_key,
        aws_secret_access_key=s3_store.secret_key,
    )
    name = ROLE_ARN.rpartition("/")[2]
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=_ALLOW_ALL)
    iam.put_role_policy(RoleName=name, PolicyName="all", PolicyDocument=_ALLOW_ALL)
    return ROLE_ARN


@pytest.fixture
def sts(s3_store: S3Store, assumable_role: str) -> Iterator[StsFront]:
    with serve_sts_front(s3_store) as front:
        yield front


@pytest.fixture
def endpoints(s3_store: S3Store, assumable_role: str) -> Iterator[CredentialEndpoints]:
    """A container agent and IMDS of this test's own (a new address: nothing cached)."""
    with serve_credential_endpoints(s3_store, assumable_role) as served:
        yield served


def aws_bucket(front: S3Front, bucket: str) -> dict[str, object]:
    return {
        "interval": "1h",
        "provider": "aws",
        "bucketName": bucket,
        "endpoint": front.endpoint,
        "insecure": True,
        "timeout": "10s",
    }


def filled_bucket(store: S3Store) -> str:
    bucket = store.new_bucket()
    store.put(bucket, "deploy/app.yaml", "app: 1\n")
    return bucket


def ready_message(obj: dict[str, Any]) -> str:
    found = conditions.get(obj.get("status") or {}, "Ready")
    assert found is not None, f"no Ready condition in {obj.get('status')}"
    return str(found["message"])


async def fetched_files(fluxd: Fluxd, obj: dict[str, Any]) -> set[str]:
    tarball = await fluxd.fetch_artifact(obj["status"]["artifact"]["url"])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(tarball))) as tar:
        return {member.name for member in tar.getmembers() if member.isfile()}


async def reconcile_now(fluxd: Fluxd, name: str) -> dict[str, Any]:
    token = uuid.uuid4().hex
    await fluxd.patch(
        BUCKET, name, {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}
    )
    return await fluxd.wait_for(
        BUCKET,
        name,
        lambda o: (o.get("status") or {}).get("lastHandledReconcileAt") == token,
        f"the reconcile requested as {token}",
    )


def credentials_file(path: Path, profiles: dict[str, tuple[str, str]]) -> Path:
    path.write_text(
        "".join(
            f"[{name}]\naws_access_key_id = {access}\naws_secret_access_key = {secret}\n\n"
            for name, (access, secret) in profiles.items()
        )
    )
    return path


async def test_web_identity_assumes_the_role_at_sts(
    env: pytest.MonkeyPatch,
    fluxd: Fluxd,
    s3_store: S3Store,
    s3_front: S3Front,
    sts: StsFront,
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("eyJ.projected-service-account-token.sig\n")
    env.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    env.setenv("AWS_ROLE_ARN", ROLE_ARN)
    env.setenv("AWS_ROLE_SESSION_NAME", "fluxd-test")
    env.setenv("AWS_ENDPOINT_URL_STS", sts.url)
    bucket = filled_bucket(s3_store)
    await fluxd.create(BUCKET, "irsa", aws_bucket(s3_front, bucket))
    obj = await fluxd.wait_ready(BUCKET, "irsa")
    assert await fetched_files(fluxd, obj) == {"deploy/app.yaml"}
    assert sts.forms == [
        {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": ROLE_ARN,
            "RoleSessionName": "fluxd-test",
            "WebIdentityToken": "eyJ.projected-service-account-token.sig",
        }
    ]
    await reconcile_now(fluxd, "irsa")
    assert len(sts.forms) == 1, "the assumed role's keys are reused while they are valid"


async def test_shared_credentials_file_and_its_profile(
    env: pytest.MonkeyPatch, fluxd: Fluxd, s3_store: S3Store, s3_front: S3Front, tmp_path: Path
) -> None:
    keys = (s3_store.access_key, s3_store.secret_key)
    credentials_file(
        tmp_path / ".aws-credentials", {"default": ("AKIAWRONG", "wrong"), "flux": keys}
    )
    env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / ".aws-credentials"))
    env.setenv("AWS_PROFILE", "flux")
    bucket = filled_bucket(s3_store)
    await fluxd.create(BUCKET, "profile", aws_bucket(s3_front, bucket))
    obj = await fluxd.wait_ready(BUCKET, "profile")
    assert await fetched_files(fluxd, obj) == {"deploy/app.yaml"}

    (tmp_path / ".aws").mkdir()
    credentials_file(tmp_path / ".aws" / "credentials", {"default": keys})
    env.delenv("AWS_SHARED_CREDENTIALS_FILE")
    env.delenv("AWS_PROFILE")
    again = await reconcile_now(fluxd, "profile")
    assert is_ready_now(again), "~/.aws/credentials [default] is found without any variable"

    env.setenv("AWS_PROFILE", "missing")
    failed = await reconcile_now(fluxd, "profile")
    assert not is_ready_now(failed)
    message = ready_message(failed)
    assert message.startswith("AWS authentication failed: shared credentials file:"), message
    assert "profile 'missing' (AWS_PROFILE) not found" in message


async def test_the_first_configured_link_wins(
    env: pytest.MonkeyPatch,
    fluxd: Fluxd,
    s3_store: S3Store,
    s3_front: S3Front,
    sts: StsFront,
    endpoints: CredentialEndpoints,
    tmp_path: Path,
) -> None:
    """Environment over file over web identity over container over instance metadata:
    with every link configured, each one removed hands over to the next."""
    token_file = tmp_path / "token"
    token_file.write_text("web-identity-token")
    env.setenv("AWS_ACCESS_KEY_ID", s3_store.access_key)
    env.setenv("AWS_SECRET_ACCESS_KEY", s3_store.secret_key)
    env.setenv(
        "AWS_SHARED_CREDENTIALS_FILE",
        str(credentials_file(tmp_path / "wrong", {"default": ("AKIAWRONG", "wrong")})),
    )
    env.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    env.setenv("AWS_ROLE_ARN", ROLE_ARN)
    env.setenv("AWS_ENDPOINT_URL", sts.url)
    env.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{endpoints.url}/creds")
    env.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", endpoints.container_token)
    env.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoints.url)
    env.delenv("AWS_EC2_METADATA_DISABLED")
    bucket = filled_bucket(s3_store)
    await fluxd.create(BUCKET, "order", aws_bucket(s3_front, bucket))
    await fluxd.wait_ready(BUCKET, "order")
    assert sts.forms == [], "the environment wins"
    assert endpoints.requests == []

    env.delenv("AWS_ACCESS_KEY_ID")
    failed = await reconcile_now(fluxd, "order")
    assert not is_ready_now(failed), "the file is next, and its keys are wrong"
    assert sts.forms == []
    assert endpoints.requests == []

    env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "absent"))
    assert is_ready_now(await reconcile_now(fluxd, "order"))
    assert len(sts.forms) == 1, "web identity is next"
    assert endpoints.requests == []

    env.delenv("AWS_WEB_IDENTITY_TOKEN_FILE")
    assert is_ready_now(await reconcile_now(fluxd, "order"))
    assert endpoints.paths("GET") == ["/creds"], "the container agent is next"
    assert endpoints.paths("PUT") == []

    env.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    assert is_ready_now(await reconcile_now(fluxd, "order"))
    assert endpoints.paths("PUT") == ["/latest/api/token"], "instance metadata comes last"


async def test_container_agent_with_an_authorization_token_file(
    env: pytest.MonkeyPatch,
    fluxd: Fluxd,
    s3_store: S3Store,
    s3_front: S3Front,
    endpoints: CredentialEndpoints,
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "eks-pod-identity-token"
    token_file.write_text("wrong-token")
    env.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{endpoints.url}/creds")
    env.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))
    env.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", endpoints.container_token)
    bucket = filled_bucket(s3_store)
    await fluxd.create(BUCKET, "pod-identity", aws_bucket(s3_front, bucket))
    failed = await fluxd.wait_not_ready(BUCKET, "pod-identity", "AuthenticationFailed")
    assert ready_message(failed) == (
        f"AWS authentication failed: container: {endpoints.url}/creds answered 403: "
        "AccessDenied: bad authorization token: set spec.secretRef, or give fluxd AWS "
        "credentials through one of these"
    ), "the token file wins over the variable"

    token_file.write_text(endpoints.container_token + "\n")
    obj = await reconcile_now(fluxd, "pod-identity")
    assert is_ready_now(obj), "the token file is read again on every fetch (it rotates)"
    assert await fetched_files(fluxd, obj) == {"deploy/app.yaml"}
    assert [headers.get("Authorization") for _, _, headers in endpoints.requests] == [
        "wrong-token",
        endpoints.container_token,
    ]


async def test_instance_metadata_credentials_are_refreshed_before_they_expire(
    env: pytest.MonkeyPatch,
    fluxd: Fluxd,
    s3_store: S3Store,
    s3_front: S3Front,
    endpoints: CredentialEndpoints,
) -> None:
    env.delenv("AWS_EC2_METADATA_DISABLED")
    env.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoints.url)
    endpoints.expires_in = timedelta(minutes=1)  # within the refresh margin
    bucket = filled_bucket(s3_store)
    await fluxd.create(BUCKET, "ec2", aws_bucket(s3_front, bucket))
    obj = await fluxd.wait_ready(BUCKET, "ec2")
    assert await fetched_files(fluxd, obj) == {"deploy/app.yaml"}
    prefix = "/latest/meta-data/iam/security-credentials/"
    assert [(method, path) for method, path, _ in endpoints.requests] == [
        ("PUT", "/latest/api/token"),
        ("GET", prefix),
        ("GET", prefix + ROLE_NAME),
    ]
    assert all(
        headers.get("X-aws-ec2-metadata-token") == IMDS_TOKEN
        for method, _, headers in endpoints.requests
        if method == "GET"
    ), "IMDSv2: every GET carries the session token"

    assert is_ready_now(await reconcile_now(fluxd, "ec2"))
    assert endpoints.paths("GET").count(prefix + ROLE_NAME) == 2, "about to expire: fetched again"

    endpoints.expires_in = timedelta(hours=6)
    assert is_ready_now(await reconcile_now(fluxd, "ec2"))
    assert is_ready_now(await reconcile_now(fluxd, "ec2"))
    assert endpoints.paths("GET").count(prefix + ROLE_NAME) == 3, "valid for hours: reused"

    endpoints.role_attached = False
    endpoints.expires_in = timedelta(minutes=1)
    assert is_ready_now(await reconcile_now(fluxd, "ec2"))  # the 6-hour keys still serve


async def test_broken_links_fail_naming_the_link_and_recover(
    env: pytest.MonkeyPatch,
    fluxd: Fluxd,
    s3_store: S3Store,
    s3_front: S3Front,
    sts: StsFront,
    endpoints: CredentialEndpoints,
    tmp_path: Path,
) -> None:
    bucket = filled_bucket(s3_store)
    await fluxd.create(BUCKET, "nothing", aws_bucket(s3_front, bucket))
    failed = await fluxd.wait_not_ready(BUCKET, "nothing", "AuthenticationFailed")
    message = ready_message(failed)
    for link in (
        "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set",
        f"shared credentials file: {tmp_path}/.aws/credentials does not exist",
        "web identity: AWS_WEB_IDENTITY_TOKEN_FILE not set",
        "container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI not set",
        "instance metadata: disabled by AWS_EC2_METADATA_DISABLED",
    ):
        assert link in message, message
    assert message.startswith("AWS authentication failed: no credentials found")

    token_file = tmp_path / "token"
    env.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    env.setenv("AWS_ROLE_ARN", ROLE_ARN)
    env.setenv("AWS_ENDPOINT_URL_STS", sts.url)
    message = ready_message(await reconcile_now(fluxd, "nothing"))
    assert message.startswith(
        f"AWS authentication failed: web identity: AWS_WEB_IDENTITY_TOKEN_FILE {token_file} "
        "cannot be read"
    ), message

    token_file.write_text("expired-token")
    sts.refuse = True
    message = ready_message(await reconcile_now(fluxd, "nothing"))
    assert message.startswith(
        f"AWS authentication failed: web identity: AssumeRoleWithWebIdentity at {sts.url} "
        "answered 400: InvalidIdentityToken: Couldn't retrieve verification key"
    ), message

    env.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{free_port()}")
    message = ready_message(await reconcile_now(fluxd, "nothing"))
    assert message.startswith("AWS authentication failed: web identity: Cannot connect"), message

    env.delenv("AWS_WEB_IDENTITY_TOKEN_FILE")
    env.delenv("AWS_EC2_METADATA_DISABLED")
    env.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoints.url)
    endpoints.role_attached = False
    message = ready_message(await reconcile_now(fluxd, "nothing"))
    assert f"instance metadata at {endpoints.url}: no IAM role attached" in message, message

    env.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds")
    message = ready_message(await reconcile_now(fluxd, "nothing"))
    assert "container: AWS_CONTAINER_CREDENTIALS_FULL_URI 'http://example.com/creds' must be" in (
        message
    ), "plain HTTP credentials only from loopback or the agent address"

    env.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    endpoints.role_attached = True
    recovered = await reconcile_now(fluxd, "nothing")
    assert is_ready_now(recovered), "mended, the same Bucket becomes Ready: the daemon is up"
    assert await fetched_files(fluxd, recovered) == {"deploy/app.yaml"}
