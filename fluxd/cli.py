"""The ``fluxd`` command line.

``fluxd run`` is the daemon. Its flags follow the Flux controllers' where they overlap
(``--watch-label-selector``, ``--concurrent``, ``--leader-elect``, ``--metrics-addr``), so a
Deployment's args carry over. With no kubeconfig and no in-cluster service account, it
starts the local control plane of :mod:`fluxd.devcluster` and a demo GitRepository served
from a local git repository, so a newcomer sees fluxd reconcile with nothing set up.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from fluxd import __version__, logs
from fluxd.demo import run_local
from fluxd.kube.client import kubeconfig_available
from fluxd.kustomize import KustomizeError, build, read_directory, render
from fluxd.kustomize._loader import KUSTOMIZATION_FILE_NAMES
from fluxd.manager import Options, serve

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
        "--grace-period", type=float, default=30.0, help="seconds to finish work on SIGTERM"
    )
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-console", action="store_true", help="human-readable logs")
    run.set_defaults(handler=_run)

    build = commands.add_parser("build", help="build objects locally, as fluxd would apply them")
    build_kinds = build.add_subparsers(dest="kind", required=True)
    kustomization = build_kinds.add_parser(
        "kustomization",
        help="print the kustomize build of a local directory (no cluster needed)",
        description="Build DIR with fluxd's native kustomize engine and print the YAML "
        "stream exactly as 'kubectl kustomize DIR' would. A directory without a "
        "kustomization file is built as Flux builds it: from the manifests below it.",
    )
    kustomization.add_argument("--path", required=True, type=Path, help="directory to build")
    kustomization.add_argument(
        "--root",
        type=Path,
        help="the tree the build may read (default: --path); name the repository root "
        "when an overlay refers to bases outside --path",
    )
    kustomization.set_defaults(handler=_build_kustomization)
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
    )


def _run(args: argparse.Namespace) -> int:
    logs.configure(args.log_level, json=not args.log_console)
    options = _options(args)
    if kubeconfig_available(args.kubeconfig):
        anyio.run(serve, args.kubeconfig, options)
        return 0
    return run_local(options)


def _build_kustomization(args: argparse.Namespace) -> int:
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
