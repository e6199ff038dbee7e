"""The pieces of proxying and cosign verification that need no server: which requests carry
the proxy's credentials themselves, which Secret keys are cosign keys, and the tag cosign
stores a digest's signatures under."""

from __future__ import annotations

import base64

import pytest

from fluxd.sources import oci
from fluxd.sources.proxy import proxy_from_secret


def test_only_plain_http_requests_carry_the_proxy_credentials_themselves() -> None:
    proxy = proxy_from_secret(
        {"address": b"http://proxy.example:3128", "username": b"u", "password": b"p"}, "ns/p"
    )
    expected = {"proxy-authorization": f"Basic {base64.b64encode(b'u:p').decode()}"}
    assert proxy.forwarded_headers("http://registry.example/v2/") == expected
    assert proxy.forwarded_headers("https://registry.example/v2/") == {}, "not into the tunnel"
    anonymous = proxy_from_secret({"address": b"http://proxy.example:3128"}, "ns/p")
    assert anonymous.forwarded_headers("http://registry.example/v2/") == {}


def test_every_pub_key_of_the_secret_is_a_cosign_key_in_name_order() -> None:
    keys = oci.public_keys({"z.pub": b"Z", "cosign.key": b"private", "a.pub": b"A"}, "ns/keys")
    assert keys == [oci.PublicKey("a.pub", b"A"), oci.PublicKey("z.pub", b"Z")]


def test_a_secret_without_pub_keys_is_named_with_what_it_holds() -> None:
    with pytest.raises(oci.RegistryError) as raised:
        oci.public_keys({"cosign.key": b"private"}, "ns/keys")
    assert raised.value.reason == oci.VERIFICATION_ERROR
    assert "secret 'ns/keys' of spec.verify.secretRef holds no public key" in str(raised.value)
    assert "the Secret has 'cosign.key'" in str(raised.value)


def test_signatures_live_at_cosigns_tag_of_the_digest() -> None:
    assert oci.signature_tag(f"sha256:{'ab' * 32}") == f"sha256-{'ab' * 32}.sig"
