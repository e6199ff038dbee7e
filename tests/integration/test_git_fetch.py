"""fetch/resolve against real git servers on loopback (tests/gitservers.py).

Every assertion is about what a Flux user sees: the revision string, the
files, and the words of the error on the GitRepository.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from dulwich.repo import MemoryRepo

from fluxd.api import GitRepositoryRef as Ref
from fluxd.sources.git import Commit, GitAuth, GitError, fetch, resolve
from fluxd.sources.git import remote as git_module
from tests.gitservers import (
    HTTP_PASSWORD,
    HTTP_TOKEN,
    HTTP_USERNAME,
    SSH_KEY_PASSPHRASE,
    GitDaemon,
    GitHTTPServer,
    GitRemote,
    RepoRoot,
    SSHServer,
    free_port,
)

pytestmark = pytest.mark.integration

TIMEOUT = 20.0

V1_FILES = {"README.md": "# app\n", "deploy/app.yaml": "replicas: 1\n"}
V2_FILES = {"deploy/app.yaml": "replicas: 2\n", "deploy/extra.yaml": "kind: ConfigMap\n"}
FEATURE_FILES = {"feature.txt": "only on the feature branch\n"}


@dataclass(frozen=True)
class Fixture:
    remote: GitRemote
    c1: str  # master~1: V1_FILES; tags light, v0.9.0 (lightweight), v1.0.0 (annotated)
    c2: str  # master: V1 + V2; tags v1.1.0 (annotated), v2.0.0-rc.1, not-a-version
    c3: str  # feature = c2 + FEATURE_FILES; refs/pull/1/head


def files_at(*layers: dict[str, str]) -> dict[str, bytes]:
    merged: dict[str, bytes] = {}
    for layer in layers:
        merged.update({k: v.encode() for k, v in layer.items()})
    return merged


@pytest.fixture
def repo(git_remote: GitRemote) -> Fixture:
    c1 = git_remote.commit(V1_FILES, "first release", push=False)
    git_remote.tag("light", c1, push=False)
    git_remote.tag("v0.9.0", c1, push=False)
    git_remote.tag("v1.0.0", c1, message="release 1.0.0", push=False)
    c2 = git_remote.commit(V2_FILES, "scale up\n\nlonger body", push=False)
    git_remote.tag("v1.1.0", c2, message="release 1.1.0", push=False)
    git_remote.tag("v2.0.0-rc.1", c2, push=False)
    git_remote.tag("not-a-version", c2, push=False)
    c3 = git_remote.commit(FEATURE_FILES, "feature work", branch="feature", push=False)
    git_remote.push_all()
    git_remote.set_ref("refs/pull/1/head", c3)
    return Fixture(git_remote, c1, c2, c3)


@pytest.fixture
def url(repo: Fixture, git_daemon: GitDaemon) -> str:
    return git_daemon.url(repo.remote)


async def get(url: str, ref: Ref, auth: GitAuth | None = None) -> tuple[Commit, dict[str, bytes]]:
    return await fetch(url, ref, auth or GitAuth(), TIMEOUT)


# --- every kind of reference ----------------------------------------------------------------


async def test_empty_ref_is_master_branch(repo: Fixture, url: str) -> None:
    commit, files = await get(url, Ref())
    assert commit.revision == f"master@sha1:{repo.c2}"
    assert commit.sha == repo.c2
    assert files == files_at(V1_FILES, V2_FILES)
    assert commit.message == "scale up\n\nlonger body\n"
    assert commit.author.startswith("Fixture Author <author@example.com>")
    assert commit.signature is None
    assert commit.tag_payload is None


async def test_branch(repo: Fixture, url: str) -> None:
    commit, files = await get(url, Ref(branch="feature"))
    assert commit.revision == f"feature@sha1:{repo.c3}"
    assert files == files_at(V1_FILES, V2_FILES, FEATURE_FILES)


async def test_lightweight_tag(repo: Fixture, url: str) -> None:
    commit, files = await get(url, Ref(tag="light"))
    assert commit.revision == f"light@sha1:{repo.c1}"
    assert files == files_at(V1_FILES)
    assert commit.tag_payload is None


async def test_annotated_tag_is_peeled_to_its_commit(repo: Fixture, url: str) -> None:
    commit, files = await get(url, Ref(tag="v1.0.0"))
    assert commit.revision == f"v1.0.0@sha1:{repo.c1}"
    assert files == files_at(V1_FILES)
    assert commit.tag_payload is not None
    assert commit.tag_payload.startswith(f"object {repo.c1}\ntype commit\ntag v1.0.0\n".encode())
    assert commit.tag_payload.endswith(b"release 1.0.0\n")
    assert commit.tag_signature is None


@pytest.mark.parametrize(
    ("constraint", "tag"),
    [
        (">=1.0.0 <2.0.0", "v1.1.0"),
        ("~1.0", "v1.0.0"),
        ("^1", "v1.1.0"),
        ("1.x", "v1.1.0"),
        ("*", "v1.1.0"),  # v2.0.0-rc.1 is a prerelease: excluded
        (">=2.0.0-0", "v2.0.0-rc.1"),
        ("<1.0.0 || >=3", "v0.9.0"),
    ],
)
async def test_semver_picks_highest_matching_tag(
    repo: Fixture, url: str, constraint: str, tag: str
) -> None:
    commit, _ = await get(url, Ref(semver=constraint))
    sha = repo.c1 if tag in ("v1.0.0", "v0.9.0") else repo.c2
    assert commit.revision == f"{tag}@sha1:{sha}"


async def test_name_pull_request_ref(repo: Fixture, url: str) -> None:
    commit, files = await get(url, Ref(name="refs/pull/1/head"))
    assert commit.revision == f"refs/pull/1/head@sha1:{repo.c3}"
    assert "feature.txt" in files


async def test_name_heads_and_tags_are_shortened(repo: Fixture, url: str) -> None:
    branch, _ = await get(url, Ref(name="refs/heads/feature"))
    tag, _ = await get(url, Ref(name="refs/tags/v1.0.0"))
    assert branch.revision == f"feature@sha1:{repo.c3}"
    assert tag.revision == f"v1.0.0@sha1:{repo.c1}"
    assert tag.tag_payload is not None


async def test_commit_alone(repo: Fixture, url: str) -> None:
    commit, files = await get(url, Ref(commit=repo.c1))
    assert commit.revision == f"sha1:{repo.c1}"
    assert files == files_at(V1_FILES)


async def test_commit_on_branch(repo: Fixture, url: str) -> None:
    commit, files = await get(url, Ref(branch="master", commit=repo.c1))
    assert commit.revision == f"master@sha1:{repo.c1}"
    assert files == files_at(V1_FILES)


async def test_commit_not_on_branch(repo: Fixture, url: str) -> None:
    with pytest.raises(GitError) as err:
        await get(url, Ref(branch="master", commit=repo.c3))
    assert f"commit '{repo.c3}' not found in branch 'master'" in err.value.message
    assert url in err.value.message


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (Ref(branch="feature", tag="v1.0.0"), "v1.0.0@sha1:{c1}"),
        (Ref(tag="v1.0.0", semver="^1"), "v1.1.0@sha1:{c2}"),
        (Ref(semver="^1", name="refs/pull/1/head"), "refs/pull/1/head@sha1:{c3}"),
        (Ref(name="refs/pull/1/head", tag="light", commit="{c1}"), "sha1:{c1}"),
    ],
)
async def test_precedence_commit_name_semver_tag_branch(
    repo: Fixture, url: str, ref: Ref, expected: str
) -> None:
    shas = {"c1": repo.c1, "c2": repo.c2, "c3": repo.c3}
    if ref.commit:
        ref = Ref(name=ref.name, tag=ref.tag, commit=ref.commit.format(**shas))
    commit, _ = await get(url, ref)
    assert commit.revision == expected.format(**shas)


async def test_symlink_is_its_target_and_submodule_is_skipped(
    git_remote: GitRemote, git_daemon: GitDaemon
) -> None:
    git_remote.commit({"real/config.yaml": "a: 1\n"}, "base")
    sub = git_remote.commit({"x": "y"}, "a commit to point a gitlink at", push=False)
    git_remote.git("update-index", "--add", "--cacheinfo", f"160000,{sub},vendor/sub")
    git_remote.git("commit", "-q", "-m", "add submodule entry")
    git_remote.git("push", "-q", "origin", "HEAD:refs/heads/master")
    git_remote.symlink("link.yaml", "real/config.yaml")
    _, files = await get(git_daemon.url(git_remote), Ref())
    assert files["link.yaml"] == b"real/config.yaml"
    assert files["real/config.yaml"] == b"a: 1\n"
    assert not any(path.startswith("vendor/sub") for path in files)


def test_branch_fetch_is_shallow_and_commit_fetch_has_history(
    repo: Fixture, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[MemoryRepo] = []

    def recording_repo() -> MemoryRepo:
        made.append(MemoryRepo())
        return made[-1]

    monkeypatch.setattr(git_module, "MemoryRepo", recording_repo)

    def commits_fetched(ref: Ref) -> int:
        git_module._fetch_sync(url, ref, GitAuth(), TIMEOUT)
        store = made[-1].object_store
        return sum(1 for oid in store if store[oid].type_name == b"commit")

    assert commits_fetched(Ref(branch="feature")) == 1
    assert commits_fetched(Ref(tag="v1.1.0")) == 1
    assert commits_fetched(Ref(branch="feature", commit=repo.c1)) == 3


@pytest.fixture
def ssh_signing_key(tmp_path: Path) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "signing_key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


async def test_signed_commit_and_tag_carry_payload_and_signature(
    git_remote: GitRemote, git_daemon: GitDaemon, ssh_signing_key: Path
) -> None:
    git_remote.git("config", "gpg.format", "ssh")
    git_remote.git("config", "user.signingkey", str(ssh_signing_key))
    git_remote.commit({"a.txt": "a\n"}, "unsigned parent")
    git_remote.git("commit", "-q", "-S", "--allow-empty", "-m", "signed change")
    git_remote.git("tag", "-s", "v1.0.0", "-m", "signed release")
    git_remote.push_all()
    raw_commit = git_remote.git("cat-file", "commit", "HEAD").encode() + b"\n"
    raw_tag = git_remote.git("cat-file", "tag", "v1.0.0").encode() + b"\n"

    commit, _ = await get(git_daemon.url(git_remote), Ref(tag="v1.0.0"))

    assert commit.signature is not None
    assert commit.signature.startswith(b"-----BEGIN SSH SIGNATURE-----")
    assert commit.signed_payload is not None
    assert b"gpgsig" not in commit.signed_payload
    unsigned = [line for line in raw_commit.split(b"\n") if not line.startswith((b"gpgsig", b" "))]
    assert commit.signed_payload == b"\n".join(unsigned)
    assert commit.tag_signature is not None
    assert commit.tag_signature.startswith(b"-----BEGIN SSH SIGNATURE-----")
    assert commit.tag_payload is not None
    assert commit.tag_payload + commit.tag_signature == raw_tag


# --- moving refs ---------------------------------------------------------------------------


async def test_force_pushed_branch_gives_new_commit_and_files(repo: Fixture, url: str) -> None:
    before, _ = await get(url, Ref(branch="feature"))
    rewritten = repo.remote.force_push({"only.txt": "rewritten\n"}, "rewrite", branch="feature")
    after, files = await get(url, Ref(branch="feature"))
    assert before.sha == repo.c3
    assert after.revision == f"feature@sha1:{rewritten}"
    assert files == {"only.txt": b"rewritten\n"}


async def test_resolve_detects_a_moved_ref(repo: Fixture, url: str) -> None:
    assert await resolve(url, Ref(), GitAuth(), TIMEOUT) == ("master", repo.c2)
    c4 = repo.remote.commit({"new.txt": "new\n"}, "moves master")
    assert await resolve(url, Ref(), GitAuth(), TIMEOUT) == ("master", c4)
    commit, _ = await get(url, Ref())
    assert commit.sha == c4


async def test_resolve_matches_fetch_for_every_ref_kind(repo: Fixture, url: str) -> None:
    for ref in (
        Ref(branch="feature"),
        Ref(tag="v1.0.0"),
        Ref(tag="light"),
        Ref(semver="^1"),
        Ref(name="refs/pull/1/head"),
        Ref(branch="master", commit=repo.c1),
        Ref(commit=repo.c1),
    ):
        name, sha = await resolve(url, ref, GitAuth(), TIMEOUT)
        commit, _ = await get(url, ref)
        expected = f"{name}@sha1:{sha}" if name else f"sha1:{sha}"
        assert commit.revision == expected, ref


# --- unknown refs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        (Ref(branch="nope"), "couldn't find remote ref 'refs/heads/nope'"),
        (Ref(tag="v9.9.9"), "couldn't find remote ref 'refs/tags/v9.9.9'"),
        (Ref(name="refs/pull/7/head"), "couldn't find remote ref 'refs/pull/7/head'"),
        (Ref(semver=">=5.0.0"), "no tag matches semver range '>=5.0.0'"),
        (Ref(semver="not a range"), "invalid semver constraint"),
        (Ref(commit="0" * 40), f"commit '{'0' * 40}' not found in any branch"),
    ],
)
async def test_unknown_ref_names_url_ref_and_cause(
    repo: Fixture, url: str, ref: Ref, words: str
) -> None:
    with pytest.raises(GitError) as fetched:
        await get(url, ref)
    errors = [fetched.value]
    if not ref.commit:  # a bare commit cannot be checked without fetching
        with pytest.raises(GitError) as resolved:
            await resolve(url, ref, GitAuth(), TIMEOUT)
        errors.append(resolved.value)
    for error in errors:
        assert error.reason == "GitOperationFailed"
        assert words in error.message
        assert f"'{url}'" in error.message


async def test_missing_repository(git_http: GitHTTPServer, git_remote: GitRemote) -> None:
    url = git_http.url(git_remote).replace(git_remote.name, "absent.git")
    with pytest.raises(GitError) as err:
        await get(url, Ref())
    assert "repository not found" in err.value.message
    assert url in err.value.message


# --- transports -----------------------------------------------------------------------------


@pytest.fixture(
    params=["git", "http", "https+ca", "basic", "bearer", "ssh", "ssh+passphrase"],
)
def transport(
    request: pytest.FixtureRequest, repo: Fixture, git_root: RepoRoot
) -> tuple[str, GitAuth]:
    name: str = request.param
    remote = repo.remote
    if name == "git":
        daemon: GitDaemon = request.getfixturevalue("git_daemon")
        return daemon.url(remote), GitAuth()
    if name in ("http", "basic", "bearer"):
        http: GitHTTPServer = request.getfixturevalue("git_http")
        auth = {
            "http": GitAuth(),
            "basic": GitAuth(username=HTTP_USERNAME, password=HTTP_PASSWORD),
            "bearer": GitAuth(bearer_token=HTTP_TOKEN),
        }[name]
        return http.url(remote, "public" if name == "http" else name), auth
    if name == "https+ca":
        https: GitHTTPServer = request.getfixturevalue("git_https")
        return https.url(remote), GitAuth(ca_file=https.ca_pem)
    sshd: SSHServer = request.getfixturevalue("git_sshd")
    if name == "ssh":
        return sshd.url(remote, git_root), GitAuth(
            identity=sshd.keys.identity, known_hosts=sshd.keys.known_hosts
        )
    return sshd.url(remote, git_root), GitAuth(
        identity=sshd.keys.encrypted_identity,
        password=SSH_KEY_PASSPHRASE,
        known_hosts=sshd.keys.known_hosts,
    )


async def test_every_transport_fetches_and_resolves(
    repo: Fixture, transport: tuple[str, GitAuth]
) -> None:
    url, auth = transport
    commit, files = await fetch(url, Ref(tag="v1.1.0"), auth, TIMEOUT)
    assert commit.revision == f"v1.1.0@sha1:{repo.c2}"
    assert files == files_at(V1_FILES, V2_FILES)
    assert await resolve(url, Ref(branch="feature"), auth, TIMEOUT) == ("feature", repo.c3)


async def test_credentials_are_sent_as_configured(repo: Fixture, git_http: GitHTTPServer) -> None:
    git_http.requests.clear()
    await get(git_http.url(repo.remote, "bearer"), Ref(), GitAuth(bearer_token=HTTP_TOKEN))
    assert git_http.requests
    assert all(auth == f"Bearer {HTTP_TOKEN}" for _, _, auth in git_http.requests)


# --- authentication and trust failures -------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "auth"),
    [
        ("basic", GitAuth(username=HTTP_USERNAME, password="wrong-password-123")),
        ("basic", GitAuth()),
        ("bearer", GitAuth(bearer_token="wrong-token-456")),
    ],
)
async def test_http_auth_failure(
    repo: Fixture, git_http: GitHTTPServer, scheme: str, auth: GitAuth
) -> None:
    url = git_http.url(repo.remote, scheme)
    with pytest.raises(GitError) as err:
        await get(url, Ref(), auth)
    message = err.value.message
    assert "authentication failed (HTTP 401)" in message
    assert f"'{url}' at branch 'master'" in message
    assert "wrong-password-123" not in message
    assert "wrong-token-456" not in message


async def test_https_without_the_ca_is_refused(repo: Fixture, git_https: GitHTTPServer) -> None:
    with pytest.raises(GitError) as err:
        await get(git_https.url(repo.remote), Ref())
    assert "TLS certificate verification failed" in err.value.message
    assert "ca.crt" in err.value.message


async def test_bad_ca_pem_is_an_authentication_problem(
    repo: Fixture, git_https: GitHTTPServer
) -> None:
    with pytest.raises(GitError) as err:
        await get(git_https.url(repo.remote), Ref(), GitAuth(ca_file=b"not pem"))
    assert err.value.reason == "AuthenticationFailed"
    assert "ca.crt" in err.value.message


@pytest.fixture
def ssh_url(repo: Fixture, git_sshd: SSHServer, git_root: RepoRoot) -> str:
    return git_sshd.url(repo.remote, git_root)


async def test_ssh_unknown_key_is_rejected(git_sshd: SSHServer, ssh_url: str) -> None:
    auth = GitAuth(identity=git_sshd.keys.stranger_identity, known_hosts=git_sshd.keys.known_hosts)
    with pytest.raises(GitError) as err:
        await get(ssh_url, Ref(), auth)
    assert "SSH authentication failed" in err.value.message
    assert ssh_url in err.value.message


async def test_ssh_wrong_passphrase(git_sshd: SSHServer, ssh_url: str) -> None:
    auth = GitAuth(
        identity=git_sshd.keys.encrypted_identity,
        password="not-the-passphrase",
        known_hosts=git_sshd.keys.known_hosts,
    )
    with pytest.raises(GitError) as err:
        await get(ssh_url, Ref(), auth)
    assert err.value.reason == "AuthenticationFailed"
    assert "could not decrypt the SSH identity" in err.value.message
    assert "not-the-passphrase" not in err.value.message


async def test_ssh_encrypted_key_without_passphrase(git_sshd: SSHServer, ssh_url: str) -> None:
    auth = GitAuth(identity=git_sshd.keys.encrypted_identity, known_hosts=git_sshd.keys.known_hosts)
    with pytest.raises(GitError) as err:
        await get(ssh_url, Ref(), auth)
    assert err.value.reason == "AuthenticationFailed"
    assert "encrypted" in err.value.message


async def test_ssh_unknown_host_key(git_sshd: SSHServer, ssh_url: str) -> None:
    other_host = git_sshd.keys.known_hosts.replace(b"127.0.0.1", b"git.example.com")
    auth = GitAuth(identity=git_sshd.keys.identity, known_hosts=other_host)
    with pytest.raises(GitError) as err:
        await get(ssh_url, Ref(), auth)
    assert "SSH host key is unknown" in err.value.message
    assert "known_hosts" in err.value.message


async def test_ssh_changed_host_key(git_sshd: SSHServer, ssh_url: str) -> None:
    auth = GitAuth(identity=git_sshd.keys.identity, known_hosts=git_sshd.keys.wrong_known_hosts)
    with pytest.raises(GitError) as err:
        await get(ssh_url, Ref(), auth)
    assert "does not match known_hosts" in err.value.message


async def test_ssh_requires_known_hosts(git_sshd: SSHServer, ssh_url: str) -> None:
    with pytest.raises(GitError) as err:
        await get(ssh_url, Ref(), GitAuth(identity=git_sshd.keys.identity))
    assert err.value.reason == "AuthenticationFailed"
    assert "known_hosts" in err.value.message


# --- unreachable and silent servers -------------------------------------------------------


@pytest.mark.parametrize("scheme", ["git", "http", "https", "ssh"])
async def test_closed_port_fails_fast(scheme: str, git_sshd: SSHServer) -> None:
    url = f"{scheme}://127.0.0.1:{free_port()}/repo.git"
    auth = GitAuth(identity=git_sshd.keys.identity, known_hosts=git_sshd.keys.known_hosts)
    started = time.monotonic()
    with pytest.raises(GitError) as err:
        await fetch(url, Ref(), auth, 5)
    assert time.monotonic() - started < 5
    assert url in err.value.message
    assert "refused" in err.value.message


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, name="silent-server")
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


@pytest.mark.parametrize("scheme", ["git", "http", "ssh"])
async def test_silent_server_times_out(
    scheme: str, silent_server: int, git_sshd: SSHServer
) -> None:
    url = f"{scheme}://127.0.0.1:{silent_server}/repo.git"
    auth = GitAuth(identity=git_sshd.keys.identity, known_hosts=git_sshd.keys.known_hosts)
    started = time.monotonic()
    with pytest.raises(GitError) as err:
        await fetch(url, Ref(), auth, 1.0)
    assert time.monotonic() - started < 3
    assert url in err.value.message
