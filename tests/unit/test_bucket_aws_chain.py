"""The AWS credential chain's pure parts: the shared credentials file, STS and metadata
answers, the STS endpoint, the refresh margin, and the links decided without a network
call (their order and the errors that name a misconfigured one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fluxd.sources.bucket.aws_chain import (
    REFRESH_MARGIN,
    AwsChainError,
    ExpiringCredentials,
    aws_credentials,
    credentials_from_file,
    credentials_from_json,
    credentials_from_sts,
    sts_endpoint,
    sts_error,
)
from fluxd.sources.bucket.sigv4 import Credentials

CREDENTIALS_FILE = """\
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default-secret

[flux]
aws_access_key_id=AKIAFLUX
aws_secret_access_key=flux-secret
aws_session_token = flux-token
region = eu-west-1

[assumer]
role_arn = arn:aws:iam::123456789012:role/x
source_profile = default
"""

STS_ANSWER = b"""\
<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:flux-system:fluxd</SubjectFromWebIdentityToken>
    <Credentials>
      <SessionToken>session/token+value==</SessionToken>
      <SecretAccessKey>temporary-secret</SecretAccessKey>
      <Expiration>2026-12-04T23:00:00Z</Expiration>
      <AccessKeyId>ASIATEMPORARY</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
"""

STS_REFUSAL = b"""\
<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform
sts:AssumeRoleWithWebIdentity</Message></Error>
</ErrorResponse>
"""


def test_the_shared_file_gives_the_profile_asked_for() -> None:
    assert credentials_from_file(CREDENTIALS_FILE, "default", "creds") == Credentials(
        "AKIADEFAULT", "default-secret"
    )
    assert credentials_from_file(CREDENTIALS_FILE, "flux", "creds") == Credentials(
        "AKIAFLUX", "flux-secret", "flux-token"
    )
    assert credentials_from_file(CREDENTIALS_FILE, "absent", "creds") is None


def test_a_profile_without_keys_is_refused_not_skipped() -> None:
    with pytest.raises(AwsChainError) as caught:
        credentials_from_file(CREDENTIALS_FILE, "assumer", "/home/u/.aws/credentials")
    assert str(caught.value) == (
        "shared credentials file: profile 'assumer' in /home/u/.aws/credentials has no "
        "aws_access_key_id and aws_secret_access_key (role_arn, credential_process and sso "
        "profiles are not supported by fluxd)"
    )


def test_a_malformed_shared_file_names_the_file() -> None:
    with pytest.raises(AwsChainError, match=r"shared credentials file: /c is not a valid INI"):
        credentials_from_file("aws_access_key_id = outside any profile\n", "default", "/c")


def test_sts_answer_gives_temporary_credentials_and_their_expiration() -> None:
    got = credentials_from_sts(STS_ANSWER)
    assert got.credentials == Credentials(
        "ASIATEMPORARY", "temporary-secret", "session/token+value=="
    )
    assert got.expires_at == datetime(2026, 12, 4, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not xml", "STS answered something not XML"),
        (b"<Response/>", "the STS answer holds no Credentials"),
        (
            b"<R><Credentials><AccessKeyId>A</AccessKeyId></Credentials></R>",
            "has no AccessKeyId and SecretAccessKey",
        ),
    ],
)
def test_unusable_sts_answers_are_errors(body: bytes, problem: str) -> None:
    with pytest.raises(AwsChainError, match=problem):
        credentials_from_sts(body)


def test_sts_refusal_reads_as_code_and_message() -> None:
    assert sts_error(STS_REFUSAL) == (
        "AccessDenied: Not authorized to perform\nsts:AssumeRoleWithWebIdentity"
    )
    assert sts_error(b"<html>bad gateway</html>") == ""
    assert sts_error(b"upstream timed out") == "upstream timed out"


def test_metadata_json_gives_credentials() -> None:
    body = (
        b'{"Code": "Success", "LastUpdated": "2026-12-04T21:00:00Z", "Type": "AWS-HMAC", '
        b'"AccessKeyId": "ASIAIMDS", "SecretAccessKey": "s", "Token": "t", '
        b'"Expiration": "2026-12-05T03:00:00+00:00"}'
    )
    got = credentials_from_json(body, "instance metadata")
    assert got == ExpiringCredentials(
        Credentials("ASIAIMDS", "s", "t"), datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html/>", "agent is not JSON"),
        (b"[]", "agent is not a JSON object"),
        (b'{"Code": "AssumeRoleUnauthorizedAccess", "Message": "no"}', "agent says Assume"),
        (b'{"AccessKeyId": "A"}', "agent has no AccessKeyId and SecretAccessKey"),
        (
            b'{"AccessKeyId": "A", "SecretAccessKey": "s", "Expiration": "tomorrow"}',
            "agent has an invalid Expiration 'tomorrow'",
        ),
    ],
)
def test_unusable_metadata_answers_are_errors(body: bytes, problem: str) -> None:
    with pytest.raises(AwsChainError, match=problem):
        credentials_from_json(body, "agent")


@pytest.mark.parametrize(
    ("environ", "endpoint"),
    [
        ({}, "https://sts.amazonaws.com"),
        ({"AWS_REGION": "eu-central-1"}, "https://sts.eu-central-1.amazonaws.com"),
        ({"AWS_DEFAULT_REGION": "cn-north-1"}, "https://sts.cn-north-1.amazonaws.com.cn"),
        (
            {"AWS_REGION": "eu-central-1", "AWS_STS_REGIONAL_ENDPOINTS": "legacy"},
            "https://sts.amazonaws.com",
        ),
        (
            {"AWS_ENDPOINT_URL": "http://all:1", "AWS_ENDPOINT_URL_STS": "http://sts:2"},
            "http://sts:2",
        ),
        ({"AWS_ENDPOINT_URL": "http://all:1", "AWS_REGION": "x-1"}, "http://all:1"),
        (
            {
                "AWS_ENDPOINT_URL_STS": "http://sts:2",
                "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
                "AWS_REGION": "us-west-2",
            },
            "https://sts.us-west-2.amazonaws.com",
        ),
    ],
)
def test_sts_endpoint_follows_the_sdk_settings(environ: dict[str, str], endpoint: str) -> None:
    assert sts_endpoint(environ) == endpoint


def test_credentials_are_due_for_refresh_within_the_margin() -> None:
    now = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)
    keys = Credentials("A", "s")
    assert ExpiringCredentials(keys, None).fresh(now)
    assert ExpiringCredentials(keys, now + REFRESH_MARGIN + timedelta(seconds=1)).fresh(now)
    assert not ExpiringCredentials(keys, now + REFRESH_MARGIN).fresh(now)
    assert not ExpiringCredentials(keys, now - timedelta(hours=1)).fresh(now)


async def test_environment_wins_over_the_shared_file(tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(CREDENTIALS_FILE)
    environ = {"HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true"}
    assert await aws_credentials(environ) == Credentials("AKIADEFAULT", "default-secret")
    with_keys = {**environ, "AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env"}
    assert await aws_credentials(with_keys) == Credentials("AKIAENV", "env")


async def test_the_shared_file_wins_over_web_identity(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(CREDENTIALS_FILE)
    environ = {
        "AWS_SHARED_CREDENTIALS_FILE": str(path),
        "AWS_PROFILE": "flux",
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(tmp_path / "never-read"),
    }
    assert await aws_credentials(environ) == Credentials("AKIAFLUX", "flux-secret", "flux-token")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"AWS_PROFILE": "flux", "AWS_SHARED_CREDENTIALS_FILE": "/nowhere/credentials"},
            "shared credentials file: AWS_PROFILE 'flux' is set but /nowhere/credentials "
            "does not exist",
        ),
        (
            {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token"},
            "web identity: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not",
        ),
        (
            {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.0.0.1/creds"},
            "container: AWS_CONTAINER_CREDENTIALS_FULL_URI 'http://10.0.0.1/creds' must be "
            "https, or http to a loopback address or the ECS/EKS agent",
        ),
        (
            {"AWS_EC2_METADATA_DISABLED": "TRUE"},
            "no credentials found (environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "not set; shared credentials file: HOME not set; web identity: "
            "AWS_WEB_IDENTITY_TOKEN_FILE not set; container: "
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI not set; instance "
            "metadata: disabled by AWS_EC2_METADATA_DISABLED)",
        ),
    ],
)
async def test_a_misconfigured_link_is_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(AwsChainError) as caught:
        await aws_credentials(environ)
    assert str(caught.value).startswith(message), str(caught.value)
