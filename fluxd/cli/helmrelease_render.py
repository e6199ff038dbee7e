"""What the next upgrade of a HelmRelease would change: ``fluxd diff helmrelease NAME``.

The release is rendered from what the daemon would release, not from a local copy: the
chart is the artifact of the HelmRelease's HelmChart (or ``chartRef``), downloaded from
the URL in its ``status.artifact`` (the daemon's artifact server) and checked against its
digest, as an in-cluster consumer of artifacts does; an OCI chart gets the digest
version the daemon gives it. Values come from the cluster as the daemon reads them
(``valuesFrom`` then ``values``), the chart is rendered offline by the Helm SDK as an
upgrade, hooks left out (they run and go), and fluxd's own post-renderer applies
``postRenderers``, ``commonMetadata`` and the origin labels. Each object is then
dry-run through :func:`fluxd.apply.diff.diff_objects` as field manager
``helm-controller``, so drift is shown as the release's writer sees it, and objects of
``status.inventory`` the new render no longer has (CRDs excepted: Helm never deletes
them) are reported as deleted. Secret values are masked.

A HelmRelease releasing into another cluster (``spec.kubeConfig``) is refused: the diff
runs against the cluster of ``--kubeconfig``. The Helm SDK loads only for this command.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from typing import Any

import anyio
import anyio.to_thread
import yaml

from fluxd.api import HELM_CHART, HELM_RELEASE, OCI_REPOSITORY, KindInfo, SpecError
from fluxd.apply import ApplyError, ApplyManager, ObjectRef, RESTMapper, drift, stale
from fluxd.apply.diff import diff_objects, render_diff
from fluxd.apply.inventory import recorded
from fluxd.build.postrender import PostRenderError, post_render
from fluxd.helm import (
    DigestVersionError,
    HelmActionError,
    ValuesError,
    load_chart,
    release_values,
    stamp_digest,
)
from fluxd.helm.manifest import HOOK_ANNOTATION
from fluxd.helm.sdk import FIELD_MANAGER
from fluxd.kube import client
from fluxd.kube.client import ApiClient, KubeconfigError, connect
from fluxd.kube.events import EventRecorder
from fluxd.kube.objects import ObjectApi, resource_of
from fluxd.reconcilers.helmrelease import post_rendering, release_name
from fluxd.runtime.keys import ObjectKey

__all__ = ["DiffError", "run"]


class DiffError(Exception):
    """The diff cannot be made; the message says why."""


def run(args: argparse.Namespace) -> int:
    """Print the diff of HelmRelease ``args.name``; exit status 0 none, 1 differences,
    2 error (one line on stderr)."""
    try:
        return anyio.run(_diff, args)
    except (DiffError, ApplyError, KubeconfigError, client.ApiError) as error:
        print(f"fluxd diff: {error}", file=sys.stderr)
        return 2


async def _diff(args: argparse.Namespace) -> int:
    namespace, name = args.namespace, args.name
    api = await connect(args.kubeconfig)
    try:
        release = await _get(api, HELM_RELEASE, namespace, name)
        try:
            spec = HELM_RELEASE.parse_spec(release)
        except SpecError as error:
            raise DiffError(f"HelmRelease '{namespace}/{name}' is invalid: {error}") from error
        if spec.kube_config is not None:
            raise DiffError(
                f"HelmRelease '{namespace}/{name}' releases into the cluster of its "
                "spec.kubeConfig: diff it with --kubeconfig pointing there"
            )
        archive = await _chart_archive(api, namespace, name, release)
        objects = ObjectApi(api, informers={}, events=EventRecorder(api, component="fluxd-cli"))
        try:
            values = await release_values(objects, namespace, spec)
        except ValuesError as error:
            raise DiffError(str(error)) from error
        target = spec.target_namespace or namespace
        releasing = release_name(namespace, name, spec)
        digest = "sha256:" + hashlib.sha256(archive).hexdigest()
        try:
            chart = await anyio.to_thread.run_sync(load_chart, archive, digest)
            rendered = await chart.render(values, name=releasing, namespace=target, upgrade=True)
        except HelmActionError as error:
            raise DiffError(f"rendering the chart failed: {error}") from error
        except Exception as error:  # the SDK's HelmError, imported lazily
            raise DiffError(f"could not load the chart: {error}") from error
        manifest = _without_hooks(rendered)
        try:
            manifest = post_render(manifest, post_rendering(ObjectKey("", namespace, name), spec))
        except PostRenderError as error:
            raise DiffError(f"post-rendering failed: {error}") from error
        desired = drift.release_objects(manifest, release=releasing, namespace=target)
        wanted = [ObjectRef.of(obj) for obj in desired]
        gone = [
            ref
            for ref in stale(recorded(release.get("status") or {}), wanted)
            if (ref.group, ref.kind) != ("apiextensions.k8s.io", "CustomResourceDefinition")
        ]
        changes = await diff_objects(
            ApplyManager(api, RESTMapper(api), field_manager=FIELD_MANAGER),
            desired,
            prune=gone,
            owner_labels={
                "helm.toolkit.fluxcd.io/name": name,
                "helm.toolkit.fluxcd.io/namespace": namespace,
            },
        )
    finally:
        await api.close()
    for change in changes:
        sys.stdout.write(render_diff(change))
    return 1 if changes else 0


async def _chart_archive(
    api: ApiClient, namespace: str, name: str, release: dict[str, Any]
) -> bytes:
    """The packaged chart the daemon would release, checked against its digest."""
    spec = release.get("spec") or {}
    ref = spec.get("chartRef")
    kind: KindInfo[Any] = HELM_CHART
    if ref:
        kind = OCI_REPOSITORY if ref.get("kind") == OCI_REPOSITORY.kind else HELM_CHART
        source_namespace, source_name = str(ref.get("namespace") or namespace), str(ref["name"])
    else:
        made = str((release.get("status") or {}).get("helmChart") or "")
        template = (spec.get("chart") or {}).get("spec") or {}
        default_namespace = str(template.get("sourceRef", {}).get("namespace") or namespace)
        source_namespace, _, source_name = made.partition("/")
        if not made:
            source_namespace, source_name = default_namespace, f"{namespace}-{name}"
    obj = await _get(api, kind, source_namespace, source_name)
    artifact = (obj.get("status") or {}).get("artifact") or {}
    where = f"{kind.kind} '{source_namespace}/{source_name}'"
    if not artifact.get("url"):
        raise DiffError(f"{where} has no artifact yet: reconcile it first")
    archive = await _download(str(artifact["url"]), where)
    digest = "sha256:" + hashlib.sha256(archive).hexdigest()
    if artifact.get("digest") and artifact["digest"] != digest:
        raise DiffError(f"the artifact of {where} does not match its digest {artifact['digest']}")
    if kind is OCI_REPOSITORY:
        try:
            archive, _, _ = stamp_digest(archive, str(artifact.get("revision") or ""))
        except DigestVersionError as error:
            raise DiffError(str(error)) from error
    return archive


async def _download(url: str, where: str) -> bytes:
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
            session.get(url) as response,
        ):
            if response.status != 200:
                raise DiffError(
                    f"downloading the artifact of {where} from {url}: {response.status}"
                )
            return await response.read()
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        raise DiffError(f"downloading the artifact of {where} from {url}: {error}") from error


async def _get(api: ApiClient, kind: KindInfo[Any], namespace: str, name: str) -> dict[str, Any]:
    found = await client.get(api, resource_of(kind), namespace, name, missing_ok=True)
    if found is None:
        raise DiffError(
            f"{kind.kind} '{namespace}/{name}' not found: check the name and the namespace (-n)"
        )
    return found


def _without_hooks(rendered: dict[str, str]) -> str:
    """The rendered templates as one YAML stream, hooks and ``NOTES.txt`` left out."""
    documents = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for document in yaml.load_all(text, Loader=yaml.CSafeLoader):
            if not isinstance(document, dict) or not document.get("kind"):
                continue
            annotations = (document.get("metadata") or {}).get("annotations") or {}
            if HOOK_ANNOTATION not in annotations:
                documents.append(document)
    return str(yaml.safe_dump_all(documents, sort_keys=False))
