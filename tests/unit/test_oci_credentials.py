"""dockerconfigjson Secrets read as a Docker keychain reads them."""

from __future__ import annotations

import base64
import json

import pytest

from fluxd.sources import oci


def config(auths: object) -> dict[str, bytes]:
    return {".dockerconfigjson": json.dumps({"auths": auths}).encode()}


def test_the_entry_of_the_host_is_used() -> None:
    data = config(
        {
            "https://other.io/v1/": {"username": "o", "password": "p"},
            "r.io:5000": {"username": "me", "password": "secret"},
        }
    )
    auth = oci.docker_config_auth(data, "r.io:5000", secret="ns/pull")
    assert (auth.username, auth.password) == ("me", "secret")
    assert auth.basic == "Basic " + base64.b64encode(b"me:secret").decode()


def test_auth_field_alone_is_decoded() -> None:
    token = base64.b64encode(b"me:pa:ss").decode()
    auth = oci.docker_config_auth(config({"r.io": {"auth": token}}), "r.io", secret="ns/pull")
    assert (auth.username, auth.password) == ("me", "pa:ss")


def test_a_host_without_an_entry_is_anonymous() -> None:
    auth = oci.docker_config_auth(config({"other.io": {"auth": "eDp5"}}), "r.io", secret="s")
    assert auth.basic is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"username": b"x"}, "has no '.dockerconfigjson' key"),
        ({".dockerconfigjson": b"{not json"}, "is not a docker config"),
        (config({"r.io": {"auth": "%%%"}}), "is not base64"),
    ],
)
def test_malformed_secrets_are_authentication_failed(data: dict[str, bytes], expected: str) -> None:
    with pytest.raises(oci.RegistryError) as raised:
        oci.docker_config_auth(data, "r.io", secret="ns/pull")
    assert raised.value.reason == oci.AUTHENTICATION_FAILED
    assert expected in str(raised.value)
    assert "ns/pull" in str(raised.value)


def test_bad_tls_data_is_authentication_failed() -> None:
    with pytest.raises(oci.RegistryError, match="not valid PEM") as raised:
        oci.RegistryAuth(ca=b"not a certificate").ssl_context()
    assert raised.value.reason == oci.AUTHENTICATION_FAILED
    with pytest.raises(oci.RegistryError, match="must be given together"):
        oci.RegistryAuth(cert=b"x").ssl_context()
