"""How a Bucket's spec and Secrets become store settings: keys, the AWS environment,
the endpoint, and the errors that name what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.api import BUCKET, BucketSpec
from fluxd.kube.objects import SecretNotFound
from fluxd.sources.bucket.credentials import BucketConfigError, store_settings
from fluxd.sources.bucket.sigv4 import Credentials


class Secrets:
    def __init__(self, **secrets: dict[str, bytes]) -> None:
        self.secrets = secrets

    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes]:
        if name not in self.secrets:
            raise SecretNotFound(f"secret '{namespace}/{name}' not found")
        return self.secrets[name]


def spec(**fields: Any) -> BucketSpec:
    return BUCKET.parse_spec(
        {
            "metadata": {"name": "b", "namespace": "ns"},
            "spec": {"interval": "1m", "bucketName": "b", "endpoint": "s3.local:9000", **fields},
        }
    )


async def test_keys_from_the_secret() -> None:
    secrets = Secrets(keys={"accesskey": b"AK", "secretkey": b"SK"})
    settings = await store_settings(secrets, "ns", spec(secretRef={"name": "keys"}, insecure=True))
    assert settings.credentials == Credentials("AK", "SK")
    assert (settings.endpoint, settings.secure, settings.region) == (
        "s3.local:9000",
        False,
        "us-east-1",
    )


async def test_empty_keys_mean_anonymous() -> None:
    secrets = Secrets(keys={"accesskey": b"", "secretkey": b""})
    settings = await store_settings(secrets, "ns", spec(secretRef={"name": "keys"}))
    assert settings.credentials is None


async def test_a_secret_without_both_keys_is_refused_as_flux_refuses_it() -> None:
    with pytest.raises(BucketConfigError) as caught:
        await store_settings(
            Secrets(keys={"accesskey": b"AK"}), "ns", spec(secretRef={"name": "keys"})
        )
    assert caught.value.message == (
        "invalid 'keys' secret data: required fields 'accesskey' and 'secretkey'"
    )
    assert caught.value.reason == "AuthenticationFailed"


async def test_a_missing_secret_is_named() -> None:
    with pytest.raises(BucketConfigError, match="secret 'ns/gone' not found"):
        await store_settings(Secrets(), "ns", spec(secretRef={"name": "gone"}))


async def test_aws_provider_reads_the_environment() -> None:
    environ = {
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
        "AWS_SESSION_TOKEN": "T",
        "AWS_REGION": "eu-central-1",
    }
    settings = await store_settings(Secrets(), "ns", spec(provider="aws"), environ)
    assert settings.credentials == Credentials("AK", "SK", "T")
    assert settings.region == "eu-central-1"


async def test_aws_provider_without_credentials_says_where_to_put_them() -> None:
    # No link of the chain set up (instance metadata off: no network in unit tests).
    environ = {"AWS_EC2_METADATA_DISABLED": "true", "HOME": "/nonexistent"}
    with pytest.raises(BucketConfigError, match="AWS_ACCESS_KEY_ID"):
        await store_settings(Secrets(), "ns", spec(provider="aws"), environ)


async def test_generic_provider_ignores_the_aws_environment() -> None:
    environ = {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}
    settings = await store_settings(Secrets(), "ns", spec(), environ)
    assert settings.credentials is None


@pytest.mark.parametrize("endpoint", ["https://s3.local", "s3.local/path", "s3.local:port", ""])
async def test_an_endpoint_that_is_no_host_port_stalls(endpoint: str) -> None:
    with pytest.raises(BucketConfigError) as caught:
        await store_settings(Secrets(), "ns", spec(endpoint=endpoint))
    assert caught.value.stalled
    assert caught.value.reason == "URLInvalid"
    assert f"'{endpoint}'" in caught.value.message


async def test_tls_secret_without_pem_is_named() -> None:
    secrets = Secrets(tls={"ca.crt": b"not a certificate"})
    with pytest.raises(BucketConfigError, match="secret 'ns/tls' is not valid PEM"):
        await store_settings(secrets, "ns", spec(certSecretRef={"name": "tls"}))
