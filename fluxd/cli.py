"""The ``fluxd`` command line.

``fluxd run`` is the daemon. Its flags follow the Flux controllers' where they overlap
(``--watch-label-selector``, ``--concurrent``, ``--leader-elect``, ``--metrics-addr``), so a
Deployment's args carry over. With no kubeconfig and no in-cluster service account, it
starts the local control plane of :mod:`fluxd.devcluster` and a demo GitRepository served
from a local git repository, so a newcomer sees fluxd reconcile with nothing set up.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import anyio

from fluxd import __version__, logs
from fluxd.demo import run_local
from fluxd.kube.client import kubeconfig_available
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
