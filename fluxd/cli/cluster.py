"""``fluxd build`` and ``fluxd diff`` of a Kustomization in a cluster.

The Kustomization is read from the cluster and built as the daemon builds it
(:mod:`fluxd.cli.preview`); ``diff`` then plans each object through the daemon's own
apply manager, prune and drift-ignore code, so what it prints is what the next
reconcile does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable

import anyio

from fluxd.apply import ApplyError, ApplyManager, ObjectRef, RESTMapper, stale
from fluxd.apply.diff import diff_objects, render_diff
from fluxd.apply.ignore import DriftIgnore
from fluxd.apply.inventory import recorded
from fluxd.build.labels import owner_labels
from fluxd.cli.preview import PreviewError, preview
from fluxd.kube.client import ApiError, KubeconfigError, connect
from fluxd.kustomize import render

__all__ = ["build_in_cluster", "diff_in_cluster", "run"]


async def build_in_cluster(args: argparse.Namespace) -> int:
    """``fluxd build kustomization NAME``: print what the Kustomization would apply."""
    api = await connect(args.kubeconfig)
    try:
        found = await preview(
            api, args.namespace, args.name, local=args.path, local_root=args.root, sops="mask"
        )
    finally:
        await api.close()
    sys.stdout.write(render(found.objects))
    return 0


async def diff_in_cluster(args: argparse.Namespace) -> int:
    """``fluxd diff kustomization NAME``: print what applying it would change."""
    api = await connect(args.kubeconfig)
    try:
        found = await preview(api, args.namespace, args.name, local=args.path, local_root=args.root)
        prune: list[ObjectRef] = []
        if found.spec.prune:
            status = found.kustomization.get("status") or {}
            prune = stale(recorded(status), [ObjectRef.of(obj) for obj in found.objects])
        try:
            ignore = DriftIgnore(found.spec.ignore)
        except ValueError as error:
            raise PreviewError(str(error)) from error
        # The reconciler's field manager: a diff then shows what its next apply writes.
        changes = await diff_objects(
            ApplyManager(api, RESTMapper(api)),
            found.objects,
            prune=prune,
            owner_labels=owner_labels(args.namespace, args.name),
            ignore=ignore,
        )
    finally:
        await api.close()
    for change in changes:
        sys.stdout.write(render_diff(change))
    return 1 if changes else 0


def run(
    command: str,
    code: int,
    work: Callable[[argparse.Namespace], Awaitable[int]],
    args: argparse.Namespace,
) -> int:
    """Run ``work(args)``; an expected failure is one line on stderr and exit status
    ``code``."""
    try:
        return anyio.run(work, args)
    except (PreviewError, ApplyError, KubeconfigError, ApiError) as error:
        print(f"fluxd {command}: {error}", file=sys.stderr)
        return code
