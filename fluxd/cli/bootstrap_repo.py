"""What every ``fluxd bootstrap`` does once it holds credentials for a repository.

``bootstrap git`` (and, on top of a Git host's API, ``bootstrap github|gitlab``) differ in
how they reach the repository; the rest is :func:`bootstrap_repository`, in Flux's order:

1. check out the branch (or start it, when the repository is empty or lacks it);
2. write ``<path>/<namespace>/gotk-components.yaml`` (the install objects),
   ``gotk-sync.yaml`` (the GitRepository and Kustomization that keep the cluster in sync
   with ``<path>``) and a ``kustomization.yaml`` listing both; commit and push them as one
   commit, or nothing when the branch holds them already;
3. install the components and wait until fluxd runs;
4. apply the source Secret, then the sync objects, and request a reconcile of the
   GitRepository (an unchanged one would fetch the new commit only at its interval);
5. wait until the GitRepository has fetched the pushed commit and the Kustomization has
   applied it.

The branch is pushed only if it has not moved since the checkout; a race with another
push is retried on a fresh checkout, as Flux retries. Progress lines use Flux's symbols
(``►`` action, ``✔`` done, ``◎`` waiting); every failure is a :class:`CommandError` whose
text holds no credential.
"""

from __future__ import annotations

import asyncio
import posixpath
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from fluxd.cli.session import CommandError

if TYPE_CHECKING:
    from fluxd.api.install import InstallOptions
    from fluxd.kube.client import ApiClient
    from fluxd.kube.resources import Resource
    from fluxd.sources.git.push import Author
    from fluxd.sources.git.transport import GitAuth

__all__ = [
    "COMPONENTS_FILE",
    "KUSTOMIZATION_FILE",
    "SYNC_FILE",
    "apply_secret",
    "bootstrap_repository",
    "repository_files",
    "repository_path",
    "sync_objects",
    "synced_state",
]

COMPONENTS_FILE = "gotk-components.yaml"
SYNC_FILE = "gotk-sync.yaml"
KUSTOMIZATION_FILE = "kustomization.yaml"
#: The Kustomization interval Flux's bootstrap writes.
SYNC_KUSTOMIZATION_INTERVAL = "10m0s"
_PUSH_ATTEMPTS = 3
_POLL = 0.5


def repository_path(path: str) -> str:
    """``--path`` as a clean path inside the repository (``""`` for its root);
    :class:`ValueError` for an absolute path or one that leaves the repository."""
    if not path:
        raise ValueError("--path is required, e.g. --path=./clusters/my-cluster")
    if path.startswith("/") or "\\" in path:
        raise ValueError(f"--path '{path}' must be relative to the repository root")
    clean = posixpath.normpath(path)
    if clean == ".":
        return ""
    if clean == ".." or clean.startswith("../"):
        raise ValueError(f"--path '{path}' leaves the repository")
    return clean


def sync_objects(
    *, namespace: str, url: str, branch: str, interval: str, path: str, secret_name: str
) -> list[dict[str, Any]]:
    """The GitRepository and the Kustomization named after ``namespace`` that apply
    ``path`` (a :func:`repository_path`) of ``branch``, as Flux's ``gotk-sync.yaml``."""
    from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION, format_duration, parse_duration

    meta = {"name": namespace, "namespace": namespace}
    git_repository = {
        "apiVersion": GIT_REPOSITORY.api_version,
        "kind": GIT_REPOSITORY.kind,
        "metadata": dict(meta),
        "spec": {
            "interval": format_duration(parse_duration(interval)),
            "ref": {"branch": branch},
            "secretRef": {"name": secret_name},
            "url": url,
        },
    }
    kustomization = {
        "apiVersion": KUSTOMIZATION.api_version,
        "kind": KUSTOMIZATION.kind,
        "metadata": dict(meta),
        "spec": {
            "interval": SYNC_KUSTOMIZATION_INTERVAL,
            "path": f"./{path}" if path else "./",
            "prune": True,
            "sourceRef": {"kind": GIT_REPOSITORY.kind, "name": namespace},
        },
    }
    return [git_repository, kustomization]


def repository_files(
    *, path: str, options: InstallOptions, sync: list[dict[str, Any]]
) -> dict[str, bytes]:
    """The three files bootstrap keeps in ``<path>/<namespace>/``, by repository path."""
    from fluxd.api.generate import dump_yaml
    from fluxd.api.install import install_objects

    folder = posixpath.join(path, options.namespace)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [COMPONENTS_FILE, SYNC_FILE],
    }
    return {
        posixpath.join(folder, COMPONENTS_FILE): dump_yaml(install_objects(options)).encode(),
        posixpath.join(folder, SYNC_FILE): dump_yaml(sync).encode(),
        posixpath.join(folder, KUSTOMIZATION_FILE): dump_yaml([kustomization]).encode(),
    }


async def bootstrap_repository(
    api: ApiClient,
    *,
    url: str,
    auth: GitAuth,
    branch: str,
    path: str,
    options: InstallOptions,
    interval: str,
    author: Author,
    say: Callable[[str], None],
    timeout: float,  # noqa: ASYNC109 - the command's --timeout, spread over every step
    secret_data: Mapping[str, bytes] | None,
    secret_name: str | None = None,
    commit_message_appendix: str = "",
    sync_url: str | None = None,
) -> str:
    """Bootstrap the cluster from ``branch`` of ``url`` (see the module text); the commit
    the cluster was synced to. ``secret_data`` is the source Secret's data (``None``
    keeps the Secret already in the cluster); ``path`` is a :func:`repository_path`;
    ``sync_url`` is the URL the cluster fetches when it is not the one pushed to (a
    provider's SSH URL, the CLI pushing over HTTPS with a token)."""
    deadline = time.monotonic() + timeout
    namespace = options.namespace
    secret = secret_name or namespace
    sync = sync_objects(
        namespace=namespace,
        url=sync_url or url,
        branch=branch,
        interval=interval,
        path=path,
        secret_name=secret,
    )
    await _refuse_other_path(api, sync[1])
    files = repository_files(path=path, options=options, sync=sync)
    message = f"Add fluxd {_version()} component and sync manifests"
    if commit_message_appendix:
        message += f"\n\n{commit_message_appendix}"
    sha = await _commit_files(url, auth, branch, files, author, message, say, timeout)
    await _install(api, options, deadline, say)
    if secret_data is None:
        say(f"✔ source secret {namespace}/{secret} is up to date")
    else:
        say(f"► applying source secret {namespace}/{secret}")
        await apply_secret(api, namespace, secret, secret_data)
        say("✔ reconciled source secret")
    say("► applying sync manifests")
    await _apply(api, sync)
    await _request_reconcile(api, sync[0])
    say("✔ reconciled sync configuration")
    revision = f"{branch}@sha1:{sha}"
    for obj in sync:
        await _wait_synced(api, obj, revision, deadline, say)
    return sha


async def apply_secret(
    api: ApiClient, namespace: str, name: str, data: Mapping[str, bytes]
) -> None:
    """Server-side apply the source Secret with exactly ``data``."""
    import base64

    from fluxd.cli.install import FIELD_MANAGER
    from fluxd.kube.client import patch
    from fluxd.kube.resources import SECRETS

    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {key: base64.b64encode(value).decode("ascii") for key, value in data.items()},
    }
    await patch(
        api,
        SECRETS,
        namespace,
        name,
        body,
        patch_type="apply",
        field_manager=FIELD_MANAGER,
        force=True,
    )


def _version() -> str:
    from fluxd.api.install import VERSION

    return VERSION


async def _refuse_other_path(api: ApiClient, kustomization: Mapping[str, Any]) -> None:
    """Flux refuses to repoint an existing sync Kustomization at another path: its
    objects would be pruned."""
    from fluxd.kube.client import get

    meta = kustomization["metadata"]
    live = await get(
        api, _resource(kustomization), meta["namespace"], meta["name"], missing_ok=True
    )
    current = ((live or {}).get("spec") or {}).get("path")
    wanted = kustomization["spec"]["path"]
    if current is not None and posixpath.normpath(current) != posixpath.normpath(wanted):
        raise CommandError(
            f"sync path configuration ('{wanted}') would overwrite path ('{current}') of the"
            f" existing Kustomization {meta['namespace']}/{meta['name']}"
        )


async def _commit_files(
    url: str,
    auth: GitAuth,
    branch: str,
    files: Mapping[str, bytes],
    author: Author,
    message: str,
    say: Callable[[str], None],
    git_timeout: float,
) -> str:
    """Commit and push the files that differ from the branch; the branch's commit after."""
    from fluxd.sources.git.push import PushConflict, branch_checkout, commit_and_push
    from fluxd.sources.git.transport import GitError, redact_url

    shown = redact_url(url)
    for attempt in range(1, _PUSH_ATTEMPTS + 1):
        say(f'► cloning branch "{branch}" from Git repository "{shown}"')
        try:
            checkout = await branch_checkout(url, auth, git_timeout, branch=branch)
        except GitError as error:
            raise CommandError(f"failed to clone repository: {error.message}") from None
        if checkout.remote_tip is None:
            say(f'✔ the repository has no branch "{branch}": starting it')
        else:
            say("✔ cloned repository")
        changed = {name: data for name, data in files.items() if checkout.files.get(name) != data}
        if not changed:
            say("✔ component manifests are up to date")
            return checkout.commit.sha
        say(f'► pushing component manifests to "{shown}"')
        try:
            sha = await commit_and_push(
                checkout, url, auth, git_timeout, files=changed, author=author, message=message
            )
        except PushConflict:
            if attempt == _PUSH_ATTEMPTS:
                raise CommandError(
                    f'failed to push manifests: branch "{branch}" kept moving during the push'
                ) from None
            say("◎ git conflict detected, retrying with a fresh clone")
            continue
        except GitError as error:
            raise CommandError(f"failed to push manifests: {error.message}") from None
        say(f'✔ committed component manifests to "{branch}" ("{sha}")')
        return sha
    raise AssertionError("unreachable: every attempt returns or raises")


async def _install(
    api: ApiClient, options: InstallOptions, deadline: float, say: Callable[[str], None]
) -> None:
    from fluxd.cli.install import install_components

    await install_components(api, options, wait=_remaining(deadline), say=say)


async def _apply(api: ApiClient, objects: list[dict[str, Any]]) -> None:
    from fluxd.cli.install import FIELD_MANAGER
    from fluxd.kube.client import patch

    for obj in objects:
        meta = obj["metadata"]
        await patch(
            api,
            _resource(obj),
            meta["namespace"],
            meta["name"],
            obj,
            patch_type="apply",
            field_manager=FIELD_MANAGER,
            force=True,
        )


async def _request_reconcile(api: ApiClient, source: Mapping[str, Any]) -> None:
    """Ask for a fetch now, as ``flux reconcile source git`` does: an unchanged
    GitRepository would otherwise see the pushed commit only at its next interval."""
    from fluxd.cli.outcome import REQUESTED_AT, requested_at
    from fluxd.kube.client import patch

    meta = source["metadata"]
    body = {"metadata": {"annotations": {REQUESTED_AT: requested_at(time.time_ns())}}}
    await patch(api, _resource(source), meta["namespace"], meta["name"], body)


def _resource(obj: Mapping[str, Any]) -> Resource:
    from fluxd.api import lookup
    from fluxd.kube.objects import resource_of

    return resource_of(lookup(obj["kind"]))


def synced_state(obj: Mapping[str, Any], revision: str) -> tuple[bool, str | None]:
    """``(synced, failure)``: synced when Ready for the current generation at
    ``revision``; a failure message when it is Stalled."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    stalled = conditions.get("Stalled") or {}
    if stalled.get("status") == "True":
        return False, str(stalled.get("message") or "")
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False, None
    at = (status.get("artifact") or {}).get("revision") or status.get("lastAppliedRevision")
    ready = conditions.get("Ready") or {}
    return ready.get("status") == "True" and at == revision, None


async def _wait_synced(
    api: ApiClient,
    obj: Mapping[str, Any],
    revision: str,
    deadline: float,
    say: Callable[[str], None],
) -> None:
    from fluxd.kube.client import get

    kind, meta = obj["kind"], obj["metadata"]
    key = f"{meta['namespace']}/{meta['name']}"
    say(f'◎ waiting for {kind} "{key}" to be reconciled')
    while True:
        live = await get(api, _resource(obj), meta["namespace"], meta["name"])
        synced, failure = synced_state(live, revision)
        if synced:
            say(f"✔ {kind} reconciled successfully")
            return
        if failure is not None:
            raise CommandError(f"{kind.lower()} '{key}' not ready: {failure}")
        if time.monotonic() >= deadline:
            ready: dict[str, Any] = next(
                (
                    c
                    for c in (live.get("status") or {}).get("conditions") or []
                    if c.get("type") == "Ready"
                ),
                {},
            )
            detail = f": {ready['message']}" if ready.get("message") else ""
            raise CommandError(
                f"timeout waiting for {kind} '{key}' to be reconciled at {revision}{detail}"
            )
        await asyncio.sleep(_POLL)


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), 1.0)
