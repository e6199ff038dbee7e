"""A GitRepository Secret's keys as git credentials (fluxd.sources.git.credentials)."""

from __future__ import annotations

from fluxd.sources.git import GitAuth, auth_from_secret


def test_empty_secret_is_anonymous() -> None:
    assert auth_from_secret({}) == GitAuth()


def test_https_keys() -> None:
    auth = auth_from_secret(
        {"username": b"bob", "password": b"hunter2", "bearerToken": b"tok", "ca.crt": b"PEM"}
    )
    assert auth == GitAuth(
        username="bob", password="hunter2", bearer_token="tok", ca_file=b"PEM", passphrase=None
    )


def test_legacy_ca_file_key_when_ca_crt_is_absent() -> None:
    assert auth_from_secret({"caFile": b"OLD"}).ca_file == b"OLD"
    assert auth_from_secret({"caFile": b"OLD", "ca.crt": b"NEW"}).ca_file == b"NEW"


def test_ssh_keys_with_the_password_as_passphrase() -> None:
    auth = auth_from_secret({"identity": b"KEY", "known_hosts": b"HOSTS", "password": b"pass"})
    assert auth.identity == b"KEY"
    assert auth.known_hosts == b"HOSTS"
    assert auth.passphrase == "pass"
    assert auth.password == "pass"
