"""A Kustomization's objects as the daemon would apply them, computed outside the daemon.

``fluxd build kustomization NAME`` and ``fluxd diff kustomization NAME`` run as separate
processes: the daemon's in-memory artifact cache is out of their reach. So they rebuild
the source's artifact themselves, with the same :mod:`fluxd.sources.git` functions the
GitRepository reconciler makes it with:

1. read the Kustomization and its ``sourceRef`` GitRepository from the cluster (other
   source kinds are refused with a message saying so);
2. credentials from the GitRepository's ``secretRef``;
3. fetch the revision the GitRepository reports in ``status.artifact.revision``: its ref
   first (one shallow fetch, enough while nothing was pushed since), else that exact
   commit; with no artifact yet, whatever its ref points at now;
4. includes, recursively, then the ignore rules;
5. the shared build of :mod:`fluxd.build.kustomization`.

With a local directory (``--path``) steps 2 to 4 are skipped: the directory stands in for
the artifact, built with the in-cluster Kustomization's fields.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from fluxd.api import (
    GIT_REPOSITORY,
    KUSTOMIZATION,
    GitRepositoryRef,
    GitRepositorySpec,
    KustomizationSpec,
    SpecError,
    parse_duration,
)
from fluxd.build.kustomization import SopsMode, build_objects
from fluxd.kube import client
from fluxd.kube.client import ApiClient
from fluxd.kube.events import EventRecorder
from fluxd.kube.objects import ObjectApi, resource_of
from fluxd.kustomize import KustomizeError, read_directory
from fluxd.runtime.errors import ReconcileError
from fluxd.sources import git

__all__ = ["Preview", "PreviewError", "preview"]

#: Includes of includes are followed this deep; a cycle ends in an error, not a hang.
_MAX_INCLUDE_DEPTH = 8


class PreviewError(Exception):
    """The objects could not be computed; the message says what, where, and what to do."""


@dataclasses.dataclass(frozen=True)
class Preview:
    """The Kustomization as read from the cluster and the objects it would apply."""

    kustomization: dict[str, Any]
    spec: KustomizationSpec
    revision: str
    objects: list[dict[str, Any]]


async def preview(
    api: ApiClient,
    namespace: str,
    name: str,
    *,
    local: Path | None = None,
    local_root: Path | None = None,
    sops: SopsMode = "decrypt",
) -> Preview:
    """Build Kustomization ``namespace/name`` from its source, or from ``local``.

    ``local_root`` is the tree a local build may read (default ``local``), for overlays
    whose bases lie outside ``local``.
    """
    kustomization = await _get(api, KUSTOMIZATION, namespace, name)
    try:
        spec = KUSTOMIZATION.parse_spec(kustomization)
    except SpecError as error:
        raise PreviewError(f"Kustomization '{namespace}/{name}' is invalid: {error}") from error
    objects = ObjectApi(api, informers={}, events=EventRecorder(api, component="fluxd-cli"))
    path: str | None
    if local is not None:
        files, path, revision = _local_files(local, local_root or local)
    else:
        files, revision = await _source_files(objects, namespace, spec.source_ref)
        path = spec.path
    try:
        built = await build_objects(
            files, spec, path=path, namespace=namespace, name=name, objects=objects, sops=sops
        )
    except ReconcileError as error:
        raise PreviewError(f"{error.reason}: {error.message}") from error
    return Preview(kustomization, spec, revision, built)


def _local_files(local: Path, root: Path) -> tuple[dict[str, bytes], str, str]:
    directory, top = local.resolve(), root.resolve()
    if not directory.is_dir() or (directory != top and top not in directory.parents):
        raise PreviewError(f"--path {local} is not a directory inside {top}")
    try:
        files = read_directory(top)
    except (OSError, KustomizeError) as error:
        raise PreviewError(f"cannot read {top}: {error}") from error
    return files, directory.relative_to(top).as_posix(), f"local:{directory}"


async def _source_files(
    objects: ObjectApi, namespace: str, source_ref: Any
) -> tuple[dict[str, bytes], str]:
    if source_ref.kind != GIT_REPOSITORY.kind:
        raise PreviewError(
            f"source kind {source_ref.kind} is not supported yet (only GitRepository): "
            "build the source's manifests from a local copy with --path"
        )
    return await _git_artifact(objects, source_ref.namespace or namespace, source_ref.name, ())


async def _git_artifact(
    objects: ObjectApi, namespace: str, name: str, chain: tuple[str, ...]
) -> tuple[dict[str, bytes], str]:
    """The files of GitRepository ``namespace/name``'s artifact and its revision."""
    if name in chain or len(chain) >= _MAX_INCLUDE_DEPTH:
        raise PreviewError(
            f"GitRepository includes loop or nest too deep: {' -> '.join((*chain, name))}"
        )
    repository = await _get(objects.api, GIT_REPOSITORY, namespace, name)
    try:
        spec = GIT_REPOSITORY.parse_spec(repository)
    except SpecError as error:
        raise PreviewError(f"GitRepository '{namespace}/{name}' is invalid: {error}") from error
    if spec.provider in ("aws", "azure"):
        raise PreviewError(
            f"GitRepository '{namespace}/{name}': spec.provider '{spec.provider}' (cloud "
            "workload identity) is not supported by fluxd"
        )
    try:
        auth = await git.repository_auth(objects, namespace, spec)
    except git.CredentialsError as error:
        raise PreviewError(f"GitRepository '{namespace}/{name}': {error.message}") from error
    reported = str(((repository.get("status") or {}).get("artifact") or {}).get("revision") or "")
    files, revision = await _fetch(spec, auth, reported, where=f"{namespace}/{name}")
    included = []
    for include in spec.include or ():
        include_files, _ = await _git_artifact(
            objects, namespace, include.repository.name, (*chain, name)
        )
        included.append((include_files, *git.include_paths(include)))
    return git.artifact_files(files, included, ignore=spec.ignore), revision


async def _fetch(
    spec: GitRepositorySpec, auth: git.GitAuth, reported: str, *, where: str
) -> tuple[dict[str, bytes], str]:
    """The commit the GitRepository reported, or the tip of its ref when it has none."""
    ref = spec.reference
    timeout = parse_duration(spec.timeout)
    _, _, sha = reported.rpartition("sha1:")
    try:
        sparse = git.SparseCheckout.from_spec(spec.sparse_checkout)
        submodules = spec.recurse_submodules
        commit, files = await git.fetch(
            spec.url, ref, auth, timeout, recurse_submodules=submodules, sparse=sparse
        )
        if sha and commit.sha != sha:
            # Pushed since the GitRepository's last reconcile: build what it serves.
            pinned = GitRepositoryRef(commit=sha, branch=ref.branch)
            commit, files = await git.fetch(
                spec.url, pinned, auth, timeout, recurse_submodules=submodules, sparse=sparse
            )
    except (git.GitError, git.InvalidSparsePath) as error:
        raise PreviewError(f"GitRepository '{where}': {error}") from error
    return files, reported or commit.revision


async def _get(api: ApiClient, kind: Any, namespace: str, name: str) -> dict[str, Any]:
    try:
        return await client.get(api, resource_of(kind), namespace, name)
    except client.ApiError as error:
        if error.not_found:
            raise PreviewError(
                f"{kind.kind} '{namespace}/{name}' not found: check the name and the namespace (-n)"
            ) from error
        raise PreviewError(f"reading {kind.kind} '{namespace}/{name}': {error}") from error
