"""The parts of ``fluxd bootstrap github|gitlab``'s provider client that need no server:
the SSH clone URL handed to git, and a hostname, repository name or CA file refused before any
request."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxd.cli.gitprovider import ProviderError, ensure_repository, ssh_clone_url


@pytest.mark.parametrize(
    ("reported", "usable"),
    [
        ("git@github.com:fluxd-org/fleet.git", "ssh://git@github.com/fluxd-org/fleet.git"),
        ("git@gitlab.com:group/sub/fleet.git", "ssh://git@gitlab.com/group/sub/fleet.git"),
        (
            "ssh://git@ghe.example.com:2222/org/fleet.git",
            "ssh://git@ghe.example.com:2222/org/fleet.git",
        ),
    ],
)
def test_the_ssh_clone_address_becomes_a_url(reported: str, usable: str) -> None:
    assert ssh_clone_url(reported) == usable


@pytest.mark.parametrize("hostname", ["https://github.example.com", "github.example.com/api", " "])
async def test_a_hostname_that_is_not_a_host_is_refused(hostname: str) -> None:
    with pytest.raises(ProviderError, match="is not a host name"):
        await ensure_repository(
            "github",
            owner="fluxd-org",
            repository="fleet",
            token="t0ken",
            personal=False,
            private=True,
            hostname=hostname,
        )


async def test_a_repository_given_with_its_owner_is_refused() -> None:
    with pytest.raises(ProviderError, match="the repository as a bare name"):
        await ensure_repository(
            "gitlab",
            owner="group",
            repository="group/fleet",
            token="t0ken",
            personal=False,
            private=True,
        )


async def test_a_ca_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "ca.crt"
    with pytest.raises(ProviderError, match=f"GitHub: cannot use the CA file {missing}"):
        await ensure_repository(
            "github",
            owner="fluxd-org",
            repository="fleet",
            token="t0ken",
            personal=False,
            private=True,
            hostname="ghe.example.com",
            ca_file=str(missing),
        )
