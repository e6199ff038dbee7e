"""GitRepository end to end: real API server, real git servers, fluxd in between.

Each test drives fluxd only through the Kubernetes API, as a user would (create, patch,
annotate, delete), and checks what a user sees: status conditions and revision, Events,
the artifact served at ``status.artifact.url``, metrics.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from fluxd.api import GIT_REPOSITORY
from fluxd.runtime import conditions
from tests.gitservers import (
    HTTP_PASSWORD,
    HTTP_USERNAME,
    GitHTTPServer,
    GitRemote,
    RepoRoot,
    SSHServer,
    free_port,
)
from tests.integration.conftest import Fluxd, is_ready_now

pytestmark = pytest.mark.integration

MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n"


def revision(obj: dict[str, Any]) -> str:
    return str(obj["status"]["artifact"]["revision"])


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return conditions.get(obj.get("status") or {}, type_)


async def artifact_files(fluxd: Fluxd, obj: dict[str, Any]) -> dict[str, bytes]:
    artifact = obj["status"]["artifact"]
    tarball = await fluxd.fetch_artifact(artifact["url"])
    assert artifact["digest"] == "sha256:" + hashlib.sha256(tarball).hexdigest()
    assert artifact["size"] == len(tarball)
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member in archive.getmembers():
            if member.isfile():
                extracted = archive.extractfile(member)
                assert extracted is not None
                files[member.name.removeprefix("./")] = extracted.read()
    return files


async def request_reconcile(fluxd: Fluxd, name: str) -> str:
    """What ``flux reconcile source git NAME`` does: set the requestedAt annotation."""
    stamp = datetime.now(UTC).isoformat()
    await fluxd.patch(
        GIT_REPOSITORY,
        name,
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}},
    )
    return stamp


async def test_branch_becomes_ready_with_flux_status_events_and_artifact(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    sha = git_remote.commit({"deploy/cm.yaml": MANIFEST}, "Add the demo ConfigMap")
    await fluxd.create(
        GIT_REPOSITORY,
        "app",
        {"interval": "1h", "url": git_http.url(git_remote), "ref": {"branch": "master"}},
    )
    obj = await fluxd.wait_ready(GIT_REPOSITORY, "app")

    status = obj["status"]
    assert revision(obj) == f"master@sha1:{sha}"
    assert status["observedGeneration"] == 1
    ready = condition(obj, "Ready")
    assert ready is not None
    assert ready["reason"] == "Succeeded"
    assert ready["message"] == f"stored artifact for revision 'master@sha1:{sha}'"
    stored = condition(obj, "ArtifactInStorage")
    assert stored is not None
    assert stored["status"] == "True"
    assert condition(obj, "Reconciling") is None
    artifact = status["artifact"]
    assert artifact["path"] == f"gitrepository/{fluxd.namespace}/app/{sha}.tar.gz"
    assert artifact["url"].endswith("/" + artifact["path"])
    assert "finalizers.fluxcd.io" in obj["metadata"]["finalizers"]
    assert await artifact_files(fluxd, obj) == {"deploy/cm.yaml": MANIFEST.encode()}

    event = await fluxd.wait_event(
        "app",
        lambda e: e["reason"] == "NewArtifact" and "Add the demo ConfigMap" in e["message"],
        "NewArtifact naming the commit",
    )
    assert event["source"]["component"] == "source-controller", "reported as Flux reports it"


async def test_push_then_requested_at_moves_the_revision(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    git_remote.commit({"a.yaml": MANIFEST})
    await fluxd.create(GIT_REPOSITORY, "app", {"interval": "1h", "url": git_http.url(git_remote)})
    await fluxd.wait_ready(GIT_REPOSITORY, "app")

    new_sha = git_remote.commit({"b.yaml": MANIFEST}, "second")
    stamp = await request_reconcile(fluxd, "app")
    obj = await fluxd.wait_for(
        GIT_REPOSITORY, "app", lambda o: revision(o).endswith(new_sha), "the pushed revision"
    )
    assert obj["status"]["lastHandledReconcileAt"] == stamp
    assert set(await artifact_files(fluxd, obj)) == {"a.yaml", "b.yaml"}


async def test_tag_semver_commit_and_name_refs_resolve_like_flux(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    first = git_remote.commit({"v.txt": "1.0.0"})
    git_remote.tag("v1.0.0", message="release 1.0.0")
    second = git_remote.commit({"v.txt": "1.2.0"})
    git_remote.tag("v1.2.0")
    third = git_remote.commit({"v.txt": "2.0.0"})
    git_remote.tag("v2.0.0")
    git_remote.set_ref("refs/pull/1/head", second)
    url = git_http.url(git_remote)
    refs = {
        "tag": ({"tag": "v1.0.0"}, f"v1.0.0@sha1:{first}"),
        "semver": ({"semver": ">=1.0.0 <2.0.0"}, f"v1.2.0@sha1:{second}"),
        "commit": ({"commit": first}, f"sha1:{first}"),
        "name": ({"name": "refs/pull/1/head"}, f"refs/pull/1/head@sha1:{second}"),
        "branch": ({"branch": "master"}, f"master@sha1:{third}"),
    }
    for name, (ref, _) in refs.items():
        await fluxd.create(GIT_REPOSITORY, name, {"interval": "1h", "url": url, "ref": ref})
    for name, (_, expected) in refs.items():
        obj = await fluxd.wait_ready(GIT_REPOSITORY, name)
        assert revision(obj) == expected, name


async def test_basic_auth_from_secret_and_its_failures(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    git_remote.commit({"a.yaml": MANIFEST})
    url = git_http.url(git_remote, auth="basic")
    await fluxd.secret("good", {"username": HTTP_USERNAME, "password": HTTP_PASSWORD})
    await fluxd.secret("bad", {"username": HTTP_USERNAME, "password": "not-the-password"})
    for name in ("good", "bad", "missing"):
        await fluxd.create(
            GIT_REPOSITORY, name, {"interval": "1h", "url": url, "secretRef": {"name": name}}
        )
    await fluxd.wait_ready(GIT_REPOSITORY, "good")

    bad = await fluxd.wait_for(
        GIT_REPOSITORY, "bad", lambda o: condition(o, "FetchFailed") is not None, "FetchFailed"
    )
    ready = condition(bad, "Ready")
    assert ready is not None
    assert ready["status"] == "False"
    assert url in ready["message"]
    assert "not-the-password" not in ready["message"]
    reconciling = condition(bad, "Reconciling")
    assert reconciling is not None
    assert reconciling["reason"] == "ProgressingWithRetry"

    missing = await fluxd.wait_not_ready(GIT_REPOSITORY, "missing", "AuthenticationFailed")
    missing_ready = condition(missing, "Ready")
    assert missing_ready is not None
    assert f"secret '{fluxd.namespace}/missing' not found" in missing_ready["message"]
    await fluxd.wait_event(
        "missing",
        lambda e: e["type"] == "Warning" and e["reason"] == "AuthenticationFailed",
        "a Warning AuthenticationFailed",
    )


async def test_unreachable_host_and_bad_ref_fail_clearly_and_recover(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    sha = git_remote.commit({"a.yaml": MANIFEST})
    closed = f"http://127.0.0.1:{free_port()}/nothing.git"
    await fluxd.create(GIT_REPOSITORY, "down", {"interval": "1h", "url": closed, "timeout": "5s"})
    await fluxd.create(
        GIT_REPOSITORY,
        "badref",
        {"interval": "1h", "url": git_http.url(git_remote), "ref": {"branch": "no-such-branch"}},
    )
    down = await fluxd.wait_not_ready(GIT_REPOSITORY, "down", "GitOperationFailed")
    down_ready = condition(down, "Ready")
    assert down_ready is not None
    assert closed in down_ready["message"]
    bad = await fluxd.wait_not_ready(GIT_REPOSITORY, "badref", "GitOperationFailed")
    bad_ready = condition(bad, "Ready")
    assert bad_ready is not None
    assert "no-such-branch" in bad_ready["message"]
    assert "artifact" not in bad["status"]

    await fluxd.patch(GIT_REPOSITORY, "badref", {"spec": {"ref": {"branch": "master"}}})
    fixed = await fluxd.wait_ready(GIT_REPOSITORY, "badref")
    assert revision(fixed) == f"master@sha1:{sha}"
    assert condition(fixed, "FetchFailed") is None
    assert fixed["status"]["observedGeneration"] == 2


async def test_force_pushed_branch_replaces_the_artifact(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    git_remote.commit({"old.yaml": MANIFEST})
    await fluxd.create(GIT_REPOSITORY, "app", {"interval": "1h", "url": git_http.url(git_remote)})
    await fluxd.wait_ready(GIT_REPOSITORY, "app")

    rewritten = git_remote.force_push({"new.yaml": MANIFEST}, "rewrite history", branch="master")
    await request_reconcile(fluxd, "app")
    obj = await fluxd.wait_for(
        GIT_REPOSITORY, "app", lambda o: revision(o).endswith(rewritten), "the rewritten revision"
    )
    assert set(await artifact_files(fluxd, obj)) == {"new.yaml"}


async def test_ignore_rules_shape_the_artifact(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    git_remote.commit(
        {
            "deploy/app.yaml": MANIFEST,
            "deploy/logo.png": b"\x89PNG",
            "docs/guide.md": "# guide",
            ".github/workflows/ci.yaml": "on: push",
            "extra/.sourceignore": "*.txt\n",
            "extra/notes.txt": "ignored by .sourceignore",
        }
    )
    url = git_http.url(git_remote)
    await fluxd.create(GIT_REPOSITORY, "defaults", {"interval": "1h", "url": url})
    await fluxd.create(
        GIT_REPOSITORY, "custom", {"interval": "1h", "url": url, "ignore": "docs/\n"}
    )
    defaults = await artifact_files(fluxd, await fluxd.wait_ready(GIT_REPOSITORY, "defaults"))
    # A .sourceignore file replaces the default excludes, as in Flux.
    assert "extra/notes.txt" not in defaults
    assert "deploy/app.yaml" in defaults
    custom_obj = await fluxd.wait_ready(GIT_REPOSITORY, "custom")
    custom = await artifact_files(fluxd, custom_obj)
    assert "docs/guide.md" not in custom
    assert "deploy/app.yaml" in custom
    assert custom_obj["status"]["observedIgnore"] == "docs/\n"


async def test_include_change_wakes_the_including_repository(
    fluxd: Fluxd, git_root: RepoRoot, git_http: GitHTTPServer
) -> None:
    library, app = git_root.new(), git_root.new()
    library.commit({"manifests/lib.yaml": "v1", "README.md": "not included"})
    app.commit({"app.yaml": MANIFEST})
    await fluxd.create(GIT_REPOSITORY, "lib", {"interval": "1h", "url": git_http.url(library)})
    await fluxd.create(
        GIT_REPOSITORY,
        "app",
        {
            "interval": "1h",
            "url": git_http.url(app),
            "include": [
                {"repository": {"name": "lib"}, "fromPath": "manifests", "toPath": "vendor/lib"}
            ],
        },
    )
    first = await fluxd.wait_ready(GIT_REPOSITORY, "app")
    assert await artifact_files(fluxd, first) == {
        "app.yaml": MANIFEST.encode(),
        "vendor/lib/lib.yaml": b"v1",
    }

    library.commit({"manifests/lib.yaml": "v2"})
    await request_reconcile(fluxd, "lib")
    woken = await fluxd.wait_for(
        GIT_REPOSITORY,
        "app",
        lambda o: o["status"]["artifact"]["digest"] != first["status"]["artifact"]["digest"],
        "a new artifact after the include changed (interval is 1h: only a wake-up does this)",
    )
    assert (await artifact_files(fluxd, woken))["vendor/lib/lib.yaml"] == b"v2"
    assert revision(woken) == revision(first)


async def test_suspend_holds_the_revision_and_resume_catches_up(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    git_remote.commit({"a.yaml": MANIFEST})
    await fluxd.create(GIT_REPOSITORY, "app", {"interval": "1h", "url": git_http.url(git_remote)})
    before = revision(await fluxd.wait_ready(GIT_REPOSITORY, "app"))

    await fluxd.patch(GIT_REPOSITORY, "app", {"spec": {"suspend": True}})
    new_sha = git_remote.commit({"b.yaml": MANIFEST})
    stamp = await request_reconcile(fluxd, "app")
    metrics = await fluxd.metrics()
    suspended = await fluxd.get(GIT_REPOSITORY, "app")
    assert revision(suspended) == before
    assert suspended["status"].get("lastHandledReconcileAt") != stamp
    assert 'suspended="true"' in metrics

    await fluxd.patch(GIT_REPOSITORY, "app", {"spec": {"suspend": False}})
    resumed = await fluxd.wait_for(
        GIT_REPOSITORY, "app", lambda o: revision(o).endswith(new_sha), "the revision after resume"
    )
    assert is_ready_now(resumed)


async def test_metrics_report_reconciles_and_state(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    sha = git_remote.commit({"a.yaml": MANIFEST})
    await fluxd.create(GIT_REPOSITORY, "app", {"interval": "1h", "url": git_http.url(git_remote)})
    await fluxd.wait_ready(GIT_REPOSITORY, "app")
    text = await fluxd.metrics()
    labels = f'kind="GitRepository",name="app",namespace="{fluxd.namespace}"'
    count_line = next(
        line
        for line in text.splitlines()
        if line.startswith(f"gotk_reconcile_duration_seconds_count{{{labels}}}")
    )
    assert float(count_line.split()[-1]) >= 1
    assert (
        f'gotk_resource_info{{{labels},ready="True",revision="master@sha1:{sha}",'
        f'suspended="false"}} 1.0'
    ) in text
    assert 'fluxd_reconcile_total{kind="GitRepository",result="success"}' in text
    assert "fluxd_queue_depth" in text


async def test_ssh_with_known_hosts_and_https_with_custom_ca(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_root: RepoRoot,
    git_sshd: SSHServer,
    git_https: GitHTTPServer,
) -> None:
    sha = git_remote.commit({"a.yaml": MANIFEST})
    keys = git_sshd.keys
    await fluxd.secret("ssh", {"identity": keys.identity, "known_hosts": keys.known_hosts})
    await fluxd.secret(
        "ssh-wrong-host", {"identity": keys.identity, "known_hosts": keys.wrong_known_hosts}
    )
    assert git_https.ca_pem is not None
    await fluxd.secret("ca", {"ca.crt": git_https.ca_pem})
    ssh_url = git_sshd.url(git_remote, git_root)
    await fluxd.create(
        GIT_REPOSITORY, "ssh", {"interval": "1h", "url": ssh_url, "secretRef": {"name": "ssh"}}
    )
    await fluxd.create(
        GIT_REPOSITORY,
        "ssh-wrong-host",
        {"interval": "1h", "url": ssh_url, "secretRef": {"name": "ssh-wrong-host"}},
    )
    await fluxd.create(
        GIT_REPOSITORY,
        "https",
        {"interval": "1h", "url": git_https.url(git_remote), "secretRef": {"name": "ca"}},
    )
    assert revision(await fluxd.wait_ready(GIT_REPOSITORY, "ssh")) == f"master@sha1:{sha}"
    assert revision(await fluxd.wait_ready(GIT_REPOSITORY, "https")) == f"master@sha1:{sha}"
    wrong = await fluxd.wait_for(
        GIT_REPOSITORY,
        "ssh-wrong-host",
        lambda o: condition(o, "FetchFailed") is not None,
        "FetchFailed for a host key that is not in known_hosts",
    )
    wrong_ready = condition(wrong, "Ready")
    assert wrong_ready is not None
    assert wrong_ready["status"] == "False"
    assert "host key" in wrong_ready["message"].lower()


def _ssh_signing_key(tmp_path: Path) -> tuple[Path, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = tmp_path / "signing_key"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    private.chmod(0o600)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public


# "head" is the legacy spelling of HEAD: it must verify the commit just the same.
@pytest.mark.parametrize("mode", ["HEAD", "head"])
async def test_signed_commit_verifies_and_an_unsigned_one_keeps_the_old_artifact(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, tmp_path: Path, mode: str
) -> None:
    private, public = _ssh_signing_key(tmp_path)
    (git_remote.work / "a.yaml").write_text(MANIFEST)
    git_remote.git("add", "-A")
    git_remote.git(
        "-c",
        "gpg.format=ssh",
        "-c",
        f"user.signingkey={private}",
        "commit",
        "-q",
        "-S",
        "-m",
        "signed",
    )
    git_remote.git("push", "-q", "origin", "HEAD:refs/heads/master")
    signed = git_remote.git("rev-parse", "HEAD")
    await fluxd.secret("keys", {"author.pub": public})
    await fluxd.create(
        GIT_REPOSITORY,
        "app",
        {
            "interval": "1h",
            "url": git_http.url(git_remote),
            "verify": {"mode": mode, "secretRef": {"name": "keys"}},
        },
    )
    obj = await fluxd.wait_ready(GIT_REPOSITORY, "app")
    verified = condition(obj, "SourceVerified")
    assert verified is not None
    assert verified["status"] == "True"
    assert signed in verified["message"]
    assert obj["status"]["sourceVerificationMode"] == "HEAD"

    git_remote.commit({"b.yaml": MANIFEST}, "unsigned")
    await request_reconcile(fluxd, "app")
    failed = await fluxd.wait_not_ready(GIT_REPOSITORY, "app", "InvalidCommitSignature")
    unverified = condition(failed, "SourceVerified")
    assert unverified is not None
    assert unverified["status"] == "False"
    assert revision(failed) == f"master@sha1:{signed}", (
        "a failed verification replaced the artifact"
    )
    assert set(await artifact_files(fluxd, failed)) == {"a.yaml"}


async def test_deleting_the_object_releases_it_and_its_artifact(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    git_remote.commit({"a.yaml": MANIFEST})
    await fluxd.create(GIT_REPOSITORY, "app", {"interval": "1h", "url": git_http.url(git_remote)})
    obj = await fluxd.wait_ready(GIT_REPOSITORY, "app")
    url = obj["status"]["artifact"]["url"]
    assert await fluxd.fetch_artifact(url)

    await fluxd.delete(GIT_REPOSITORY, "app")
    await fluxd.wait_gone(GIT_REPOSITORY, "app")
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 404, "the artifact of a deleted source is still served"
