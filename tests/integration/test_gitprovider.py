"""``fluxd bootstrap github|gitlab``'s provider side against loopback stand-ins of both APIs
(tests/gitproviders.py): the repository is found or created where the user asked, the
deploy key is registered once, every refusal is one line that says why without the token,
and what was created really takes a push over HTTPS with the token and a clone over SSH
with the deploy key."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from fluxd.api import GitRepositoryRef
from fluxd.cli.gitprovider import ProviderError, ensure_deploy_key, ensure_repository
from fluxd.sources.git import Author, GitAuth, GitError, commit_and_push, fetch
from fluxd.sources.git.push import unborn_checkout
from tests.gitproviders import DEFAULT_BRANCH, USER, GitProviderStandIn
from tests.gitservers import free_port

pytestmark = pytest.mark.integration

TIMEOUT = 20.0
AUTHOR = Author("Flux Bootstrap", "bootstrap@example.com")
NAMES = {"github": "GitHub", "gitlab": "GitLab"}


@pytest.fixture(params=["github", "gitlab"])
def stand_in(request: pytest.FixtureRequest) -> GitProviderStandIn:
    provider: GitProviderStandIn = request.getfixturevalue(f"{request.param}_provider")
    return provider


def new_key() -> tuple[str, bytes]:
    """(OpenSSH public key line with a comment, OpenSSH private key)."""
    key = ed25519.Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return f"{public.decode()} flux-system", private


def posts(stand_in: GitProviderStandIn) -> list[str]:
    return [path for method, path in stand_in.requests if method == "POST"]


async def test_creates_a_private_personal_repository(stand_in: GitProviderStandIn) -> None:
    repository = await ensure_repository(
        stand_in.provider,
        owner=USER,
        repository="fleet",
        token=stand_in.token,
        personal=True,
        private=True,
        hostname=stand_in.hostname,
        ca_file=stand_in.ca_file,
    )
    assert repository.created
    assert repository.https_url == f"https://{stand_in.hostname}/{USER}/fleet.git"
    assert repository.ssh_url.startswith(f"ssh://{stand_in.ssh.user}@127.0.0.1:")
    # GitHub names the branch an empty repository will get; GitLab names none until a push.
    expected_branch = DEFAULT_BRANCH if stand_in.provider == "github" else None
    assert repository.default_branch == expected_branch
    hosted = stand_in.repositories[f"{USER}/fleet"]
    assert hosted.private
    assert repository.ssh_url == hosted.ssh_url


async def test_creates_a_public_repository_in_the_organization(
    stand_in: GitProviderStandIn,
) -> None:
    repository = await ensure_repository(
        stand_in.provider,
        owner=stand_in.organization,
        repository="fleet-infra",
        token=stand_in.token,
        personal=False,
        private=False,
        hostname=stand_in.hostname,
        ca_file=stand_in.ca_file,
    )
    assert repository.created
    assert repository.https_url.endswith(f"/{stand_in.organization}/fleet-infra.git")
    hosted = stand_in.repositories[f"{stand_in.organization}/fleet-infra"]
    assert not hosted.private
    assert f"{USER}/fleet-infra" not in stand_in.repositories


async def test_an_existing_repository_is_found_not_created_again(
    stand_in: GitProviderStandIn,
) -> None:
    existing = stand_in.add_repository(stand_in.organization, "fleet", private=False)
    existing.remote.commit({"README.md": "hello\n"}, branch=DEFAULT_BRANCH)
    repository = await ensure_repository(
        stand_in.provider,
        owner=stand_in.organization,
        repository="fleet",
        token=stand_in.token,
        personal=False,
        private=True,
        hostname=stand_in.hostname,
        ca_file=stand_in.ca_file,
    )
    assert not repository.created
    assert repository.https_url == existing.https_url
    assert repository.default_branch == DEFAULT_BRANCH
    assert posts(stand_in) == []
    assert not existing.private  # found as it is: bootstrap does not change it


async def test_a_personal_repository_for_another_user_is_refused(
    stand_in: GitProviderStandIn,
) -> None:
    with pytest.raises(ProviderError) as refused:
        await ensure_repository(
            stand_in.provider,
            owner="somebody-else",
            repository="fleet",
            token=stand_in.token,
            personal=True,
            private=True,
            hostname=stand_in.hostname,
            ca_file=stand_in.ca_file,
        )
    message = str(refused.value)
    assert message.startswith(f"{NAMES[stand_in.provider]}: ")
    assert "'somebody-else' is not the token's user ('fluxd-user')" in message
    assert posts(stand_in) == []
    assert stand_in.repositories == {}


async def test_an_unknown_organization_is_named(stand_in: GitProviderStandIn) -> None:
    with pytest.raises(ProviderError) as refused:
        await ensure_repository(
            stand_in.provider,
            owner="no-such-org",
            repository="fleet",
            token=stand_in.token,
            personal=False,
            private=True,
            hostname=stand_in.hostname,
            ca_file=stand_in.ca_file,
        )
    kind = "organization" if stand_in.provider == "github" else "group"
    assert "HTTP 404" in str(refused.value)
    assert f"no {kind} named 'no-such-org'" in str(refused.value)
    assert stand_in.repositories == {}


async def test_a_bad_token_names_the_provider_and_status_but_not_the_token(
    stand_in: GitProviderStandIn,
) -> None:
    wrong = "wrong-token-0123456789"
    with pytest.raises(ProviderError) as refused:
        await ensure_repository(
            stand_in.provider,
            owner=USER,
            repository="fleet",
            token=wrong,
            personal=True,
            private=True,
            hostname=stand_in.hostname,
            ca_file=stand_in.ca_file,
        )
    message = str(refused.value)
    provider_says = "Bad credentials" if stand_in.provider == "github" else "401 Unauthorized"
    assert message == (
        f"{NAMES[stand_in.provider]}: looking up repository {USER}/fleet failed:"
        f" HTTP 401: {provider_says} (the token was refused)"
    )
    assert wrong not in message
    assert stand_in.token not in message
    with pytest.raises(ProviderError, match="HTTP 401") as refused_key:
        await ensure_deploy_key(
            stand_in.provider,
            owner=USER,
            repository="fleet",
            token=wrong,
            title="flux-system-main",
            public_key=new_key()[0],
            read_only=True,
            hostname=stand_in.hostname,
            ca_file=stand_in.ca_file,
        )
    assert wrong not in str(refused_key.value)


async def test_a_repository_the_provider_will_not_create_says_why(
    stand_in: GitProviderStandIn,
) -> None:
    with pytest.raises(ProviderError) as refused:
        await ensure_repository(
            stand_in.provider,
            owner=stand_in.organization,
            repository="fleet infra!",
            token=stand_in.token,
            personal=False,
            private=True,
            hostname=stand_in.hostname,
            ca_file=stand_in.ca_file,
        )
    message = str(refused.value)
    prefix = f"creating repository {stand_in.organization}/fleet infra! failed"
    assert prefix in message
    if stand_in.provider == "github":
        assert message.endswith("HTTP 422: Repository creation failed: name is invalid")
    else:
        assert "HTTP 400: path can contain only letters, digits" in message
    assert stand_in.repositories == {}


async def test_the_deploy_key_is_added_once_and_replaced_when_it_changes(
    stand_in: GitProviderStandIn,
) -> None:
    hosted = stand_in.add_repository(USER, "fleet")
    public_key, _ = new_key()

    async def ensure(key: str, *, read_only: bool) -> bool:
        return await ensure_deploy_key(
            stand_in.provider,
            owner=USER,
            repository="fleet",
            token=stand_in.token,
            title="flux-system-main-clusters-dev",
            public_key=key,
            read_only=read_only,
            hostname=stand_in.hostname,
            ca_file=stand_in.ca_file,
        )

    assert await ensure(public_key, read_only=True)
    assert not await ensure(public_key, read_only=True)
    assert [(k.title, k.key, k.read_only) for k in hosted.keys] == [
        ("flux-system-main-clusters-dev", " ".join(public_key.split()[:2]), True)
    ]

    assert await ensure(public_key, read_only=False)  # --read-write-key on a re-run
    assert [k.read_only for k in hosted.keys] == [False]

    rotated, _ = new_key()
    assert await ensure(rotated, read_only=False)
    assert [k.key for k in hosted.keys] == [" ".join(rotated.split()[:2])]


async def test_deploy_keys_are_found_on_later_pages(stand_in: GitProviderStandIn) -> None:
    hosted = stand_in.add_repository(stand_in.organization, "fleet")
    stand_in.max_per_page = 1
    for title in ("laptop", "ci"):
        stand_in.add_key(hosted, title, new_key()[0], read_only=True)
    public_key, _ = new_key()
    stand_in.add_key(hosted, "flux-system-main", public_key, read_only=True)
    added = await ensure_deploy_key(
        stand_in.provider,
        owner=stand_in.organization,
        repository="fleet",
        token=stand_in.token,
        title="flux-system-main",
        public_key=public_key,
        read_only=True,
        hostname=stand_in.hostname,
        ca_file=stand_in.ca_file,
    )
    assert not added
    pages = [path for method, path in stand_in.requests if method == "GET"]
    assert len(pages) == 3
    assert pages[2].endswith("page=3")
    assert [k.title for k in hosted.keys] == ["laptop", "ci", "flux-system-main"]


async def test_a_malformed_public_key_is_refused_before_any_call(
    stand_in: GitProviderStandIn,
) -> None:
    stand_in.add_repository(USER, "fleet")
    with pytest.raises(ProviderError, match="'flux-system' is not an OpenSSH public key line"):
        await ensure_deploy_key(
            stand_in.provider,
            owner=USER,
            repository="fleet",
            token=stand_in.token,
            title="flux-system",
            public_key="-----BEGIN OPENSSH PRIVATE KEY-----",
            read_only=True,
            hostname=stand_in.hostname,
            ca_file=stand_in.ca_file,
        )
    assert stand_in.requests == []


async def test_a_deploy_key_for_a_missing_repository_names_it(
    stand_in: GitProviderStandIn,
) -> None:
    with pytest.raises(ProviderError) as refused:
        await ensure_deploy_key(
            stand_in.provider,
            owner=USER,
            repository="nowhere",
            token=stand_in.token,
            title="flux-system",
            public_key=new_key()[0],
            read_only=True,
            hostname=stand_in.hostname,
            ca_file=stand_in.ca_file,
        )
    assert "listing the deploy keys of fluxd-user/nowhere failed: HTTP 404" in str(refused.value)
    assert "no repository fluxd-user/nowhere, or the token cannot see it" in str(refused.value)


async def test_an_unreachable_or_untrusted_server_is_reported(
    stand_in: GitProviderStandIn,
) -> None:
    port = free_port()
    with pytest.raises(ProviderError, match=f"cannot reach https://127.0.0.1:{port}/api/v"):
        await ensure_repository(
            stand_in.provider,
            owner=USER,
            repository="fleet",
            token=stand_in.token,
            personal=True,
            private=True,
            hostname=f"127.0.0.1:{port}",
            ca_file=stand_in.ca_file,
        )
    with pytest.raises(ProviderError, match="certificate verify failed"):
        await ensure_repository(
            stand_in.provider,
            owner=USER,
            repository="fleet",
            token=stand_in.token,
            personal=True,
            private=True,
            hostname=stand_in.hostname,
        )
    assert stand_in.requests == []


async def test_a_created_repository_takes_a_push_with_the_token_and_a_clone_with_the_key(
    stand_in: GitProviderStandIn,
) -> None:
    repository = await ensure_repository(
        stand_in.provider,
        owner=stand_in.organization,
        repository="fleet",
        token=stand_in.token,
        personal=False,
        private=True,
        hostname=stand_in.hostname,
        ca_file=stand_in.ca_file,
    )
    public_key, private_key = new_key()
    assert await ensure_deploy_key(
        stand_in.provider,
        owner=stand_in.organization,
        repository="fleet",
        token=stand_in.token,
        title="flux-system-main",
        public_key=public_key,
        read_only=True,
        hostname=stand_in.hostname,
        ca_file=stand_in.ca_file,
    )
    files = {"clusters/dev/flux-system/gotk-sync.yaml": b"kind: Kustomization\n"}
    over_https = GitAuth(username="git", password=stand_in.token, ca_file=stand_in.ca_pem)
    pushed = await commit_and_push(
        unborn_checkout(DEFAULT_BRANCH),
        repository.https_url,
        over_https,
        TIMEOUT,
        files=files,
        author=AUTHOR,
        message="Add Flux sync manifests",
    )

    deploy_key = GitAuth(identity=private_key, known_hosts=stand_in.ssh.keys.known_hosts)
    branch = GitRepositoryRef(branch=DEFAULT_BRANCH)
    commit, fetched = await fetch(repository.ssh_url, branch, deploy_key, TIMEOUT)
    assert commit.sha == pushed
    assert fetched == files

    checkout_without_the_token = GitAuth(username="git", password="nope", ca_file=stand_in.ca_pem)
    with pytest.raises(GitError):
        await fetch(repository.https_url, branch, checkout_without_the_token, TIMEOUT)
    with pytest.raises(GitError, match="read-only deploy key"):
        await commit_and_push(
            unborn_checkout("image-updates"),
            repository.ssh_url,
            deploy_key,
            TIMEOUT,
            files=files,
            author=AUTHOR,
            message="not allowed",
        )


async def test_a_read_write_deploy_key_can_push_over_ssh(stand_in: GitProviderStandIn) -> None:
    hosted = stand_in.add_repository(USER, "fleet")
    public_key, private_key = new_key()
    assert await ensure_deploy_key(
        stand_in.provider,
        owner=USER,
        repository="fleet",
        token=stand_in.token,
        title="flux-system-main",
        public_key=public_key,
        read_only=False,
        hostname=stand_in.hostname,
        ca_file=stand_in.ca_file,
    )
    deploy_key = GitAuth(identity=private_key, known_hosts=stand_in.ssh.keys.known_hosts)
    pushed = await commit_and_push(
        unborn_checkout("image-updates"),
        hosted.ssh_url,
        deploy_key,
        TIMEOUT,
        files={"apps/tag.yaml": b"tag: v2\n"},
        author=AUTHOR,
        message="Update image tags",
    )
    assert hosted.remote.rev("refs/heads/image-updates") == pushed
