"""``fluxd install`` and ``fluxd uninstall``: put fluxd into a cluster, and take it out.

``install`` applies :func:`~fluxd.api.install.install_objects` (what ``manifests/install.yaml``
holds, for the namespace, image and RBAC asked for) with server-side apply in Flux's
stages -- the namespace and CRDs first, established before the rest -- and waits until the
``fluxd`` Deployment has rolled out with every replica ready, as ``flux install`` does.
``--export`` prints the manifests instead and touches nothing.

``uninstall`` follows ``flux uninstall``'s order so that nothing is stuck and no workload is
deleted: first fluxd's own objects (the Deployment goes first, so no reconciler is left to
prune), then fluxd's finalizer from every Flux object in every namespace, then the CRDs
(which deletes the Flux objects, now without anyone to act on it), then the namespace
unless ``--keep-namespace``. What the Kustomizations and HelmReleases applied stays.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fluxd.cli.session import CommandError, run_session

if TYPE_CHECKING:
    from fluxd.api.install import InstallOptions
    from fluxd.kube.client import ApiClient
    from fluxd.kube.resources import Resource

__all__ = ["add_install_commands", "install_components", "uninstall_components"]

#: The field manager of what the CLI applies (``flux install`` uses the same name).
FIELD_MANAGER = "flux"
#: Flux's finalizer, which fluxd puts on every object it reconciles.
FINALIZER = "finalizers.fluxcd.io"
_POLL = 0.5


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def install_components(
    api: ApiClient,
    options: InstallOptions,
    *,
    wait: float,
    say: Callable[[str], None] = _say,
) -> None:
    """Apply the install objects for ``options`` and wait until fluxd's Deployment is
    ready; :class:`CommandError` when applying fails or ``wait`` seconds pass."""
    from fluxd.api.install import NAME, install_objects
    from fluxd.apply import ApplyError, ApplyManager, RESTMapper

    deadline = time.monotonic() + wait
    say(f"► installing components in {options.namespace} namespace")
    applier = ApplyManager(api, RESTMapper(api), field_manager=FIELD_MANAGER)
    try:
        changes = await applier.apply_all(install_objects(options), wait_timeout=wait)
    except ApplyError as error:
        raise CommandError(f"install failed: {error}") from error
    for change in changes:
        say(str(change))
    say("✔ install completed")
    say("◎ verifying installation")
    await wait_for_deployment(api, options.namespace, NAME, deadline=deadline)
    say(f"✔ {NAME}: deployment ready")
    say("✔ install finished")


async def wait_for_deployment(
    api: ApiClient, namespace: str, name: str, *, deadline: float
) -> None:
    """Wait until the Deployment is rolled out with all replicas ready."""
    from fluxd.cli.check import deployment_problem
    from fluxd.kube.client import get
    from fluxd.kube.resources import Resource

    deployments = Resource("apps", "v1", "deployments")
    while True:
        deployment = await get(api, deployments, namespace, name, missing_ok=True)
        problem = "not found" if deployment is None else deployment_problem(deployment)
        if problem is None:
            return
        if time.monotonic() >= deadline:
            raise CommandError(
                f"timeout waiting for Deployment {namespace}/{name} to be ready: {problem}"
            )
        await asyncio.sleep(_POLL)


async def uninstall_components(
    api: ApiClient,
    namespace: str,
    *,
    keep_namespace: bool,
    dry_run: bool,
    say: Callable[[str], None] = _say,
) -> None:
    """Remove fluxd from the cluster in ``flux uninstall``'s order; see the module text."""
    from fluxd.api import KINDS
    from fluxd.api.install import InstallOptions, namespace_object, workload_objects
    from fluxd.apply import RESTMapper
    from fluxd.kube.client import delete
    from fluxd.kube.objects import resource_of
    from fluxd.kube.resources import Resource

    suffix = " (dry run)" if dry_run else ""
    mapper = RESTMapper(api)
    say(f"► deleting components in {namespace} namespace")
    # Every name an install of this namespace can have: cluster-admin binding included.
    for obj in workload_objects(InstallOptions(namespace=namespace, cluster_admin=True)):
        resource = await mapper.resource_for(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        where = meta.get("namespace") if resource.namespaced else None
        if dry_run or await delete(api, resource, where, meta["name"]) is not None:
            say(f"✔ {obj['kind']}/{meta.get('namespace', '')}/{meta['name']} deleted{suffix}")
    say("► deleting toolkit.fluxcd.io finalizers in all namespaces")
    for kind in KINDS:
        for listed in await _with_finalizer(api, resource_of(kind)):
            meta = listed["metadata"]
            if not dry_run:
                await _drop_finalizer(api, resource_of(kind), listed)
            say(f"✔ {kind.kind}/{meta['namespace']}/{meta['name']} finalizers deleted{suffix}")
    say("► deleting toolkit.fluxcd.io custom resource definitions")
    crds = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
    for kind in KINDS:
        if dry_run or await delete(api, crds, None, kind.crd_name) is not None:
            say(f"✔ CustomResourceDefinition/{kind.crd_name} deleted{suffix}")
    if not keep_namespace:
        namespaces = Resource("", "v1", "namespaces", namespaced=False)
        name = namespace_object(InstallOptions(namespace=namespace))["metadata"]["name"]
        if dry_run or await delete(api, namespaces, None, name) is not None:
            say(f"✔ Namespace/{name} deleted{suffix}")
    say("✔ uninstall finished")


async def _with_finalizer(api: ApiClient, resource: Resource) -> list[dict[str, Any]]:
    """Every object of ``resource`` that carries fluxd's finalizer, as listed."""
    from fluxd.kube.client import ApiError, list_page

    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        try:
            page = await list_page(api, resource, None, continue_token=token)
        except ApiError as error:
            if error.not_found:  # the CRD is gone already
                return found
            raise
        for item in page.get("items") or []:
            if FINALIZER in ((item.get("metadata") or {}).get("finalizers") or []):
                found.append(item)
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return found


async def _drop_finalizer(api: ApiClient, resource: Resource, listed: dict[str, Any]) -> None:
    """Write ``listed`` back without fluxd's finalizer; read it again only when it
    changed since it was listed."""
    from fluxd.kube.client import ApiError, get, replace

    live: dict[str, Any] | None = listed
    while live is not None:
        finalizers = live["metadata"].get("finalizers") or []
        live["metadata"]["finalizers"] = [f for f in finalizers if f != FINALIZER]
        try:
            await replace(api, resource, live)
            return
        except ApiError as error:
            if not error.conflict:  # a conflict: changed since read, read again
                raise
        meta = listed["metadata"]
        live = await get(api, resource, meta["namespace"], meta["name"], missing_ok=True)


def _export(options: InstallOptions) -> int:
    from fluxd.api.generate import dump_yaml
    from fluxd.api.install import install_objects

    sys.stdout.write(dump_yaml(install_objects(options)))
    return 0


def _install(args: argparse.Namespace) -> int:
    from fluxd.api import parse_duration
    from fluxd.api.install import IMAGE, InstallOptions

    options = InstallOptions(
        namespace=args.namespace, image=args.image or IMAGE, cluster_admin=args.cluster_admin
    )
    if args.export:
        return _export(options)
    wait = parse_duration(args.timeout)

    async def work(api: ApiClient) -> int:
        await install_components(api, options, wait=wait)
        return 0

    return run_session(args.kubeconfig, work)


def _uninstall(args: argparse.Namespace) -> int:
    from fluxd.cli.operate import confirmed

    if not (args.silent or args.dry_run) and not confirmed(
        "Are you sure you want to delete fluxd and its custom resource definitions"
    ):
        _say("✗ aborting")
        return 1

    async def work(api: ApiClient) -> int:
        await uninstall_components(
            api, args.namespace, keep_namespace=args.keep_namespace, dry_run=args.dry_run
        )
        return 0

    return run_session(args.kubeconfig, work)


def add_install_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``install`` and ``uninstall`` to the command line."""
    summary = "install fluxd and its CRDs and wait until it is ready"
    install = commands.add_parser("install", help=summary, description=summary)
    install.add_argument(
        "--export", action="store_true", help="print the manifests as YAML and apply nothing"
    )
    install.add_argument("--image", help="the fluxd image (default: this release's)")
    install.add_argument(
        "--cluster-admin",
        action="store_true",
        help="bind fluxd to cluster-admin, as Flux is, so Kustomizations and HelmReleases "
        "without spec.serviceAccountName may apply anything (default: fluxd's own "
        "ClusterRole only)",
    )
    install.add_argument("--timeout", default="5m", help="how long to wait (default 5m)")
    install.set_defaults(handler=_install)
    summary = "remove fluxd and its CRDs; the workloads it applied stay"
    uninstall = commands.add_parser("uninstall", help=summary, description=summary)
    uninstall.add_argument(
        "--keep-namespace", action="store_true", help="keep the namespace fluxd ran in"
    )
    uninstall.add_argument(
        "--dry-run", action="store_true", help="only print the objects that would be deleted"
    )
    uninstall.add_argument(
        "-s", "--silent", action="store_true", help="delete without asking for confirmation"
    )
    uninstall.set_defaults(handler=_uninstall)
    for command in (install, uninstall):
        command.add_argument(
            "-n",
            "--namespace",
            default="flux-system",
            help="fluxd's namespace (default flux-system)",
        )
        command.add_argument(
            "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
        )
