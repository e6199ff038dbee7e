"""Image automation end to end: registry tags -> ImageRepository -> ImagePolicy ->
ImageUpdateAutomation -> a commit pushed -> GitRepository -> Kustomization -> the cluster.

Real parts only: Debian's docker-registry on loopback (plain, and TLS with basic auth),
git-http-backend and sshd serving bare repositories the automation pushes to, the API
server. What a user sees: the scanned tags in ``lastScanResult``, the chosen image in
``latestRef``, a commit by the configured author whose message is the rendered template
and whose diff is the marked value only, the new image live in the cluster; and for every
bad input (policy, registry, marker, file, push) a ``Ready=False`` naming it, with
nothing pushed.
"""

from __future__ import annotations

import asyncio
import stat
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from kubernetes_asyncio.client import ApiClient

from fluxd.api import (
    GIT_REPOSITORY,
    IMAGE_POLICY,
    IMAGE_REPOSITORY,
    IMAGE_UPDATE_AUTOMATION,
    KUSTOMIZATION,
)
from fluxd.kube import client
from fluxd.kube.resources import NAMESPACES, SERVICE_ACCOUNTS
from fluxd.runtime import conditions
from fluxd.sources import oci
from tests.gitservers import (
    HTTP_PASSWORD,
    HTTP_USERNAME,
    GitHTTPServer,
    GitRemote,
    RepoRoot,
    SSHServer,
    free_port,
)
from tests.integration.conftest import Fluxd, create_labelled, labelled_fluxd
from tests.integration.kustomizations import CONFIGMAPS, live
from tests.loopback import serve_on_loopback
from tests.ociregistry import OCIRegistry, docker_config

pytestmark = pytest.mark.integration

AUTHOR = {"name": "Image Bot", "email": "bot@example.com"}


def message(obj: dict[str, Any], type_: str = "Ready") -> str:
    found = conditions.get(obj.get("status") or {}, type_)
    assert found is not None, f"no {type_} condition in {obj.get('status')}"
    return str(found["message"])


def stalled(obj: dict[str, Any], reason: str) -> bool:
    found = conditions.get(obj.get("status") or {}, "Stalled")
    return found is not None and found["status"] == "True" and found["reason"] == reason


async def push_tags(registry: OCIRegistry, name: str, *tags: str) -> dict[str, str]:
    """Push a small artifact under each tag; their manifest digests by tag."""
    digests = {}
    for tag in tags:
        reference = oci.parse_reference(
            f"oci://{registry.host}/{name}:{tag}", insecure=registry.insecure
        )
        pushed = await oci.push_files(
            reference,
            {"tag.txt": tag.encode()},
            source="https://example.com/app",
            revision=f"{tag}@sha1:0",
            auth=registry.auth,
        )
        digests[tag] = pushed.digest
    return digests


async def request_scan(fluxd: Fluxd, name: str) -> None:
    stamp = datetime.now(UTC).isoformat()
    await fluxd.patch(
        IMAGE_REPOSITORY,
        name,
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}},
    )


def deployment(namespace: str, image: str, policy: str) -> str:
    """A ConfigMap standing in for a Deployment: comments, quoting and order that only
    the marked value may change."""
    return (
        "# the app, deployed by Flux\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: app\n"
        f"  namespace: {namespace}\n"
        "data:\n"
        "  replicas: '2'   # kept as a string\n"
        f'  image: {image} # {{"$imagepolicy": "{namespace}:{policy}"}}\n'
        f'  tag: "x" # {{"$imagepolicy": "{namespace}:{policy}:tag"}}\n'
    )


def enable_push(remote: GitRemote) -> None:
    """git-http-backend takes pushes on the public path too."""
    subprocess.run(
        ["git", "--git-dir", str(remote.bare), "config", "http.receivepack", "true"], check=True
    )


def bare(remote: GitRemote, *args: str) -> str:
    out = subprocess.run(
        ["git", "--git-dir", str(remote.bare), *args], check=True, capture_output=True, text=True
    )
    return out.stdout


def verify_commit(
    remote: GitRemote, ref: str, directory: Path, email: str, public_key: str
) -> subprocess.CompletedProcess[str]:
    """``git verify-commit`` of ``ref``, trusting ``public_key`` (an SSH key) for ``email``."""
    signers = directory / "allowed_signers"
    signers.write_text(f'{email} namespaces="git" {public_key}\n')
    return subprocess.run(
        [
            "git",
            "--git-dir",
            str(remote.bare),
            "-c",
            f"gpg.ssh.allowedSignersFile={signers}",
            "verify-commit",
            ref,
        ],
        capture_output=True,
        text=True,
    )


def install_hook(remote: GitRemote, script: str) -> None:
    hook = remote.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\n" + script)
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)


async def git_source(fluxd: Fluxd, server: GitHTTPServer, remote: GitRemote) -> None:
    await fluxd.secret("git", {"username": HTTP_USERNAME, "password": HTTP_PASSWORD})
    await fluxd.create(
        GIT_REPOSITORY,
        "source",
        {
            "interval": "1h",
            "url": server.url(remote, "basic"),
            "ref": {"branch": "master"},
            "secretRef": {"name": "git"},
        },
    )


async def pushed(fluxd: Fluxd, name: str) -> dict[str, Any]:
    """The ImageUpdateAutomation ``name`` once it has pushed a commit."""
    return await fluxd.wait_for(
        IMAGE_UPDATE_AUTOMATION,
        name,
        lambda o: bool((o.get("status") or {}).get("lastPushCommit")),
        "a pushed commit",
    )


def automation(**fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "interval": "1h",
        "sourceRef": {"kind": "GitRepository", "name": "source"},
        "git": {"commit": {"author": AUTHOR}},
        "update": {"path": "./deploy", "strategy": "Setters"},
    }
    spec.update(fields)
    return spec


async def test_a_new_tag_is_committed_pushed_and_deployed(
    fluxd: Fluxd, oci_registry: OCIRegistry, git_http: GitHTTPServer, git_remote: GitRemote
) -> None:
    name = f"app-{fluxd.namespace}"
    await push_tags(oci_registry, name, "1.0.0", "1.1.0", "2.0.0-rc.1", "1.1.0.sig")
    image = f"{oci_registry.host}/{name}"
    original = deployment(fluxd.namespace, f"{image}:1.0.0", "app")
    git_remote.commit({"deploy/app.yaml": original, "README.md": "docs\n"})
    await git_source(fluxd, git_http, git_remote)
    await fluxd.create(
        KUSTOMIZATION,
        "app",
        {
            "interval": "1h",
            "sourceRef": {"kind": "GitRepository", "name": "source"},
            "path": "./deploy",
            "prune": True,
        },
    )
    await fluxd.create(
        IMAGE_REPOSITORY, "app", {"image": image, "interval": "1h", "insecure": True}
    )
    repository = await fluxd.wait_ready(IMAGE_REPOSITORY, "app")
    scan = repository["status"]["lastScanResult"]
    assert scan["tagCount"] == 3, "the .sig tag is excluded by default"
    assert scan["latestTags"] == ["2.0.0-rc.1", "1.1.0", "1.0.0"]
    assert repository["status"]["canonicalImageName"] == image
    assert repository["status"]["observedExclusionList"] == [r"^.*\.sig$"]
    assert message(repository).startswith("successful scan: found 3 tags")

    await fluxd.create(
        IMAGE_POLICY,
        "app",
        {"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": ">=1.0.0 <2.0.0"}}},
    )
    policy = await fluxd.wait_ready(IMAGE_POLICY, "app")
    assert policy["status"]["latestRef"] == {"name": image, "tag": "1.1.0"}
    assert message(policy) == f"Latest image tag for {image} resolved to 1.1.0"

    template = (
        "Update {{ .AutomationObject }} in {{ .Values.env }}\n\n"
        "{{ range .Changed.Changes }}- {{ .OldValue }} -> {{ .NewValue }}\n{{ end }}"
    )
    await fluxd.create(
        IMAGE_UPDATE_AUTOMATION,
        "app",
        automation(
            git={
                "checkout": {"ref": {"branch": "master"}},
                "commit": {
                    "author": AUTHOR,
                    "messageTemplate": template,
                    "messageTemplateValues": {"env": "prod"},
                },
                "push": {"branch": "master"},
            }
        ),
    )
    automated = await pushed(fluxd, "app")
    status = automated["status"]
    head = bare(git_remote, "rev-parse", "master").strip()
    assert status["lastPushCommit"] == head
    assert status["observedSourceRevision"] == f"master@sha1:{head}"
    assert status["observedPolicies"] == {"app": {"name": image, "tag": "1.1.0"}}
    assert bare(git_remote, "log", "-1", "--format=%an <%ae>") == "Image Bot <bot@example.com>\n"
    assert bare(git_remote, "log", "-1", "--format=%B").strip() == (
        f"Update {fluxd.namespace}/app in prod\n\n- {image}:1.0.0 -> {image}:1.1.0\n- x -> 1.1.0"
    )
    updated = bare(git_remote, "show", "master:deploy/app.yaml")
    assert updated == original.replace(f"{image}:1.0.0", f"{image}:1.1.0").replace(
        'tag: "x"', 'tag: "1.1.0"'
    )
    assert bare(git_remote, "show", "master:README.md") == "docs\n"

    async def deployed(tag: str) -> None:
        async with asyncio.timeout(30):
            while True:
                found = await live(fluxd, CONFIGMAPS, "app")
                if found and found["data"]["image"] == f"{image}:{tag}":
                    return
                await asyncio.sleep(0.1)

    await deployed("1.1.0")

    await push_tags(oci_registry, name, "1.2.0")
    await request_scan(fluxd, "app")
    await deployed("1.2.0")
    latest = await fluxd.get(IMAGE_POLICY, "app")
    assert latest["status"]["observedPreviousRef"] == {"name": image, "tag": "1.1.0"}
    assert bare(git_remote, "rev-list", "--count", "master").strip() == "3"

    # Nothing new: a reconcile pushes nothing.
    before = bare(git_remote, "rev-parse", "master")
    await fluxd.patch(
        IMAGE_UPDATE_AUTOMATION,
        "app",
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "again"}}},
    )
    await fluxd.wait_for(
        IMAGE_UPDATE_AUTOMATION,
        "app",
        lambda o: (o.get("status") or {}).get("lastHandledReconcileAt") == "again",
        "the requested reconcile",
    )
    assert bare(git_remote, "rev-parse", "master") == before


async def test_private_registry_over_tls_with_digests_and_pages(
    fluxd: Fluxd, oci_registry_tls: OCIRegistry
) -> None:
    registry = oci_registry_tls
    name = f"private-{fluxd.namespace}"
    digests = await push_tags(registry, name, "a-1", "b-2", "c-3")
    assert registry.username
    assert registry.password
    assert registry.ca_pem
    await fluxd.secret(
        "pull",
        {".dockerconfigjson": docker_config(registry.host, registry.username, registry.password)},
    )
    await fluxd.secret("ca", {"ca.crt": registry.ca_pem})
    image = f"{registry.host}/{name}"
    common = {"image": image, "interval": "1h", "certSecretRef": {"name": "ca"}}
    await fluxd.create(IMAGE_REPOSITORY, "private", {**common, "secretRef": {"name": "pull"}})
    await fluxd.create(IMAGE_REPOSITORY, "anonymous", common)
    await client.create(
        fluxd.api,
        SERVICE_ACCOUNTS,
        {
            "metadata": {"name": "puller", "namespace": fluxd.namespace},
            "imagePullSecrets": [{"name": "pull"}],
        },
    )
    await fluxd.create(IMAGE_REPOSITORY, "by-account", {**common, "serviceAccountName": "puller"})
    await fluxd.create(IMAGE_REPOSITORY, "no-account", {**common, "serviceAccountName": "ghost"})
    repository = await fluxd.wait_ready(IMAGE_REPOSITORY, "private")
    assert repository["status"]["lastScanResult"]["tagCount"] == 3
    refused = await fluxd.wait_not_ready(IMAGE_REPOSITORY, "anonymous", "ReadOperationFailed")
    assert "401" in message(refused)
    assert "spec.secretRef" in message(refused)
    by_account = await fluxd.wait_ready(IMAGE_REPOSITORY, "by-account")
    assert by_account["status"]["lastScanResult"]["tagCount"] == 3
    no_account = await fluxd.wait_not_ready(IMAGE_REPOSITORY, "no-account", "AuthenticationFailed")
    assert "serviceaccount" in message(no_account)
    assert "ghost" in message(no_account)

    await fluxd.create(
        IMAGE_POLICY,
        "newest",
        {
            "imageRepositoryRef": {"name": "private"},
            "policy": {"alphabetical": {"order": "asc"}},
            "digestReflectionPolicy": "IfNotPresent",
        },
    )
    policy = await fluxd.wait_ready(IMAGE_POLICY, "newest")
    assert policy["status"]["latestRef"] == {"name": image, "tag": "c-3", "digest": digests["c-3"]}
    assert message(policy).endswith(f"resolved to c-3 with digest {digests['c-3']}")


async def test_invalid_policies_and_tags_that_match_nothing(
    fluxd: Fluxd, oci_registry: OCIRegistry
) -> None:
    name = f"policies-{fluxd.namespace}"
    await push_tags(oci_registry, name, "main-abc-100", "main-def-20", "release-1")
    await fluxd.create(
        IMAGE_REPOSITORY,
        "repo",
        {"image": f"{oci_registry.host}/{name}", "interval": "1h", "insecure": True},
    )
    ref = {"imageRepositoryRef": {"name": "repo"}}
    await fluxd.create(
        IMAGE_POLICY,
        "numbers",
        {
            **ref,
            "filterTags": {"pattern": "^main-[a-f]+-(?P<ts>[0-9]+)", "extract": "$ts"},
            "policy": {"numerical": {"order": "asc"}},
        },
    )
    await fluxd.create(IMAGE_POLICY, "bad-range", {**ref, "policy": {"semver": {"range": ">=x.y"}}})
    await fluxd.create(
        IMAGE_POLICY,
        "nothing",
        {**ref, "filterTags": {"pattern": "^v9"}, "policy": {"alphabetical": {}}},
    )
    await fluxd.create(
        IMAGE_POLICY,
        "no-repo",
        {"imageRepositoryRef": {"name": "missing"}, "policy": {"alphabetical": {}}},
    )
    numbers = await fluxd.wait_ready(IMAGE_POLICY, "numbers")
    assert numbers["status"]["latestRef"]["tag"] == "main-abc-100"
    bad = await fluxd.wait_for(
        IMAGE_POLICY, "bad-range", lambda o: stalled(o, "InvalidPolicy"), "Stalled InvalidPolicy"
    )
    assert "invalid semver range" in message(bad)
    assert ">=x.y" in message(bad)
    nothing = await fluxd.wait_not_ready(IMAGE_POLICY, "nothing", "Failure")
    assert "^v9" in message(nothing)
    missing = await fluxd.wait_not_ready(IMAGE_POLICY, "no-repo", "DependencyNotReady")
    assert "missing" in message(missing)
    assert "latestRef" not in (missing.get("status") or {})


PAGED_TAGS = ["v1", "v2", "v3", "v4", "v5"]


@pytest.fixture
async def stub_registry() -> AsyncIterator[str]:
    """A loopback server speaking the distribution tag-list protocol (Debian's registry
    ignores ``?n=``): repository ``paged`` lists its tags two per page with ``Link``
    headers, as GHCR and Docker Hub page them; every other request is answered 500."""

    async def tags(request: web.Request) -> web.Response:
        if request.match_info["name"] != "paged":
            return web.json_response(
                {"errors": [{"code": "UNKNOWN", "message": "storage is down"}]}, status=500
            )
        last = request.query.get("last")
        start = PAGED_TAGS.index(last) + 1 if last else 0
        page = PAGED_TAGS[start : start + 2]
        headers = {}
        if start + 2 < len(PAGED_TAGS):
            headers["Link"] = f'</v2/paged/tags/list?n=2&last={page[-1]}>; rel="next"'
        return web.json_response({"name": "paged", "tags": page}, headers=headers)

    app = web.Application()
    app.router.add_get("/v2/{name}/tags/list", tags)
    async with serve_on_loopback(app) as address:
        yield address


async def test_registry_pages_failures_and_bad_images(fluxd: Fluxd, stub_registry: str) -> None:
    await fluxd.create(
        IMAGE_REPOSITORY,
        "paged",
        {"image": f"{stub_registry}/paged", "interval": "1h", "insecure": True},
    )
    await fluxd.create(
        IMAGE_REPOSITORY,
        "broken",
        {"image": f"{stub_registry}/app", "interval": "1h", "insecure": True},
    )
    await fluxd.create(
        IMAGE_REPOSITORY,
        "unreachable",
        {"image": f"127.0.0.1:{free_port()}/app", "interval": "1h", "insecure": True},
    )
    await fluxd.create(
        IMAGE_REPOSITORY, "tagged", {"image": "ghcr.io/org/app:v1", "interval": "1h"}
    )
    await fluxd.create(
        IMAGE_REPOSITORY, "cloud", {"image": "ghcr.io/org/app", "interval": "1h", "provider": "aws"}
    )
    await fluxd.create(
        IMAGE_REPOSITORY,
        "no-secret",
        {"image": "ghcr.io/org/app", "interval": "1h", "secretRef": {"name": "absent"}},
    )
    paged = await fluxd.wait_ready(IMAGE_REPOSITORY, "paged")
    assert paged["status"]["lastScanResult"]["tagCount"] == len(PAGED_TAGS)
    broken = await fluxd.wait_not_ready(IMAGE_REPOSITORY, "broken", "ReadOperationFailed")
    assert "500" in message(broken)
    assert "storage is down" in message(broken)
    await fluxd.wait_not_ready(IMAGE_REPOSITORY, "unreachable", "ReadOperationFailed")
    tagged = await fluxd.wait_for(
        IMAGE_REPOSITORY, "tagged", lambda o: stalled(o, "ImageURLInvalid"), "ImageURLInvalid"
    )
    assert "should not include a tag; remove ':v1'" in message(tagged)
    cloud = await fluxd.wait_for(
        IMAGE_REPOSITORY, "cloud", lambda o: stalled(o, "UnsupportedField"), "UnsupportedField"
    )
    assert "spec.provider 'aws'" in message(cloud)
    absent = await fluxd.wait_not_ready(IMAGE_REPOSITORY, "no-secret", "AuthenticationFailed")
    assert "absent" in message(absent)


async def ready_policy(fluxd: Fluxd, registry: OCIRegistry, tags: tuple[str, ...]) -> str:
    name = f"bad-{fluxd.namespace}"
    await push_tags(registry, name, *tags)
    image = f"{registry.host}/{name}"
    await fluxd.create(
        IMAGE_REPOSITORY, "app", {"image": image, "interval": "1h", "insecure": True}
    )
    await fluxd.create(
        IMAGE_POLICY,
        "app",
        {"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": "1.x"}}},
    )
    await fluxd.wait_ready(IMAGE_POLICY, "app")
    return image


async def test_bad_markers_files_and_refused_pushes_push_nothing(
    fluxd: Fluxd, oci_registry: OCIRegistry, git_http: GitHTTPServer, git_remote: GitRemote
) -> None:
    image = await ready_policy(fluxd, oci_registry, ("1.0.0", "1.5.0"))
    ns = fluxd.namespace
    git_remote.commit(
        {
            "deploy/app.yaml": deployment(ns, f"{image}:1.0.0", "app"),
            "deploy/other.yaml": deployment(ns, f"{image}:1.0.0", "ghost"),
        }
    )
    git_remote.commit(
        {"broken/app.yaml": deployment(ns, f"{image}:1.0.0", "app") + "  bad: [unclosed\n"},
        branch="broken",
    )
    git_remote.commit({"hooked/app.yaml": deployment(ns, f"{image}:1.0.0", "app")}, branch="hooked")
    enable_push(git_remote)
    heads = bare(git_remote, "show-ref")
    await git_source(fluxd, git_http, git_remote)
    await fluxd.create(IMAGE_UPDATE_AUTOMATION, "ghost", automation())
    ghost = await fluxd.wait_not_ready(IMAGE_UPDATE_AUTOMATION, "ghost", "UpdateFailed")
    assert "deploy/other.yaml:9" in message(ghost)
    assert f"'{ns}/ghost'" in message(ghost)

    await fluxd.create(
        IMAGE_UPDATE_AUTOMATION,
        "not-yaml",
        automation(
            git={"checkout": {"ref": {"branch": "broken"}}, "commit": {"author": AUTHOR}},
            update={"path": "broken", "strategy": "Setters"},
        ),
    )
    not_yaml = await fluxd.wait_not_ready(IMAGE_UPDATE_AUTOMATION, "not-yaml", "UpdateFailed")
    assert "broken/app.yaml" in message(not_yaml)

    install_hook(git_remote, "echo 'policy: no bots on this branch' >&2\nexit 1\n")
    await fluxd.create(
        IMAGE_UPDATE_AUTOMATION,
        "refused",
        automation(
            git={"checkout": {"ref": {"branch": "hooked"}}, "commit": {"author": AUTHOR}},
            update={"path": "hooked", "strategy": "Setters"},
        ),
    )
    refused = await fluxd.wait_not_ready(IMAGE_UPDATE_AUTOMATION, "refused", "GitOperationFailed")
    assert "rejected" in message(refused) or "declined" in message(refused)

    await fluxd.create(
        IMAGE_UPDATE_AUTOMATION,
        "template",
        automation(
            git={
                "checkout": {"ref": {"branch": "hooked"}},
                "commit": {
                    "author": AUTHOR,
                    "messageTemplate": "{{ range .Updated.Images }}{{ end }}",
                },
            },
            update={"path": "hooked", "strategy": "Setters"},
        ),
    )
    template = await fluxd.wait_for(
        IMAGE_UPDATE_AUTOMATION,
        "template",
        lambda o: stalled(o, "RemovedTemplateField"),
        "RemovedTemplateField",
    )
    assert ".Updated" in message(template)
    assert bare(git_remote, "show-ref") == heads, "nothing was pushed"


async def test_a_push_race_is_retried_on_a_fresh_checkout(
    fluxd: Fluxd, oci_registry: OCIRegistry, git_http: GitHTTPServer, git_remote: GitRemote
) -> None:
    image = await ready_policy(fluxd, oci_registry, ("1.0.0", "1.3.0"))
    git_remote.commit({"deploy/app.yaml": deployment(fluxd.namespace, f"{image}:1.0.0", "app")})
    enable_push(git_remote)
    # The first push races with a commit someone else lands on master meanwhile.
    marker = git_remote.bare / "raced"
    install_hook(
        git_remote,
        f'if [ ! -e "{marker}" ]; then\n'
        f'  touch "{marker}"\n'
        # Outside receive-pack's quarantine, as another pusher would be.
        "  unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES\n"
        "  tree=$(git rev-parse master^{tree})\n"
        '  other=$(echo "someone else" | GIT_AUTHOR_NAME=Dev GIT_AUTHOR_EMAIL=dev@example.com'
        " GIT_COMMITTER_NAME=Dev GIT_COMMITTER_EMAIL=dev@example.com"
        " git commit-tree $tree -p master)\n"
        "  git update-ref refs/heads/master $other\n"
        "fi\n"
        "exit 0\n",
    )
    await git_source(fluxd, git_http, git_remote)
    await fluxd.create(IMAGE_UPDATE_AUTOMATION, "app", automation())
    await pushed(fluxd, "app")
    warnings: list[str] = []

    def pushed_in_one_run(event: dict[str, Any]) -> bool:
        if event["involvedObject"]["kind"] != "ImageUpdateAutomation":
            return False
        if event["type"] == "Warning":
            warnings.append(event["message"])
        return bool(event["reason"] == "Succeeded")

    await fluxd.wait_event("app", pushed_in_one_run, "the push event")
    assert warnings == [], "the race is retried within the run, not reported as a failure"
    history = bare(git_remote, "log", "--format=%an: %s", "master").splitlines()
    assert history[:2] == ["Image Bot: Update from image update automation", "Dev: someone else"]
    assert f"{image}:1.3.0" in bare(git_remote, "show", "master:deploy/app.yaml")


async def test_push_to_another_branch_and_refspec_over_ssh(
    fluxd: Fluxd,
    oci_registry: OCIRegistry,
    git_sshd: SSHServer,
    git_root: RepoRoot,
    git_remote: GitRemote,
) -> None:
    image = await ready_policy(fluxd, oci_registry, ("1.0.0", "1.4.0"))
    git_remote.commit({"deploy/app.yaml": deployment(fluxd.namespace, f"{image}:1.0.0", "app")})
    master = bare(git_remote, "rev-parse", "master")
    bare(git_remote, "config", "receive.advertisePushOptions", "true")
    options_seen = git_remote.bare / "push-options"
    install_hook(
        git_remote,
        f'for i in $(seq 0 $((GIT_PUSH_OPTION_COUNT - 1))); do eval "echo \\$GIT_PUSH_OPTION_$i"'
        f' >> "{options_seen}"; done\nexit 0\n',
    )
    keys = git_sshd.keys
    await fluxd.secret("ssh", {"identity": keys.identity, "known_hosts": keys.known_hosts})
    await fluxd.create(
        GIT_REPOSITORY,
        "source",
        {"interval": "1h", "url": git_sshd.url(git_remote, git_root), "secretRef": {"name": "ssh"}},
    )
    await fluxd.create(
        IMAGE_UPDATE_AUTOMATION,
        "app",
        automation(
            git={
                "checkout": {"ref": {"branch": "master"}},
                "commit": {"author": AUTHOR},
                "push": {
                    "branch": "auto",
                    "refspec": "refs/heads/auto:refs/heads/review",
                    "options": {"merge_request.create": "", "ci.skip": "yes"},
                },
            }
        ),
    )
    done = await pushed(fluxd, "app")
    sha = done["status"]["lastPushCommit"]
    assert bare(git_remote, "rev-parse", "auto").strip() == sha
    assert bare(git_remote, "rev-parse", "review").strip() == sha
    assert bare(git_remote, "rev-parse", "master") == master, "the checkout branch is untouched"
    assert options_seen.read_text().split() == ["ci.skip=yes", "merge_request.create"]
    assert f"{image}:1.4.0" in bare(git_remote, "show", "auto:deploy/app.yaml")
    event = await fluxd.wait_event(
        "app",
        lambda e: e.get("reason") == "Succeeded" and "pushed commit" in e.get("message", ""),
        "the push event",
    )
    assert f"pushed commit '{sha[:7]}' to branch 'auto' and refspecs" in event["message"]


async def test_policies_across_namespaces_and_chosen_by_label(
    api_client: ApiClient,
    namespace: str,
    other_namespace: str,
    oci_registry: OCIRegistry,
    git_http: GitHTTPServer,
    git_remote: GitRemote,
) -> None:
    await client.patch(
        api_client, NAMESPACES, None, namespace, {"metadata": {"labels": {"team": "apps"}}}
    )
    name = f"shared-{namespace}"
    await push_tags(oci_registry, name, "1.0.0", "1.0.1", "1.2.0")
    image = f"{oci_registry.host}/{name}"
    git_remote.commit(
        {
            "deploy/app.yaml": deployment(namespace, f"{image}:1.0.0", "open")
            + f'  pinned: {image}:0.9 # {{"$imagepolicy": "{namespace}:pinned"}}\n'
        }
    )
    enable_push(git_remote)
    async with labelled_fluxd(api_client, [namespace, other_namespace]) as (apps, shared):
        scan = {"image": image, "interval": "1h", "insecure": True}
        await create_labelled(
            shared,
            IMAGE_REPOSITORY,
            "open",
            {**scan, "accessFrom": {"namespaceSelectors": [{"matchLabels": {"team": "apps"}}]}},
        )
        await create_labelled(shared, IMAGE_REPOSITORY, "closed", scan)
        semver = {"semver": {"range": "1.x"}}
        for policy, repository, labels in (
            ("open", "open", {"automate": "yes"}),
            ("closed", "closed", {"automate": "yes"}),
            ("pinned", "open", {}),
        ):
            await create_labelled(
                apps,
                IMAGE_POLICY,
                policy,
                {
                    "imageRepositoryRef": {"name": repository, "namespace": other_namespace},
                    "policy": semver if policy != "pinned" else {"semver": {"range": "1.0.x"}},
                },
                labels,
            )
        opened = await apps.wait_ready(IMAGE_POLICY, "open")
        assert opened["status"]["latestRef"]["tag"] == "1.2.0"
        closed = await apps.wait_for(
            IMAGE_POLICY, "closed", lambda o: stalled(o, "AccessDenied"), "AccessDenied"
        )
        assert "accessFrom" in message(closed)
        assert (await apps.wait_ready(IMAGE_POLICY, "pinned"))["status"]["latestRef"][
            "tag"
        ] == "1.0.1"

        await create_labelled(
            apps, GIT_REPOSITORY, "source", {"interval": "1h", "url": git_http.url(git_remote)}
        )
        await create_labelled(
            apps,
            IMAGE_UPDATE_AUTOMATION,
            "selected",
            automation(
                git={"commit": {"author": AUTHOR}, "push": {"branch": "master"}},
                policySelector={"matchLabels": {"automate": "yes"}},
            ),
        )
        done = await pushed(apps, "selected")
        assert set(done["status"]["observedPolicies"]) == {"open"}
        updated = bare(git_remote, "show", "master:deploy/app.yaml")
        assert f"image: {image}:1.2.0 #" in updated
        assert f"pinned: {image}:0.9 #" in updated, "a policy the selector leaves out is not set"


async def test_commits_are_signed_with_the_key_of_the_secret(
    fluxd: Fluxd,
    oci_registry: OCIRegistry,
    git_http: GitHTTPServer,
    git_remote: GitRemote,
    tmp_path: Path,
) -> None:
    image = await ready_policy(fluxd, oci_registry, ("1.0.0", "1.6.0"))
    git_remote.commit({"deploy/app.yaml": deployment(fluxd.namespace, f"{image}:1.0.0", "app")})
    enable_push(git_remote)
    key = ed25519.Ed25519PrivateKey.generate()
    identity = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    await fluxd.secret("signing", {"identity": identity})
    await git_source(fluxd, git_http, git_remote)

    def signed_by(secret: str) -> dict[str, Any]:
        key_ref = {"secretRef": {"name": secret}, "type": "ssh"}
        return automation(git={"commit": {"author": AUTHOR, "signingKey": key_ref}})

    await fluxd.create(IMAGE_UPDATE_AUTOMATION, "no-key", signed_by("absent"))
    missing = await fluxd.wait_not_ready(IMAGE_UPDATE_AUTOMATION, "no-key", "SourceManagerFailed")
    assert "'absent'" in message(missing)
    await fluxd.create(IMAGE_UPDATE_AUTOMATION, "signed", signed_by("signing"))
    await pushed(fluxd, "signed")
    verified = verify_commit(git_remote, "master", tmp_path, AUTHOR["email"], public.decode())
    assert verified.returncode == 0, verified.stderr
    assert "Good" in verified.stderr
