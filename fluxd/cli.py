"""The ``fluxd`` command line.

``fluxd run`` is the daemon. Its flags follow the Flux controllers' where they overlap
(``--watch-label-selector``, ``--concurrent``, ``--leader-elect``, ``--metrics-addr``), so a
Deployment's args carry over. With no kubeconfig and no in-cluster service account, it
starts the local control plane of :mod:`fluxd.devcluster` and a demo GitRepository served
from a local git repository, so a newcomer sees fluxd reconcile with nothing set up.

``fluxd build kustomization`` and ``fluxd diff kustomization`` follow the Flux CLI's
commands of the same names: what a Kustomization would apply (see :mod:`fluxd.preview`),
and what that would change in the cluster (see :mod:`fluxd.apply.diff`); ``diff`` exits
0 when nothing would change, 1 when something would, 2 on error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio
from kubernetes_asyncio.config import ConfigException

from fluxd import __version__, logs
from fluxd.apply import ApplyError, ApplyManager, ObjectRef, RESTMapper, parse, stale
from fluxd.apply.diff import diff_objects, render_diff
from fluxd.apply.ignore import DriftIgnore
from fluxd.demo import run_local
from fluxd.kube.client import ApiError, connect, kubeconfig_available
from fluxd.kustomize import KustomizeError, build, read_directory, render
from fluxd.kustomize._loader import KUSTOMIZATION_FILE_NAMES
from fluxd.manager import Options, serve
from fluxd.preview import PreviewError, preview
from fluxd.reconcilers.kustomization import FIELD_MANAGER
from fluxd.reconcilers.kustomize_build import NAME_LABEL, NAMESPACE_LABEL

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fluxd", description="The Flux CD controllers as one asyncio process."
    )
    parser.add_argument("--version", action="version", version=f"fluxd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="reconcile Flux objects in the cluster of the current kubeconfig",
        description="Run the daemon. Without any kubeconfig (and outside a pod) it starts "
        "a local control plane and a demo GitRepository.",
    )
    run.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    run.add_argument("--metrics-addr", default=":8080", help="metrics and probes listener")
    run.add_argument("--artifact-addr", default=":9090", help="artifact HTTP listener")
    run.add_argument(
        "--artifact-base-url",
        help="URL prefix of status.artifact.url (default: the fluxd Service in the "
        "runtime namespace)",
    )
    run.add_argument("--leader-elect", action="store_true", help="hold a Lease to run")
    run.add_argument("--leader-election-namespace", help="namespace of the Lease")
    run.add_argument("--watch-namespace", help="only reconcile objects in this namespace")
    run.add_argument(
        "--watch-label-selector", help="only reconcile objects matching this label selector"
    )
    run.add_argument("--concurrent", type=int, default=4, help="reconciles at once, per kind")
    run.add_argument(
        "--default-service-account",
        help="service account that Kustomizations without spec.serviceAccountName "
        "impersonate, in their own namespace (multi-tenancy lockdown)",
    )
    run.add_argument(
        "--watch-configs-label-selector",
        default="reconcile.fluxcd.io/watch=Enabled",
        help="ConfigMaps and Secrets with these labels wake the Kustomizations that read "
        "them when they change; empty watches none",
    )
    run.add_argument(
        "--grace-period", type=float, default=30.0, help="seconds to finish work on SIGTERM"
    )
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-console", action="store_true", help="human-readable logs")
    run.set_defaults(handler=_run)

    build = commands.add_parser("build", help="build objects as fluxd would apply them")
    build_kinds = build.add_subparsers(dest="kind", required=True)
    kustomization = build_kinds.add_parser(
        "kustomization",
        aliases=["ks"],
        help="print the objects a Kustomization applies (or the build of a local directory)",
        description="With NAME: read Kustomization NAME from the cluster, fetch its "
        "GitRepository at the revision it serves, and print the objects exactly as fluxd "
        "would apply them (Flux fields, postBuild, owner labels; values of SOPS-encrypted "
        "Secrets masked as **SOPS**). With NAME and --path: build the local directory with "
        "the in-cluster Kustomization's fields instead of the source. Without NAME: print "
        "the kustomize build of --path exactly as 'kubectl kustomize' would (no cluster).",
    )
    kustomization.add_argument("name", nargs="?", help="the Kustomization (needs a cluster)")
    _cluster_flags(kustomization)
    kustomization.add_argument("--path", type=Path, help="local directory to build")
    _root_flag(kustomization)
    kustomization.set_defaults(handler=_build_kustomization)

    diff = commands.add_parser("diff", help="show what applying would change in the cluster")
    diff_kinds = diff.add_subparsers(dest="kind", required=True)
    diff_kustomization = diff_kinds.add_parser(
        "kustomization",
        aliases=["ks"],
        help="server-side dry-run of a Kustomization's objects, as a diff",
        description="Build Kustomization NAME as 'fluxd build kustomization NAME' does (from "
        "its source, or from --path), dry-run every object against the cluster and print "
        "what would change: drifted objects as a unified diff, created ones, and inventory "
        "objects a prune would delete. Secret values are masked. Exit status: 0 no "
        "differences, 1 differences found, 2 error.",
    )
    diff_kustomization.add_argument("name", help="the Kustomization")
    _cluster_flags(diff_kustomization)
    diff_kustomization.add_argument(
        "--path", type=Path, help="local directory to build instead of the source"
    )
    _root_flag(diff_kustomization)
    diff_kustomization.set_defaults(handler=_diff_kustomization)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fluxd`` console script and ``python -m fluxd``."""
    args = _parser().parse_args(argv)
    code: int = args.handler(args)
    return code


def _options(args: argparse.Namespace) -> Options:
    return Options(
        metrics_addr=args.metrics_addr,
        artifact_addr=args.artifact_addr,
        artifact_base_url=args.artifact_base_url,
        leader_elect=args.leader_elect,
        leader_election_namespace=args.leader_election_namespace,
        watch_namespace=args.watch_namespace,
        watch_label_selector=args.watch_label_selector,
        concurrent=args.concurrent,
        grace_period=args.grace_period,
        default_service_account=args.default_service_account,
        watch_configs_label_selector=args.watch_configs_label_selector,
    )


def _run(args: argparse.Namespace) -> int:
    logs.configure(args.log_level, json=not args.log_console)
    options = _options(args)
    if kubeconfig_available(args.kubeconfig):
        anyio.run(serve, args.kubeconfig, options)
        return 0
    return run_local(options)


def _cluster_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n", "--namespace", default="flux-system", help="namespace of the Kustomization"
    )
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )


def _root_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        help="the tree the build may read (default: --path); name the repository root "
        "when an overlay refers to bases outside --path",
    )


def _build_kustomization(args: argparse.Namespace) -> int:
    if args.name is not None:
        return _report_errors("build", 1, lambda: anyio.run(_build_in_cluster, args))
    if args.path is None:
        print("fluxd build: give a Kustomization NAME, --path DIR, or both", file=sys.stderr)
        return 1
    path: Path = args.path.resolve()
    root: Path = (args.root or args.path).resolve()
    if not path.is_dir() or (path != root and root not in path.parents):
        print(f"fluxd build: {args.path} is not a directory inside {root}", file=sys.stderr)
        return 1
    # Like `kubectl kustomize` whenever DIR has a kustomization; like Flux when it has none.
    generate = not any((path / name).is_file() for name in KUSTOMIZATION_FILE_NAMES)
    try:
        objects = build(
            read_directory(root), path.relative_to(root).as_posix(), generate_missing=generate
        )
    except KustomizeError as error:
        print(f"fluxd build: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(render(objects))
    return 0


async def _build_in_cluster(args: argparse.Namespace) -> int:
    api = await connect(args.kubeconfig)
    try:
        found = await preview(
            api, args.namespace, args.name, local=args.path, local_root=args.root, sops="mask"
        )
    finally:
        await api.close()
    sys.stdout.write(render(found.objects))
    return 0


def _diff_kustomization(args: argparse.Namespace) -> int:
    return _report_errors("diff", 2, lambda: anyio.run(_diff_in_cluster, args))


async def _diff_in_cluster(args: argparse.Namespace) -> int:
    api = await connect(args.kubeconfig)
    try:
        found = await preview(api, args.namespace, args.name, local=args.path, local_root=args.root)
        owner = {NAME_LABEL: args.name, NAMESPACE_LABEL: args.namespace}
        prune: list[ObjectRef] = []
        if found.spec.prune:
            status = found.kustomization.get("status") or {}
            try:
                previous = parse((status.get("inventory") or {}).get("entries") or [])
            except ValueError:
                previous = []
            prune = stale(previous, [ObjectRef.of(obj) for obj in found.objects])
        # The reconciler's field manager: a diff then shows what its next apply writes.
        manager = ApplyManager(api, RESTMapper(api), field_manager=FIELD_MANAGER)
        try:
            ignore = DriftIgnore(found.spec.drift_ignore_rules)
        except ValueError as error:
            raise PreviewError(f"spec.{error}") from error
        changes = await diff_objects(
            manager, found.objects, prune=prune, owner_labels=owner, ignore=ignore
        )
    finally:
        await api.close()
    for change in changes:
        sys.stdout.write(render_diff(change))
    return 1 if changes else 0


def _report_errors(command: str, code: int, work: Callable[[], int]) -> int:
    """Run ``work``; an expected failure is one line on stderr and exit status ``code``."""
    try:
        return work()
    except (PreviewError, ApplyError, ConfigException, ApiError) as error:
        print(f"fluxd {command}: {error}", file=sys.stderr)
        return code
